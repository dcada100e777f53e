"""Reference images: phone photos (MPO) are JPEGs, and a bomb says how many pixels it has."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from bot.errors import BadInput
from bot.references import TooManyPixels, reference_image
from tests.conftest import png_bytes


def mpo_bytes() -> bytes:
    """A multi-picture JPEG like an Ultra HDR or gain-map phone photo."""
    first, second = Image.new("RGB", (64, 48), (200, 40, 40)), Image.new("RGB", (32, 24))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second])
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_multi_picture_jpeg_is_accepted_as_jpeg() -> None:
    data = mpo_bytes()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "MPO"  # what Pillow calls it
    reference = reference_image(data, "PXL_0001.jpg")
    assert reference.mime_type == "image/jpeg" and reference.data == data


@pytest.mark.parametrize(
    ("size", "pixels"),
    [((100_000, 100_000), "10,000,000,000"), ((10_000, 6_000), "60,000,000")],
)
def test_too_many_pixels_says_so(size: tuple[int, int], pixels: str) -> None:
    with pytest.raises(TooManyPixels) as caught:
        reference_image(png_header_only(*size), "bomb.png")
    assert str(caught.value) == (
        f"The reference image bomb.png has too many pixels: {pixels} > 50,000,000."
    )
    assert isinstance(caught.value, BadInput)


def test_ordinary_references_still_pass_and_junk_is_still_refused() -> None:
    assert reference_image(png_bytes(), "a.png").mime_type == "image/png"
    with pytest.raises(BadInput, match=r"must be a PNG, JPEG or WebP image; junk\.bin is not"):
        reference_image(b"not an image at all", "junk.bin")
