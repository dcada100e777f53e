"""Two processes on one PostgreSQL database (two pools here): a claimed shoot-out is one
process's until its session ends, and restart recovery leaves alone what another one runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.db import PostgresDatabase
from bot.shootouts.store import ShootoutStore, shootout_store
from tests.bot.shootouts.helpers import create, plan

#: advisory locks in this test's database
LOCKS = """
FROM pg_locks WHERE locktype = 'advisory'
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
SQL_CLAIMS = "SELECT pid " + LOCKS + " AND granted"
SQL_WAITING = "SELECT EXISTS (SELECT 1 " + LOCKS + " AND NOT granted)"
SQL_NO_CLAIMS = "SELECT NOT EXISTS (SELECT 1 " + LOCKS + ")"


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[PostgresDatabase, PostgresDatabase]]:
    first = await PostgresDatabase.open(pg_url, max_size=2)
    second = await PostgresDatabase.open(pg_url, max_size=2)
    yield first, second
    await first.close()
    await second.close()


def stores(two: tuple[PostgresDatabase, PostgresDatabase]) -> tuple[ShootoutStore, ShootoutStore]:
    return shootout_store(two[0]), shootout_store(two[1])


async def test_a_claim_is_one_process_s_until_it_lets_go_or_its_session_ends(
    two: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    mine, theirs = stores(two)
    async with mine.claim("s1", wait=True) as ours:
        assert ours
        async with theirs.claim("s1") as also:
            assert not also, "another process skips a claimed shoot-out"
        waiting = asyncio.create_task(_claim_and_report(theirs, "s1"))
        assert await _until(two[0], SQL_WAITING), "the second claim waits on the server"
        assert not waiting.done()
    assert await waiting, "a waiting claim gets the shoot-out once the first lets go"
    async with theirs.claim("s1") as free:
        assert free

    # A process that dies mid-claim: its session ends on the server, and the claim with it.
    async with mine.claim("s2") as ours:
        assert ours
        (pid,) = [row["pid"] for row in await two[1].fetch(SQL_CLAIMS)]
        assert await two[1].fetchval("SELECT pg_terminate_backend($1)", pid)
        assert await _until(two[1], SQL_NO_CLAIMS), "the server ends the session"
        async with theirs.claim("s2") as taken:
            assert taken


async def _claim_and_report(store: ShootoutStore, shootout_id: str) -> bool:
    async with store.claim(shootout_id, wait=True) as ours:
        return ours


async def _until(db: PostgresDatabase, sql: str) -> bool:
    """Poll until ``sql`` is true (the server's lock table changes after our call returns)."""
    for _ in range(200):
        if await db.fetchval(sql):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_recovery_leaves_alone_a_shootout_another_process_runs(
    two: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    runner, restarted = stores(two)
    async with runner.claim("live", wait=True):
        # The runner takes its claim before the shoot-out's row exists, as /shootout start does.
        await create(runner, plan("a", "b", shootout_id="live"))
        await create(runner, plan("c", shootout_id="dead"))  # its process is gone
        unfinished = await restarted.unfinished_rounds()
        assert [(r.shootout_id, r.idx) for r in unfinished] == [("dead", 0)]
        assert await restarted.orphaned_to_voting() == 1
        live = await restarted.get("live")
        assert live is not None and live.state == "running"
    unfinished = await restarted.unfinished_rounds()
    assert [(r.shootout_id, r.idx) for r in unfinished] == [("dead", 0), ("live", 0), ("live", 1)]
    assert await restarted.orphaned_to_voting() == 1
