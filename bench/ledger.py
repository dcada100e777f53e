"""Ledger throughput: reserve + settle pairs per second with 100 concurrent tasks on one connection.

Run: ``.venv/bin/python bench/ledger.py [--seconds 3] [--tasks 100]`` (about 20 s in total).
Targets: >= 2,000 settled comparisons/s on a 2-core machine, reserve p99 < 150 ms.

Durability trade-off. The database runs in WAL mode with ``synchronous=NORMAL``. Every
transaction is still atomic and the file is never corrupted, and a crash of the bot *process* —
the common failure — loses nothing that was committed: the commit is already in the WAL file.
What NORMAL gives up is the fsync on every commit. After a power cut or kernel panic, the
transactions committed since the WAL was last synced (at the last checkpoint; in practice the
last moments of work, bounded by the OS's writeback delay) can roll back *together*. The ledger is
built so that such a rollback is self-consistent and never costs a member credits: a balance,
its ledger rows and its hold always change in one transaction, so they disappear together and the
audit stays clean; a lost settle leaves the hold open and start-up recovery refunds it in full; a
lost reserve means the member was not charged; a lost daily claim can be claimed again. What a
human may have to repeat is a moderator's grant or revoke that was confirmed (or posted to the
audit channel) just before the power cut. ``synchronous=FULL`` closes that window at the price of
one fsync per commit, which caps the rate at whatever the disk can sync — the last row of the
table measures it on this machine; self-hosters who prefer it can open the database with
``Database.open(path, synchronous="FULL")``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.credits.ledger import Ledger, LineItem
from bot.db import Database
from bot.db.connection import Synchronous
from bot.guild_settings import update_guild_settings

ITEMS = (LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22))
FUNDS = 900_000_000


async def _fund(ledger: Ledger, db: Database, members: int) -> None:
    await update_guild_settings(db, 1, max_grant=FUNDS, mod_daily_cap=0)
    for user in range(members):
        await ledger.grant(1, user, FUNDS, "benchmark funds", actor_id=0)


async def _drive(tasks: int, seconds: float, step: Callable[[int, int], Awaitable[None]]) -> int:
    """Run ``step(task, n)`` in a loop on ``tasks`` tasks for ``seconds``; return total steps."""
    deadline = time.perf_counter() + seconds
    counts = [0] * tasks

    async def worker(task: int) -> None:
        while time.perf_counter() < deadline:
            await step(task, counts[task])
            counts[task] += 1

    await asyncio.gather(*(worker(task) for task in range(tasks)))
    return sum(counts)


async def bench_ledger(
    path: Path, tasks: int, seconds: float, synchronous: Synchronous
) -> tuple[float, list[float], float]:
    """Reserve + settle pairs; return (pairs/s, reserve latencies in s, audit seconds)."""
    db = await Database.open(path, synchronous=synchronous)
    ledger = Ledger(db)
    await _fund(ledger, db, tasks)
    latencies: list[float] = []

    async def pair(task: int, n: int) -> None:
        started = time.perf_counter()
        hold = await ledger.reserve(1, task, ITEMS, comparison_id=f"{task}-{n}")
        latencies.append(time.perf_counter() - started)
        # Every fourth comparison has a refused model, so settle also writes a refund row.
        failed = {"nano-banana-pro": "declined (safety)"} if n % 4 == 0 else {}
        delivered = [item.model_id for item in ITEMS if item.model_id not in failed]
        await ledger.settle(hold.id, delivered, failed)

    started = time.perf_counter()
    pairs = await _drive(tasks, seconds, pair)
    rate = pairs / (time.perf_counter() - started)
    audit_started = time.perf_counter()
    problems = await ledger.audit()
    audit_seconds = time.perf_counter() - audit_started
    await db.close()
    if problems:
        raise SystemExit(f"audit found {len(problems)} discrepancies, e.g. {problems[0]}")
    return rate, latencies, audit_seconds


async def bench_single_statements(path: Path, tasks: int, seconds: float) -> float:
    """One autocommit UPDATE per aiosqlite call: the connection's raw statement rate."""
    db = await Database.open(path)
    ledger = Ledger(db)
    await _fund(ledger, db, tasks)
    sql = "UPDATE accounts SET balance = balance - 1 WHERE guild_id = 1 AND user_id = ?"

    async def statement(task: int, n: int) -> None:
        await db.conn.execute(sql, (task,))

    started = time.perf_counter()
    count = await _drive(tasks, seconds, statement)
    rate = count / (time.perf_counter() - started)
    await db.close()
    return rate


async def bench_awaited_transactions(path: Path, tasks: int, seconds: float) -> float:
    """A reserve-shaped transaction written as one awaited aiosqlite call per statement."""
    db = await Database.open(path)
    ledger = Ledger(db)
    await _fund(ledger, db, tasks)
    debit = (
        "UPDATE accounts SET balance = balance - 30"
        " WHERE guild_id = 1 AND user_id = ? AND balance >= 30"
    )
    hold = (
        "INSERT INTO holds (guild_id, user_id, comparison_id, amount, created_at)"
        " VALUES (1, ?, 'x', 30, 'x')"
    )
    row = (
        "INSERT INTO ledger (guild_id, user_id, delta, kind, hold_id, created_at)"
        " VALUES (1, ?, -30, 'spend', ?, 'x')"
    )

    async def transaction(task: int, n: int) -> None:
        async with db.transaction() as conn:
            cursor = await conn.execute(debit, (task,))
            assert cursor.rowcount == 1
            cursor = await conn.execute(hold, (task,))
            await conn.execute(row, (task, cursor.lastrowid))

    started = time.perf_counter()
    count = await _drive(tasks, seconds, transaction)
    rate = count / (time.perf_counter() - started)
    await db.close()
    return rate


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--tasks", type=int, default=100, help="concurrent tasks")
    args = parser.parse_args()
    tasks, seconds = args.tasks, args.seconds
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, {tasks} tasks on one connection, {seconds:g} s per row"
    )
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        raw = await bench_single_statements(base / "raw.db", tasks, seconds)
        awaited = await bench_awaited_transactions(base / "awaited.db", tasks, seconds)
        rate, latencies, audit_s = await bench_ledger(base / "ledger.db", tasks, seconds, "NORMAL")
        full_rate, full_latencies, _ = await bench_ledger(base / "full.db", tasks, seconds, "FULL")

    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    rows = [
        ("single UPDATE per aiosqlite call (autocommit)", f"{raw:,.0f} statements/s", ""),
        ("reserve-shaped tx, one await per statement", f"{awaited:,.0f} tx/s", ""),
        (
            "Ledger reserve + settle (one job per tx), NORMAL",
            f"{rate:,.0f} comparisons/s",
            f"reserve p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms",
        ),
        (
            "Ledger reserve + settle, synchronous=FULL",
            f"{full_rate:,.0f} comparisons/s",
            f"reserve p99 {_percentile(full_latencies, 0.99) * 1000:.1f} ms",
        ),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measurement':<{width}}  {'throughput':>22}  latency")
    for name, throughput, latency in rows:
        print(f"{name:<{width}}  {throughput:>22}  {latency}")
    print(
        f"audit after {len(latencies):,} comparisons: clean in {audit_s * 1000:.0f} ms; "
        f"mean reserve {statistics.fmean(latencies) * 1000:.1f} ms"
    )
    verdict = "meets" if rate >= 2000 and p99 < 0.150 else "MISSES"
    print(f"{verdict} the target (>= 2,000 comparisons/s, reserve p99 < 150 ms)")


if __name__ == "__main__":
    asyncio.run(main())
