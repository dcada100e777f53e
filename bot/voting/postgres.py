"""Votes on PostgreSQL: the same operations as the SQLite ones in ``bot.voting.store``.

Where SQLite's single writer serialises everything, here:

* A reaction takes a transaction-scoped advisory lock for its (message, member) pair, so one
  member's racing reactions apply one after another, and reads the comparison ``FOR SHARE``, so
  a close waits for votes in flight and a vote that waited sees the comparison closed.
* A close is ``UPDATE ... WHERE state = 'open'``: of two closes racing (in any processes), the
  second waits for the row lock, re-checks and changes nothing.
* The deadline closer claims due comparisons with ``FOR UPDATE SKIP LOCKED``, so closers in
  several processes close disjoint sets and each vote closes once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from bot.db.postgres import PostgresDatabase
from bot.guild_settings import DEFAULTS, GuildSettings, load_guild_settings_pg
from bot.voting.ratings import ComparisonVotes, PanelFacts
from bot.voting.rules import (
    ActiveVote,
    CloseResult,
    PanelInfo,
    ReactionEvent,
    Tally,
    VoteDecision,
    VoteTarget,
    decide,
)

if TYPE_CHECKING:
    import asyncpg

    from bot.db.postgres import PgConnection

TARGET_COLUMNS = """
SELECT c.id, c.guild_id, c.channel_id, c.message_id, c.user_id, c.state, c.vote_deadline,
    (SELECT string_agg(p.letter || ':' || p.status, ',' ORDER BY p.idx)
     FROM panels p WHERE p.comparison_id = c.id)
"""
SQL_LOCK_VOTER = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
SQL_TARGET_AND_VOTE = (
    TARGET_COLUMNS
    + """, v.choice, v.emoji
FROM comparisons c LEFT JOIN votes v ON v.comparison_id = c.id AND v.user_id = $1
WHERE c.message_id = $2
FOR SHARE OF c
"""
)
SQL_TARGET = TARGET_COLUMNS + "FROM comparisons c WHERE c.message_id = $1"
SQL_LATEST_OPEN = (
    TARGET_COLUMNS
    + """FROM comparisons c
