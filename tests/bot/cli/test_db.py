"""``splitshot db migrate-to-postgres``: a SQLite deployment moves over whole, verified, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.catalog import load_catalog
from bot.cli.db import _verify
from bot.cli.main import main
from bot.comparisons.plan import CompareRequest
from bot.comparisons.records import get_comparison, panel_images, record_rows, save_record
from bot.comparisons.service import ComparisonService
from bot.credits.budget import DEFAULT_RUNNING_WINDOW, Budget, SpendItem, admit, finish
from bot.credits.ledger import Ledger, LineItem
from bot.credits.rules import OperatorLimits
from bot.db import Database, PostgresDatabase
from bot.guild_settings import get_guild_settings, settings_history, update_guild_settings
from bot.settings import Settings
from bot.shootouts.export import export_shootout
from bot.shootouts.pool import POOL_USER_ID, open_pool
from bot.shootouts.report import load
from bot.shootouts.store import shootout_store
from providers.base import Refused
from providers.registry import Registry
from tests.bot.comparisons.conftest import plan_with
from tests.bot.shootouts import helpers as shootouts
from tests.conftest import FakeAdapter

PAIR = (LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22))
WHEN = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
SHOOTOUT = "5400"


class Undo(Exception):
    """Raised to roll a test's own changes to the copy back."""


