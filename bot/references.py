"""Reference images for image-to-image: one check shared by the CLI and the bot."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from bot.errors import BadInput
from providers.base import ReferenceImage

MAX_REFERENCE_BYTES = 20 * 1024 * 1024
REFERENCE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def sniff(data: bytes) -> str:
    """The image format of ``data`` ("PNG", ...), or "" when Pillow cannot read it safely."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return ""
    return kind


def reference_image(data: bytes, filename: str) -> ReferenceImage:
    """Check the bytes of a reference image (blocking: run it off the event loop)."""
    if len(data) > MAX_REFERENCE_BYTES:
        size_mb = len(data) / 1024 / 1024
        limit_mb = MAX_REFERENCE_BYTES // (1024 * 1024)
        raise BadInput(f"The reference image is {size_mb:.1f} MB; the limit is {limit_mb} MB.")
    kind = sniff(data)
    if kind not in REFERENCE_TYPES:
        raise BadInput(f"The reference must be a PNG, JPEG or WebP image; {filename} is not.")
    return ReferenceImage(data, REFERENCE_TYPES[kind], filename)