WHERE c.guild_id = $1 AND c.channel_id = $2 AND c.state = 'open' AND c.message_id IS NOT NULL
ORDER BY c.created_at DESC LIMIT 1
"""
)
SQL_UPSERT_VOTE = """
INSERT INTO votes (comparison_id, user_id, choice, emoji, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (comparison_id, user_id)
DO UPDATE SET choice = excluded.choice, emoji = excluded.emoji, updated_at = excluded.updated_at
"""
SQL_DELETE_VOTE = "DELETE FROM votes WHERE comparison_id = $1 AND user_id = $2 AND emoji = $3"
SQL_COMPARISON = """
SELECT id, guild_id, channel_id, message_id, user_id, use_case, blind, state, vote_deadline
FROM comparisons WHERE id = $1
"""
SQL_PANELS = (
    "SELECT letter, model_id, label, status FROM panels WHERE comparison_id = $1 ORDER BY idx"
)
SQL_COUNTS = "SELECT choice, count(*) FROM votes WHERE comparison_id = $1 GROUP BY choice"
SQL_CLEAR_VOTES = """
DELETE FROM votes
WHERE comparison_id = (SELECT id FROM comparisons WHERE message_id = $1 AND state = 'open')
    AND ($2::text IS NULL OR emoji = $2)
"""
SQL_CLOSE = (
    "UPDATE comparisons SET state = 'closed', closed_at = $1 WHERE id = $2 AND state = 'open'"
)
SQL_INSERT_CLOSURE = """
INSERT INTO vote_closures (comparison_id, closed_by, winner, counts, closed_at)
VALUES ($1, $2, $3, $4, $5)
"""
SQL_CLAIM_DUE = """
SELECT id FROM comparisons WHERE state = 'open' AND vote_deadline <= $1
ORDER BY vote_deadline LIMIT $2
FOR UPDATE SKIP LOCKED
"""
SQL_BOARD_GENERATION = "SELECT generation FROM board_generations WHERE guild_id = $1"
SQL_NEXT_DEADLINE = "SELECT min(vote_deadline) FROM comparisons WHERE state = 'open'"
SQL_UNANNOUNCED = """
SELECT k.comparison_id, k.closed_by, k.closed_at
FROM vote_closures k JOIN comparisons c ON c.id = k.comparison_id
WHERE k.announced_at IS NULL AND c.state = 'closed' ORDER BY k.closed_at
"""
SQL_MARK_ANNOUNCED = """
UPDATE vote_closures SET announced_at = $1 WHERE comparison_id = $2 AND announced_at IS NULL
"""
SQL_RATED_FILTER = """
WHERE c.guild_id = $1 AND c.state <> 'deleted' AND (NOT c.demo OR $3)
    AND c.delivery = 'posted' AND c.kind <> 'variants'
    AND NOT (c.blind AND c.state = 'open')
    AND ($2::text IS NULL OR c.use_case = $2)
"""
SQL_RATED_PANELS = (
    """
SELECT c.id, c.blind, p.letter, p.model_id, p.label, p.status,
    CASE WHEN p.reused THEN NULL ELSE p.latency_s END, p.credits
FROM comparisons c JOIN panels p ON p.comparison_id = c.id
"""
    + SQL_RATED_FILTER
    + "ORDER BY c.created_at, c.id, p.idx"
)
SQL_RATED_VOTES = (
    """
SELECT v.comparison_id, v.choice
FROM comparisons c JOIN votes v ON v.comparison_id = c.id
"""
    + SQL_RATED_FILTER
    + "ORDER BY v.comparison_id, v.user_id"
)


def _target(row: asyncpg.Record) -> VoteTarget:
    statuses = dict(item.split(":", 1) for item in (row[7] or "").split(",") if item)
    return VoteTarget(
        comparison_id=row[0],
        guild_id=row[1],
        channel_id=row[2],
        message_id=row[3],
        requester_id=row[4],
        state=row[5],
        deadline=row[6],
        statuses=statuses,
    )


async def _load_tally(conn: PgConnection, comparison_id: str) -> Tally | None:
    row = await conn.fetchrow(SQL_COMPARISON, comparison_id)
    if row is None:
        return None
    panels = tuple(PanelInfo(*p) for p in await conn.fetch(SQL_PANELS, comparison_id))
    stored = {choice: int(n) for choice, n in await conn.fetch(SQL_COUNTS, comparison_id)}
    options = [p.letter for p in panels if p.status == "ok"] + ["tie", "bad"]
    return Tally(
        comparison_id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        requester_id=row["user_id"],
        use_case=row["use_case"],
        blind=bool(row["blind"]),
        state=row["state"],
        deadline=row["vote_deadline"],
        panels=panels,
        counts={option: stored.get(option, 0) for option in options},
    )


async def _close(
    conn: PgConnection, comparison_id: str, by: int | None, now: datetime
) -> CloseResult | None:
    if await conn.execute(SQL_CLOSE, now, comparison_id) != "UPDATE 1":
        return None
    tally = await _load_tally(conn, comparison_id)
    if tally is None:  # cannot happen: the UPDATE just found the row, in this transaction
        raise RuntimeError(f"comparison {comparison_id} vanished while closing")
    counts = json.dumps(dict(tally.counts))
    await conn.execute(SQL_INSERT_CLOSURE, comparison_id, by, tally.winner, counts, now)
    return CloseResult(tally, by, now)


class PostgresVotes:
    """The vote operations ``VoteStore`` needs, on a PostgreSQL pool."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def apply_reaction(
        self, event: ReactionEvent, settings: GuildSettings | None, now: datetime
    ) -> VoteDecision:
        async with self._db.transaction() as conn:
            await conn.execute(SQL_LOCK_VOTER, f"vote:{event.message_id}:{event.user_id}")
            row = await conn.fetchrow(SQL_TARGET_AND_VOTE, event.user_id, event.message_id)
            target = None if row is None else _target(row)
            active = None if row is None or row[8] is None else ActiveVote(row[8], row[9])
            if settings is None:
                settings = (
                    DEFAULTS
                    if target is None
                    else await load_guild_settings_pg(conn, target.guild_id)
                )
            decision = decide(event, target, active, settings, now)
            if decision.action in ("record", "switch"):
                await conn.execute(
                    SQL_UPSERT_VOTE,
                    decision.comparison_id, event.user_id, decision.choice, event.emoji, now,
                )  # fmt: skip
            elif decision.action == "withdraw":
                await conn.execute(
                    SQL_DELETE_VOTE, decision.comparison_id, event.user_id, event.emoji
                )
            return decision

    async def target_for_message(self, message_id: int) -> VoteTarget | None:
        row = await self._db.fetchrow(SQL_TARGET, message_id)
        return None if row is None else _target(row)

    async def latest_open(self, guild_id: int, channel_id: int) -> VoteTarget | None:
        row = await self._db.fetchrow(SQL_LATEST_OPEN, guild_id, channel_id)
        return None if row is None else _target(row)

    async def clear_reactions(self, message_id: int, emoji: str | None) -> int:
        status = await self._db.execute(SQL_CLEAR_VOTES, message_id, emoji)
        return int(status.rsplit(" ", 1)[1])

    async def tally(self, comparison_id: str) -> Tally | None:
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            return await _load_tally(conn, comparison_id)

    async def close(self, comparison_id: str, by: int | None, now: datetime) -> CloseResult | None:
        async with self._db.transaction() as conn:
            return await _close(conn, comparison_id, by, now)

    async def close_due(self, now: datetime, limit: int) -> list[CloseResult]:
        async with self._db.transaction() as conn:
            due = [row["id"] for row in await conn.fetch(SQL_CLAIM_DUE, now, limit)]
            results = [await _close(conn, cid, None, now) for cid in due]
        return [result for result in results if result is not None]

    async def next_deadline(self) -> datetime | None:
        value = await self._db.fetchval(SQL_NEXT_DEADLINE)
        return value if isinstance(value, datetime) else None

    async def unannounced(self) -> list[CloseResult]:
        results = []
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            for cid, closed_by, closed_at in await conn.fetch(SQL_UNANNOUNCED):
                tally = await _load_tally(conn, cid)
                if tally is not None:
                    results.append(CloseResult(tally, closed_by, closed_at))
        return results

    async def mark_announced(self, comparison_id: str, now: datetime) -> bool:
        return await self._db.execute(SQL_MARK_ANNOUNCED, now, comparison_id) == "UPDATE 1"

    async def rated_comparisons(
        self, guild_id: int, use_case: str | None, include_demo: bool
    ) -> list[ComparisonVotes]:
        _, comparisons = await board_snapshot(self._db, guild_id, use_case, include_demo)
        return comparisons


