"""How the measured text row reads: terminal, embed (named and blind) and sentences."""

from __future__ import annotations

from bot.catalog import load_catalog
from bot.comparisons.plan import CompareRequest
from bot.measure import report
from bot.measure.ocr import TextAccuracy, TextMeter
from bot.render.embed import result_embed
from bot.render.terminal import render_verdict
from bot.verdict import build_verdict
from tests.bot.comparisons.conftest import job_for, plan_with
from tests.bot.comparisons.test_text_measured import ColourAdapter, service
from tests.bot.measure.fakes import FakeOcr

CATALOG = load_catalog()
EXACT = TextAccuracy(("OPEN 24/7",), ("OPEN 24/7",), 1.0, True, parts=(1.0,))
TYPO = TextAccuracy(("OPEN 24/7",), ("OPEN 2A/7",), 6 / 7, False, parts=(6 / 7,))
LABELS = ("GPT-Image 2", "Nano Banana Pro")


def verdict(text: tuple[TextAccuracy | None, ...]):  # type: ignore[no-untyped-def]
    models = [CATALOG.model("gpt-image-2"), CATALOG.model("nano-banana-pro")]
    return build_verdict(CATALOG, models, CATALOG.use_case("poster"), text=text)


def test_the_terminal_table_shows_percent_and_tick_and_explains_the_row() -> None:
    out = render_verdict(verdict((EXACT, TYPO)))
    line = next(row for row in out.splitlines() if row.startswith("Text (measured)"))
    assert "100% ✓" in line and "86%" in line and line.rstrip().endswith("GPT-Image 2")
    assert "read back from each image by OCR" in out
    flat = " ".join(out.split())  # the terminal wraps the quick verdict
    assert (
        "GPT-Image 2 spelled “OPEN 24/7” exactly; Nano Banana Pro wrote “OPEN 2A/7” (86%)." in flat
    )


def test_no_text_no_row() -> None:
    v = verdict(())
    assert "Text (measured)" not in render_verdict(v) and v.text_sentence == ""


def test_several_strings_name_the_one_that_went_wrong() -> None:
    both = TextAccuracy(
        ("MIDNIGHT RIDE", "TOUR 2026"),
        ("MIDNIGHT RIDE", "TOUR 2027"),
        0.95,
        False,
        parts=(1.0, 0.875),
    )
    right = TextAccuracy(("MIDNIGHT RIDE", "TOUR 2026"), ("MIDNIGHT RIDE", "TOUR 2026"), 1.0, True)
    text = report.sentence((right, both), LABELS)
    assert text == (
        "GPT-Image 2 spelled “MIDNIGHT RIDE” and “TOUR 2026” exactly; "
        "Nano Banana Pro wrote “TOUR 2027” (95%)."
    )


def test_illegible_text_is_said_plainly_and_long_text_says_it_was_cut() -> None:
    nothing = TextAccuracy(("OPEN",), ("",), 0.0, False, truncated=True, parts=(0.0,))
    text = report.sentence((EXACT, nothing), LABELS)
    assert "Nano Banana Pro did not write “OPEN” legibly (0%)" in text
    assert "first 200 characters" in report.note((EXACT, nothing))


async def test_a_blind_card_shows_text_scores_per_letter_only() -> None:
    meter = TextMeter(FakeOcr({10: "OPEN 24/7", 20: "OPEN 2A/7"}), workers=1)
    svc = service(ColourAdapter(), meter)
    plan = plan_with(svc, CompareRequest('a sign that reads "OPEN 24/7"', "poster", blind=True))
    try:
        result = await job_for(svc, plan, requester=None).produce()
    finally:
        meter.close()
    embed = result_embed(result.view)
    field = next(f for f in embed.fields if f.name.startswith("Text (measured)"))
    assert field.value is not None
    assert "A  " in field.value and "B  " in field.value and "86%" in field.value
    everything = str(embed.to_dict())
    for model in ("GPT-Image 2", "Nano Banana Pro"):
        assert model not in everything


async def test_a_named_card_explains_the_measured_row() -> None:
    meter = TextMeter(FakeOcr({10: "OPEN 24/7", 20: "OPEN 2A/7"}), workers=1)
    svc = service(ColourAdapter(), meter)
    try:
        result = await job_for(
            svc, plan_with(svc, CompareRequest('a sign "OPEN 24/7"', "poster")), requester=None
        ).produce()
    finally:
        meter.close()
    embed = result_embed(result.view)
    criteria = next(f for f in embed.fields if f.name.startswith("Criteria"))
    assert criteria.value is not None and "Text (measured)" in criteria.value
    assert "100% ✓" in criteria.value
    assert embed.description is not None and "spelled “OPEN 24/7” exactly" in embed.description
