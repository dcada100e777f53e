"""Ledger throughput: reserve + settle pairs per second, SQLite and (with --db) PostgreSQL.

Run: ``.venv/bin/python bench/ledger.py [--seconds 3] [--tasks 100]`` (about 20 s in total), and
``--db postgresql://...`` to add PostgreSQL with 1 and with 4 OS processes (``--pg-tasks`` tasks
each, on a pool of ``--pool`` connections each) next to the SQLite rows. The PostgreSQL database must
exist; the bench adds its own accounts in guilds it picks at random and leaves them there.
Targets: >= 2,000 settled comparisons/s on a 2-core machine, reserve p99 < 150 ms (PostgreSQL:
with 4 processes).

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
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.credits.ledger import Ledger, LineItem
from bot.db import AnyDatabase, Database, PostgresDatabase, describe_target, is_postgres_url
from bot.db.connection import Synchronous
from bot.guild_settings import update_guild_settings

ITEMS = (LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22))
FUNDS = 900_000_000
#: who grants the funds: not one of the members (nobody grants to themselves)
OPERATOR = 10**12


async def _fund(ledger: Ledger, db: AnyDatabase, members: int, guild: int = 1) -> None:
    await update_guild_settings(db, guild, max_grant=FUNDS, mod_daily_cap=0)
    for user in range(members):
        await ledger.grant(guild, user, FUNDS, "benchmark funds", actor_id=OPERATOR)


async def _comparison(
    ledger: Ledger, guild: int, user: int, n: int, latencies: list[float]
) -> None:
    """One reserve + settle; every fourth has a refused model, so settle writes a refund row."""
    started = time.perf_counter()
    hold = await ledger.reserve(guild, user, ITEMS, comparison_id=f"{user}-{n}")
    latencies.append(time.perf_counter() - started)
    failed = {"nano-banana-pro": "declined (safety)"} if n % 4 == 0 else {}
    delivered = [item.model_id for item in ITEMS if item.model_id not in failed]
    await ledger.settle(hold.id, delivered, failed)


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
        await _comparison(ledger, 1, task, n, latencies)

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


# --- PostgreSQL: the same comparisons from several OS processes sharing one database ----------


async def pg_worker(
    url: str, guild: int, first_user: int, tasks: int, pool: int, start_at: float, seconds: float
) -> None:
    """One process of a PostgreSQL run: wait for the common start, drive, print one JSON line."""
    db = await PostgresDatabase.open(url, min_size=pool, max_size=pool)
    ledger = Ledger(db)
    latencies: list[float] = []
    # The pool's server processes, to measure their CPU time too when the server is local.
    backends = [await db.fetchval("SELECT pg_backend_pid()") for _ in range(pool)]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    server_before, client_before = _cpu_seconds(backends), time.process_time()

    async def pair(task: int, n: int) -> None:
        await _comparison(ledger, guild, first_user + task, n, latencies)

    count = await _drive(tasks, seconds, pair)
    client = time.process_time() - client_before
    server = _cpu_seconds(backends) - server_before
    await db.close()
    print(
        json.dumps({"count": count, "latencies": latencies, "client": client, "server": server}),
        flush=True,
    )


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these local processes (0 for any not visible here)."""
    total = 0
    for pid in set(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


async def bench_postgres(
    url: str, processes: int, tasks: int, pool: int, seconds: float
) -> tuple[float, list[float], float]:
    """Reserve + settle pairs from ``processes`` OS processes; (pairs/s, latencies, audit s)."""
    guild = random.randrange(10**6, 10**12)  # a guild of its own: earlier runs stay out of it
    db = await PostgresDatabase.open(url, max_size=4)
    ledger = Ledger(db)
    await _fund(ledger, db, processes * tasks, guild)
    # Each process imports, connects and fills its pool before the common start time.
    start_at = time.time() + 2.0 + 0.5 * processes
    common = ["--guild", str(guild), "--tasks", str(tasks), "--pool", str(pool)]
    common += ["--start-at", str(start_at), "--seconds", str(seconds)]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            *["--pg-worker", url, "--first-user", str(n * tasks), *common],
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(processes)
    ]
    outputs = await asyncio.gather(*(w.communicate() for w in workers))
    if any(w.returncode for w in workers):
        raise SystemExit("a PostgreSQL bench process failed")
    results = [json.loads(out) for out, _ in outputs]
    latencies = [latency for result in results for latency in result["latencies"]]
    count = sum(result["count"] for result in results)
    rate = count / seconds
    client_ms = sum(result["client"] for result in results) * 1000 / max(1, count)
    server_ms = sum(result["server"] for result in results) * 1000 / max(1, count)
    print(
        f"  PostgreSQL, {processes} process(es): CPU per comparison {client_ms:.2f} ms in the "
        f"bot processes + {server_ms:.2f} ms in the server (0 when the server is not local)"
    )
    audit_started = time.perf_counter()
    problems = await ledger.audit()
    audit_seconds = time.perf_counter() - audit_started
    await db.close()
    if problems:
        raise SystemExit(f"audit found {len(problems)} discrepancies, e.g. {problems[0]}")
    return rate, latencies, audit_seconds


