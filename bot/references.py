"""Reference images for image-to-image: one check shared by the CLI and the bot."""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, UnidentifiedImageError

from bot.errors import BadInput
from providers.base import ReferenceImage

MAX_REFERENCE_BYTES = 20 * 1024 * 1024
#: more pixels than any model takes as a reference; also what a decompression bomb looks like
MAX_REFERENCE_PIXELS = 50_000_000
# MPO is a JPEG with more pictures after the first (Android Ultra HDR, iPhone gain maps): every
# JPEG decoder reads its first picture, so it is sent as the JPEG it is.
REFERENCE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
}
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class TooManyPixels(BadInput):
    """The image's header declares more pixels than a reference may have."""

    def __init__(self, filename: str, pixels: int | None) -> None:
        self.pixels = pixels
        count = f"{pixels:,}" if pixels is not None else "far more"
        super().__init__(
            f"The reference image {filename} has too many pixels: "
            f"{count} > {MAX_REFERENCE_PIXELS:,}."
        )


def sniff(data: bytes, filename: str = "the image") -> str:
    """The image format of ``data`` ("PNG", ...), or "" when Pillow cannot read it safely.

    Raises TooManyPixels when the header declares an image too large to be a reference.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_REFERENCE_PIXELS:
                    raise TooManyPixels(filename, width * height)
                kind = image.format or ""
                image.verify()
    except Image.DecompressionBombError as exc:
        found = _BOMB_PIXELS.search(str(exc))
        raise TooManyPixels(filename, int(found.group(1)) if found else None) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return ""
    return kind


def reference_image(data: bytes, filename: str) -> ReferenceImage:
    """Check the bytes of a reference image (blocking: run it off the event loop)."""
    if len(data) > MAX_REFERENCE_BYTES:
        size_mb = len(data) / 1024 / 1024
        limit_mb = MAX_REFERENCE_BYTES // (1024 * 1024)
        raise BadInput(f"The reference image is {size_mb:.1f} MB; the limit is {limit_mb} MB.")
    kind = sniff(data, filename)
    if kind not in REFERENCE_TYPES:
        raise BadInput(f"The reference must be a PNG, JPEG or WebP image; {filename} is not.")
    return ReferenceImage(data, REFERENCE_TYPES[kind], filename)
