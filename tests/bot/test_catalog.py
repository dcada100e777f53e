"""Catalog loading and validation: the shipped file is valid, every problem is reported."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from bot.catalog import CatalogError, load_catalog, parse_catalog

SHIPPED = resources.files("bot").joinpath("catalog.toml").read_text(encoding="utf-8")


def test_shipped_catalog_has_the_required_models_use_cases_and_criteria() -> None:
    catalog = load_catalog()
    assert {"gpt-image-2", "nano-banana-pro", "nano-banana-2", "gpt-image-1.5"} <= set(
        catalog.models
    )
    assert {
        "portrait",
        "product",
        "poster",
        "landscape",
        "illustration",
        "social-ad",
        "character",
    } <= set(catalog.use_cases)
    assert [c.id for c in catalog.criteria] == [
        "realism",
        "text_accuracy",
        "editing_flexibility",
        "cost_efficiency",
        "final_polish",
        "consistency",
        "best_first_test",
    ]
    assert catalog.default_models == ("gpt-image-2", "nano-banana-pro")
    assert "boardwalk" in catalog.examples


def test_seed_models_carry_the_comparison_page_facts() -> None:
    catalog = load_catalog()
    gpt, nbp = catalog.model("gpt-image-2"), catalog.model("nano-banana-pro")
    assert (gpt.provider, nbp.provider) == ("OpenAI", "Google (Gemini 3 Pro)")
    assert gpt.modes == nbp.modes == ("text-to-image", "image-to-image")
    assert (gpt.safety, nbp.safety) == ("Strict", "Medium")
    assert gpt.image_sizes == (
        "square_hd",
        "portrait_4_3",
        "portrait_16_9",
        "landscape_4_3",
        "landscape_16_9",
    )
    assert nbp.image_sizes == ("1:1", "16:9", "9:16", "3:4", "4:3")
    assert gpt.quality_options == ("low", "medium", "high") and nbp.quality_options == (
        "1K",
        "2K",
        "4K",
    )
    assert (gpt.starting_price, nbp.starting_price) == (8, 22)
    assert gpt.capabilities.mode_2k and gpt.capabilities.mode_4k and nbp.capabilities.mode_4k
    expected = {
        "realism": (5, 5),
        "text_accuracy": (5, 5),
        "editing_flexibility": (5, 4),
        "final_polish": (5, 5),
        "consistency": (4, 4),
    }
    for criterion, (a, b) in expected.items():
        assert (gpt.rating(criterion), nbp.rating(criterion)) == (a, b), criterion
    assert gpt.best_for == "text-heavy commercial creative"
    assert nbp.best_for == "polished final assets"
    assert gpt.adapters[0] == ("openai", "gpt-image-2")
    assert nbp.adapters == (("gemini", "gemini-3-pro-image"), ("fal", "fal-ai/nano-banana-pro"))


def test_use_case_override_applies_only_to_its_use_case() -> None:
    nb2 = load_catalog().model("nano-banana-2")
    assert nb2.rating("consistency", "character") == 5
    assert nb2.rating("consistency", "portrait") == 4 == nb2.rating("consistency")


def _broken(edit: str, old: str) -> str:
    assert old in SHIPPED, old
    return SHIPPED.replace(old, edit, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '{ adapter = "openai", upstream = "gpt-image-2" }',
            '{ adapter = "dalle", upstream = "gpt-image-2" }',
            "unknown adapter 'dalle'",
        ),
        (
            "ratings = { realism = 5, text_accuracy = 5, editing_flexibility = 5,",
            "ratings = { realism = 6, text_accuracy = 5, editing_flexibility = 5,",
            "rating for 'realism' must be 1-5, got 6",
        ),
        (
            "output_per_m = 30.0\nallowance = 0.005  # up to",
            "output_per_m = 0\nallowance = 0.005  # up to",
            "the tokens formula needs output_per_m",
        ),
        (
            'usd = { "1K" = 0.134, "2K" = 0.134, "4K" = 0.24 }',
            'usd = { "1K" = 0.134, "4K" = 0.24 }',
            "per_image needs usd for 1K, 2K, 4K",
        ),
        ('formula = "per_size"', 'formula = "per_pixel"', "formula must be one of"),
        ("[models.costs.fal]", "[models.costs.dalle]", "no cost formula for its 'fal' route"),
        ("credits_per_dollar = 130", "credits_per_dollar = 0", "credits_per_dollar must be"),
        (
            "[models.overrides.character]",
            "[models.overrides.cartoon]",
            "override for unknown use case 'cartoon'",
        ),
        ('id = "gpt-image-1.5"', 'id = "gpt-image-2"', "duplicate model id 'gpt-image-2'"),
    ],
)
def test_each_problem_gets_one_clear_message(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(_broken(new, old), source="test.toml")
    assert any(message in p for p in caught.value.problems), caught.value.problems
    assert "test.toml" in str(caught.value)


def test_several_problems_are_all_reported_at_once() -> None:
    text = _broken(
        '{ adapter = "nope", upstream = "x" }',
        '{ adapter = "fal", upstream = "openai/gpt-image-2" }',
    )
    text = text.replace(
        "ratings = { realism = 5, text_accuracy = 5, editing_flexibility = 4,",
        "ratings = { realism = 0, text_accuracy = 5, editing_flexibility = 4,",
        1,
    )
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    problems = caught.value.problems
    assert any("unknown adapter 'nope'" in p for p in problems)
    assert any("must be 1-5, got 0" in p for p in problems)


def test_missing_price_table_and_invalid_toml_are_reported() -> None:
    with pytest.raises(CatalogError, match="not valid TOML"):
        parse_catalog("[[models]\nid=")
    start = SHIPPED.index("[models.costs.openai]")
    without = SHIPPED[:start] + SHIPPED[SHIPPED.index("[[models]]", start) :]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(without)
    assert any("price (credits per quality tier) is missing" in p for p in caught.value.problems)


def test_a_catalog_may_still_give_fixed_credits_instead_of_costs() -> None:
    start = SHIPPED.index("[models.costs.openai]")
    fixed = (
        SHIPPED[:start]
        + "credits = { draft = 8, standard = 9, high = 24 }\n"
        + SHIPPED[SHIPPED.index("[[models]]", start) :]
    )
    catalog = parse_catalog(fixed)
    assert dict(catalog.model("gpt-image-2").credits) == {"draft": 8, "standard": 9, "high": 24}
    assert catalog.price("gpt-image-2", "high", "3:4", "openai") == 24


def test_override_path_is_used_and_unreadable_path_is_clear(tmp_path: Path) -> None:
    custom = tmp_path / "catalog.toml"
    custom.write_text(SHIPPED.replace('name = "GPT-Image 2"', 'name = "GPT Image Two"', 1))
    assert load_catalog(custom).model("gpt-image-2").name == "GPT Image Two"
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog(tmp_path / "missing.toml")


def test_unknown_ids_name_the_known_ones() -> None:
    catalog = load_catalog()
    with pytest.raises(Exception, match="Known models: gpt-image-2"):
        catalog.model("dall-e-3")
    with pytest.raises(Exception, match="Known use cases: portrait"):
        catalog.use_case("selfie")
