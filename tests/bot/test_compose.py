"""Tests for the compositor: layout, letterboxing, placeholders, robustness and size caps."""

from __future__ import annotations

import io
import random
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFont, ImageOps, ImageStat

from bot.compose import (
    CARD_RGB,
    DECODE_FAILED,
    LETTERBOX_RGB,
    MAX_UPLOAD_BYTES,
    MIN_MAX_BYTES,
    NO_IMAGE,
    PLACEHOLDER_RGB,
    TOO_LARGE,
    Composite,
    Panel,
    _fill_rounded,
    compose,
)
from providers import fonts
from tests.conftest import png_bytes

RED = (220, 30, 30)
GREEN = (30, 200, 60)
BLUE = (30, 60, 220)
YELLOW = (230, 210, 40)
COLOURS = (RED, GREEN, BLUE, YELLOW)

# Flat colours survive JPEG quality 90 with 4:4:4 chroma almost exactly.
TOLERANCE = 10


# --- helpers ---------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def solid(size: tuple[int, int], colour: tuple[int, ...], fmt: str = "PNG") -> bytes:
    mode = "RGBA" if len(colour) == 4 else "RGB"
    return encoded(Image.new(mode, size, colour), fmt)


def paletted(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    image = Image.new("P", size, 0)
    image.putpalette(list(colour) + [0, 0, 0] * 255)
    return image


def noisy_png(size: tuple[int, int], seed: int) -> bytes:
    """Incompressible pixels: the worst case for every output format."""
    data = random.Random(seed).randbytes(size[0] * size[1] * 3)
    return encoded(Image.frombytes("RGB", size, data), "PNG", compress_level=0)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size but carries no pixels: enough for a decompression-bomb check."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def opened(result: Composite) -> Image.Image:
    image = Image.open(io.BytesIO(result.data))
    assert image.format == result.format
    assert image.size == (result.width, result.height)
    return image.convert("RGB")


def centre(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = TOLERANCE) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value[0], value[1], value[2]


def size_of(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def coloured_panels(count: int, size: tuple[int, int] = (512, 512)) -> list[Panel]:
    return [
        Panel(f"Model {i}", f"{i + 1}.0 s · {size[0]}×{size[1]}", solid(size, COLOURS[i]))
        for i in range(count)
    ]


# --- layout ----------------------------------------------------------------------------


def test_two_panels_side_by_side_show_their_images() -> None:
    result = compose(coloured_panels(2))
    image = opened(result)

    assert len(result.panel_boxes) == len(result.label_boxes) == 2
    assert result.failures == (None, None)
    left, right = result.panel_boxes
    assert size_of(left) == size_of(right)
    assert left[1] == right[1] and left[2] <= right[0]  # same row, left to right
    for box, colour in zip(result.panel_boxes, COLOURS, strict=False):
        assert near(pixel(image, centre(box)), colour)


@pytest.mark.parametrize("count", [3, 4])
def test_three_and_four_panels_form_a_grid(count: int) -> None:
    result = compose(coloured_panels(count))
    image = opened(result)
    boxes = result.panel_boxes

    assert len(boxes) == count
    assert len({size_of(b) for b in boxes}) == 1, "every cell is the same size"
    assert boxes[0][1] == boxes[1][1] < boxes[2][1], "two on top, the rest below"
    assert boxes[0][0] < boxes[1][0]
    if count == 3:
        # The lone last panel sits centred under the first row.
        assert abs(centre(boxes[2])[0] - result.width / 2) <= 1
    else:
        assert boxes[2][1] == boxes[3][1]
        assert (boxes[2][0], boxes[3][0]) == (boxes[0][0], boxes[1][0])
    for box, colour in zip(boxes, COLOURS, strict=False):
        assert near(pixel(image, centre(box)), colour)


def test_label_strips_hold_drawn_text() -> None:
    result = compose(coloured_panels(2))
    image = opened(result)

    for label_box, panel_box in zip(result.label_boxes, result.panel_boxes, strict=True):
        assert label_box[3] <= panel_box[1], "the label sits above its image"
        strip = image.crop(label_box)
        pixels = strip.get_flattened_data()
        inked = sum(not near(p, CARD_RGB, 24) for p in pixels)
        assert inked / len(pixels) > 0.05, "badge and label text are drawn"
        assert ImageStat.Stat(strip.convert("L")).stddev[0] > 20, "text, not a flat fill"


def test_blind_letters_and_odd_labels_render() -> None:
    panels = [
        Panel("A", "", solid((64, 64), RED)),
        Panel("Line one\nline two with a very long name " * 4, "caption\n" * 20, b"x"),
    ]
    result = compose(panels)
    assert result.failures == (None, DECODE_FAILED)


def test_mixed_aspect_ratios_are_letterboxed_not_stretched() -> None:
    portrait = solid((1024, 1536), RED)
    landscape = solid((1536, 1024), BLUE)
    result = compose([Panel("Tall", "", portrait), Panel("Wide", "", landscape)])
    image = opened(result)
    (tall_area, wide_area), (tall, wide) = result.panel_boxes, result.content_boxes

    assert size_of(tall_area) == size_of(wide_area) == (1024, 1024)
    tall_w, tall_h = size_of(tall)
    wide_w, wide_h = size_of(wide)
    assert tall_h == 1024 and wide_w == 1024
    assert abs(tall_w / tall_h - 1024 / 1536) / (1024 / 1536) < 0.01
    assert abs(wide_w / wide_h - 1536 / 1024) / (1536 / 1024) < 0.01

    # Bars left and right of the portrait, above and below the landscape.
    bar_points = [
        ((tall_area[0] + tall[0]) // 2, centre(tall_area)[1]),
        ((tall[2] + tall_area[2]) // 2, centre(tall_area)[1]),
        (centre(wide_area)[0], (wide_area[1] + wide[1]) // 2),
        (centre(wide_area)[0], (wide[3] + wide_area[3]) // 2),
    ]
    for xy in bar_points:
        assert near(pixel(image, xy), LETTERBOX_RGB, 6)
    # The content reaches its box edges: nothing cropped.
    assert near(pixel(image, (tall[0] + 4, centre(tall)[1])), RED)
    assert near(pixel(image, (tall[2] - 5, centre(tall)[1])), RED)
    assert near(pixel(image, (centre(wide)[0], wide[1] + 4)), BLUE)
    assert near(pixel(image, (centre(wide)[0], wide[3] - 5)), BLUE)


def test_small_inputs_share_one_cell_size_and_stay_lossless() -> None:
    result = compose(coloured_panels(2, (200, 100)), panel_long_edge=256)
    image = opened(result)

    assert (result.format, result.mime_type, result.extension) == ("PNG", "image/png", "png")
    assert size_of(result.panel_boxes[0]) == size_of(result.panel_boxes[1])
    assert pixel(image, centre(result.content_boxes[0])) == RED


# --- failures and robustness -----------------------------------------------------------


def test_failed_model_gets_a_placeholder_with_its_reason() -> None:
    reason = "Declined this prompt (safety)"
    panels = [
        Panel("GPT-Image 2", "", solid((256, 256), RED)),
        Panel("Nano Banana Pro", "", None, reason),
    ]
    result = compose(panels)
    image = opened(result)
    box = result.panel_boxes[1]

    assert result.failures == (None, reason)
    assert result.content_boxes[1] == box
    assert near(pixel(image, (box[0] + 3, box[1] + 3)), PLACEHOLDER_RGB, 6)
    cell = image.crop(box).get_flattened_data()
    assert any(p[0] > 180 and p[1] < 140 for p in cell), "the red cross mark is drawn"
    assert sum(min(p) > 200 for p in cell) > 200, "the reason is written in light text"
    assert near(pixel(image, centre(result.panel_boxes[0])), RED)


@pytest.mark.parametrize(
    "data",
    [
        b"definitely not an image",
        b"",
        noisy_png((64, 64), seed=1)[:6000],  # truncated mid-pixels
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        solid((300, 300), GREEN, "JPEG")[:200],
    ],
    ids=["text", "empty", "truncated-png", "broken-header", "truncated-jpeg"],
)
def test_undecodable_bytes_become_a_placeholder(data: bytes) -> None:
    result = compose([Panel("Good", "", solid((64, 64), BLUE)), Panel("Bad", "", data)])
    assert result.failures == (None, DECODE_FAILED)
    assert near(pixel(opened(result), centre(result.panel_boxes[0])), BLUE)


def test_long_reasons_are_wrapped_to_fit() -> None:
    reason = "Upstream error:\n" + "x" * 300 + " then a great many ordinary words" * 12
    result = compose([Panel("A", "", None, reason)], panel_long_edge=300)
    assert result.failures == (" ".join(reason.split()),)
    opened(result).load()


def test_missing_image_without_a_reason_still_says_why() -> None:
    result = compose([Panel("A", ""), Panel("B", "", None, "   ")])
    assert result.failures == (NO_IMAGE, NO_IMAGE)


@pytest.mark.parametrize("side", [100_000, 8_000])
def test_oversized_images_are_refused_without_touching_pillow_settings(side: int) -> None:
    limit_before = Image.MAX_IMAGE_PIXELS
    result = compose(
        [Panel("Bomb", "", png_header_only(side, side)), Panel("Fine", "", solid((64, 64), RED))]
    )

    assert result.failures == (TOO_LARGE, None)
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_decompression_bomb_warning_as_error_is_a_placeholder() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compose([Panel("Bomb", "", png_header_only(10_000, 10_000))])
    assert result.failures == (TOO_LARGE,)


def test_transparent_pixels_show_the_letterbox_colour() -> None:
    image = Image.new("RGBA", (200, 200), (255, 0, 0, 0))
    image.paste((30, 60, 220, 255), (100, 0, 200, 200))
    result = compose([Panel("Alpha", "", encoded(image))])
    out = opened(result)
    x0, y0, x1, y1 = result.content_boxes[0]
    middle = (y0 + y1) // 2

    assert near(pixel(out, (x0 + (x1 - x0) // 4, middle)), LETTERBOX_RGB, 6)
    assert near(pixel(out, (x0 + 3 * (x1 - x0) // 4, middle)), BLUE)


@pytest.mark.parametrize(
    ("image", "fmt", "expected"),
    [
        (Image.new("L", (120, 80), 128), "PNG", (128, 128, 128)),
        (paletted((120, 80), RED), "PNG", RED),
        (paletted((120, 80), GREEN), "GIF", GREEN),
        (Image.new("1", (120, 80), 1), "PNG", (255, 255, 255)),
        (Image.new("I;16", (120, 80), 32768), "PNG", (128, 128, 128)),
        (Image.new("CMYK", (120, 80), (0, 255, 255, 0)), "JPEG", (237, 28, 36)),
        (Image.new("LA", (120, 80), (200, 255)), "PNG", (200, 200, 200)),
        (Image.new("RGB", (120, 80), BLUE), "WEBP", BLUE),
    ],
    ids=["L", "P", "GIF", "1-bit", "16-bit", "CMYK", "LA", "WebP"],
)
def test_image_modes_are_converted_for_display(
    image: Image.Image, fmt: str, expected: tuple[int, int, int]
) -> None:
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    result = compose([Panel("Mode", "", encoded(image, fmt, **options))])
    assert result.failures == (None,)
    # Naive CMYK to RGB is approximate by nature, hence the wide tolerance for it.
    tolerance = 40 if image.mode == "CMYK" else TOLERANCE
    assert near(pixel(opened(result), centre(result.content_boxes[0])), expected, tolerance)


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (300, 150), RED)
    stored.paste(BLUE, (150, 0, 300, 150))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: show it rotated 90° clockwise
    data = encoded(stored, "JPEG", quality=95, exif=exif)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")

    result = compose([Panel("Rotated", "", data)])
    out = opened(result)
    x0, y0, x1, y1 = result.content_boxes[0]
    middle_x, quarter = (x0 + x1) // 2, (y1 - y0) // 4

    assert upright.size == (150, 300)
    assert (x1 - x0) * 2 == y1 - y0, "shown upright, as a portrait"
    assert near(pixel(out, (middle_x, y0 + quarter)), pixel(upright, (75, 75)))
    assert near(pixel(out, (middle_x, y1 - quarter)), pixel(upright, (75, 225)))


def test_broken_colour_profile_is_ignored_not_fatal() -> None:
    data = encoded(Image.new("RGB", (64, 64), GREEN), "PNG", icc_profile=b"not a profile")
    result = compose([Panel("ICC", "", data)])
    assert result.failures == (None,)
    assert near(pixel(opened(result), centre(result.content_boxes[0])), GREEN)


def test_srgb_profile_leaves_colours_alone() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(Image.new("RGB", (64, 64), YELLOW), "PNG", icc_profile=srgb)
    result = compose([Panel("ICC", "", data)], panel_long_edge=256)
    assert pixel(opened(result), centre(result.content_boxes[0])) == YELLOW


# --- output size and determinism -------------------------------------------------------


def test_four_noisy_4096_pngs_stay_under_the_upload_limit() -> None:
    panels = [Panel(f"Noise {i}", "", noisy_png((4096, 4096), seed=i)) for i in range(4)]
    result = compose(panels)

    assert len(result.data) < MAX_UPLOAD_BYTES
    assert result.failures == (None,) * 4
    opened(result).load()


def test_tiny_budget_downscales_and_keeps_boxes_in_step() -> None:
    panels = [Panel(f"Noise {i}", "", noisy_png((512, 512), seed=i)) for i in range(2)]
    full = compose(panels)
    budget = 4 * MIN_MAX_BYTES
    small = compose(panels, max_bytes=budget)

    assert len(small.data) <= budget < len(full.data)
    assert small.format == "JPEG"
    assert small.width < full.width and small.height < full.height
    scale = small.width / full.width
    for a, b in zip(small.panel_boxes, full.panel_boxes, strict=True):
        assert all(abs(x - y * scale) <= 1 for x, y in zip(a, b, strict=True))
    opened(small).load()


def test_output_is_deterministic() -> None:
    panels = [
        Panel("Noise", "1.0 s", noisy_png((640, 480), seed=7)),
        Panel("Flat", "2.0 s", solid((480, 640), YELLOW, "JPEG")),
        Panel("Failed", "", None, "Timed out after 60 s"),
    ]
    assert compose(panels) == compose(panels)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="1 to 4 panels"):
        compose([])
    with pytest.raises(ValueError, match="1 to 4 panels"):
        compose(coloured_panels(4) + coloured_panels(1))
    with pytest.raises(ValueError, match="max_bytes"):
        compose(coloured_panels(2), max_bytes=1000)


# --- fonts -----------------------------------------------------------------------------


def test_fonts_fall_back_to_plain_symbols_when_a_glyph_is_missing() -> None:
    bundled = ImageFont.load_default(size=20)  # Aileron: no "●", "○", "×" or "—"
    text = "●●○ 14.2 s · 1024×1536 — done"
    shown = fonts.displayable(bundled, text)
    assert "●" not in shown and "×" not in shown and "—" not in shown
    assert shown.startswith("**o") and "1024x1536" in shown


@pytest.mark.skipif(
    not Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf").exists(),
    reason="DejaVu Sans is not installed",
)
def test_dejavu_is_preferred_and_covers_the_symbols() -> None:
    bold = fonts.load_font(40, bold=True)
    assert isinstance(bold, ImageFont.FreeTypeFont)
    assert bold.getname() == ("DejaVu Sans", "Bold")
    assert fonts.has_bold_face(bold)
    assert fonts.load_font(40, bold=True) is bold, "cached"
    text = "GPT-Image 2 · demo — ●●●○○"
    assert fonts.displayable(bold, text) == text


def test_an_edit_shows_its_original_small_under_the_panels() -> None:
    """The source of an /edit is labelled "Original" without taking a panel (or a vote letter)."""
    source = png_bytes((300, 400), (240, 200, 0))
    plain = compose([Panel("A", image=png_bytes()), Panel("B", image=png_bytes())])
    edited = compose(
        [Panel("A", image=png_bytes()), Panel("B", image=png_bytes())], original=source
    )
    assert edited.width == plain.width and edited.height > plain.height
    assert edited.panel_boxes == plain.panel_boxes, "the panels keep their places"
    with Image.open(io.BytesIO(edited.data)) as image:
        strip = image.convert("RGB").crop((0, plain.height, image.width, image.height))
        colours = strip.getcolors(strip.width * strip.height) or []
        yellow = sum(n for n, (r, g, b) in colours if r > 200 and 160 < g < 230 and b < 60)
    assert yellow > 1000, "the original is drawn in the strip"


def test_labels_of_a_four_panel_grid_stay_legible_inline() -> None:
    """Discord shows an attachment inline in about 400×350 px: a 2×2 grid shrinks twice as much
    as a pair, so its label band grows to stay readable there (at least 15 px tall)."""
    images = [png_bytes((768, 1024), (40 * i, 90, 160)) for i in range(4)]
    labels = ["GPT-Image 2", "Nano Banana Pro", "Nano Banana 2", "GPT-Image 1.5"]
    panels = [Panel(label, "3.1 s", image) for label, image in zip(labels, images, strict=True)]
    four, pair = compose(panels), compose(panels[:2])

    def band(composite: Composite) -> int:
        _, top, _, bottom = composite.label_boxes[0]
        return bottom - top

    inline = min(400 / four.width, 350 / four.height)
    assert band(four) * inline >= 15
    assert band(four) / four.width > band(pair) / pair.width / 2, "grown past a pair's share"


@pytest.mark.parametrize(("max_threads", "expected"), [(None, 2), (1, 1)])
def test_panels_decode_on_at_most_max_threads(
    monkeypatch: pytest.MonkeyPatch, max_threads: int | None, expected: int
) -> None:
    import threading

    import bot.compose as compose_module

    monkeypatch.setattr(compose_module, "_cpu_count", lambda: 4)
    seen: set[str] = set()
    real = compose_module._render

    def render(*args: object) -> object:
        seen.add(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(compose_module, "_render", render)
    panels = [
        Panel(label=f"M{i}", caption="", image=png_bytes((64, 48), c))
        for i, c in enumerate(COLOURS[:2])
    ]
    result = compose(panels, max_threads=max_threads)
    assert result.failures == (None, None)
    assert len(seen) == expected


@pytest.mark.parametrize(
    ("box", "radius"),
    [
        ((10, 12, 400, 900), 22),  # a card: corners drawn, middle pasted
        ((3, 5, 120, 60), 9),  # short enough to be drawn whole
        ((0, 0, 99, 99), 1),
        ((7, 7, 300, 200), 0),  # no corners at all
        ((20, 30, 180, 130), 24),  # just taller than the two corner bands
    ],
)
def test_a_rounded_fill_is_the_rounded_rectangle_imagedraw_draws(
    box: tuple[int, int, int, int], radius: int
) -> None:
    # Noise underneath, so a pixel painted outside the shape or left unpainted inside shows.
    rng = random.Random(7)
    base = Image.frombytes(
        "RGB", (420, 940), bytes(rng.randrange(256) for _ in range(420 * 940 * 3))
    )
    expected, actual = base.copy(), base.copy()
    ImageDraw.Draw(expected).rounded_rectangle(box, radius=radius, fill=CARD_RGB)
    _fill_rounded(actual, ImageDraw.Draw(actual), box, radius, CARD_RGB)
    assert ImageChops.difference(expected, actual).getbbox() is None