async def board_generation(db: PostgresDatabase, guild_id: int) -> int:
    """The server's board generation (see ``bot.voting.boards``)."""
    value = await db.fetchval(SQL_BOARD_GENERATION, guild_id)
    return 0 if value is None else int(value)


async def board_snapshot(
    db: PostgresDatabase, guild_id: int, use_case: str | None, include_demo: bool
) -> tuple[int, list[ComparisonVotes]]:
    """The generation and the rated comparisons it stands for, read in one snapshot."""
    args = (guild_id, use_case, include_demo)
    async with db.transaction(isolation="repeatable_read", readonly=True) as conn:
        generation = await conn.fetchval(SQL_BOARD_GENERATION, guild_id)
        panel_rows = await conn.fetch(SQL_RATED_PANELS, *args)
        vote_rows = await conn.fetch(SQL_RATED_VOTES, *args)
    panels: dict[str, tuple[bool, list[PanelFacts]]] = {}
    for cid, blind, *facts in panel_rows:
        panels.setdefault(cid, (bool(blind), []))[1].append(PanelFacts(*facts))
    choices: dict[str, list[str]] = {}
    for cid, choice in vote_rows:
        choices.setdefault(cid, []).append(choice)
    comparisons = [
        ComparisonVotes(cid, blind, tuple(facts), tuple(choices.get(cid, ())))
        for cid, (blind, facts) in panels.items()
    ]
    return (0 if generation is None else int(generation)), comparisons
