"""Planning a shoot-out: every prompt is a priced round under the server's policy."""

from __future__ import annotations

from typing import Any

import pytest

from bot.catalog import Catalog, load_catalog
from bot.comparisons.policy import Policy
from bot.errors import BadInput
from bot.shootouts.plan import ShootoutRequest, plan_shootout
from tests.bot.comparisons.conftest import policy_with, registry_with
from tests.conftest import FakeAdapter

MODELS = ("gpt-image-2", "nano-banana-pro")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def policy(catalog: Catalog, **settings: Any) -> Policy:
    return policy_with(catalog, registry_with(FakeAdapter()), **settings)


def request(*prompts: str, **changes: Any) -> ShootoutRequest:
    fields: dict[str, Any] = {"name": "Posters", "use_case": "poster", "models": MODELS}
    fields.update(changes)
    return ShootoutRequest(prompts=prompts, **fields)


def test_every_prompt_is_a_round_with_the_shootout_as_parent(catalog: Catalog) -> None:
    plan = plan_shootout(policy(catalog), request("a fair", "", "a run"), shootout_id="abc")
    assert [r.prompt for r in plan.rounds] == ["a fair", "a run"], "empty fields are skipped"
    assert {(r.kind, r.parent_id) for r in plan.rounds} == {("shootout", "abc")}
    assert len({r.id for r in plan.rounds}) == 2
    assert all(r.blind for r in plan.rounds), "blind by default"
    assert plan.total == 2 * (8 + 22)
    assert sorted(plan.price_lines()) == [
        "GPT-Image 2: 2 prompts × 8 = 16 credits",
        "Nano Banana Pro: 2 prompts × 22 = 44 credits",
    ]
    assert plan.price_text == "2 prompts × 2 models = 60 credits"


@pytest.mark.parametrize(
    ("prompts", "changes", "message"),
    [
        ((), {}, "at least one prompt"),
        (("", "  "), {}, "at least one prompt"),
        (tuple("abcdef"), {}, "at most 5 prompts; you gave 6"),
        (("x" * 4001,), {}, "Prompt 1: The prompt is 4001 characters"),
        (("fine", "has a secret word"), {}, "Prompt 2: This server does not allow"),
        (("fine",), {"name": "  "}, "Give the shoot-out a name"),
        (("fine",), {"models": ("gpt-image-2",)}, "Pick 2 to 4 models"),
        (("fine",), {"hours": 0}, "1 to 168 hours"),
    ],
)
def test_bad_input_is_refused_before_anything_is_spent(
    catalog: Catalog, prompts: tuple[str, ...], changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        plan_shootout(policy(catalog, banned_words=("secret",)), request(*prompts, **changes))


def test_a_disabled_model_is_named_without_blaming_a_prompt(catalog: Catalog) -> None:
    strict = policy(catalog, enabled_models=("gpt-image-2", "flux-2-pro"))
    with pytest.raises(BadInput, match=r"^Nano Banana Pro is turned off"):
        plan_shootout(strict, request("a fair"))
