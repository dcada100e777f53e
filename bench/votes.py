"""Benchmark votes: raw reaction events through VoteStore.handle_reaction, and rating time.

Run: ``.venv/bin/python bench/votes.py`` (about half a minute on 2 cores; ``--quick`` for less).

Reactions go through the same code the bot runs (screen → one BEGIN IMMEDIATE job doing the
whole ladder's reads and write) against a real temp-file database in WAL mode, with a realistic
mix: adds, switches, removals, the bot's own reactions, other emoji and unrelated messages.
It measures them awaited one at a time and dispatched concurrently, as discord.py does.

Ratings: 10,000 votes across 6 models with 200 bootstrap rounds, as 2,500 comparisons of
2–4 panels with 4 voters each, as 10,000 single-vote comparisons (the most distinct
resampling units), and end to end from the database through ``VoteStore.leaderboard``; then
what a verdict's community lines cost (``VoteStore.standings``: one fit, no bootstrap) and a
lookup the cache answers.

Targets: >= 1,000 reaction events per second; ratings with 200 rounds < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/votes.py` runs with bench/ on the path

from _machine import cpu_line  # noqa: E402

from bot.db import Database  # noqa: E402
from bot.guild_settings import GuildSettings, update_guild_settings  # noqa: E402
from bot.voting.leaderboard import leaderboard  # noqa: E402
from bot.voting.ratings import LETTERS, ComparisonVotes, PanelFacts  # noqa: E402
from bot.voting.store import ReactionEvent, VoteStore, seed_emojis  # noqa: E402

TARGET_EVENTS_PER_S = 1000.0
TARGET_RATING_S = 2.0
GUILD, BOT = 1, 999
MODELS = {f"model-{n}": 1000.0 + 70 * n for n in range(6)}  # true ratings, 0..350 apart
START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)

SQL_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, state, vote_deadline, created_at)
VALUES (?, ?, 10, ?, 7, 'a prompt', 'portrait', '1:1', 'standard', ?, 0, 'open', ?, ?)
"""
SQL_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, status, latency_s, credits)
VALUES (?, ?, ?, ?, ?, 'bench', 'ok', ?, 8)
"""


def machine() -> str:
    return f"{cpu_line()}\nPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def synthetic(rng: random.Random, comparisons: int, voters: int) -> list[ComparisonVotes]:
    """Comparisons of 2–4 of the models, votes drawn from their true strengths (some 🤝/👎)."""
    out = []
    names = list(MODELS)
    for n in range(comparisons):
        models = rng.sample(names, rng.choice((2, 2, 3, 4)))
        panels = tuple(
            PanelFacts(letter, model, model.title(), "ok", rng.uniform(5, 30), 8)
            for letter, model in zip(LETTERS, models, strict=False)
        )
        odds = [10 ** (MODELS[m] / 400) for m in models]
        choices = []
        for _ in range(voters):
            roll = rng.random()
            if roll < 0.06:
                choices.append("tie" if roll < 0.04 else "bad")
            else:
                choices.append(rng.choices(LETTERS[: len(models)], weights=odds)[0])
        out.append(ComparisonVotes(f"c{n}", rng.random() < 0.5, panels, tuple(choices)))
    return out


async def seed_database(db: Database, rng: random.Random, count: int) -> list[tuple[int, int]]:
    """Open comparisons with 2–4 panels; returns (message id, panel count) for each."""
    deadline = (START + timedelta(days=1)).isoformat(timespec="microseconds")
    created = START.isoformat(timespec="microseconds")
    made: list[tuple[int, int]] = []

    def write(conn: sqlite3.Connection) -> None:
        for n in range(count):
            message, k = 10_000 + n, rng.choice((2, 2, 3, 4))
            cid = f"bench-{n}"
            conn.execute(SQL_COMPARISON, (cid, GUILD, message, n % 2, deadline, created))
            for idx, model in enumerate(rng.sample(list(MODELS), k)):
                conn.execute(SQL_PANEL, (cid, idx, LETTERS[idx], model, model, rng.uniform(5, 30)))
            made.append((message, k))

    await db.run_in_transaction(write)
    return made


def event_stream(
    rng: random.Random, targets: list[tuple[int, int]], count: int, users: range
) -> list[ReactionEvent]:
    """A plausible mix: mostly member adds, some removals, bot seeds, other emoji, strangers."""
    joined = START - timedelta(days=90)
    events = []
    for _ in range(count):
        message, k = rng.choice(targets)
        emoji = rng.choice(seed_emojis(k))
        roll = rng.random()
        if roll < 0.05:
            events.append(ReactionEvent(GUILD, 10, message, BOT, emoji, True, True, None))
        elif roll < 0.08:
            events.append(ReactionEvent(GUILD, 10, message, rng.choice(users), "🔥", True))
        elif roll < 0.10:
            events.append(
                ReactionEvent(GUILD, 10, 5, rng.choice(users), emoji, True, False, joined)
            )
        else:
            added = roll < 0.80
            user = rng.choice(users)
            events.append(ReactionEvent(GUILD, 10, message, user, emoji, added, False, joined))
    return events


async def reactions(runs: int, count: int) -> tuple[float, float, float]:
    """Median events/s awaited one by one, dispatched concurrently, and the counted share."""
    rng = random.Random(1)
    sequential, concurrent, counted = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        try:
            store = VoteStore(db, clock=lambda: START + timedelta(hours=1))
            targets = await seed_database(db, rng, 300)
            # Stored, so every event also reads the server's settings, as the bot's would.
            await update_guild_settings(db, GUILD, min_member_age_hours=24)
            for run in range(runs):
                users = range(100_000 * (run + 1), 100_000 * (run + 1) + 400)
                events = event_stream(rng, targets, count, users)
                started = time.perf_counter()
                decisions = [await store.handle_reaction(e) for e in events]
                sequential.append(count / (time.perf_counter() - started))
                counted.append(sum(d.counted for d in decisions) / count)
                events = event_stream(rng, targets, count, users)
                started = time.perf_counter()
                await asyncio.gather(*(store.handle_reaction(e) for e in events))
                concurrent.append(count / (time.perf_counter() - started))
        finally:
            await db.close()
    return statistics.median(sequential), statistics.median(concurrent), statistics.median(counted)


def timed(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def timed_async(fn: Callable[[], Awaitable[object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass(frozen=True, slots=True)
class StoredTimes:
    """Median seconds of the three ways a stored board is read."""

    leaderboard: float  # /leaderboard after a change: load + fit + 200 bootstrap rounds
    standings: float  # a verdict's community lines after a change: load + one fit
    cached: float  # any lookup with nothing changed since: one generation read


async def stored_ratings(runs: int) -> StoredTimes:
    """VoteStore over 10,000 stored votes: a fresh fit with and without bootstrap, and a hit."""
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "ratings.db")
        try:
            targets = await seed_database(db, rng, 2500)
            store = VoteStore(db, clock=lambda: START)
            users = range(1, 5)
            for message, k in targets:
                for user in users:
                    emoji = rng.choice(seed_emojis(k)[: k + 1])
                    event = ReactionEvent(GUILD, 10, message, user, emoji, True)
                    await store.handle_reaction(event, GuildSettings())
            row = await db.fetchone("SELECT count(*) FROM votes")
            assert row is not None and row[0] == 10_000, row[0] if row else None
            settings = GuildSettings(min_votes_to_rank=5)

            # A fresh store per run has an empty cache: what the first lookup after a vote costs.
            def cold() -> VoteStore:
                return VoteStore(db, clock=lambda: START)

            full = await timed_async(lambda: cold().leaderboard(GUILD, "portrait", settings), runs)
            points = await timed_async(lambda: cold().standings(GUILD, "portrait", settings), runs)
            await store.standings(GUILD, "portrait", settings)
            hit = await timed_async(lambda: store.standings(GUILD, "portrait", settings), runs)
            return StoredTimes(full, points, hit)
        finally:
            await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (smoke test)")
    args = parser.parse_args()
    runs = 2 if args.quick else 5
    started = time.perf_counter()
    print(machine(), "\n")

    sequential, concurrent, counted = asyncio.run(reactions(runs, 1000 if args.quick else 5000))
    print("Reaction events through VoteStore.handle_reaction (temp-file SQLite, WAL)")
    print(f"  awaited one by one   {sequential:8,.0f} events/s (median of {runs})")
    print(f"  dispatched at once   {concurrent:8,.0f} events/s")
    print(f"  {counted:.0%} of events changed a vote; the rest were ignored with a reason\n")

    rng = random.Random(2)
    grouped = synthetic(rng, 2500, 4)
    single = synthetic(rng, 10_000, 1)
    print("Ratings for 10,000 votes across 6 models, 200 bootstrap rounds (median of runs)")
    results = {}
    for name, data in (
        ("2,500 comparisons x 4 votes", grouped),
        ("10,000 one-vote comparisons", single),
    ):
        seconds = timed(partial(leaderboard, data, min_votes=5, rounds=200), runs)
        results[name] = seconds
        print(f"  {name:32} {seconds * 1000:7.0f} ms")
    board = leaderboard(grouped, min_votes=5, rounds=200)
    stored = asyncio.run(stored_ratings(runs))
    results["from the database"] = stored.leaderboard
    print(f"  {'end to end from the database':32} {stored.leaderboard * 1000:7.0f} ms")
    print(f"  {'  point estimates only (verdicts)':32} {stored.standings * 1000:7.0f} ms")
    print(f"  {'  cached, nothing changed':32} {stored.cached * 1000:7.1f} ms")
    print("  recovered order:", " > ".join(row.model_id for row in board.ranked))

    checks = [
        (
            f">= {TARGET_EVENTS_PER_S:,.0f} reaction events/s",
            min(sequential, concurrent) >= TARGET_EVENTS_PER_S,
            f"{sequential:,.0f} / {concurrent:,.0f} per s",
        ),
        (
            f"ratings of 10,000 votes, 200 rounds < {TARGET_RATING_S:.0f} s",
            max(results.values()) < TARGET_RATING_S,
            f"slowest {max(results.values()):.2f} s",
        ),
    ]
    print("\nTargets")
    for label, ok, detail in checks:
        print(f"  [{'met ' if ok else 'MISS'}] {label}: {detail}")
    print(f"\nTotal bench time {time.perf_counter() - started:.0f} s")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
