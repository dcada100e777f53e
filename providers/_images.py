"""Image geometry and checks shared by the adapters: aspect parsing, nearest ratio, safe decoding."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
from dataclasses import dataclass

import pybase64
from PIL import Image, UnidentifiedImageError

from providers._lift import Lifted
from providers.base import BadRequest, ReferenceImage

#: Pillow format name -> MIME type; nothing else is accepted from a provider. Pillow names a
#: JPEG that carries extra pictures (Android Ultra HDR, iPhone gain maps) "MPO"; its first
#: picture is an ordinary JPEG that every decoder shows, so it is accepted as one.
ALLOWED_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
}
ALLOWED_MIME_TYPES = frozenset(ALLOWED_FORMATS.values()) | {"image/jpg", "image/mpo"}
#: the decoders to try; Pillow's JPEG decoder is the one that hands back an MPO
OPEN_FORMATS = ["PNG", "JPEG", "WEBP"]
#: a JPEG's end marker may be followed by a little padding from some encoders
_JPEG_TAIL = 4096


class ImageProblem(ValueError):
    """Bytes that are not a usable image; the text says why (for operators)."""


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """Image bytes that decoded cleanly, with their real type and size."""

    data: bytes
    mime_type: str
    width: int
    height: int


def parse_aspect(aspect: str, *, who: str, adapter: str) -> float:
    """Width/height of an aspect string like '16:9'; BadRequest when it is not one."""
    w_text, sep, h_text = aspect.strip().partition(":")
    try:
        ratio = float(w_text) / float(h_text) if sep else math.nan
    except (ValueError, ZeroDivisionError):
        ratio = math.nan
    if not math.isfinite(ratio) or ratio <= 0:
        raise BadRequest(
            f"{who} cannot draw the aspect ratio {aspect!r}.",
            adapter=adapter,
            detail=f"aspect {aspect!r} is not of the form W:H with positive numbers",
        )
    return ratio


def nearest_aspect(ratio: float, supported: tuple[str, ...]) -> str:
    """The supported 'W:H' closest to ``ratio`` in log space; ties go to the earlier entry."""

    def distance(candidate: str) -> float:
        w, _, h = candidate.partition(":")
        return abs(math.log(ratio) - math.log(float(w) / float(h)))

    return min(supported, key=distance)


def data_uri(data: bytes, mime_type: str) -> str:
    """A base64 `data:` URI for bytes we hold (fal accepts these wherever it takes an image URL)."""
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def shrink_reference(ref: ReferenceImage, *, max_edge: int, max_bytes: int) -> ReferenceImage:
    """``ref`` unchanged when it is within both caps, else re-encoded at most ``max_edge`` px.

    Photos become JPEG (quality 90); images with transparency stay PNG, so an edit keeps its
    alpha. Bytes Pillow cannot read are returned unchanged for the provider to judge.
    """
    try:
        with Image.open(io.BytesIO(ref.data), formats=OPEN_FORMATS) as image:
            if max(image.size) <= max_edge and len(ref.data) <= max_bytes:
                return ref
            image.draft("RGB", (max_edge, max_edge))  # JPEG: decode at a smaller scale
            image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
            alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            out = io.BytesIO()
            if alpha:
                image.convert("RGBA").save(out, format="PNG")
                mime, suffix = "image/png", ".png"
            else:
                image.convert("RGB").save(out, format="JPEG", quality=90, optimize=True)
                mime, suffix = "image/jpeg", ".jpg"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return ref
    stem = ref.filename.rsplit(".", 1)[0] or "reference"
    return ReferenceImage(out.getvalue(), mime, stem + suffix)


def decode_base64(text: str | Lifted) -> bytes:
    """Strict base64 decode that tolerates a `data:...;base64,` prefix and line breaks.

    pybase64 decodes with SIMD and releases the GIL while it does (a 2K image: ~4 ms, against
    ~70 ms holding the GIL in the standard library), so the event loop runs meanwhile.
    """
    raw: str | bytes | memoryview = text.raw if isinstance(text, Lifted) else text
    if isinstance(raw, str):
        if raw.startswith("data:"):
            raw = raw.partition(",")[2]
    elif raw[:5] == b"data:":
        comma = bytes(raw[:256]).find(b",")
        raw = raw[comma + 1 :] if comma >= 0 else raw[len(raw) :]
    try:
        # Providers send one unbroken line: decoded as is, without a copy.
        return pybase64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        pass
    cleaned = (
        "".join(raw.split()) if isinstance(raw, str) else bytes(raw).translate(None, b" \t\r\n")
    )
    try:
        return pybase64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageProblem(f"invalid base64 image data ({exc})") from None


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Check ``data`` from its header plus a bounded structural check; raise ImageProblem if unusable.

    No pixel is decoded here: the compositor decodes each image exactly once, and an image that
    passes this but still fails to decode there becomes a failed (refunded) panel. The check is
    linear in the bytes at memory speed: a PNG's chunks and their CRCs up to IEND, a JPEG's end
    marker, a WebP's RIFF length.
    """
    if not data:
        raise ImageProblem("empty image")
    if len(data) > max_bytes:
        raise ImageProblem(f"image is {len(data)} bytes, over the {max_bytes}-byte cap")
    try:
        with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as image:
            width, height = image.size
            # Checked from the header before anything else: a few bytes can claim gigapixels.
            if width * height > max_pixels:
                raise ImageProblem(
                    f"image claims {width}x{height} pixels, over the {max_pixels} cap"
                )
            if width < 1 or height < 1:
                raise ImageProblem(f"image claims {width}x{height} pixels")
            fmt = image.format or ""
            if fmt == "PNG":
                image.verify()  # every chunk's CRC up to IEND; nothing is inflated
    except ImageProblem:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageProblem(f"decompression bomb guard: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageProblem(f"not a PNG, JPEG or WebP image ({type(exc).__name__}: {exc})") from None
    mime = ALLOWED_FORMATS.get(fmt)
    if mime is None:  # pragma: no cover - `formats=` already restricts this
        raise ImageProblem(f"image format {fmt!r} is not allowed")
    if fmt == "JPEG" and data.rfind(b"\xff\xd9", max(0, len(data) - _JPEG_TAIL)) < 0:
        raise ImageProblem("not a PNG, JPEG or WebP image (JPEG data ends before its end marker)")
    if fmt == "WEBP" and int.from_bytes(data[4:8], "little") + 8 > len(data):
        raise ImageProblem(
            "not a PNG, JPEG or WebP image (WebP data is shorter than its header says)"
        )
    return CheckedImage(data, mime, width, height)


async def check_image(
    data: bytes, *, declared_mime: str | None, max_bytes: int, max_pixels: int
) -> CheckedImage:
    """Validate image bytes off the event loop (reading a large PNG's chunks is still CPU work)."""
    if declared_mime is not None and declared_mime.split(";")[0].strip().lower() not in (
        ALLOWED_MIME_TYPES
    ):
        raise ImageProblem(f"declared type {declared_mime!r} is not an allowed image type")
    return await asyncio.to_thread(inspect_image, data, max_bytes=max_bytes, max_pixels=max_pixels)
