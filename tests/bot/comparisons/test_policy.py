"""One policy for the bot and the command line: validation, defaults, prices, blind names."""

from __future__ import annotations

from typing import Any

import pytest

from bot.catalog import Catalog
from bot.comparisons.plan import CompareRequest
from bot.comparisons.policy import Policy
from bot.errors import BadInput
from bot.guild_settings import GuildSettings
from providers.base import ReferenceImage
from providers.demo import DemoAdapter
from providers.registry import ModelUnavailable, Registry
from tests.bot.comparisons.conftest import policy_with, registry_with
from tests.conftest import FakeAdapter, png_bytes


def policy(catalog: Catalog, **settings: Any) -> Policy:
    return policy_with(catalog, registry_with(FakeAdapter()), **settings)


def test_plan_prices_itemised_and_uses_use_case_defaults(catalog: Catalog) -> None:
    plan = policy(catalog).plan(CompareRequest("a fox", "portrait"))
    assert [p.model.id for p in plan.panels] == ["gpt-image-2", "nano-banana-pro"]
    assert plan.aspect == "3:4" and plan.quality == "standard"
    assert plan.price_text == "GPT-Image 2 8 + Nano Banana Pro 22 = 30 credits"
    assert plan.total == 30 and not plan.uses_demo


def test_demo_stand_ins_are_labelled(catalog: Catalog) -> None:
    registry = Registry({}, demo=DemoAdapter(latency=(0, 0)))
    plan = policy_with(catalog, registry).plan(CompareRequest("a fox", "poster"))
    assert plan.uses_demo
    assert [p.label for p in plan.panels] == ["GPT-Image 2 · demo", "Nano Banana Pro · demo"]
    with pytest.raises(ModelUnavailable, match="no provider key"):
        policy_with(catalog, registry, allow_demo=False).plan(CompareRequest("a fox", "poster"))


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 4001}, "limit is 4000"),
        ({"models": ["gpt-image-2"]}, "Pick 2 to 4 models; you picked 1"),
        ({"models": ["gpt-image-2"] * 2}, "only once"),
        (
            {
                "models": [
                    "gpt-image-2",
                    "nano-banana-pro",
                    "nano-banana-2",
                    "gpt-image-1.5",
                    "gpt-image-2",
                ]
            },
            "you picked 5",
        ),
        ({"models": ["gpt-image-2", "dall-e-3"]}, "Unknown model 'dall-e-3'"),
        ({"aspect": "7:1"}, "cannot draw 7:1"),
        ({"aspect": "wide"}, "not an aspect ratio"),
        ({"use_case": "selfie"}, "Unknown use case"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    catalog: Catalog, request_kwargs: dict[str, Any], message: str
) -> None:
    adapter = FakeAdapter()
    base: dict[str, Any] = {"prompt": "a fox", "use_case": "portrait"}
    with pytest.raises(Exception, match=message) as caught:
        policy_with(catalog, registry_with(adapter)).plan(CompareRequest(**(base | request_kwargs)))
    assert isinstance(caught.value, BadInput) or "Unknown" in str(caught.value)
    assert adapter.calls == []


def test_banned_words_and_disabled_models_and_reference_capability(catalog: Catalog) -> None:
    with pytest.raises(BadInput, match="does not allow"):
        policy(catalog, banned_words=("forbidden",)).plan(
            CompareRequest("a Forbidden fox", "portrait", models=["gpt-image-2", "nano-banana-pro"])
        )
    with pytest.raises(BadInput, match="Nano Banana Pro is turned off"):
        policy(catalog, enabled_models=("gpt-image-2", "nano-banana-2")).plan(
            CompareRequest("a fox", "portrait", models=["gpt-image-2", "nano-banana-pro"])
        )
    ref = ReferenceImage(png_bytes())
    plan = policy(catalog).plan(CompareRequest("a fox", "portrait", reference=ref))
    assert plan.request.references == (ref,)
    overridden = policy(catalog, price_overrides={"gpt-image-2": 3})
    assert overridden.plan(CompareRequest("a fox", "portrait")).total == 25


