"""The offline demo adapter: deterministic labelled pictures that can never pass for a real model."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import random
import textwrap
import time

from PIL import Image, ImageDraw, ImageFilter

from providers.base import ImageRequest, ImageResult, Target, TimedOut
from providers.fonts import Font, load_font
from providers.quotes import quoted_strings

log = logging.getLogger(__name__)

DEMO_BANNER = "DEMO — not a real model"
#: long edge in pixels per quality tier; small, because these pictures only stand in
LONG_EDGE = {"draft": 768, "standard": 1024, "high": 1536}


def demo_size(aspect: str, quality: str) -> tuple[int, int]:
    """Pixel size for an aspect ratio like '3:4' at the tier's long edge (multiples of 8)."""
    w_ratio, _, h_ratio = aspect.partition(":")
    rw, rh = int(w_ratio), int(h_ratio)
    long_edge = LONG_EDGE.get(quality, 1024)
    if rw >= rh:
        width, height = float(long_edge), long_edge * rh / rw
    else:
        width, height = long_edge * rw / rh, float(long_edge)
    return max(8, round(width / 8) * 8), max(8, round(height / 8) * 8)


def _seed(target: Target, request: ImageRequest) -> int:
    key = f"{target.model_id}\x00{request.prompt}\x00{request.seed}\x00{request.aspect}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _palette(
    name: str,
) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    # The palette depends on the name only, so each model keeps a recognisable look.
    hue = int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big") % 360

    def hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
        h = (h % 360) / 60
        c = v * s
        x = c * (1 - abs(h % 2 - 1))
        r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
        m = v - c
        return (round((r + m) * 255), round((g + m) * 255), round((b + m) * 255))

    return hsv(hue, 0.65, 0.35), hsv(hue + 40, 0.55, 0.85), hsv(hue + 180, 0.7, 0.95)


