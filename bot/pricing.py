"""What one image costs upstream, per model, route, quality and aspect, and what it costs in credits.

Each route's bill is a documented formula kept in the catalog (``[models.costs.<adapter>]``):
``tokens`` for GPT-Image 2 (OpenAI's output-token formula at the size the adapter asks for),
``per_size`` for GPT-Image 1.x (OpenAI's per-image table for its three sizes) and
``per_image`` for Nano Banana (Google's and fal's per-image tiers by resolution). Credits are
that dollar cost times the catalog's one ``credits_per_dollar``, rounded up, never below the
model's starting price, so no combination charges less than the provider bills.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from providers.base import QUALITIES, Quality
from providers.families import IMAGE_SIZE, QUALITY, image_size

Formula = Literal["tokens", "per_size", "per_image"]
FORMULAS: tuple[Formula, ...] = ("tokens", "per_size", "per_image")
#: OpenAI's image-token formula (reproduces its per-image table exactly):
#: tokens = ceil(f · round(f · short / long) · (2,000,000 + W·H) / 4,000,000), f by quality
TOKEN_FACTOR: Mapping[str, int] = {"low": 16, "medium": 48, "high": 96}
TOKEN_AREA_OFFSET = 2_000_000
TOKEN_AREA_SCALE = 4_000_000


def image_tokens(quality: str, width: int, height: int) -> int:
    """GPT-Image 2 output tokens for one image of ``width`` × ``height`` at OpenAI ``quality``."""
    factor = TOKEN_FACTOR[quality]
    long_edge, short_edge = max(width, height), min(width, height)
    short_factor = (2 * factor * short_edge + long_edge) // (2 * long_edge)
    area = TOKEN_AREA_OFFSET + width * height
    return (factor * short_factor * area + TOKEN_AREA_SCALE - 1) // TOKEN_AREA_SCALE


def aspect_ratio(aspect: str) -> float:
    """Width / height of 'W:H'."""
    width, _, height = aspect.partition(":")
    return int(width) / int(height)


@dataclass(frozen=True, slots=True)
class RouteCost:
    """How one adapter bills one model: the formula, its rates and where they come from."""

    formula: Formula
    #: tokens: $ per million output image tokens
    output_per_m: float = 0.0
    #: dollars added to every image for what the formula leaves out (prompt tokens, thinking)
    allowance: float = 0.0
    #: per_image: $ by resolution tier ("1K", "2K", "4K"); per_size: $ by "WxH" then quality
    usd: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def usd_for(self, quality: Quality, aspect: str, upstream: str) -> float:
        """Dollars one image costs on this route."""
        if self.formula == "per_image":
            return float(self.usd[IMAGE_SIZE[quality]]) + self.allowance
        width, height = image_size(aspect_ratio(aspect), quality, upstream)
        if self.formula == "per_size":
            return float(self.usd[f"{width}x{height}"][QUALITY[quality]]) + self.allowance
        tokens = image_tokens(QUALITY[quality], width, height)
        return tokens * self.output_per_m / 1_000_000 + self.allowance

    def describe(self) -> str:
        """The formula in one line, for `/models info` and the README."""
        extra = f" + ${self.allowance:g} allowance for input" if self.allowance else ""
        if self.formula == "tokens":
            return (
                "output tokens × "
                f"${self.output_per_m:g}/M{extra}; tokens = ⌈f·round(f·short/long)·"
                "(2,000,000 + W·H) / 4,000,000⌉, f = 16/48/96 for low/medium/high"
            )
        if self.formula == "per_size":
            sizes = "; ".join(
                f"{size} " + "/".join(f"${v:g}" for v in tiers.values())
                for size, tiers in self.usd.items()
            )
            return f"per image by size (low/medium/high): {sizes}{extra}"
        tiers = ", ".join(f"{tier} ${price:g}" for tier, price in self.usd.items())
        return f"per image: {tiers}{extra}"


def credits_for(usd: float, credits_per_dollar: float, floor: int) -> int:
    """Credits that cover ``usd``: rounded up (a hair of float noise forgiven), at least ``floor``."""
    return max(floor, math.ceil(round(usd * credits_per_dollar, 6)))


def parse_cost(where: str, table: object, problems: list[str]) -> RouteCost | None:
    """One ``[models.costs.<adapter>]`` table, or None with the problems appended."""
    if not isinstance(table, Mapping):
        problems.append(f"{where} must be a table")
        return None
    formula = table.get("formula")
    if formula not in FORMULAS:
        problems.append(f"{where}: formula must be one of {', '.join(FORMULAS)}, got {formula!r}")
        return None
    usd = table.get("usd", {})
    output = table.get("output_per_m", 0.0)
    allowance = table.get("allowance", 0.0)
    if not isinstance(output, int | float) or not isinstance(allowance, int | float):
        problems.append(f"{where}: output_per_m and allowance must be numbers")
        return None
    if formula == "tokens" and output <= 0:
        problems.append(f"{where}: the tokens formula needs output_per_m")
    if formula == "per_image" and not (
        isinstance(usd, Mapping) and {IMAGE_SIZE[q] for q in QUALITIES} <= set(usd)
    ):
        tiers = ", ".join(sorted({IMAGE_SIZE[q] for q in QUALITIES}))
        problems.append(f"{where}: per_image needs usd for {tiers}")
    if formula == "per_size" and not (
        isinstance(usd, Mapping)
        and all(isinstance(t, Mapping) and set(QUALITY.values()) <= set(t) for t in usd.values())
    ):
        problems.append(f"{where}: per_size needs usd = {{ 'WxH' = {{ low, medium, high }} }}")
    return RouteCost(
        formula=formula,
        output_per_m=float(output),
        allowance=float(allowance),
        usd=dict(usd) if isinstance(usd, Mapping) else {},
        source=str(table.get("source", "")),
    )
