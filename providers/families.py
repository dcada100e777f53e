"""Model-family rules shared by every route to a model: GPT-Image sizes and Nano Banana aspects.

OpenAI direct and fal's gpt-image endpoints draw the same sizes; Gemini direct and fal's Nano
Banana endpoints take the same aspect ratios. The rules live here once, so no adapter imports
a sibling adapter.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

from providers._images import nearest_aspect, parse_aspect
from providers.base import ImageRequest, Quality, Target

# ------------------------------------------------------------------ GPT-Image
#: the longest prompt OpenAI's image models accept
MAX_PROMPT = 32_000
QUALITY: Mapping[Quality, str] = {"draft": "low", "standard": "medium", "high": "high"}
#: gpt-image-2 pixel budget per tier. "high" stops at 2560x1440's count, the largest size
#: OpenAI does not label experimental; draft and standard are the 1024² and 1536² classes.
PIXEL_BUDGET: Mapping[Quality, int] = {
    "draft": 1024 * 1024,
    "standard": 1536 * 1536,
    "high": 2560 * 1440,
}
#: the only sizes gpt-image-1.5 / 1-mini accept (square first, so it wins ties)
LEGACY_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
MIN_PIXELS, MAX_PIXELS, MAX_EDGE, MAX_RATIO = 655_360, 8_294_400, 3840, 3.0


def size_is_valid(width: int, height: int) -> bool:
    """gpt-image-2's rule: sides multiples of 16, long edge ≤ 3840, ratio ≤ 3:1, pixel range."""
    return (
        width % 16 == 0
        and height % 16 == 0
        and max(width, height) <= MAX_EDGE
        and max(width, height) <= MAX_RATIO * min(width, height)
        and MIN_PIXELS <= width * height <= MAX_PIXELS
    )


def is_legacy(model: str) -> bool:
    """True for gpt-image-1.x models, which take only three fixed sizes."""
    return "gpt-image-1" in model


@functools.lru_cache(maxsize=256)
def image_size(ratio: float, quality: Quality, model: str) -> tuple[int, int]:
    """(width, height) for an aspect ratio and tier that ``model`` accepts."""

    def error(size: tuple[int, int]) -> float:
        return abs(math.log(size[0] / size[1]) - math.log(ratio))

    if is_legacy(model):
        return min(LEGACY_SIZES, key=error)
    if ratio < 1:  # portrait sizes are the landscape ones turned, so the two always match
        width, height = image_size(1 / ratio, quality, model)
        return height, width
    ratio = min(ratio, MAX_RATIO)
    budget = PIXEL_BUDGET[quality]
    candidates = []
    for height in range(16, MAX_EDGE + 1, 16):
        width = round(height * ratio / 16) * 16
        if width * height <= budget and size_is_valid(width, height):
            candidates.append((width, height))
    # The biggest size within 1% of the ratio; rounding to 16 px rarely allows an exact match.
    close = [size for size in candidates if error(size) <= 0.01]
    if close:
        return max(close, key=lambda size: (size[0] * size[1], -error(size)))
    return min(candidates, key=error)


def size_for(target: Target, request: ImageRequest, *, adapter: str) -> tuple[int, int]:
    """The size to request for this target and request (shared with fal's gpt-image endpoints)."""
    ratio = parse_aspect(request.aspect, who=target.display_name, adapter=adapter)
    return image_size(ratio, request.quality, target.upstream_id)


# ---------------------------------------------------------------- Nano Banana
IMAGE_SIZE: Mapping[Quality, str] = {"draft": "1K", "standard": "2K", "high": "4K"}
#: Nano Banana Pro's ratios; an unsupported request ratio maps to the nearest (log distance,
#: ties to the earlier entry), so '2:1' becomes '16:9' rather than failing after a charge.
PRO_ASPECTS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
#: Nano Banana 2 (and 2.1) add the extreme ratios
NB2_ASPECTS = (*PRO_ASPECTS, "1:4", "4:1", "1:8", "8:1")


def aspects_for(upstream: str) -> tuple[str, ...]:
    """The aspect ratios a Nano Banana model accepts (Pro: 10; NB2 and later: 14)."""
    return PRO_ASPECTS if "pro" in upstream else NB2_ASPECTS


def aspect_for(target: Target, request: ImageRequest, *, adapter: str) -> str:
    """The supported ratio nearest the request's (shared with fal's Nano Banana endpoints)."""
    ratio = parse_aspect(request.aspect, who=target.display_name, adapter=adapter)
    return nearest_aspect(ratio, aspects_for(target.upstream_id))


# ---------------------------------------------------------------- every family
#: the named ratios a member can pick; each model offers the ones its family draws
NAMED_ASPECTS = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "9:21",
    "1:2", "2:1", "1:3", "3:1", "1:4", "4:1", "1:8", "8:1",
)  # fmt: skip


def _ratio(aspect: str) -> float:
    width, _, height = aspect.partition(":")
    return float(width) / float(height)


def draws(upstream: str, aspect: str) -> bool:
    """True when ``upstream`` draws ``aspect`` itself, not a nearest substitute.

    GPT-Image 2 draws any ratio up to 3:1 within its pixel rules (within 1%, as sizes round to
    16 px); GPT-Image 1.x only its three sizes; Nano Banana its listed ratios.
    """
    ratio = _ratio(aspect)
    if "gpt-image" in upstream:
        if is_legacy(upstream):
            return any(abs(math.log(w / h / ratio)) < 0.01 for w, h in LEGACY_SIZES)
        if max(ratio, 1 / ratio) > MAX_RATIO:
            return False
        width, height = image_size(ratio, "standard", upstream)
        return abs(math.log(width / height / ratio)) <= 0.01
    if "banana" in upstream or "gemini" in upstream:
        return aspect in aspects_for(upstream)
    return True  # a family we have no rules for: the provider will say


def aspects_drawn(upstreams: tuple[str, ...]) -> tuple[str, ...]:
    """The named aspects every one of ``upstreams`` draws (a model's routes must all agree)."""
    return tuple(a for a in NAMED_ASPECTS if all(draws(u, a) for u in upstreams))
