"""Pure Pillow compositor: encoded panel images in, one labelled split image out.

Everything here is a deterministic function of its arguments: no event loop, no Discord,
no global Pillow settings touched. Async callers run :func:`compose` with
``asyncio.to_thread``; inside, panels are decoded on a small thread pool because Pillow
releases the GIL while decoding, resampling and encoding.

Longer than the ~400-line guide on purpose: layout, letterboxing, labels and the size-capped
encoding are one pipeline whose pieces share private geometry; split, they would only import
each other.
"""

from __future__ import annotations

import io
import math
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import (
    Image,
    ImageDraw,
    ImageFont,
    _imaging,  # Image.core, which Pillow does not re-export for type checkers
)

from bot.comparisons.plan import blind_name
from providers.fonts import Font, displayable, has_bold_face, has_glyph, load_font

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without LittleCMS: embedded colour profiles are ignored
    _HAVE_CMS = False
else:
    _HAVE_CMS = True

__all__ = [
    "DECODE_FAILED",
    "MAX_PANELS",
    "MAX_UPLOAD_BYTES",
    "MIN_MAX_BYTES",
    "NO_IMAGE",
    "TOO_LARGE",
    "Composite",
    "Panel",
    "compose",
]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""Discord's attachment limit for bots."""

MIN_MAX_BYTES = 16 * 1024
"""Below this no legible composite fits, so :func:`compose` refuses the budget."""

MAX_PANELS = 4

# Reasons shown on placeholder panels; the comparison service can match on them.
DECODE_FAILED = "Image could not be decoded"
TOO_LARGE = "Image is too large to display"
NO_IMAGE = "No image was returned"

# A panel above this many pixels is refused before decoding: a 4096² RGB image already
# occupies 64 MiB inside Pillow (4 bytes a pixel). Image.MAX_IMAGE_PIXELS applies too
# when it is stricter.
PANEL_MAX_PIXELS = 40_000_000
# Panels decode concurrently only while their full-size buffers fit in this together,
# which keeps a compose under ~256 MiB however many cores the machine has.
_DECODE_BUDGET = 160 * 1024 * 1024

# Formats image models actually return. Restricting Image.open keeps exotic decoders
# (and EPS, which shells out to Ghostscript) away from provider-controlled bytes.
# MPO is not listed: the JPEG opener returns those itself.
_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "GIF", "BMP")

# Dark neutrals that sit naturally inside Discord's dark theme.
CANVAS_RGB = (30, 31, 34)
CARD_RGB = (43, 45, 49)
LETTERBOX_RGB = (22, 23, 26)
PLACEHOLDER_RGB = (54, 56, 62)
_TEXT_RGB = (242, 243, 245)
_MUTED_RGB = (160, 166, 175)
_MARK_RGB = (235, 95, 100)
# Panel letters match the vote reactions 🇦 🇧 🇨 🇩.
_LETTERS = "ABCD"
_BADGE_RGB = ((88, 101, 242), (214, 68, 150), (35, 150, 85), (214, 110, 20))

_RESAMPLE = Image.Resampling.LANCZOS
# Box-reduce by the whole integer factor first, then LANCZOS over what is left (under 2x).
# Providers answer at 2048 or 4096 and panels show at 1024, so the box reduce does almost all
# of the work: 2048 -> 1024 takes 5 ms instead of 53 ms for a full LANCZOS (within 50 dB PSNR
# of it on photo-like input), 4096 -> 1024 14 ms instead of 41 ms at reducing_gap=1.3 (49.0
# vs 49.7 dB). Under two hundred comparisons at once the resize was a third of the compose.
# Only pathological chirps alias visibly more than with a full LANCZOS.
_REDUCING_GAP = 1.0

