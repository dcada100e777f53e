"""The PostgreSQL backend itself: migrations under concurrency, schema guards, URL handling."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.credits.ledger import Ledger, LineItem
from bot.db import MigrationError, PostgresDatabase, describe_target, is_postgres_url
from bot.db.migrate import discover
from bot.db.postgres import (
    bundled_postgres_migrations,
    database_name,
    redact,
    with_database,
)
from bot.guild_settings import (
    DEFAULTS,
    reset_guild_settings,
    settings_history,
    update_guild_settings,
)
from tests.pg import PostgresCluster

_names = itertools.count(1)


async def _bare_database(cluster: PostgresCluster) -> str:
    """An empty database with no tables at all (not copied from the migrated template)."""
    name = f"bare_{next(_names)}"
    admin = await asyncpg.connect(cluster.url())
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return cluster.url(name)


async def test_processes_starting_together_migrate_once(pg_cluster: PostgresCluster) -> None:
    url = await _bare_database(pg_cluster)
    opened = await asyncio.gather(*(PostgresDatabase.open(url, max_size=1) for _ in range(4)))
    try:
        bundled = discover(bundled_postgres_migrations())
        assert {db.schema_version for db in opened} == {len(bundled)}
        rows = await opened[0].fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
        # Each migration recorded exactly once, in order, whichever process applied it.
        assert [tuple(row) for row in rows] == [(m.version, m.name) for m in bundled]
        assert [m.name for m in bundled] == [
            "0001_ledger.sql",
            "0002_comparisons.sql",
            "0003_votes.sql",
            "0004_board_generations.sql",
            "0005_delivery.sql",
            "0006_settings_history.sql",
            "0007_provider_spend.sql",
            "0008_panel_text.sql",
            "0009_shootouts.sql",
            "0010_admission.sql",
            "0011_hold_keepalive.sql",
            "0012_ledger_functions.sql",
        ]
    finally:
        for db in opened:
            await db.close()


async def test_a_database_newer_than_the_program_is_refused(pg_url: str) -> None:
    db = await PostgresDatabase.open(pg_url, max_size=1)
    await db.execute("INSERT INTO schema_migrations (version, name) VALUES (99, '0099_future.sql')")
    await db.close()
    with pytest.raises(MigrationError, match="schema version 99, newer than this program"):
        await PostgresDatabase.open(pg_url, max_size=1)


async def test_the_schema_refunds_a_hold_at_most_once(pg_url: str) -> None:
    db = await PostgresDatabase.open(pg_url)
    try:
        ledger = Ledger(db)
        items = [LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano", "Nano", 22)]
        hold = await ledger.reserve(1, 2, items, comparison_id="c")
        await ledger.settle(hold.id, ["gpt-image-2"], {})
        now = datetime.now(UTC)
        insert = (
            "INSERT INTO ledger (guild_id, user_id, delta, kind, hold_id, model_id, created_at)"
            " VALUES (1, 2, $1, $2, $3, $4, $5)"
        )
        # Even a writer that skips the hold's state guard cannot pay the same model back twice,
        # nor take the price twice.
        with pytest.raises(asyncpg.UniqueViolationError):
            await db.execute(insert, 22, "refund", hold.id, "nano", now)
        with pytest.raises(asyncpg.UniqueViolationError):
            await db.execute(insert, -30, "spend", hold.id, None, now)
        assert await ledger.audit() == []
    finally:
        await db.close()


async def test_the_ledger_functions_write_all_or_nothing_and_close_once(pg_url: str) -> None:
    db = await PostgresDatabase.open(pg_url)
    try:
        ledger = Ledger(db)
        await ledger.ensure_account(1, 2)
        balance = await ledger.balance(1, 2)
        assert balance >= 3  # the starter grant
        now = datetime.now(UTC)
        reserve = "SELECT * FROM ledger_reserve(1, 2, $1, 'c', $2, $3, $4, $5, 'price')"
        models, labels = ["a", "b"], ["A", "B"]
        # More than the balance: the debit matches nothing, so nothing at all is written.
        refused = await db.fetchrow(reserve, balance + 1, now, models, labels, [balance, 1])
        assert refused is not None and tuple(refused) == (None, None)
        assert await db.fetchval("SELECT COUNT(*) FROM holds") == 0
        reserved = await db.fetchrow(reserve, 3, now, models, labels, [1, 2])
        assert reserved is not None and reserved["new_balance"] == balance - 3
        hold_id = reserved["new_hold_id"]
        close = (
            "SELECT ledger_close_hold($1, 'settled', 1, 2, $2, $3, $4, $5, 'refund', $6, $7, $8)"
        )
        args = (now, models, ["charged", "refunded"], [None, "declined"], ["b"], [2], ["B: no"])
        assert await db.fetchval(close, hold_id, *args) == balance - 1
        # A second close finds the hold no longer open: NULL, and no second refund.
        assert await db.fetchval(close, hold_id, *args) is None
        assert await ledger.balance(1, 2) == balance - 1
        rows = await db.fetch("SELECT kind, delta FROM ledger WHERE hold_id = $1", hold_id)
        assert sorted(tuple(row) for row in rows) == [("refund", 2), ("spend", -3)]
        assert await ledger.audit() == []
    finally:
        await db.close()


def test_urls_select_postgresql_and_never_show_a_password() -> None:
    url = "postgresql://bot:s3cret@db.internal:5432/splitshot"
    assert is_postgres_url(url) and is_postgres_url("postgres://db/x")
    assert not is_postgres_url("splitshot.db") and not is_postgres_url(None)
    assert redact(url) == "postgresql://bot:***@db.internal:5432/splitshot"
    assert describe_target(url) == redact(url) and describe_target("a.db") == "a.db"
    assert database_name(url) == "splitshot" and database_name("postgresql://ann@h") == "ann"
    assert with_database(url, "other") == "postgresql://bot:s3cret@db.internal:5432/other"


async def test_the_settings_history_is_append_only(pg_url: str) -> None:
    db = await PostgresDatabase.open(pg_url)
    try:
        await update_guild_settings(db, 1, actor_id=9, daily_allowance=5)
        await reset_guild_settings(db, 1, "daily_allowance", actor_id=9)
        changes = await settings_history(db, 1)
        assert [(c.action, c.setting, c.old, c.new) for c in changes] == [
            ("reset", "daily_allowance", 5, DEFAULTS.daily_allowance),
            ("set", "daily_allowance", DEFAULTS.daily_allowance, 5),
        ]
        for statement in (
            "UPDATE settings_history SET actor_id = 1",
            "DELETE FROM settings_history",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await db.execute(statement)
    finally:
        await db.close()
