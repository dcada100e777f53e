"""Every comparison and panel is recorded with its message, parameters, latency and image hash
(on both backends)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.catalog import load_catalog
from bot.comparisons.history import history_page
from bot.comparisons.plan import CompareRequest
from bot.comparisons.records import (
    Undelivered,
    attach_message,
    get_comparison,
    get_comparison_by_message,
    mark_deleted,
    panel_images,
    record_rows,
    save_record,
    stale_pending,
)
from bot.comparisons.service import ComparisonService
from bot.db import AnyDatabase, Database, open_database
from bot.db.migrate import bundled_migrations, discover
from bot.db.storage import run_step
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


async def _stored(db: AnyDatabase, *, when: datetime, blind: bool = False) -> str:
    """One comparison stored as the job stores it: pending, with its hold and its images."""
    service = ComparisonService(
        load_catalog(), Registry({"openai": FakeAdapter(), "gemini": FakeAdapter()})
    )
    plan = plan_with(service, CompareRequest("a fox", "portrait", blind=blind))
    outcomes, composite = await service.produce(plan)
    rows = record_rows(plan, outcomes, composite, guild_id=1, user_id=2, now=when, hold_id=7)
    await save_record(db, rows)
    return plan.id


async def test_a_pending_record_is_posted_once_or_marked_undelivered_once(db: AnyDatabase) -> None:
    now = datetime.now(UTC)
    posted, failed = await _stored(db, when=now), await _stored(db, when=now)
    assert await stale_pending(db, now - timedelta(minutes=1)) == []
    assert sorted(await stale_pending(db, now)) == sorted([(posted, 7), (failed, 7)])

    deadline = now + timedelta(hours=1)
    assert await attach_message(db, posted, channel_id=3, message_id=4, vote_deadline=deadline)
    assert not await attach_message(db, posted, channel_id=3, message_id=5, vote_deadline=None)
    record = await get_comparison_by_message(db, 4)
    assert record is not None and record.delivery == "posted" and record.vote_deadline == deadline

    await run_step(db, Undelivered(failed))
    await run_step(db, Undelivered(posted))  # posted: nothing to take back
    record = await get_comparison(db, failed)
    assert record is not None and (record.delivery, record.charged, record.refunded) == (
        "failed",
        0,
        30,
    )
    assert all(p.credits == 0 for p in record.panels)
    assert await stale_pending(db, now) == []
    kept = await get_comparison(db, posted)
    assert kept is not None and kept.delivery == "posted" and kept.charged == 30


async def test_panel_images_and_the_history_page(db: AnyDatabase) -> None:
    now = datetime.now(UTC)
    first = await _stored(db, when=now - timedelta(minutes=2))
    blind = await _stored(db, when=now - timedelta(minutes=1), blind=True)
    pending = await _stored(db, when=now)
    for cid, message in ((first, 10), (blind, 11)):
        await attach_message(db, cid, channel_id=3, message_id=message, vote_deadline=None)

    images = await panel_images(db, first)
    assert sorted(images) == [0, 1] and all(data for _, data in images.values())

    entries, total = await history_page(db, 1, 2)
    assert total == 2 and [e.id for e in entries] == [blind, first], "posted only, newest first"
    assert entries[0].names == ("Model A", "Model B"), "an open blind vote names no model"
    assert entries[1].names == ("GPT-Image 2", "Nano Banana Pro")
    assert entries[1].created_at == now - timedelta(minutes=2)
    assert pending not in {e.id for e in entries}
    assert await history_page(db, 1, 99) == ([], 0)


async def test_images_stored_before_the_rowid_table_survive_the_upgrade(tmp_path: Path) -> None:
    # Up to 0011, panel_images was WITHOUT ROWID: each insert loaded stored images whole while
    # searching the key's b-tree. 0012 moves them to an ordinary table and keeps every image.
    old = tmp_path / "migrations"
    old.mkdir()
    for migration in discover(bundled_migrations()):
        if migration.version <= 11:
            (old / migration.name).write_text(migration.sql)
    path = tmp_path / "splitshot.db"
    before = await Database.open(path, migrations=old)
    try:
        kept, dropped = (
            await _stored(before, when=datetime.now(UTC)),
            await _stored(before, when=datetime.now(UTC)),
        )
        images = {cid: await panel_images(before, cid) for cid in (kept, dropped)}
    finally:
        await before.close()

    db = await Database.open(path)
    try:
        assert db.schema_version == len(discover(bundled_migrations())) > 11
        [(sql,)] = await fetch(db, "SELECT sql FROM sqlite_master WHERE name = 'panel_images'")
        assert "WITHOUT ROWID" not in sql.upper()
        assert {cid: await panel_images(db, cid) for cid in (kept, dropped)} == images
        assert all(
            len(found) == 2 and all(data for _, data in found.values()) for found in images.values()
        )
        # The foreign key still holds both ways: a panel's images go with it, and an image
        # without its panel is refused.
        await db.execute("DELETE FROM panels WHERE comparison_id = ?", (dropped,))
        assert await panel_images(db, dropped) == {}
        assert await panel_images(db, kept) == images[kept]
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await db.execute(
                "INSERT INTO panel_images (comparison_id, idx, mime_type, data) VALUES (?, 0, ?, ?)",
                ("nobody", "image/png", b"x"),
            )
    finally:
        await db.close()