# Output format policy (sizes stay predictable):
# - PNG when the canvas is small: lossless, and its worst case (raw pixels) provably fits.
#   Pillow's PNG encoder costs ~50 ms per megapixel even at level 0 (adaptive row
#   filtering), so a full-size canvas (2.7 MP for two 1024 px panels) would blow the
#   100 ms budget on encoding alone.
# - Otherwise JPEG quality 90 with 4:4:4 chroma, which keeps label text and colour
#   edges crisp and encodes a 2.7 MP canvas in ~12 ms at ~1 MB; the lower steps only
#   matter for pathological noise or a small max_bytes.
# - Downscaling is the last resort. WebP is not used: ~6x slower to encode than JPEG
#   for a similar size, and Discord re-encodes previews anyway.
PNG_MAX_PIXELS = 1_000_000
_PNG_COMPRESS_LEVEL = 1
_PNG_COMPRESS_TYPE = 3  # zlib Z_RLE: as small as level 1 on photos, faster, and fine on flat art
_JPEG_LADDER = ((90, 0), (85, 0), (80, 2), (70, 2), (60, 2))
_DOWNSCALE_QUALITY = 85

# Formats whose load() allocates with ImageFile.load_prepare's plain Image.core.new().
_PLAIN_LOAD_FORMATS = frozenset({"PNG", "JPEG", "MPO"})

_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Box = tuple[int, int, int, int]
RGB = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Panel:
    """One model's result: its label, a caption, and the encoded image or why it is missing.

    A panel with a ``failure`` is drawn as a placeholder even if it also has an image.
    """

    label: str
    caption: str = ""
    image: bytes | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Composite:
    """The encoded split image and where each panel landed in it."""

    data: bytes
    format: str  # "PNG" or "JPEG"
    mime_type: str
    extension: str
    width: int
    height: int
    panel_boxes: tuple[Box, ...]
    label_boxes: tuple[Box, ...]
    content_boxes: tuple[Box, ...] = ()
    """The part of each panel box covered by the image itself (letterbox bars excluded)."""
    failures: tuple[str | None, ...] = ()
    """Per panel, the reason shown on its placeholder, or ``None`` when the image was shown."""


#: how much larger labels and captions are drawn in a grid of 3–4 panels
LABEL_GROWTH = 1.3

_FORMAT_INFO = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg")}


def compose(
    panels: Sequence[Panel],
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    panel_long_edge: int = 1024,
    original: bytes | None = None,
    max_threads: int | None = None,
) -> Composite:
    """Lay out 1–4 panels with labels and captions and encode the result under ``max_bytes``.

    Panels decode in parallel, one thread per core within a memory budget, or at most
    ``max_threads`` (a caller running several composes at once gives each a share).

    ``original`` (an edit's source image) is shown small in a strip under the panels,
    labelled "Original", so the panels keep their letters for voting.
    """
    if not 1 <= len(panels) <= MAX_PANELS:
        raise ValueError(f"compose() takes 1 to {MAX_PANELS} panels, got {len(panels)}")
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}, got {max_bytes}")
    if panel_long_edge < 64:
        raise ValueError(f"panel_long_edge must be at least 64, got {panel_long_edge}")

    sources = [_probe(panel) for panel in panels]
    layout = _Layout.build(
        [s.upright for s in sources if isinstance(s, _Source)],
        count=len(panels),
        long_edge=panel_long_edge,
        captions=any(_clean(p.caption) for p in panels),
    )
    jobs = [s for s in sources if isinstance(s, _Source)]
    workers = _worker_count([_decode_bytes(s, layout.area) for s in jobs])
    if max_threads is not None:
        workers = max(1, min(workers, max_threads))
    gate = threading.Lock()
    with ThreadPoolExecutor(workers, thread_name_prefix="compose") as pool:
        pending = [
            pool.submit(_render, s, layout.area, gate) if isinstance(s, _Source) else s
            for s in sources
        ]
        # The chrome is drawn while the workers decode.
        canvas, outcome = _draw_canvas(panels, pending, layout)
    if original is not None:
        canvas = _with_original(canvas, original, layout.unit)

    data, fmt, scale = _encode(canvas, max_bytes)
    mime, ext = _FORMAT_INFO[fmt]
    width, height = canvas.size
    if scale != 1.0:
        width, height = _scaled_size(canvas.size, scale)
    canvas.close()
    return Composite(
        data=data,
        format=fmt,
        mime_type=mime,
        extension=ext,
        width=width,
        height=height,
        panel_boxes=tuple(_scale_box(b, scale) for b in layout.panel_boxes),
        label_boxes=tuple(_scale_box(b, scale) for b in layout.label_boxes),
        content_boxes=tuple(_scale_box(b, scale) for b in outcome.content_boxes),
        failures=outcome.failures,
    )


