"""One bot-like process for the multi-process ledger test (run as ``python -m``).

``comparisons URL WORKER COUNT MAX_DELAY START_AT``: run COUNT comparisons at once on 20
shared accounts from START_AT on (epoch seconds: processes spawned one after another race from
one moment) — reserve, wait up to MAX_DELAY seconds "generating", then settle (most) or release
(some) — printing one JSON line per event, flushed, so the test can follow and kill it.
``recover URL``: refund every hold left open and print how many this process refunded.
``sweep URL START_AT``: at START_AT (epoch seconds), close every vote past its deadline and
refund every stale hold at once, as each bot process does on start; print what it closed.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from bot.credits.ledger import InsufficientCredits, Ledger, LineItem
from bot.db import PostgresDatabase
from bot.voting.store import VoteStore

ACCOUNTS = 20
GUILD = 1
ITEMS = (
    LineItem("gpt-image-2", "GPT-Image 2", 8),
    LineItem("nano-banana-pro", "Nano Banana Pro", 22),
)


def emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


async def comparisons(url: str, worker: int, count: int, max_delay: float, start_at: float) -> None:
    db = await PostgresDatabase.open(url, min_size=8, max_size=8)
    ledger = Ledger(db)
    rng = random.Random(worker)

    async def one(n: int) -> None:
        user = rng.randrange(ACCOUNTS)
        try:
            hold = await ledger.reserve(GUILD, user, ITEMS, comparison_id=f"w{worker}-{n}")
        except InsufficientCredits:
            emit(event="refused", user=user)
            return
        emit(event="reserved", hold=hold.id, user=user)
        await asyncio.sleep(rng.uniform(0, max_delay))
        roll = rng.random()
        if roll < 0.2:
            result = await ledger.release(hold.id, "upload failed")
        else:
            delivered = [item.model_id for item in ITEMS if roll < 0.6 or item.credits == 8]
            result = await ledger.settle(hold.id, delivered, {})
        emit(
            event="closed",
            hold=hold.id,
            state=str(result.state),
            charged=result.charged,
            already=result.already_closed,
        )

    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        await db.close()


async def recover(url: str) -> None:
    db = await PostgresDatabase.open(url, max_size=4)
    try:
        emit(event="recovered", count=await Ledger(db).recover_stale_holds(timedelta(0)))
    finally:
        await db.close()


async def sweep(url: str, start_at: float) -> None:
    db = await PostgresDatabase.open(url, max_size=4)
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        now = datetime.now(UTC)
        closed, recovered = await asyncio.gather(
            VoteStore(db).close_due(now), Ledger(db).recover_stale_holds(timedelta(0))
        )
        emit(
            event="swept",
            closed=[result.tally.comparison_id for result in closed],
            recovered=recovered,
        )
    finally:
        await db.close()


if __name__ == "__main__":
    if sys.argv[1] == "sweep":
        asyncio.run(sweep(sys.argv[2], float(sys.argv[3])))
    elif sys.argv[1] == "comparisons":
        url, worker, count, delay = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        asyncio.run(comparisons(url, worker, count, float(delay), float(sys.argv[6])))
    else:
        asyncio.run(recover(sys.argv[2]))
