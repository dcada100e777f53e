"""/compare with quoted text: the measured row on the card, per letter when blind, in Details."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.measure.ocr import TextMeter
from tests.bot.measure.fakes import FakeOcr
from tests.cogs.conftest import World

PROMPT = 'A neon sign that reads "OPEN 24/7" above a diner door'


def field(embed, name_start: str) -> str:  # type: ignore[no-untyped-def]
    for f in embed.fields:
        if f.name.startswith(name_start):
            return str(f.value)
    raise AssertionError(f"no field {name_start!r} in {[f.name for f in embed.fields]}")


@pytest.fixture
def measured(world: World) -> Iterator[World]:
    # The fake panels are flat colours: GPT-Image 2 red (220), Nano Banana Pro green (60).
    meter = TextMeter(FakeOcr({220: "OPEN 24/7", 60: "OPEN 2A/7"}), workers=2)
    world.bot.service.text_meter = meter
    try:
        yield world
    finally:
        meter.close()


async def test_the_card_shows_the_measured_row_and_says_who_spelled_it(measured: World) -> None:
    w = measured
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="poster")
    (embed,) = res.response.embeds
    criteria = field(embed, "Criteria")
    assert "Text (measured)" in criteria and "100% ✓" in criteria and "86%" in criteria
    assert "read back from each image by OCR" in criteria
    assert "GPT-Image 2 spelled “OPEN 24/7” exactly; Nano Banana Pro wrote “OPEN 2A/7” (86%)" in (
        embed.description or ""
    )
    details = await w.other.click(res.response, label="Details")
    params = details.response.embeds[0]
    assert "Text read: “OPEN 2A/7” (86%)" in field(params, "🇧")


async def test_a_blind_card_shows_text_scores_by_letter_only(measured: World) -> None:
    w = measured
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="poster", blind=True)
    (embed,) = res.response.embeds
    text = field(embed, "Text (measured)")
    assert "A  " in text and "B  " in text and "100% ✓" in text and "86%" in text
    for name in ("GPT-Image 2", "Nano Banana Pro"):
        assert name not in str(embed.to_dict())
