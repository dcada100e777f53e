"""Two bot processes on one PostgreSQL database start their shoot-out closers at the same moment:
between them every due shoot-out is closed and reported once, every round a dead run left
behind is refunded once, and the shoot-out a third process is still running is left alone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.credits.ledger import Ledger, LineItem
from bot.db import PostgresDatabase
from bot.shootouts.pool import POOL_USER_ID, open_pool
from bot.shootouts.store import ShootoutStore, shootout_store
from tests.bot.shootouts.helpers import GUILD, MODERATOR, create, plan, post_round

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DUE, DEAD = 8, 3  # shoot-outs past their deadline; shoot-outs whose run died mid-way
LIVE = "beef"  # the shoot-out another process is still running (ids are hex, as the buttons say)
ROUND = (LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22))


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cogs.shootout_worker", *argv,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip


async def _result(process: asyncio.subprocess.Process) -> dict[str, Any]:
    out, _ = await process.communicate()
    assert process.returncode == 0
    (line,) = out.decode().splitlines()
    result: dict[str, Any] = json.loads(line)
    return result


async def _abandoned(
    store: ShootoutStore, ledger: Ledger, shootout_id: str, deadline: datetime
) -> list[int]:
    """A shoot-out whose rounds were paid for, then its process died: its holds are open."""
    shootout = plan("a fair poster", "a jazz poster", shootout_id=shootout_id)
    await create(store, shootout, payer=POOL_USER_ID, deadline=deadline, now=deadline)
    holds = []
    for idx, round_plan in enumerate(shootout.rounds):
        hold = await ledger.reserve(GUILD, POOL_USER_ID, ROUND, comparison_id=round_plan.id)
        await store.set_hold(shootout_id, idx, hold.id)
        holds.append(hold.id)
    return holds


async def test_two_processes_close_and_report_each_shootout_once_and_refund_each_round_once(
    pg_url: str,
) -> None:
    db = await PostgresDatabase.open(pg_url, max_size=4)
    try:
        store, ledger = shootout_store(db), Ledger(db)
        await open_pool(db, GUILD)
        await ledger.grant(GUILD, POOL_USER_ID, 1_000, "posters", actor_id=MODERATOR)
        past = datetime.now(UTC) - timedelta(minutes=5)
        due, comparisons = [], []
        for n in range(DUE):
            shootout = plan("a fair poster", shootout_id=f"d{n}")
            await create(store, shootout, deadline=past, now=past)
            comparisons.append(await post_round(db, shootout, 0, message=5000 + n, votes=("A",)))
            assert await store.set_round(shootout.id, 0, "posted")
            assert await store.open_voting(shootout.id)
            due.append(shootout.id)
        dead = [f"dead{n}" for n in range(DEAD)]
        dead_holds = [h for sid in dead for h in await _abandoned(store, ledger, sid, past)]

        # A third process is running this one's rounds right now: it holds the claim.
        async with store.claim(LIVE, wait=True):
            live_holds = await _abandoned(store, ledger, LIVE, past)
            start_at = str(time.time() + 3)
            # One slow poster, one quick: the quick one reaches its pass over unreported
            # shoot-outs while the slow one is still posting the report of one it closed.
            workers = [
                await _spawn(pg_url, str(n), start_at, seconds)
                for n, seconds in enumerate(("1.0", "0.05"))
            ]
            results = await asyncio.gather(*(_result(worker) for worker in workers))

        posted = Counter(p["shootout"] for result in results for p in result["posted"])
        assert posted == Counter(due + dead), "each due shoot-out is reported exactly once"
        message_of = {p["shootout"]: p["message"] for r in results for p in r["posted"]}
        for shootout_id in due + dead:
            row = await store.get(shootout_id)
            assert row is not None and row.state == "closed" and row.reported_at is not None
            assert row.report_message_id == message_of[shootout_id]
        assert await db.fetchval("SELECT COUNT(*) FROM vote_closures") == DUE
        assert await db.fetchval(
            "SELECT COUNT(*) FROM comparisons WHERE state = 'closed' AND id = ANY($1)", comparisons
        ) == DUE  # fmt: skip

        # Every hold a dead run left open was refunded once, by one process or the other.
        assert sum(result["refunded"] for result in results) == len(dead_holds)
        refunds = await db.fetch(
            "SELECT hold_id, COUNT(*) FROM ledger WHERE kind = 'refund' GROUP BY hold_id"
        )
        assert {row["hold_id"]: row["count"] for row in refunds} == dict.fromkeys(dead_holds, 1)
        dead_rounds = await db.fetch(
            "SELECT DISTINCT state FROM shootout_rounds WHERE shootout_id = ANY($1)", dead
        )
        assert [row["state"] for row in dead_rounds] == ["refunded"]

        # The running shoot-out is untouched: still running, its rounds planned, its holds open.
        live = await store.get(LIVE)
        assert live is not None and live.state == "running"
        assert {r.state for r in live.rounds} == {"planned"}
        assert await db.fetchval(
            "SELECT COUNT(*) FROM holds WHERE state = 'open' AND id = ANY($1)", live_holds
        ) == len(live_holds)  # fmt: skip
        spent = len(live_holds) * sum(item.credits for item in ROUND)
        assert await ledger.balance(GUILD, POOL_USER_ID) == 1_000 - spent
        assert await ledger.audit() == []
    finally:
        await db.close()
