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
from providers.fonts import load_font

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
    words = " ".join(request.prompt.split()[:12])
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
    band = banner_size + pad
    draw.rectangle((0, height - band, width, height), fill=(200, 30, 30, 230))
    draw.text(
        (width / 2, height - band / 2), DEMO_BANNER, font=banner_font, fill="white", anchor="mm"
    )

    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


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
