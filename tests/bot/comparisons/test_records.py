"""Every comparison and panel is recorded with its message, parameters, latency and image hash."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.catalog import load_catalog
from bot.comparisons.plan import CompareRequest
from bot.comparisons.records import (
    get_comparison,
    get_comparison_by_message,
    mark_deleted,
    record_rows,
    save_record,
)
from bot.comparisons.service import ComparisonService
from bot.db import AnyDatabase, open_database
from providers.base import Refused
from providers.registry import Registry
from tests.bot.comparisons.conftest import plan_with
from tests.conftest import FakeAdapter
from tests.pg import fetch


@pytest.fixture
async def db(db_target: str) -> AsyncIterator[AnyDatabase]:
    """Both backends: a temp SQLite file, then a fresh PostgreSQL database."""
    database = await open_database(db_target)
    yield database
    await database.close()


async def test_record_round_trip(db: AnyDatabase) -> None:
    adapter = FakeAdapter(errors={"nano-banana-pro": Refused("safety")})
    service = ComparisonService(load_catalog(), Registry({"openai": adapter, "gemini": adapter}))
    plan = plan_with(service, CompareRequest("a fox", "portrait", blind=True))
    outcomes, composite = await service.produce(plan)
    deadline = datetime(2026, 1, 2, tzinfo=UTC)
    rows = record_rows(
        plan,
        outcomes,
        composite,
        guild_id=1,
        user_id=2,
        channel_id=3,
        message_id=4,
        vote_deadline=deadline,
        delivery="posted",
    )
    await save_record(db, rows)
    record = await get_comparison(db, plan.id)
    assert record is not None and record == await get_comparison_by_message(db, 4)
    assert (record.guild_id, record.user_id, record.channel_id, record.blind) == (1, 2, 3, True)
    assert record.vote_deadline == deadline and record.charged == 8 and record.state == "open"
    # Blind letters are shuffled: the stored letters follow the plan's panel order.
    assert [(p.letter, p.model_id) for p in record.panels] == [
        (panel.letter, panel.model.id) for panel in plan.panels
    ]
    by_model = {p.model_id: p for p in record.panels}
    gpt, nbp = by_model["gpt-image-2"], by_model["nano-banana-pro"]
    assert (gpt.status, gpt.credits, nbp.status, nbp.credits) == ("ok", 8, "refused", 0)
    assert nbp.reason == "safety"
    assert (gpt.price, nbp.price) == (8, 22)  # what each cost when reserved
    assert record.refunded == 22 and record.image_format == composite.format
    assert gpt.upstream_model == "gpt-image-2"
    [(sha, adapter)] = await fetch(
        db,
        "SELECT image_sha256, adapter FROM panels WHERE comparison_id = ? AND idx = ?",
        plan.id,
        gpt.idx,
    )
    gpt_outcome = next(o for o in outcomes if o.panel.model.id == "gpt-image-2")
    assert gpt_outcome.result is not None
    assert sha == hashlib.sha256(gpt_outcome.result.image).hexdigest()
    assert adapter == "fake"
    assert await mark_deleted(db, plan.id, now=deadline + timedelta(hours=1))
    assert not await mark_deleted(db, plan.id)
    assert await get_comparison(db, "missing") is None