async def _deployment(path: Path) -> tuple[str, int, int]:
    """A small but complete SQLite deployment; returns (a comparison id, an open hold id, the
    open hold of the shoot-out's round that never ran)."""
    db = await Database.open(path)
    try:
        ledger = Ledger(db)
        await update_guild_settings(db, 1, actor_id=9, daily_allowance=5, blind_default=True)
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
        plan = plan_with(service, CompareRequest("a fox", "portrait", blind=True))
        outcomes, composite = await service.produce(plan)
        rows = record_rows(
            plan,
            outcomes,
            composite,
            guild_id=1,
            user_id=2,
            channel_id=3,
            message_id=4,
            vote_deadline=WHEN,
            delivery="posted",
        )
        await save_record(db, rows)
        spend = [SpendItem("gpt-image-2", 8), SpendItem("nano-banana-pro", 22)]
        await db.run_in_transaction(
            lambda conn: admit(
                conn, 1, plan.id, spend, OperatorLimits.unlimited(), WHEN, DEFAULT_RUNNING_WINDOW
            )
        )
        await db.run_in_transaction(
            lambda conn: finish(conn, plan.id, ["gpt-image-2"], WHEN.isoformat())
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

        # A shoot-out paid from the team pool, closed but not reported yet: one round posted and
        # voted on, the other never ran and still holds its credits (the bot stopped).
        await open_pool(db, 1)
        await ledger.grant(1, POOL_USER_ID, 200, "posters", actor_id=9)
        store = shootout_store(db)
        shootout = shootouts.plan("a fair poster", "a jazz poster", shootout_id=SHOOTOUT)
        await shootouts.create(store, shootout, payer=POOL_USER_ID)
        await shootouts.post_round(db, shootout, 0, message=4242, votes=("A", "B", "A"))
        await store.set_round(SHOOTOUT, 0, "posted")
        round_hold = await ledger.reserve(
            1, POOL_USER_ID, PAIR, comparison_id=shootout.rounds[1].id
        )
        await store.set_hold(SHOOTOUT, 1, round_hold.id)
        await store.open_voting(SHOOTOUT)
        await store.close(SHOOTOUT, by=9, now=WHEN)
        return plan.id, still_open.id, round_hold.id
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
    comparison_id, open_hold, round_hold = asyncio.run(_deployment(source))

    assert _migrate(source, pg_url) == 0
    out = capsys.readouterr().out
    assert "Audit clean on both sides; all 4 balances match." in out
    assert "votes 4" in out and "vote_closures 1" in out and "ledger 14" in out
    assert "panel_images 1" in out and "settings_history 2" in out and "provider_spend 2" in out
    assert "shootouts 1" in out and "shootout_rounds 2" in out

    async def check() -> None:
        sqlite, pg = await Database.open(source), await PostgresDatabase.open(pg_url)
        try:
            before, after = Ledger(sqlite), Ledger(pg)
            for user in (2, 3, 4):
                assert await after.balance(1, user) == await before.balance(1, user)
                assert await after.history(1, user) == await before.history(1, user)
            assert await after.counts() == await before.counts()
            assert await after.balance(1, POOL_USER_ID) == await before.balance(1, POOL_USER_ID)
            # The shoot-out, its rounds, their comparisons and votes, and its export, the same.
            copied = await shootout_store(pg).get(SHOOTOUT)
            assert copied is not None and copied == await shootout_store(sqlite).get(SHOOTOUT)
            assert await load(pg, SHOOTOUT) == await load(sqlite, SHOOTOUT)
            _, exported = await export_shootout(pg, SHOOTOUT, "Poster")
            _, original = await export_shootout(sqlite, SHOOTOUT, "Poster")
            assert exported.pop("exported_at") and original.pop("exported_at")
            assert exported == original
            # The copy's own check compares every shoot-out's and round's state and hold.
            snapshot = {
                table: await sqlite.fetchall(f"SELECT * FROM {table}")
                for table in ("accounts", "shootouts", "shootout_rounds")
            }
            with pytest.raises(Undo):
                async with pg.transaction() as conn:
                    assert await _verify(conn, snapshot) == []
                    await conn.execute("UPDATE shootout_rounds SET hold_id = NULL WHERE idx = 1")
                    assert await _verify(conn, snapshot) == [
                        "shootout_rounds differ between SQLite and PostgreSQL"
                    ]
                    raise Undo
            assert await get_guild_settings(pg, 1) == await get_guild_settings(sqlite, 1)
            record = await get_comparison(sqlite, comparison_id)
            assert record is not None and record == await get_comparison(pg, comparison_id)
            assert await settings_history(pg, 1) == await settings_history(sqlite, 1)
            assert await panel_images(pg, comparison_id) == await panel_images(
                sqlite, comparison_id
            )
            spent = await Budget(pg, OperatorLimits.unlimited(), clock=lambda: WHEN).report()
            assert [(r.model_id, r.images, r.cost) for r in spent] == [
                ("gpt-image-2", 1, 8),
                ("nano-banana-pro", 0, 0),  # released: it refused, so it cost nothing
            ]
            assert (
                spent
                == await Budget(sqlite, OperatorLimits.unlimited(), clock=lambda: WHEN).report()
            )
            # The copied rows moved the board's generation, so no cached board is stale.
            assert await pg.fetchval("SELECT generation FROM board_generations") > 0
            assert await pg.fetchval(
                "SELECT blind FROM comparisons WHERE id = $1", comparison_id
            ) is True  # fmt: skip
            assert await pg.fetchval("SELECT vote_deadline FROM comparisons") == WHEN
            # The copy is live: the open hold settles once, new ids follow the copied ones.
            assert not (await after.settle(open_hold, ["gpt-image-2"], {})).already_closed
            fresh = await after.reserve(1, 2, PAIR, comparison_id="after the move")
            assert fresh.id > open_hold
            await after.release(fresh.id, "test")
            # ...and so is the shoot-out: its report is still due, its unrun round refunds once.
            store = shootout_store(pg)
            assert await store.unreported() == [SHOOTOUT]
            assert await store.mark_reported(SHOOTOUT, 999, now=WHEN)
            assert [(r.idx, r.state, r.hold_id) for r in await store.unfinished_rounds()] == [
                (1, "planned", round_hold)
            ]
            assert not (await after.release(round_hold, "restart")).already_closed
            assert (await after.release(round_hold, "restart")).already_closed
            assert await after.balance(1, POOL_USER_ID) == 200
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