# --- decoding --------------------------------------------------------------------------


@dataclass(slots=True)
class _Source:
    image: Image.Image  # opened lazily: only the header has been read
    upright: tuple[int, int]  # size once EXIF orientation is applied
    orientation: int


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str


def _probe(panel: Panel) -> _Source | _Failure:
    if panel.image is None or panel.failure is not None:
        return _Failure(_clean(panel.failure or "") or NO_IMAGE)
    try:
        # Opening reads only the header; plugin loading stays on this thread.
        image = Image.open(io.BytesIO(panel.image), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning only arrives as an exception when warnings are errors (-W error).
        return _Failure(TOO_LARGE)
    except Exception:
        # Provider bytes are untrusted: any parser error means "not an image we can show".
        return _Failure(DECODE_FAILED)
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        return _Failure(DECODE_FAILED)
    if width * height > _pixel_limit():
        image.close()
        return _Failure(TOO_LARGE)
    # A PNG may keep its EXIF after the pixel data, and asking for it would decode the
    # whole image here; _render re-checks once the pixels are loaded anyway.
    known = image.format != "PNG" or "exif" in image.info
    orientation = _orientation(image) if known else 1
    upright = (height, width) if orientation >= 5 else (width, height)
    return _Source(image, upright, orientation)


def _pixel_limit() -> int:
    limit = Image.MAX_IMAGE_PIXELS
    return PANEL_MAX_PIXELS if limit is None else min(PANEL_MAX_PIXELS, limit)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        # Malformed EXIF must not cost the panel; show it as stored.
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE_FOR_ORIENTATION else 1


def _render(source: _Source, area: tuple[int, int], gate: threading.Lock) -> Image.Image | _Failure:
    image = source.image
    try:
        return _decode_to_fit(image, source.orientation, area, gate)
    except Exception:
        # Truncated data, a decoder error or MemoryError: this panel only becomes a placeholder.
        return _Failure(DECODE_FAILED)
    finally:
        image.close()


def _decode_to_fit(
    image: Image.Image, orientation: int, area: tuple[int, int], gate: threading.Lock
) -> Image.Image:
    """Decode ``image`` at (about) the size it will be shown and return it upright and fitted."""
    stored = image.size
    target = _fit(_oriented(stored, orientation), area)
    box: tuple[float, float, float, float] | None = None
    if image.format in ("JPEG", "MPO"):
        # DCT scaling decodes straight at 1/2, 1/4 or 1/8 size, never below the request;
        # the returned box maps the original picture onto the smaller pixels exactly.
        drafted = image.draft(None, _oriented(target, orientation))
        if drafted is not None:
            box = drafted[1]
    _allocate(image, gate)
    image.load()
    if image.format == "PNG" and orientation == 1:
        orientation = _orientation(image)
        target = _fit(_oriented(stored, orientation), area)

    source = _resizable(image)
    resized = source.resize(
        _oriented(target, orientation), _RESAMPLE, box=box, reducing_gap=_REDUCING_GAP
    )
    if source is not image:
        source.close()
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        resized = resized.transpose(transpose)
    return _to_display(resized, image.info.get("icc_profile"))


def _allocate(image: Image.Image, gate: threading.Lock) -> None:
    """Give ``image`` its decode buffer without holding the GIL for long."""
    if image.format not in _PLAIN_LOAD_FORMATS:
        return
    # load() would call Image.core.new(), which zero-fills recycled heap memory while
    # holding the GIL: ~35 ms for a 4096² image where page faults are slow (VMs), long
    # enough to make an event loop in another thread late. One calloc'ed block that big
    # is a fresh mmap, already zero, so its pages fault in later, during the decode,
    # which runs without the GIL. Smaller buffers may still be zero-filled, so panels
    # take turns and yield the GIL in between.
    with gate:
        try:
            image.im = _imaging.new_block(image.mode, image.size)
        except Exception:
            return  # load() allocates it the usual way
        time.sleep(0)


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


def _fit(size: tuple[int, int], area: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    scale = min(area[0] / width, area[1] / height)
    return (
        min(area[0], max(1, round(width * scale))),
        min(area[1], max(1, round(height * scale))),
    )


def _resizable(image: Image.Image) -> Image.Image:
    """Return ``image`` in a mode Pillow resamples properly (P and 1 would use NEAREST)."""
    mode = image.mode
    if mode in ("RGB", "L") and "transparency" not in image.info:
        return image
    if mode in ("RGBA", "LA", "CMYK", "YCbCr"):
        return image
    if mode.startswith("I") or mode == "F":
        return _to_gray8(image)
    if image.has_transparency_data:
        return image.convert("RGBA")
    return image.convert("RGB")


def _to_gray8(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16"):
        scale = 1 / 256
    else:
        high = image.getextrema()[1]
        assert isinstance(high, (int, float))
        if image.mode == "F" and high <= 1.0:
            scale = 255.0
        elif high <= 255:
            scale = 1.0
        else:
            scale = 255.0 / max(high, 65535)
    # point() keeps these wide modes, and converting them to "L" clips rather than
    # scales, so scale first.
    return image.point(lambda v: v * scale).convert("L")


def _to_display(image: Image.Image, icc_profile: object) -> Image.Image:
    if isinstance(icc_profile, bytes) and icc_profile and image.mode in ("RGB", "RGBA", "CMYK"):
        converted = _to_srgb(image, icc_profile)
        if converted is not None:
            return converted
    if image.mode in ("RGB", "RGBA"):
        return image
    if image.mode in ("LA", "La", "RGBa", "PA"):
        return image.convert("RGBA")
    return image.convert("RGB")


def _to_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image | None:
    if not _HAVE_CMS:
        return None
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return None
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        color = image.convert("RGB") if alpha is not None else image
        # A fresh sRGB profile per call: LittleCMS profile objects are not shared
        # between threads.
        converted = ImageCms.profileToProfile(
            color, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except Exception:
        # A broken or exotic profile: show the pixels unconverted rather than nothing.
        return None
    if converted is None:
        return None
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _decode_bytes(source: _Source, area: tuple[int, int]) -> int:
    """Estimate the decode buffer of ``source``: 4 bytes a pixel, after JPEG DCT scaling."""
    width, height = source.image.size
    if source.image.format in ("JPEG", "MPO"):
        request = _oriented(_fit(source.upright, area), source.orientation)
        shrink = min(width // request[0], height // request[1])
        scale = max(s for s in (1, 2, 4, 8) if s == 1 or shrink >= s)  # as draft() picks
        width, height = -(-width // scale), -(-height // scale)
    return 4 * width * height


def _worker_count(buffers: Sequence[int]) -> int:
    """Return how many panels to decode at once: one per core, within the memory budget."""
    workers = 1
    largest = sorted(buffers, reverse=True)
    while (
        workers < min(len(largest), _cpu_count()) and sum(largest[: workers + 1]) <= _DECODE_BUDGET
    ):
        workers += 1
    return workers


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --- layout ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    area: tuple[int, int]
    unit: float
    #: the unit of labels and captions: larger for 3–4 panels, which Discord shows smaller
    label_unit: float
    width: int
    height: int
    card_boxes: tuple[Box, ...]
    label_boxes: tuple[Box, ...]
    panel_boxes: tuple[Box, ...]
    caption_boxes: tuple[Box, ...]

    @staticmethod
    def build(
        sizes: Sequence[tuple[int, int]], *, count: int, long_edge: int, captions: bool
    ) -> _Layout:
        area = _area(sizes, long_edge)
        unit = max(area) / 1024
        # Discord shows a 2×2 grid at about half the scale of a pair (checked at 400 px wide):
        # its labels and captions grow so they stay readable there.
        label_unit = unit * (LABEL_GROWTH if count > 2 else 1.0)
        margin, gap, pad = _px(28, unit), _px(20, unit), _px(18, unit)
        header, header_gap = _px(92, label_unit), _px(18, unit)
        caption_gap, caption_h = _px(12, unit), _px(46, label_unit)

        card_w = area[0] + 2 * pad
        card_h = pad + header + header_gap + area[1] + pad
        if captions:
            card_h += caption_gap + caption_h
        cols = 1 if count == 1 else 2
        rows = 1 if count <= 2 else 2
        width = 2 * margin + cols * card_w + (cols - 1) * gap
        height = 2 * margin + rows * card_h + (rows - 1) * gap

        cards: list[Box] = []
        for index in range(count):
            row, col = divmod(index, cols)
            if count == 3 and index == 2:
                x = (width - card_w) // 2  # a centred last row reads better than an empty cell
            else:
                x = margin + col * (card_w + gap)
            y = margin + row * (card_h + gap)
            cards.append((x, y, x + card_w, y + card_h))

        labels, panels, caps = [], [], []
        for x0, y0, _, _ in cards:
            left = x0 + pad
            labels.append((left, y0 + pad, left + area[0], y0 + pad + header))
            top = y0 + pad + header + header_gap
            panels.append((left, top, left + area[0], top + area[1]))
            cap_top = top + area[1] + caption_gap
            caps.append((left, cap_top, left + area[0], cap_top + caption_h))
        return _Layout(
            area=area,
            unit=unit,
            label_unit=label_unit,
            width=width,
            height=height,
            card_boxes=tuple(cards),
            label_boxes=tuple(labels),
            panel_boxes=tuple(panels),
            caption_boxes=tuple(caps) if captions else (),
        )


def _area(sizes: Sequence[tuple[int, int]], long_edge: int) -> tuple[int, int]:
    """Return the common image area: big enough for every panel, none scaled up past its size."""
    if not sizes:
        return long_edge, long_edge
    fitted = [
        _fit(size, (long_edge, long_edge)) if max(size) > long_edge else size for size in sizes
    ]
    width = max(w for w, _ in fitted)
    height = max(h for _, h in fitted)
    # Keep placeholders and labels usable next to a panorama or a thumbnail.
    width, height = max(width, height // 3), max(height, width // 3)
    floor = min(long_edge, 512)
    if max(width, height) < floor:
        grow = floor / max(width, height)
        width, height = round(width * grow), round(height * grow)
    return width, height


def _px(value: float, unit: float) -> int:
    return max(1, round(value * unit))


# --- drawing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    content_boxes: tuple[Box, ...]
    failures: tuple[str | None, ...]


def _draw_canvas(
    panels: Sequence[Panel],
    pending: Sequence[Future[Image.Image | _Failure] | _Failure],
    layout: _Layout,
) -> tuple[Image.Image, _Outcome]:
    canvas = Image.new("RGB", (layout.width, layout.height), CANVAS_RGB)
    draw = ImageDraw.Draw(canvas)
    unit = layout.unit
    for index, panel in enumerate(panels):
        _fill_rounded(canvas, draw, layout.card_boxes[index], _px(22, unit), CARD_RGB)
        _draw_label(draw, layout.label_boxes[index], index, panel.label, layout.label_unit)
        if layout.caption_boxes:
            _draw_caption(draw, layout.caption_boxes[index], panel.caption, layout.label_unit)
        canvas.paste(LETTERBOX_RGB, layout.panel_boxes[index])

    content: list[Box] = []
    failures: list[str | None] = []
    for index, item in enumerate(pending):
        box = layout.panel_boxes[index]
        result = item if isinstance(item, _Failure) else item.result()
        if isinstance(result, _Failure):
            _draw_placeholder(canvas, draw, box, result.reason, unit)
            content.append(box)
            failures.append(result.reason)
            continue
        image = result
        x = box[0] + (box[2] - box[0] - image.width) // 2
        y = box[1] + (box[3] - box[1] - image.height) // 2
        # Transparent pixels show the neutral letterbox colour underneath.
        canvas.paste(image, (x, y), image if image.mode == "RGBA" else None)
        content.append((x, y, x + image.width, y + image.height))
        failures.append(None)
        image.close()
    return canvas, _Outcome(tuple(content), tuple(failures))


ORIGINAL_LABEL = "Original"


def _with_original(canvas: Image.Image, data: bytes, unit: float) -> Image.Image:
    """The canvas with a strip under it: the source image, small, labelled "Original"."""
    margin, pad = _px(28, unit), _px(18, unit)
    thumb_h = _px(300, unit)
    source = _probe(Panel(ORIGINAL_LABEL, image=data))
    thumb = None
    if isinstance(source, _Source):
        rendered = _render(source, (thumb_h * 2, thumb_h), threading.Lock())
        thumb = None if isinstance(rendered, _Failure) else rendered
    strip_h = thumb_h + 2 * pad
    out = Image.new("RGB", (canvas.width, canvas.height + strip_h), CANVAS_RGB)
    out.paste(canvas, (0, 0))
    canvas.close()
    draw = ImageDraw.Draw(out)
    top = out.height - margin - strip_h + margin // 2
    card = (margin, top, out.width - margin, top + strip_h - margin // 2)
    _fill_rounded(out, draw, card, _px(22, unit), CARD_RGB)
    left = card[0] + pad
    if thumb is not None:
        out.paste(thumb, (left, card[1] + pad), thumb if thumb.mode == "RGBA" else None)
        left += thumb.width + pad
        thumb.close()
    font, text = _fit_line(
        f"{ORIGINAL_LABEL} — the image every panel edited",
        max(1, card[2] - pad - left),
        (_px(50, unit), _px(30, unit)),
        bold=True,
    )
    _text(draw, (left, (card[1] + card[3]) / 2), text, font, _TEXT_RGB, anchor="lm", bold=True)
    return out


def _fill_rounded(
    image: Image.Image, draw: ImageDraw.ImageDraw, box: Box, radius: int, fill: RGB
) -> None:
    """``draw.rounded_rectangle(box, radius, fill=fill)``, pixel for pixel, mostly without the GIL.

    ImageDraw fills row by row holding the GIL, and a card is most of a panel's column: ~3 ms
    each on a 2-core VM, during which the event loop's thread cannot run. Only the bands with
    the corners are drawn; the straight middle is a ``paste`` of the colour, which Pillow
    fills with the GIL released. ``box`` includes its far edge, as ImageDraw's do.
    """
    x0, y0, x1, y1 = box
    band = 2 * radius  # the height of a corner's quarter circle, as ImageDraw draws it
    if radius <= 0 or y1 - y0 <= 2 * band + 2:
        draw.rounded_rectangle(box, radius=radius, fill=fill)
        return
    draw.rounded_rectangle(
        (x0, y0, x1, y0 + band), radius=radius, fill=fill, corners=(True, True, False, False)
    )
    draw.rounded_rectangle(
        (x0, y1 - band, x1, y1), radius=radius, fill=fill, corners=(False, False, True, True)
    )
    image.paste(fill, (x0, y0 + band + 1, x1 + 1, y1 - band))


def _inclusive(box: Box) -> Box:
    # ImageDraw rectangles include their far edge; boxes here are half-open like crop().
    return box[0], box[1], box[2] - 1, box[3] - 1


def _draw_label(draw: ImageDraw.ImageDraw, box: Box, index: int, label: str, unit: float) -> None:
    x0, y0, x1, y1 = box
    side = y1 - y0
    letter = _LETTERS[index]
    badge = (x0, y0, x0 + side, y1)
    draw.rounded_rectangle(_inclusive(badge), radius=_px(16, unit), fill=_BADGE_RGB[index])
    badge_font = load_font(_px(58, unit), bold=True)
    _text(
        draw, (x0 + side / 2, y0 + side / 2), letter, badge_font, _TEXT_RGB, anchor="mm", bold=True
    )

    text = _clean(label)
    if text.upper() == letter:
        # A blind panel's label is the letter already on its badge; spell it out instead.
        text = blind_name(letter)
    left = x0 + side + _px(18, unit)
    width = x1 - left
    if width <= 0 or not text:
        return
    font, text = _fit_line(text, width, (_px(62, unit), _px(40, unit)), bold=True)
    _text(draw, (left, y0 + side / 2), text, font, _TEXT_RGB, anchor="lm", bold=True)


def _draw_caption(draw: ImageDraw.ImageDraw, box: Box, caption: str, unit: float) -> None:
    text = _clean(caption)
    if not text:
        return
    x0, y0, x1, y1 = box
    size = _px(34, unit)
    font, text = _fit_line(text, x1 - x0, (size, size), bold=False)
    _text(draw, (x0, (y0 + y1) / 2), text, font, _MUTED_RGB, anchor="lm")


def _draw_placeholder(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, box: Box, reason: str, unit: float
) -> None:
    x0, y0, x1, y1 = box
    canvas.paste(PLACEHOLDER_RGB, box)  # a fill without the GIL, unlike draw.rectangle
    width, height = x1 - x0, y1 - y0

    # The mark is drawn with shapes: a "✕" glyph is missing from many fonts.
    arm = max(8, round(min(width, height) * 0.09))
    stroke = max(3, round(arm * 0.32))
    font = load_font(_px(40, unit))
    line_h = round(_line_height(font) * 1.25)
    max_lines = max(1, min(4, (height - 4 * arm) // max(1, line_h)))
    lines = _wrap(_clean(reason) or NO_IMAGE, font, round(width * 0.82), max_lines)
    gap = _px(28, unit)
    block = 2 * arm + gap + line_h * len(lines)
    top = y0 + (height - block) / 2
    cx, cy = x0 + width / 2, top + arm
    for (ax, ay), (bx, by) in (((-1, -1), (1, 1)), ((-1, 1), (1, -1))):
        start, end = (cx + ax * arm, cy + ay * arm), (cx + bx * arm, cy + by * arm)
        draw.line([start, end], fill=_MARK_RGB, width=stroke)
        for px, py in (start, end):  # round caps
            r = stroke / 2
            draw.ellipse((px - r, py - r, px + r, py + r), fill=_MARK_RGB)
    y = top + 2 * arm + gap + line_h / 2
    for line in lines:
        _text(draw, (cx, y), line, font, _TEXT_RGB, anchor="mm")
        y += line_h


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: Font,
    fill: RGB,
    *,
    anchor: str,
    bold: bool = False,
) -> None:
    # Pillow's bundled fallback font has no bold face; a hairline stroke stands in.
    stroke = 0
    if bold and not has_bold_face(font):
        stroke = max(1, round(_font_size(font) / 28))
    draw.text(xy, text, font=font, fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill)


def _font_size(font: Font) -> int:
    return round(font.size) if isinstance(font, ImageFont.FreeTypeFont) else 10


def _line_height(font: Font) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent
    return 11


def _fit_line(text: str, width: int, sizes: tuple[int, int], *, bold: bool) -> tuple[Font, str]:
    """Shrink from ``sizes[0]`` towards ``sizes[1]`` until ``text`` fits, then ellipsize."""
    largest, smallest = sizes
    size = largest
    while True:
        font = load_font(size, bold=bold)
        shown = displayable(font, text)
        if font.getlength(shown) <= width or size <= smallest:
            break
        size = max(smallest, math.floor(size * 0.92))
    return font, _ellipsize(shown, font, width)


def _ellipsize(text: str, font: Font, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    ellipsis = _ellipsis(font)
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if font.getlength(text[:mid].rstrip() + ellipsis) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ellipsis


def _ellipsis(font: Font) -> str:
    return "…" if has_glyph(font, "…") else "..."


def _wrap(text: str, font: Font, width: int, max_lines: int) -> list[str]:
    text = displayable(font, text)
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width and len(current) > 1:
            # A single word wider than the panel (a URL, an error code) breaks anywhere.
            cut = len(current) - 1
            while cut > 1 and font.getlength(current[:cut]) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _ellipsize(f"{lines[-1]} {_ellipsis(font)}", font, width)
    return lines


_WHITESPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    # Labels and reasons come from catalog data and provider errors: one tidy line.
    return _WHITESPACE.sub(" ", text).strip()


# --- encoding --------------------------------------------------------------------------


def _encode(canvas: Image.Image, max_bytes: int) -> tuple[bytes, str, float]:
    """Encode ``canvas`` under ``max_bytes``; return the bytes, format and any scale applied."""
    width, height = canvas.size
    if width * height <= PNG_MAX_PIXELS and _png_bound(width, height) <= max_bytes:
        # Guaranteed to fit even if nothing compresses, so one encode decides it.
        data = _save(
            canvas, "PNG", compress_level=_PNG_COMPRESS_LEVEL, compress_type=_PNG_COMPRESS_TYPE
        )
        if len(data) <= max_bytes:
            return data, "PNG", 1.0
    for quality, subsampling in _JPEG_LADDER:
        # optimize=True would save ~4% for 3x the encode time.
        data = _save(canvas, "JPEG", quality=quality, subsampling=subsampling)
        if len(data) <= max_bytes:
            return data, "JPEG", 1.0
    # Last resort: fewer pixels. JPEG size tracks pixel count, so aim from the last result.
    scale = 1.0
    while True:
        scale *= min(0.9, max(0.3, 0.9 * math.sqrt(max_bytes / len(data))))
        size = _scaled_size(canvas.size, scale)
        if min(size) < 16:
            raise ValueError(f"cannot fit the composite into {max_bytes} bytes")
        smaller = canvas.resize(size, _RESAMPLE, reducing_gap=_REDUCING_GAP)
        # Bytes matter more than milliseconds here, so let libjpeg optimise its tables.
        data = _save(smaller, "JPEG", quality=_DOWNSCALE_QUALITY, subsampling=2, optimize=True)
        smaller.close()
        if len(data) <= max_bytes:
            return data, "JPEG", scale


def _png_bound(width: int, height: int) -> int:
    # Worst case for incompressible pixels: raw scanlines (one filter byte each), deflate's
    # stored-block overhead, IDAT chunk headers, and the fixed chunks around them.
    raw = height * (1 + 3 * width)
    return raw + raw // 2048 + 12 * height + 8192


def _save(image: Image.Image, fmt: str, **options: int | bool) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _scale_box(box: Box, scale: float) -> Box:
    if scale == 1.0:
        return box
    return (
        round(box[0] * scale),
        round(box[1] * scale),
        round(box[2] * scale),
        round(box[3] * scale),
    )
