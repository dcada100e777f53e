"""Text measurements are stored with the comparison and averaged per model for the leaderboard
(on both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.catalog import load_catalog
from bot.comparisons.job import Requester
from bot.comparisons.plan import CompareRequest
from bot.comparisons.records import get_comparison, mark_deleted
from bot.comparisons.view import view_from_record
from bot.db import AnyDatabase, open_database
from bot.measure.ocr import TextMeter
from bot.measure.store import TextRecord, text_means
from bot.render.pages import details_embeds
from bot.render.vote_embed import leaderboard_embed, ratings_table
from bot.voting.leaderboard import leaderboard
from bot.voting.ratings import ComparisonVotes, PanelFacts
from tests.bot.comparisons.conftest import job_for, plan_with
from tests.bot.comparisons.test_text_measured import ColourAdapter, service
from tests.bot.measure.fakes import FakeOcr

CATALOG = load_catalog()


@pytest.fixture
async def db(db_target: str) -> AsyncIterator[AnyDatabase]:
    """Both backends: a temp SQLite file, then a fresh PostgreSQL database."""
    database = await open_database(db_target)
    yield database
    await database.close()


async def run_and_record(
    db: Any, prompt: str, *, use_case: str = "poster", blind: bool = False
) -> str:
    meter = TextMeter(FakeOcr({10: "OPEN 24/7", 20: "OPEN 2A/7"}), workers=1)
    svc = service(ColourAdapter(), meter)
    plan = plan_with(svc, CompareRequest(prompt, use_case, blind=blind))
    try:
        await job_for(svc, plan, db=db, requester=Requester(1, 2)).produce()
    finally:
        meter.close()
    return plan.id


async def test_means_per_model_per_use_case(db: Any) -> None:
    await run_and_record(db, 'a sign "OPEN 24/7"')
    await run_and_record(db, 'a sign "OPEN 24/7" at night')
    await run_and_record(db, "a fox, no text")  # nothing measured, nothing stored
    await run_and_record(db, 'a sign "OPEN 24/7"', use_case="product")
    means = await text_means(db, 1, "poster")
    assert means["gpt-image-2"] == TextRecord("gpt-image-2", 1.0, 2, 2)
    nbp = means["nano-banana-pro"]
    assert (nbp.images, nbp.exact) == (2, 0) and abs(nbp.mean - 6 / 7) < 1e-9
    assert nbp.text() == "86% (2)"
    assert (await text_means(db, 1, None))["gpt-image-2"].images == 3
    assert await text_means(db, 99, None) == {}


async def test_deleted_and_open_blind_comparisons_stay_out(db: Any) -> None:
    gone = await run_and_record(db, 'a sign "OPEN 24/7"')
    await mark_deleted(db, gone)
    await run_and_record(db, 'a sign "OPEN 24/7"', blind=True)  # still open: would give it away
    assert await text_means(db, 1, "poster") == {}


def test_the_leaderboard_shows_text_beside_the_rating() -> None:
    board = leaderboard([], min_votes=1)
    assert "Text" not in ratings_table(board)
    panels = (
        PanelFacts("A", "gpt-image-2", "GPT-Image 2", "ok", 1.0, 8),
        PanelFacts("B", "nano-banana-pro", "Nano Banana Pro", "ok", 1.0, 22),
    )
    board = leaderboard([ComparisonVotes("c", False, panels, ("A", "A", "B"))], min_votes=1)
    text = {"gpt-image-2": TextRecord("gpt-image-2", 0.97, 12, 10)}
    table = ratings_table(board, text)
    header, *rows = table.splitlines()
    assert header.split()[:4] == ["#", "Model", "Rating", "Text"]
    assert "97% (12)" in rows[0] and "—" in rows[1]
    embed = leaderboard_embed(board, title="t", chart_filename="c.png", demo=False, text=text)
    assert any("read back by OCR" in (f.value or "") for f in embed.fields)


async def test_a_stored_comparison_keeps_its_measured_row_and_details_show_the_reading(
    db: Any,
) -> None:

    cid = await run_and_record(db, 'a sign "OPEN 24/7"')
    record = await get_comparison(db, cid)
    assert record is not None
    texts = [p.text for p in record.panels]
    assert texts[0] is not None and texts[0].exact
    assert texts[1] is not None and texts[1].read == ("OPEN 2A/7",)
    card = view_from_record(record, CATALOG)
    assert card.verdict.row("text_measured").cells == ("100% ✓", "86%")
    assert "wrote “OPEN 2A/7” (86%)" in card.verdict.quick_verdict
    details = str([e.to_dict() for e in details_embeds(record, CATALOG)])
    assert "Text read: “OPEN 2A/7” (86%)" in details


async def test_a_shootouts_rounds_give_its_text_accuracy(db: Any) -> None:
    from bot.measure.store import child_text_means

    first = await run_and_record(db, 'a sign "OPEN 24/7"')
    second = await run_and_record(db, 'a poster "OPEN 24/7"')
    await run_and_record(db, 'a sign "OPEN 24/7" elsewhere')  # not a round of this shoot-out
    from bot.db import PostgresDatabase

    sql = "UPDATE comparisons SET parent_id = 'shoot1' WHERE id = "
    for comparison_id in (first, second):
        if isinstance(db, PostgresDatabase):
            await db.execute(sql + "$1", comparison_id)
        else:
            await db.execute(sql + "?", (comparison_id,))
    means = await child_text_means(db, "shoot1")
    assert means["gpt-image-2"] == 1.0 and abs(means["nano-banana-pro"] - 6 / 7) < 1e-9
    assert await child_text_means(db, "nobody") == {}
