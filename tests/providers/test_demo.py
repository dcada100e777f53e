"""The demo provider: offline, deterministic, visibly different per model, never mistaken for real."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image, ImageChops, ImageStat

from providers.base import ImageRequest, Target, TimedOut
from providers.demo import DemoAdapter, demo_size, render_demo

GPT = Target("gpt-image-2", "GPT-Image 2", "demo/gpt-image-2")
NBP = Target("nano-banana-pro", "Nano Banana Pro", "demo/nano-banana-pro")


def open_png(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.mark.parametrize(
    ("aspect", "quality"),
    [("1:1", "draft"), ("3:4", "standard"), ("16:9", "high"), ("21:9", "standard")],
)
def test_requested_aspect_ratio(aspect: str, quality: str) -> None:
    width, height = demo_size(aspect, quality)
    w, h = (int(x) for x in aspect.split(":"))
    assert abs(width / height - w / h) < 0.02
    image = open_png(render_demo(GPT, ImageRequest("a fox", aspect=aspect, quality=quality)))
    assert image.size == (width, height)


def test_deterministic_per_model_prompt_and_seed() -> None:
    request = ImageRequest("a fox in snow", aspect="1:1", seed=3)
    assert render_demo(GPT, request) == render_demo(GPT, request)
    other_seed = render_demo(GPT, ImageRequest("a fox in snow", aspect="1:1", seed=4))
    assert other_seed != render_demo(GPT, request)


def test_models_look_visibly_different() -> None:
    request = ImageRequest("a fox in snow", aspect="1:1")
    a, b = open_png(render_demo(GPT, request)), open_png(render_demo(NBP, request))
    diff = ImageStat.Stat(ImageChops.difference(a, b)).mean
    assert sum(diff) / 3 > 20  # mean per-channel difference: different palette and composition


def test_banner_band_is_drawn() -> None:
    image = open_png(render_demo(GPT, ImageRequest("a fox", aspect="1:1")))
    # The bottom band is the loud red "DEMO — not a real model" strip.
    r, g, b = image.getpixel((5, image.height - 5))
    assert r > 150 and g < 80 and b < 80


async def test_adapter_result_and_deadline() -> None:
    adapter = DemoAdapter(latency=(0, 0))
    loop = asyncio.get_running_loop()
    result = await adapter.generate(
        GPT, ImageRequest("a fox", aspect="3:4"), deadline=loop.time() + 5
    )
    assert (result.width, result.height) == demo_size("3:4", "standard")
    assert result.adapter == "demo" and result.mime_type == "image/png"
    assert "DEMO" in (result.caption or "")
    slow = DemoAdapter(latency=(30, 30))
    with pytest.raises(TimedOut):
        await slow.generate(GPT, ImageRequest("a fox"), deadline=loop.time() + 0.01)
