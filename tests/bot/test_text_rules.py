"""Prompt text rules: invisible-only prompts are empty, and banned words survive disguises."""

from __future__ import annotations

import pytest

from bot.comparisons.plan import CompareRequest
from bot.errors import BadInput
from bot.text_rules import clean_prompt, find_banned
from providers.registry import Registry

ZWSP, ZWNJ, ZWJ, WJ, BOM, SHY = "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"


@pytest.mark.parametrize(
    "text",
    [
        ZWSP * 5,
        BOM + WJ + ZWJ + ZWNJ,
        f" {ZWSP}\n{BOM} \t{WJ}\n",
        SHY * 3,
        "\u3164\u2800\u115f",  # Hangul filler, braille blank: they draw nothing either
    ],
)
def test_invisible_only_prompts_are_empty(text: str) -> None:
    assert clean_prompt(text) == ""


def test_clean_prompt_drops_invisibles_and_keeps_lines_and_emoji() -> None:
    assert clean_prompt(f"  a{ZWSP} red   fox{BOM}\n\n  POSTER  ") == "a red fox\n\nPOSTER"
    # The joiner of an emoji sequence stays; inside a word it goes.
    assert clean_prompt(f"coder 👩{ZWJ}💻") == f"coder 👩{ZWJ}💻"
    assert clean_prompt(f"nu{ZWJ}de") == "nude"


@pytest.mark.parametrize(
    "prompt",
    [
        "a nude statue",
        "A NUDE statue",
        f"a nu{ZWSP}de statue",  # zero-width space inside the word
        f"a n{WJ}u{ZWNJ}d{BOM}e statue",
        f"a nu{SHY}de statue",  # soft hyphen
        "a ｎｕｄｅ statue",  # fullwidth letters
        "a nudе statue",  # Cyrillic е
        "a nυdе statue",  # Greek upsilon, Cyrillic е
        "a NUDЕ statue",  # Cyrillic capital Е
        "a n-u-d-e statue",
        "a n.u.d.e statue",
        "a n_u_d_e statue",
        "a n u d e statue",
        "a n\nu\nd\ne statue",
        "a nu\nde statue",
        "a nu-\nde statue",
        "a nüde statue",  # accents
        "a 𝐧𝐮𝐝𝐞 statue",  # mathematical bold letters
    ],
)
def test_find_banned_sees_through_disguises(prompt: str) -> None:
    assert find_banned(prompt, ["castle", "nude"]) == "nude"


def test_find_banned_normalises_the_banned_words_too() -> None:
    assert find_banned("a nude statue", ["ｎｕｄｅ"]) == "ｎｕｄｅ"
    assert find_banned("a hot dog stand", ["hot dog"]) == "hot dog"


@pytest.mark.parametrize(
    "prompt",
    [
        "a knight at a castle gate",
        "menu design for a cafe",  # "nude" across a space is not the word
        "a u d i o waveform",
    ],
)
def test_find_banned_leaves_innocent_prompts_alone(prompt: str) -> None:
    assert find_banned(prompt, ["nude", "moat", "", "   "]) is None


def test_plan_refuses_invisible_prompts_and_disguised_banned_words() -> None:
    from bot.catalog import load_catalog
    from bot.comparisons.policy import Policy
    from bot.guild_settings import GuildSettings
    from tests.conftest import FakeAdapter

    fake = FakeAdapter()
    registry = Registry({"openai": fake, "gemini": fake, "fal": fake})
    policy = Policy(load_catalog(), registry, False, GuildSettings(banned_words=("nude",)))
    with pytest.raises(BadInput, match="empty"):
        policy.plan(CompareRequest(prompt=ZWSP * 40 + BOM, use_case="portrait"))
    with pytest.raises(BadInput, match="does not allow"):
        policy.plan(CompareRequest(prompt="a n-u-d-e portrait", use_case="portrait"))
    plan = policy.plan(CompareRequest(prompt=f"a red{ZWSP} fox", use_case="portrait"))
    assert plan.prompt == "a red fox"
