"""Ledger throughput: reserve + settle pairs per second, SQLite and (optionally) PostgreSQL.

Run: ``.venv/bin/python bench/ledger.py [--seconds 3] [--tasks 100]`` (about 20 s in total), and
``--pg-cluster`` (a throwaway local cluster) or ``--db postgresql://...`` (an existing database)
to add PostgreSQL with 1 and with 4 OS processes (``--pg-tasks`` tasks each, on a pool of
``--pool`` connections each) next to the SQLite rows. With ``--db`` the bench adds its own
accounts in guilds it picks at random and leaves them there. Targets: >= 2,000 settled
comparisons/s on a 2-core machine, reserve p99 < 150 ms (PostgreSQL: with 4 processes).

PostgreSQL. ``--pg-cluster`` runs initdb with PostgreSQL's stock settings and leaves durability
on (``fsync``, ``synchronous_commit`` and ``full_page_writes``); the settings line the bench
prints says what the server ran with either way. Each process runs 8 tasks on 8 connections by
default: a pool at least as large as the operations in flight, as the bot's is (10), because a
task queueing for a connection costs the bot process CPU as well as time. With the server on the
same machine, the bench counts the CPU of the bot processes, of every server process, and of
whatever else ran meanwhile, and prints the rate the CPUs would allow at the measured cost: on
a 2-core VM the limit is CPU, not the disk. Measured there (PostgreSQL 15.18, medians of 3 runs,
load average 3.4-4.4 including the bench's own processes, other work ~0.1 CPU): 4 processes
2,346 comparisons/s (2,300-2,545), reserve p99 20 ms, 0.78 ms of CPU per comparison (0.27 in
the bot processes, 0.51 in the server); 1 process 1,845/s, p99 4.6 ms. While other work kept
0.1-0.7 CPUs busy (load average 4.9-6.5), two more sets of 3 runs gave medians of 1,628/s and
1,520/s (1,503-2,514), and the CPU per comparison rose to 0.8-0.96 ms.

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
import contextlib
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

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
    await asyncio.sleep(max(0.0, start_at - time.time()))
    client_before = time.process_time()

    async def pair(task: int, n: int) -> None:
        await _comparison(ledger, guild, first_user + task, n, latencies)

    count = await _drive(tasks, seconds, pair)
    client = time.process_time() - client_before
    await db.close()
    print(json.dumps({"count": count, "latencies": latencies, "client": client}), flush=True)


def _proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _server_cpu(postmaster: int | None) -> float:
    """CPU seconds used so far by a local server: the postmaster, its children, reaped ones."""
    if postmaster is None:
        return 0.0
    try:
        fields = _proc_stat(postmaster)
        # utime + stime, and cutime + cstime: the children it has already reaped
        ticks = sum(int(field) for field in fields[11:15])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    except OSError:
        return 0.0
    for child in children:
        try:
            fields = _proc_stat(child)
        except OSError:
            continue  # exited just now: its time moves to the postmaster's cutime
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0, 0.0
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def _postmaster(backend: int) -> int | None:
    """The postmaster of this server process when the server runs on this machine."""
    try:
        parent = int(_proc_stat(backend)[1])
        # A backend's parent is the postmaster, whose command line is the server binary.
        command = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError, IndexError):
        return None
    return parent if command.endswith((b"postgres", b"postmaster")) else None


async def _window_cpu(postmaster: int | None, start_at: float, seconds: float) -> dict[str, float]:
    """Server and machine CPU seconds used between ``start_at`` and ``start_at + seconds``."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    server, (busy, total) = _server_cpu(postmaster), _machine_cpu()
    await asyncio.sleep(max(0.0, start_at + seconds - time.time()))
    busy_after, total_after = _machine_cpu()
    return {
        "server": _server_cpu(postmaster) - server,
        "busy": busy_after - busy,
        "total": total_after - total,
    }


@dataclass(frozen=True)
class PgRun:
    """One PostgreSQL run: throughput, reserve latencies, and where the CPU went."""

    processes: int
    rate: float
    latencies: list[float]
    audit_seconds: float
    #: CPU ms per comparison in the bot processes and in the (local) server's processes
    client_ms: float
    server_ms: float
    #: CPUs that other work on the machine kept busy during the run
    others: float

    @property
    def capacity(self) -> float:
        """Comparisons/s the machine's CPUs allow at this CPU cost, with nothing else running."""
        cost = self.client_ms + self.server_ms
        return (os.cpu_count() or 1) * 1000 / cost if cost else 0.0