def render_demo(target: Target, request: ImageRequest) -> bytes:
    """Draw the demo picture for a request (pure and deterministic; runs in a worker thread)."""
    width, height = demo_size(request.aspect, request.quality)
    rng = random.Random(_seed(target, request))
    # The look follows the name shown: in a blind comparison that is "Model A", so a model's
    # familiar palette cannot give it away.
    look = target.display_name
    dark, light, accent = _palette(look)
    style = int.from_bytes(hashlib.sha256(look.encode()).digest()[2:3], "big") % 3

    # Vertical gradient from the model's dark to light tone.
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), light), Image.new("RGB", (width, height), dark), gradient
    )
    draw = ImageDraw.Draw(image, "RGBA")
    unit = min(width, height)
    if style == 0:  # orbs
        for _ in range(14):
            r = rng.uniform(0.05, 0.22) * unit
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*accent, rng.randint(60, 170)))
    elif style == 1:  # ridges
        for layer in range(5):
            base = height * (0.45 + 0.1 * layer)
            points = [(0.0, float(height))]
            for step in range(17):
                x = width * step / 16
                points.append((x, base - rng.uniform(0, 0.18) * height * math.sin(step + layer)))
            points.append((float(width), float(height)))
            shade = tuple(int(c * (0.5 + 0.1 * layer)) for c in accent)
            draw.polygon(points, fill=(*shade, 200))
    else:  # tiles
        cols = 6
        size = width / cols
        for row in range(int(height / size) + 1):
            for col in range(cols):
                if rng.random() < 0.45:
                    x0, y0 = col * size, row * size
                    draw.rounded_rectangle(
                        (x0 + 6, y0 + 6, x0 + size - 6, y0 + size - 6),
                        radius=int(size / 6),
                        fill=(*accent, rng.randint(70, 190)),
                    )
    image = image.filter(ImageFilter.GaussianBlur(radius=unit / 400))
    draw = ImageDraw.Draw(image, "RGBA")

    # The words: model name, the prompt's first words, and the loud banner.
    pad = unit // 16
    title_text = f"{target.display_name} · demo"
    size = max(18, unit // 14)
    title = load_font(size, bold=True)
    # Shrink the title until it fits: long model names must never run off the picture.
    while size > 12 and title.getlength(title_text) > width - 2 * pad:
        size -= 2
        title = load_font(size, bold=True)
    body_size, banner_size = max(14, unit // 26), max(16, unit // 20)
    body = load_font(body_size)
    banner_font = load_font(banner_size, bold=True)
    quotes = quoted_strings(request.prompt)
    shown = " ".join(request.prompt.split())
    for quote in quotes:
        # The quoted text is drawn once, on the sign below; echoing it in the header would let
        # the text measurement find a perfect copy there even when the sign has a typo.
        shown = shown.replace(quote, "\u2026")
    words = " ".join(shown.split()[:12])
    lines = textwrap.wrap(
        f"\u201c{words}\u2026\u201d", width=max(16, int(width / (unit / 26) / 0.6))
    )
    box_h = pad * 2 + size + (body_size + 6) * min(len(lines), 4)
    draw.rectangle((0, 0, width, box_h), fill=(0, 0, 0, 150))
    draw.text((pad, pad), title_text, font=title, fill="white")
    y = pad + size + 8
    for line in lines[:4]:
        draw.text((pad, y), line, font=body, fill=(235, 235, 235))
        y += body_size + 6
    if quotes:
        _draw_sign(draw, width, height, unit, box_h, demo_text(target, request))
    band = banner_size + pad
    draw.rectangle((0, height - band, width, height), fill=(200, 30, 30, 230))
    draw.text(
        (width / 2, height - band / 2), DEMO_BANNER, font=banner_font, fill="white", anchor="mm"
    )

    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


#: letters and digits a deliberate typo may use; none folds into another under the text
#: measurement's look-alike rule (0/o, 1/i/l), so a typo always counts as one
_TYPO_LETTERS = "ABDEFGHKMNPRSTUVWXYZ"
_TYPO_DIGITS = "2345689"
#: share of demo pictures whose sign carries one deliberate typo
TYPO_RATE = 1 / 3


def demo_text(target: Target, request: ImageRequest) -> tuple[str, ...]:
    """The quoted text the demo draws for this request: as asked, or with one deliberate typo.

    Deterministic by model, prompt and seed, so the playground shows the measured text row
    both agreeing and catching a misspelling, the same way every time.
    """
    quotes = quoted_strings(request.prompt)
    rng = random.Random(_seed(target, request) ^ 0x7E57)
    if not quotes or rng.random() >= TYPO_RATE:
        return quotes
    which = rng.randrange(len(quotes))
    text = quotes[which]
    spots = [i for i, ch in enumerate(text) if ch.isascii() and ch.isalnum()]
    if not spots:
        return quotes
    at = rng.choice(spots)
    old = text[at]
    pool = _TYPO_DIGITS if old.isdigit() else _TYPO_LETTERS
    new = rng.choice([c for c in pool if c != old.upper()])
    new = new.lower() if old.islower() else new
    typo = text[:at] + new + text[at + 1 :]
    return (*quotes[:which], typo, *quotes[which + 1 :])


def _draw_sign(
    draw: ImageDraw.ImageDraw, width: int, height: int, unit: int, top: int, texts: tuple[str, ...]
) -> None:
    """The requested text on a dark plate in the middle of the picture, large and level."""
    pad = unit // 24
    size = max(16, unit // 11)
    lines: list[str] = []
    font: Font = load_font(size, bold=True)
    while True:
        font = load_font(size, bold=True)
        per_line = max(6, int((width - 4 * pad) / (size * 0.62)))
        lines = [line for text in texts for line in textwrap.wrap(text, per_line) or [text]]
        fits = all(font.getlength(line) <= width - 4 * pad for line in lines)
        tall = len(lines) * size * 1.3 + 2 * pad
        if (fits and tall <= height * 0.6) or size <= 14:
            break
        size -= 4
    step = round(size * 1.3)
    block = step * len(lines)
    y0 = max(top + pad, (height - block) // 2)
    longest = max(font.getlength(line) for line in lines)
    x0 = (width - longest) / 2
    draw.rounded_rectangle(
        (x0 - pad, y0 - pad, x0 + longest + pad, y0 + block + pad),
        radius=pad,
        fill=(15, 15, 20, 225),
    )
    for i, line in enumerate(lines):
        draw.text((width / 2, y0 + i * step + step / 2), line, font=font, fill="white", anchor="mm")


class DemoAdapter:
    """Serves any model offline with labelled, deterministic pictures and simulated latency."""

    name = "demo"

    def __init__(self, *, latency: tuple[float, float] = (1.0, 3.0)) -> None:
        self._latency = latency

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        """Draw the stand-in picture after a simulated, deterministic delay."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        low, high = self._latency
        delay = random.Random(_seed(target, request)).uniform(low, high) if high > 0 else 0.0
        if loop.time() + delay > deadline:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            raise TimedOut(
                f"{target.display_name} · demo took too long.",
                adapter=self.name,
                detail=f"the simulated {delay:.1f} s delay would pass the deadline",
            )
        if delay:
            await asyncio.sleep(delay)
        data = await asyncio.to_thread(render_demo, target, request)
        width, height = demo_size(request.aspect, request.quality)
        latency = time.monotonic() - started
        log.info(
            "provider call model=%s adapter=demo status=ok latency=%.2fs", target.model_id, latency
        )
        return ImageResult(
            image=data,
            mime_type="image/png",
            width=width,
            height=height,
            latency_s=latency,
            adapter=self.name,
            upstream_model=target.upstream_id,
            caption=DEMO_BANNER,
        )
