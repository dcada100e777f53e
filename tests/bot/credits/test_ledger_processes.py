"""Several OS processes on one PostgreSQL database: no overdraw, every hold closed exactly once,
a fresh process (two, racing) refunding what processes killed with SIGKILL left open, and two
processes starting together closing each due vote and refunding each stale hold once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.credits.ledger import Ledger
from bot.db import PostgresDatabase
from bot.guild_settings import update_guild_settings
from tests.bot.credits.ledger_worker import ACCOUNTS, GUILD, ITEMS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
WORKERS = 4
PER_WORKER = 200
FUNDS = 600  # per account: 20 x 600 credits for 800 comparisons of 30, so many are refused
#: who grants the funds: not one of the members (nobody grants to themselves)
OPERATOR = 10**12
#: seconds from spawning the processes to their common start: time to import and connect
START_DELAY = 3.0


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bot.credits.ledger_worker", *argv,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip


async def _events(process: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    out, _ = await process.communicate()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def _fund(url: str) -> PostgresDatabase:
    db = await PostgresDatabase.open(url, max_size=4)
    await update_guild_settings(db, GUILD, starter_grant=0)
    ledger = Ledger(db)
    for user in range(ACCOUNTS):
        await ledger.grant(GUILD, user, FUNDS, "test funds", actor_id=OPERATOR)
    return db


async def _check_books(db: PostgresDatabase, closed: dict[int, int]) -> None:
    """Audit clean, money conserved, and every hold closed by exactly one call."""
    assert await Ledger(db).audit() == []
    assert await db.fetchval("SELECT MIN(balance) FROM accounts") >= 0  # no overdraw
    balances = await db.fetchval("SELECT SUM(balance) FROM accounts")
    charged = await db.fetchval("SELECT COALESCE(SUM(charged), 0) FROM holds")
    assert balances + charged == ACCOUNTS * FUNDS
    assert await db.fetchval("SELECT COUNT(*) FROM holds WHERE state = 'open'") == 0
    assert all(count == 1 for count in closed.values()), closed
    # One spend row per hold and never two refunds of one model of a hold.
    twice = await db.fetchval(
        "SELECT COUNT(*) FROM (SELECT hold_id, kind, model_id FROM ledger WHERE hold_id IS NOT"
        " NULL GROUP BY hold_id, kind, model_id HAVING COUNT(*) > 1) AS repeated"
    )
    assert twice == 0


async def test_four_processes_share_twenty_accounts_without_overdraw(pg_url: str) -> None:
    db = await _fund(pg_url)
    try:
        start_at = str(time.time() + START_DELAY)
        workers = [
            await _spawn("comparisons", pg_url, str(n), str(PER_WORKER), "0.02", start_at)
            for n in range(WORKERS)
        ]
        results = await asyncio.gather(*(_events(worker) for worker in workers))
        assert [worker.returncode for worker in workers] == [0] * WORKERS
        events = [event for worker_events in results for event in worker_events]
        reserved = {e["hold"] for e in events if e["event"] == "reserved"}
        closed: dict[int, int] = {}
        for event in events:
            if event["event"] == "closed" and not event["already"]:
                closed[event["hold"]] = closed.get(event["hold"], 0) + 1
        refused = sum(e["event"] == "refused" for e in events)
        assert len(reserved) + refused == WORKERS * PER_WORKER
        assert refused > 0  # the accounts ran dry: the no-overdraw rule was exercised
        assert set(closed) == reserved
        await _check_books(db, closed)
    finally:
        await db.close()


async def test_killed_processes_holds_are_refunded_once_by_a_fresh_process(pg_url: str) -> None:
    db = await _fund(pg_url)
    try:
        # Slow "generations" so that plenty of holds are open when two processes die.
        start_at = str(time.time() + START_DELAY)
        workers = [
            await _spawn("comparisons", pg_url, str(n), str(PER_WORKER), "1.5", start_at)
            for n in range(WORKERS)
        ]
        victims, survivors = workers[:2], workers[2:]
        seen: list[dict[str, Any]] = []
        for victim in victims:
            assert victim.stdout is not None
            # Kill mid-run: after this process reserved some holds and closed a few.
            reserved = closed_some = 0
            while reserved < 20 or closed_some < 3:
                line = await asyncio.wait_for(victim.stdout.readline(), timeout=60)
                assert line, "the worker ended before it could be killed"
                event = json.loads(line)
                seen.append(event)
                reserved += event["event"] == "reserved"
                closed_some += event["event"] == "closed"
            victim.send_signal(signal.SIGKILL)
        for victim in victims:
            assert await victim.wait() == -signal.SIGKILL
        survivor_events = await asyncio.gather(*(_events(worker) for worker in survivors))
        assert [worker.returncode for worker in survivors] == [0, 0]

        left_open = await db.fetchval("SELECT COUNT(*) FROM holds WHERE state = 'open'")
        assert left_open > 0
        # Two fresh processes recover at once: between them, each open hold exactly once.
        recoverers = [await _spawn("recover", pg_url) for _ in range(2)]
        counts = [
            event["count"]
            for events in await asyncio.gather(*(_events(r) for r in recoverers))
            for event in events
        ]
        assert sum(counts) == left_open
        recovered = await db.fetchval("SELECT COUNT(*) FROM ledger WHERE kind = 'recovery'")
        assert recovered == left_open

        closed: dict[int, int] = {}
        events = [*seen, *(e for batch in survivor_events for e in batch)]
        for event in events:
            if event["event"] == "closed" and not event["already"]:
                closed[event["hold"]] = closed.get(event["hold"], 0) + 1
        for row in await db.fetch("SELECT hold_id FROM ledger WHERE kind = 'recovery'"):
            closed[row["hold_id"]] = closed.get(row["hold_id"], 0) + 1
        # Holds the victims closed after the lines we read are closed in the database too.
        unreported = await db.fetch(
            "SELECT id FROM holds WHERE state <> 'open' AND comparison_id LIKE ANY($1)"
            " AND id NOT IN (SELECT hold_id FROM ledger WHERE kind = 'recovery')",
            ["w0-%", "w1-%"],
        )
        for row in unreported:
            closed.setdefault(row["id"], 1)
        total = await db.fetchval("SELECT COUNT(*) FROM holds")
        assert len(closed) == total
        await _check_books(db, closed)
    finally:
        await db.close()


async def test_two_processes_close_each_due_vote_and_refund_each_stale_hold_once(
    pg_url: str,
) -> None:
    db = await _fund(pg_url)
    try:
        ledger = Ledger(db)
        holds = [
            await ledger.reserve(GUILD, n % ACCOUNTS, [ITEMS[0]], comparison_id=f"stale-{n}")
            for n in range(60)
        ]
        past = datetime.now(UTC) - timedelta(minutes=5)
        comparisons = [
            (f"due-{n}", GUILD, 10, 1000 + n, 7, "a fox", "portrait", "1:1", "standard", past, past)
            for n in range(1200)
        ]
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt,"
                " use_case, aspect, quality, vote_deadline, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                comparisons,
            )
            await conn.executemany(
                "INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, status)"
                " VALUES ($1, 0, 'A', 'gpt-image-2', 'GPT-Image 2', 'fake', 'ok')",
                [(row[0],) for row in comparisons],
            )
        start_at = str(time.time() + 3)
        sweepers = [await _spawn("sweep", pg_url, start_at) for _ in range(2)]
        results = [events[0] for events in await asyncio.gather(*(_events(s) for s in sweepers))]
        first, second = (set(result["closed"]) for result in results)
        assert not first & second
        assert first | second == {row[0] for row in comparisons}
        assert sum(result["recovered"] for result in results) == len(holds)
        assert await db.fetchval("SELECT COUNT(*) FROM vote_closures") == len(comparisons)
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE kind = 'recovery'") == 60
        assert await Ledger(db).audit() == []
    finally:
        await db.close()