async def _postgres_settings(url: str) -> str:
    db = await PostgresDatabase.open(url, max_size=1)
    try:
        version = await db.fetchval("SHOW server_version")
        fsync = await db.fetchval("SHOW fsync")
        commit = await db.fetchval("SHOW synchronous_commit")
    finally:
        await db.close()
    return f"PostgreSQL {version} (fsync={fsync}, synchronous_commit={commit})"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--tasks", type=int, default=100, help="concurrent tasks")
    parser.add_argument("--db", help="also measure this postgresql:// database")
    parser.add_argument("--pool", type=int, default=4, help="connections per PostgreSQL process")
    parser.add_argument("--pg-tasks", type=int, default=16, help="tasks per PostgreSQL process")
    parser.add_argument("--processes", type=int, default=4, help="the multi-process PostgreSQL run")
    parser.add_argument("--pg-worker", help=argparse.SUPPRESS)
    parser.add_argument("--guild", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first-user", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    tasks, seconds = args.tasks, args.seconds
    if args.pg_worker:
        await pg_worker(
            args.pg_worker, args.guild, args.first_user, tasks, args.pool, args.start_at, seconds
        )
        return
    if args.db is not None and not is_postgres_url(args.db):
        raise SystemExit("--db takes a postgresql:// URL (the SQLite rows use temp files)")
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
    postgres: list[tuple[int, float, list[float], float]] = []
    if args.db:
        print(f"{await _postgres_settings(args.db)} at {describe_target(args.db)}, "
              f"{args.pg_tasks} tasks and {args.pool} connections per process")  # fmt: skip
        for processes in sorted({1, args.processes}):
            run = await bench_postgres(args.db, processes, args.pg_tasks, args.pool, seconds)
            postgres.append((processes, *run))

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
    for processes, pg_rate, pg_latencies, _ in postgres:
        rows.append(
            (
                f"PostgreSQL reserve + settle, {processes} process{'es' if processes > 1 else ''}",
                f"{pg_rate:,.0f} comparisons/s",
                f"reserve p50 {_percentile(pg_latencies, 0.50) * 1000:.1f} ms, "
                f"p99 {_percentile(pg_latencies, 0.99) * 1000:.1f} ms",
            )
        )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measurement':<{width}}  {'throughput':>22}  latency")
    for name, throughput, latency in rows:
        print(f"{name:<{width}}  {throughput:>22}  {latency}")
    print(
        f"audit after {len(latencies):,} comparisons: clean in {audit_s * 1000:.0f} ms; "
        f"mean reserve {statistics.fmean(latencies) * 1000:.1f} ms"
    )
    verdict = "meets" if rate >= 2000 and p99 < 0.150 else "MISSES"
    print(f"SQLite {verdict} the target (>= 2,000 comparisons/s, reserve p99 < 150 ms)")
    if postgres:
        processes, pg_rate, pg_latencies, pg_audit = postgres[-1]
        pg_p99 = _percentile(pg_latencies, 0.99)
        verdict = "meets" if pg_rate >= 2000 and pg_p99 < 0.150 else "MISSES"
        print(
            f"PostgreSQL with {processes} processes {verdict} the target "
            f"(audit of the run's guild and everything else: clean in {pg_audit * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
