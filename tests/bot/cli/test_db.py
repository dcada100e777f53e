"""``splitshot db migrate-to-postgres``: a SQLite deployment moves over whole, verified, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.catalog import load_catalog
from bot.cli.main import main
from bot.comparisons.records import get_comparison, record_comparison
from bot.comparisons.service import CompareRequest, ComparisonService
from bot.credits.ledger import Ledger, LineItem
from bot.db import Database, PostgresDatabase
from bot.guild_settings import get_guild_settings, update_guild_settings
from bot.settings import Settings
from providers.base import Refused
from providers.registry import Registry
from tests.conftest import FakeAdapter

PAIR = (LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22))
WHEN = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


async def _deployment(path: Path) -> tuple[str, int]:
    """A small but complete SQLite deployment; returns (a comparison id, an open hold id)."""
    db = await Database.open(path)
    try:
        ledger = Ledger(db)
        await update_guild_settings(db, 1, daily_allowance=5, blind_default=True)
        for user in (2, 3, 4):
            await ledger.grant(1, user, 100 * user, "welcome", actor_id=9)
        settled = await ledger.reserve(1, 2, PAIR, comparison_id="settled")
        await ledger.settle(settled.id, ["gpt-image-2"], {"nano-banana-pro": "declined"})
        released = await ledger.reserve(1, 3, PAIR, comparison_id="released")
        await ledger.release(released.id, "upload failed")
        still_open = await ledger.reserve(1, 4, PAIR, comparison_id="open")
        await ledger.claim_daily(1, 2)

        adapter = FakeAdapter(errors={"nano-banana-pro": Refused("safety")})
        registry = Registry({"openai": adapter, "gemini": adapter})
        service = ComparisonService(load_catalog(), registry)
        plan = service.plan(CompareRequest("a fox", "portrait", blind=True))
        result = await service.produce(plan)
        await record_comparison(
            db, result, guild_id=1, user_id=2, channel_id=3, message_id=4, vote_deadline=WHEN
        )
        stamp = WHEN.isoformat(timespec="microseconds")
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO votes VALUES (?, 3, 'A', '🇦', ?, ?)", (plan.id, stamp, stamp)
            )
            await conn.execute(
                "INSERT INTO vote_closures VALUES (?, NULL, 'A', '{\"A\": 1}', ?, NULL)",
                (plan.id, stamp),
            )
        return plan.id, still_open.id
    finally:
        await db.close()


def _migrate(source: Path, url: str) -> int:
    return main(
        ["db", "migrate-to-postgres", "--from", str(source), "--to", url], settings=Settings()
    )


def test_migrate_copies_everything_and_the_copy_keeps_working(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "splitshot.db"
    comparison_id, open_hold = asyncio.run(_deployment(source))

    assert _migrate(source, pg_url) == 0
    out = capsys.readouterr().out
    assert "Audit clean on both sides; all 3 balances match." in out
    assert "votes 1" in out and "vote_closures 1" in out and "ledger 12" in out

    async def check() -> None:
        sqlite, pg = await Database.open(source), await PostgresDatabase.open(pg_url)
        try:
            before, after = Ledger(sqlite), Ledger(pg)
            for user in (2, 3, 4):
                assert await after.balance(1, user) == await before.balance(1, user)
                assert await after.history(1, user) == await before.history(1, user)
            assert await after.counts() == await before.counts()
            assert await get_guild_settings(pg, 1) == await get_guild_settings(sqlite, 1)
            record = await get_comparison(sqlite, comparison_id)
            assert record is not None
            assert await pg.fetchval(
                "SELECT blind FROM comparisons WHERE id = $1", comparison_id
            ) is True  # fmt: skip
            assert await pg.fetchval("SELECT vote_deadline FROM comparisons") == WHEN
            # The copy is live: the open hold settles once, new ids follow the copied ones.
            assert not (await after.settle(open_hold, ["gpt-image-2"], {})).already_closed
            fresh = await after.reserve(1, 2, PAIR, comparison_id="after the move")
            assert fresh.id > open_hold
            await after.release(fresh.id, "test")
            assert await after.audit() == []
        finally:
            await pg.close()
            await sqlite.close()

    asyncio.run(check())

    # Never into a database that already has data.
    assert _migrate(source, pg_url) == 1
    assert "only copies into an empty database" in capsys.readouterr().err


def test_migrate_refuses_a_source_that_does_not_audit_clean(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "broken.db"
    asyncio.run(_deployment(source))

    async def tamper() -> None:
        db = await Database.open(source)
        try:
            await db.execute("UPDATE accounts SET balance = balance + 1 WHERE user_id = 3")
        finally:
            await db.close()

    asyncio.run(tamper())
    assert _migrate(source, pg_url) == 1
    assert "does not audit clean" in capsys.readouterr().err

    async def target_is_empty() -> None:
        pg = await PostgresDatabase.open(pg_url)
        try:
            assert await pg.fetchval("SELECT COUNT(*) FROM accounts") == 0
        finally:
            await pg.close()

    asyncio.run(target_is_empty())


def test_migrate_checks_its_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _migrate(tmp_path / "missing.db", "postgresql://localhost/x") == 2
    (tmp_path / "x.db").write_bytes(b"")
    assert _migrate(tmp_path / "x.db", str(tmp_path / "y.db")) == 2
    err = capsys.readouterr().err
    assert "no SQLite database at" in err and "--to must be a postgresql:// URL" in err
