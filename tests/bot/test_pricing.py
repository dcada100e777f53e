"""Prices come from each route's documented cost formula and never charge less than the bill."""

from __future__ import annotations

import math
from importlib import resources

import pytest

from bot.catalog import load_catalog, parse_catalog
from bot.pricing import image_tokens
from providers.base import QUALITIES
from providers.families import image_size

SHIPPED = resources.files("bot").joinpath("catalog.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("size", "low", "medium", "high"),
    [((1024, 1024), 0.006, 0.053, 0.211), ((1536, 1024), 0.005, 0.041, 0.165)],
)
def test_the_token_formula_reproduces_openais_per_image_table(
    size: tuple[int, int], low: float, medium: float, high: float
) -> None:
    width, height = size
    dollars = [image_tokens(q, width, height) * 30 / 1_000_000 for q in ("low", "medium", "high")]
    assert [round(d, 3) for d in dollars] == [low, medium, high]
    assert image_tokens("high", 1024, 1024) == 7024  # OpenAI's calculator
    assert image_tokens("high", 1536, 1024) == 5488


def test_no_model_quality_aspect_and_route_charges_less_than_its_upstream_cost() -> None:
    catalog = load_catalog()
    checked = 0
    for model in catalog.models.values():
        assert model.costs, f"{model.id} has no cost formula"
        for route in [name for name, _ in model.adapters] + ["demo"]:
            for quality in QUALITIES:
                for aspect in model.aspects:
                    usd = catalog.cost_usd(model.id, quality, aspect, route)
                    price = catalog.price(model.id, quality, aspect, route)
                    assert usd is not None and usd > 0
                    assert price / catalog.credits_per_dollar >= usd, (
                        model.id,
                        route,
                        quality,
                        aspect,
                        price,
                        usd,
                    )
                    assert price >= model.min_credits
                    checked += 1
    assert checked > 300


def test_gpt_image_2_is_priced_by_the_size_the_adapter_draws() -> None:
    catalog = load_catalog()
    rate = catalog.credits_per_dollar
    # The default portrait (3:4) at standard is 1328×1776: 1,884 tokens.
    assert image_size(3 / 4, "standard", "gpt-image-2") == (1328, 1776)
    usd = 1884 * 30 / 1_000_000 + 0.005
    assert catalog.price("gpt-image-2", "standard", "3:4", "openai") == max(
        8, math.ceil(usd * rate)
    )
    # High quality costs several times draft, and a square costs more than a wide image.
    high = catalog.price("gpt-image-2", "high", "1:1", "openai")
    assert high > 5 * catalog.price("gpt-image-2", "draft", "1:1", "openai")
    assert high > catalog.price("gpt-image-2", "high", "21:9", "openai")


def test_nano_banana_pro_on_fal_is_priced_on_its_own() -> None:
    catalog = load_catalog()
    gemini = catalog.price("nano-banana-pro", "high", "1:1", "gemini")
    fal = catalog.price("nano-banana-pro", "high", "1:1", "fal")
    assert fal == math.ceil(0.30 * catalog.credits_per_dollar) > gemini


def test_credits_per_dollar_is_one_setting_for_every_price() -> None:
    doubled = parse_catalog(SHIPPED.replace("credits_per_dollar = 130", "credits_per_dollar = 260"))
    base = load_catalog()
    for model_id in ("gpt-image-2", "nano-banana-pro", "nano-banana-2", "gpt-image-1.5"):
        before = base.price(model_id, "high", "1:1", base.model(model_id).adapters[0][0])
        after = doubled.price(model_id, "high", "1:1", base.model(model_id).adapters[0][0])
        assert after >= 2 * before - 1


def test_a_server_override_sets_the_standard_price_and_tiers_keep_their_ratio() -> None:
    catalog = load_catalog()
    standard = catalog.price("nano-banana-pro", "standard", "1:1", "gemini")
    high = catalog.price("nano-banana-pro", "high", "1:1", "gemini")
    over = catalog.price("nano-banana-pro", "high", "1:1", "gemini", standard_override=11)
    assert catalog.price("nano-banana-pro", "standard", "1:1", "gemini", standard_override=11) == 11
    assert over == round(11 * high / standard)


def test_aspects_come_from_the_family_rules() -> None:
    catalog = load_catalog()
    gpt2 = catalog.model("gpt-image-2").aspects
    assert {"21:9", "9:21", "3:1", "1:3", "16:9", "3:4"} <= set(gpt2)
    assert not {"4:1", "1:8"} & set(gpt2)  # past OpenAI's 3:1 limit
    assert catalog.model("gpt-image-1.5").aspects == ("1:1", "2:3", "3:2")
    assert len(catalog.model("nano-banana-pro").aspects) == 10
    assert {"1:4", "4:1", "1:8", "8:1"} <= set(catalog.model("nano-banana-2").aspects)


def test_formula_is_described_with_its_source() -> None:
    catalog = load_catalog()
    routes = catalog.formula("gpt-image-2")
    assert [r for r, _, _ in routes] == ["openai", "fal"]
    assert "$30/M" in routes[0][1] and "community.openai.com" in routes[0][2]
    (gemini, how, source), _ = catalog.formula("nano-banana-pro")
    assert gemini == "gemini" and "4K $0.24" in how and "2026-10-01" in source