def test_default_models_come_from_what_the_server_enabled(catalog: Catalog) -> None:
    only = policy(catalog, enabled_models=("gpt-image-2", "nano-banana-2"))
    plan = only.plan(CompareRequest("a fox"))
    assert [p.model.id for p in plan.panels] == ["gpt-image-2", "nano-banana-2"]
    assert only.pick_models(None, "nano-banana-2") == ["gpt-image-2", "nano-banana-2"]
    assert plan.use_case.id == next(iter(catalog.use_cases))


def test_an_aspect_nobody_picked_does_not_refuse_and_a_picked_one_hints_honestly(
    catalog: Catalog,
) -> None:
    models = ["gpt-image-1.5", "nano-banana-pro"]
    plan = policy(catalog).plan(CompareRequest("a fox", "landscape", models=models))
    assert plan.aspect == catalog.use_case("landscape").default_aspect
    with pytest.raises(BadInput) as caught:
        policy(catalog).plan(CompareRequest("a fox", "landscape", models=models, aspect="21:9"))
    common = [
        a
        for a in catalog.model("gpt-image-1.5").aspects
        if a in catalog.model("nano-banana-pro").aspects
    ]
    assert "cannot draw 21:9" in str(caught.value)
    for aspect in common:
        assert aspect in str(caught.value)


def test_prompts_keep_their_line_breaks(catalog: Catalog) -> None:
    plan = policy(catalog).plan(
        CompareRequest("  A poster that reads:\n  SUMMER   SALE \n\n 50% off  ", "poster")
    )
    assert plan.prompt == "A poster that reads:\nSUMMER SALE\n\n50% off"


def test_price_override_is_the_standard_price_and_other_tiers_scale(catalog: Catalog) -> None:
    overridden = policy(catalog, price_overrides={"gpt-image-2": 16})
    standard = overridden.plan(CompareRequest("a fox", "portrait"))
    high = overridden.plan(CompareRequest("a fox", "portrait", quality="high"))
    assert [p.credits for p in standard.panels] == [16, 22]
    # 16 x (39 / 8): the formula's high-to-standard ratio for a 3:4 GPT-Image 2; Pro's 4K is 32
    assert [p.credits for p in high.panels] == [78, 32]


def test_a_server_demo_switch_overrides_the_process(catalog: Catalog) -> None:
    registry = Registry({}, demo=DemoAdapter(latency=(0, 0)))
    off = Policy.for_server(
        catalog, registry, allow_demo=True, settings=GuildSettings(demo_mode=False)
    )
    with pytest.raises(ModelUnavailable):
        off.plan(CompareRequest("a fox"))


def test_blind_comparisons_hide_names_from_what_adapters_write(catalog: Catalog) -> None:
    plan = policy(catalog).plan(CompareRequest("a fox", "portrait", blind=True))
    assert [p.route.target.display_name for p in plan.panels] == ["Model A", "Model B"]
    assert sorted(p.label for p in plan.panels) == ["GPT-Image 2", "Nano Banana Pro"]
    assert plan.public_labels() == ["Model A", "Model B"]
    assert plan.public_price_text == "30 credits"
    # The letters do not follow the option order, or A would always be model_a.
    firsts = {
        policy(catalog).plan(CompareRequest("a fox", "portrait", blind=True)).panels[0].model.id
        for _ in range(40)
    }
    assert firsts == {"gpt-image-2", "nano-banana-pro"}
    open_plan = policy(catalog).plan(CompareRequest("a fox", "portrait"))
    assert [p.model.id for p in open_plan.panels] == ["gpt-image-2", "nano-banana-pro"]
    demo = policy_with(catalog, Registry({}, demo=DemoAdapter(latency=(0, 0))))
    demo_plan = demo.plan(CompareRequest("a fox", "portrait", blind=True))
    assert [p.route.target.display_name for p in demo_plan.panels] == ["Model A", "Model B"]