async def bench_postgres(url: str, processes: int, tasks: int, pool: int, seconds: float) -> PgRun:
    """Reserve + settle pairs from ``processes`` OS processes sharing one database."""
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
    postmaster = _postmaster(int(await db.fetchval("SELECT pg_backend_pid()")))
    window = asyncio.ensure_future(_window_cpu(postmaster, start_at, seconds))
    outputs = await asyncio.gather(*(w.communicate() for w in workers))
    cpu = await window
    if any(w.returncode for w in workers):
        raise SystemExit("a PostgreSQL bench process failed")
    results = [json.loads(out) for out, _ in outputs]
    latencies = [latency for result in results for latency in result["latencies"]]
    count = sum(result["count"] for result in results)
    client = sum(result["client"] for result in results)
    audit_started = time.perf_counter()
    problems = await ledger.audit()
    audit_seconds = time.perf_counter() - audit_started
    await db.close()
    if problems:
        raise SystemExit(f"audit found {len(problems)} discrepancies, e.g. {problems[0]}")
    per = 1000 / max(1, count)
    return PgRun(
        processes,
        count / seconds,
        latencies,
        audit_seconds,
        client * per,
        cpu["server"] * per,
        max(0.0, cpu["busy"] - client - cpu["server"]) / seconds,
    )


async def _postgres_settings(url: str) -> str:
    db = await PostgresDatabase.open(url, max_size=1)
    try:
        version = await db.fetchval("SHOW server_version")
        settings = [
            f"{name}={await db.fetchval(f'SHOW {name}')}"
            for name in ("fsync", "synchronous_commit", "full_page_writes", "commit_delay")
        ]
    finally:
        await db.close()
    return f"PostgreSQL {version} ({', '.join(settings)})"


@contextlib.asynccontextmanager
async def _throwaway_cluster() -> AsyncIterator[str]:
    """A local cluster in a temp dir with PostgreSQL's stock, durable settings; its URL."""
    from tests.pg import PostgresCluster, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("--pg-cluster needs the PostgreSQL server binaries (initdb, pg_ctl)")
    cluster = await asyncio.to_thread(PostgresCluster.start, bin_dir, durable=True)
    try:
        admin = await asyncpg.connect(cluster.url())
        try:
            await admin.execute("CREATE DATABASE bench")
        finally:
            await admin.close()
        yield cluster.url("bench")
    finally:
        await asyncio.to_thread(cluster.stop)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--tasks", type=int, default=100, help="concurrent tasks")
    parser.add_argument("--db", help="also measure this postgresql:// database")
    parser.add_argument(
        "--pg-cluster",
        action="store_true",
        help="also measure PostgreSQL on a throwaway local cluster (stock settings, durable)",
    )
    parser.add_argument("--pool", type=int, default=8, help="connections per PostgreSQL process")
    parser.add_argument("--pg-tasks", type=int, default=8, help="tasks per PostgreSQL process")
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
    if args.db is not None and args.pg_cluster:
        raise SystemExit("--db and --pg-cluster are two ways to name the PostgreSQL database")
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
    postgres: list[PgRun] = []
    if args.db or args.pg_cluster:
        async with contextlib.AsyncExitStack() as stack:
            url = args.db or await stack.enter_async_context(_throwaway_cluster())
            where = "a throwaway local cluster" if args.pg_cluster else describe_target(url)
            print(f"{await _postgres_settings(url)} at {where}, "
                  f"{args.pg_tasks} tasks and {args.pool} connections per process")  # fmt: skip
            for processes in sorted({1, args.processes}):
                postgres.append(
                    await bench_postgres(url, processes, args.pg_tasks, args.pool, seconds)
                )

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
    for run in postgres:
        rows.append(
            (
                f"PostgreSQL reserve + settle, {run.processes} "
                f"process{'es' if run.processes > 1 else ''}",
                f"{run.rate:,.0f} comparisons/s",
                f"reserve p50 {_percentile(run.latencies, 0.50) * 1000:.1f} ms, "
                f"p99 {_percentile(run.latencies, 0.99) * 1000:.1f} ms",
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
    for run in postgres:
        print(
            f"PostgreSQL, {run.processes} process(es): CPU per comparison "
            f"{run.client_ms:.2f} ms in the bot processes + {run.server_ms:.2f} ms in the server "
            f"(all its processes; 0 when it is not local): {run.capacity:,.0f}/s on "
            f"{os.cpu_count()} otherwise idle CPUs; other work kept {run.others:.2f} CPUs busy"
        )
    verdict = "meets" if rate >= 2000 and p99 < 0.150 else "MISSES"
    print(f"SQLite {verdict} the target (>= 2,000 comparisons/s, reserve p99 < 150 ms)")
    if postgres:
        last = postgres[-1]
        verdict = (
            "meets" if last.rate >= 2000 and _percentile(last.latencies, 0.99) < 0.150 else "MISSES"
        )
        print(
            f"PostgreSQL with {last.processes} processes {verdict} the target "
            f"(audit of the run's guild and everything else: clean in "
            f"{last.audit_seconds * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
