"""Votes: reactions through the rules, closing (by hand or deadline), tallies, ratings.

``VoteStore`` is the one entry point on either backend; the SQLite transaction bodies live in
this module (``SqliteVotes``), the PostgreSQL ones in ``bot.voting.postgres``, both behind the
``VoteBackend`` interface.

The Discord layer builds a ``ReactionEvent`` from each raw reaction event and awaits
``VoteStore.handle_reaction``; the rules themselves are the pure ladder in ``bot.voting.rules``
(re-exported here, so ``bot.voting.store`` is the one import the cogs need).

Ratings read the active votes of open and closed comparisons alike, so a vote shows on the
leaderboard at once. Fitted boards are cached (``bot.voting.boards``) and refit only after a
write they read; only ``leaderboard`` bootstraps intervals, while ``standings`` and
``community_lines`` use the point ratings. Deleted comparisons never count, and comparisons served by the offline
demo only when the caller asks (``include_demo``, for a process that runs on demo stand-ins, such
as the playground): a demo panel is a stand-in image, not the model's work.

Longer than the ~400-line guide on purpose: the reaction ladder, closing, tallies and the leaderboard entry points over both backends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Protocol

from bot.db import AnyDatabase, Database, PostgresDatabase, store_for
from bot.guild_settings import DEFAULTS, GuildSettings, load_guild_settings
from bot.voting.boards import (
    BOOTSTRAP_ROUNDS,
    MAX_CACHED_BOARDS,
    BoardCache,
    BoardKey,
    FitBoard,
    rated_comparisons,
)
from bot.voting.leaderboard import Leaderboard, LeaderboardRow, community_line, leaderboard
from bot.voting.ratings import ComparisonVotes
from bot.voting.rules import (
    EMOJI_OPTIONS,
    OPTION_EMOJI,
    ActiveVote,
    CloseResult,
    PanelInfo,
    ReactionEvent,
    Tally,
    VoteDecision,
    VoteTarget,
    choice_for,
    decide,
    iso,
    may_close,
    screen,
    seed_emojis,
    utc_now,
    vote_deadline,
    winner_of,
)
from bot.workers import Offload

__all__ = [
    "BOOTSTRAP_ROUNDS",
    "EMOJI_OPTIONS",
    "OPTION_EMOJI",
    "ActiveVote",
    "CloseResult",
    "Leaderboard",
    "LeaderboardRow",
    "PanelInfo",
    "ReactionEvent",
    "Tally",
    "VoteBackend",
    "VoteDecision",
    "VoteStore",
    "VoteTarget",
    "choice_for",
    "decide",
    "may_close",
    "screen",
    "seed_emojis",
    "vote_deadline",
    "winner_of",
]

log = logging.getLogger(__name__)

CLOSE_BATCH = 500

# The comparison a message carries, its panels' "letter:status" list and the member's vote,
# in one statement: this is the hot path the benchmark measures.
SQL_TARGET_AND_VOTE = """
SELECT c.id, c.guild_id, c.channel_id, c.message_id, c.user_id, c.state, c.vote_deadline,
    (SELECT group_concat(p.letter || ':' || p.status) FROM panels p WHERE p.comparison_id = c.id),
    v.choice, v.emoji
FROM comparisons c LEFT JOIN votes v ON v.comparison_id = c.id AND v.user_id = :user
WHERE c.message_id = :message
"""
SQL_TARGET_COLUMNS = """
SELECT c.id, c.guild_id, c.channel_id, c.message_id, c.user_id, c.state, c.vote_deadline,
    (SELECT group_concat(p.letter || ':' || p.status) FROM panels p WHERE p.comparison_id = c.id)
FROM comparisons c
"""
SQL_TARGET = SQL_TARGET_COLUMNS + "WHERE c.message_id = ?"
SQL_LATEST_OPEN = (
    SQL_TARGET_COLUMNS
    + """WHERE c.guild_id = ? AND c.channel_id = ? AND c.state = 'open'
    AND c.message_id IS NOT NULL
ORDER BY c.created_at DESC LIMIT 1
"""
)
SQL_UPSERT_VOTE = """
INSERT INTO votes (comparison_id, user_id, choice, emoji, created_at, updated_at)
VALUES (:cid, :user, :choice, :emoji, :now, :now)
ON CONFLICT (comparison_id, user_id)
DO UPDATE SET choice = excluded.choice, emoji = excluded.emoji, updated_at = excluded.updated_at
"""
SQL_DELETE_VOTE = "DELETE FROM votes WHERE comparison_id = ? AND user_id = ? AND emoji = ?"
SQL_COMPARISON = """
SELECT id, guild_id, channel_id, message_id, user_id, use_case, blind, state, vote_deadline
FROM comparisons WHERE id = ?
"""
SQL_PANELS = (
    "SELECT letter, model_id, label, status FROM panels WHERE comparison_id = ? ORDER BY idx"
)
SQL_COUNTS = "SELECT choice, count(*) FROM votes WHERE comparison_id = ? GROUP BY choice"
# A moderator cleared every reaction (emoji NULL) or every one of an emoji from a result: the
# votes those reactions cast are gone with them, while voting is open.
SQL_CLEAR_VOTES = """
DELETE FROM votes
WHERE comparison_id = (SELECT id FROM comparisons WHERE message_id = :message AND state = 'open')
    AND (:emoji IS NULL OR emoji = :emoji)
"""
SQL_CLOSE = "UPDATE comparisons SET state = 'closed', closed_at = ? WHERE id = ? AND state = 'open'"
SQL_INSERT_CLOSURE = """
INSERT INTO vote_closures (comparison_id, closed_by, winner, counts, closed_at)
VALUES (?, ?, ?, ?, ?)
"""
SQL_DUE = """
SELECT id FROM comparisons WHERE state = 'open' AND vote_deadline <= ?
ORDER BY vote_deadline LIMIT ?
"""
SQL_NEXT_DEADLINE = "SELECT min(vote_deadline) FROM comparisons WHERE state = 'open'"
SQL_UNANNOUNCED = """
SELECT k.comparison_id, k.closed_by, k.closed_at
FROM vote_closures k JOIN comparisons c ON c.id = k.comparison_id
WHERE k.announced_at IS NULL AND c.state = 'closed' ORDER BY k.closed_at
"""
SQL_MARK_ANNOUNCED = """
UPDATE vote_closures SET announced_at = ? WHERE comparison_id = ? AND announced_at IS NULL
"""


def _parse_time(text: str | datetime | None) -> datetime | None:
    if isinstance(text, datetime):
        return text
    return datetime.fromisoformat(text) if text else None


def _target(row: sqlite3.Row) -> VoteTarget:
    statuses = dict(item.split(":", 1) for item in (row[7] or "").split(",") if item)
    return VoteTarget(
        comparison_id=row[0],
        guild_id=row[1],
        channel_id=row[2],
        message_id=row[3],
        requester_id=row[4],
        state=row[5],
        deadline=_parse_time(row[6]),
        statuses=statuses,
    )


def _apply_reaction(
    conn: sqlite3.Connection, event: ReactionEvent, settings: GuildSettings | None, now: datetime
) -> VoteDecision:
    """Read the comparison and the member's vote, run the ladder, write — one transaction."""
    row = conn.execute(
        SQL_TARGET_AND_VOTE, {"user": event.user_id, "message": event.message_id}
    ).fetchone()
    target = None if row is None else _target(row)
    active = None if row is None or row[8] is None else ActiveVote(row[8], row[9])
    if settings is None:
        settings = DEFAULTS if target is None else load_guild_settings(conn, target.guild_id)
    decision = decide(event, target, active, settings, now)
    if decision.action in ("record", "switch"):
        conn.execute(
            SQL_UPSERT_VOTE,
            {
                "cid": decision.comparison_id,
                "user": event.user_id,
                "choice": decision.choice,
                "emoji": event.emoji,
                "now": iso(now),
            },
        )
    elif decision.action == "withdraw":
        conn.execute(SQL_DELETE_VOTE, (decision.comparison_id, event.user_id, event.emoji))
    return decision


def _load_tally(conn: sqlite3.Connection, comparison_id: str) -> Tally | None:
    row = conn.execute(SQL_COMPARISON, (comparison_id,)).fetchone()
    if row is None:
        return None
    panels = tuple(PanelInfo(*p) for p in conn.execute(SQL_PANELS, (comparison_id,)))
    stored = dict(conn.execute(SQL_COUNTS, (comparison_id,)).fetchall())
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
        deadline=_parse_time(row["vote_deadline"]),
        panels=panels,
        counts={option: int(stored.get(option, 0)) for option in options},
    )


def _close(
    conn: sqlite3.Connection, comparison_id: str, by: int | None, now: datetime
) -> CloseResult | None:
    # The conditional UPDATE decides: of two closes racing, exactly one sees rowcount 1.
    if conn.execute(SQL_CLOSE, (iso(now), comparison_id)).rowcount != 1:
        return None
    tally = _load_tally(conn, comparison_id)
    if tally is None:  # cannot happen: the UPDATE just found the row, in this transaction
        raise RuntimeError(f"comparison {comparison_id} vanished while closing")
    counts = json.dumps(dict(tally.counts))
    conn.execute(SQL_INSERT_CLOSURE, (comparison_id, by, tally.winner, counts, iso(now)))
    return CloseResult(tally, by, now)


def _close_due(conn: sqlite3.Connection, now: datetime, limit: int) -> list[CloseResult]:
    due = [row[0] for row in conn.execute(SQL_DUE, (iso(now), limit))]
    return [result for cid in due if (result := _close(conn, cid, None, now)) is not None]


def _unannounced(conn: sqlite3.Connection) -> list[CloseResult]:
    results = []
    for cid, closed_by, closed_at in conn.execute(SQL_UNANNOUNCED).fetchall():
        tally = _load_tally(conn, cid)
        if tally is not None:
            results.append(CloseResult(tally, closed_by, datetime.fromisoformat(closed_at)))
    return results


class VoteBackend(Protocol):
    """One backend's vote operations; each write is one transaction."""

    async def apply_reaction(
        self, event: ReactionEvent, settings: GuildSettings | None, now: datetime
    ) -> VoteDecision:
        """Read the comparison and the member's vote, run the ladder, write."""
        ...

    async def target_for_message(self, message_id: int) -> VoteTarget | None:
        """The comparison a message carries."""
        ...

    async def latest_open(self, guild_id: int, channel_id: int) -> VoteTarget | None:
        """The newest comparison still open in a channel."""
        ...

    async def clear_reactions(self, message_id: int, emoji: str | None) -> int:
        """Delete the votes cast by cleared reactions while open; how many."""
        ...

    async def tally(self, comparison_id: str) -> Tally | None:
        """Counts and panels of one comparison."""
        ...

    async def close(self, comparison_id: str, by: int | None, now: datetime) -> CloseResult | None:
        """Close one comparison's vote, exactly once."""
        ...

    async def close_due(self, now: datetime, limit: int) -> list[CloseResult]:
        """Close up to ``limit`` comparisons past their deadline, each by one caller."""
        ...

    async def next_deadline(self) -> datetime | None:
        """The earliest open deadline."""
        ...

    async def unannounced(self) -> list[CloseResult]:
        """Closed votes whose message was never edited."""
        ...

    async def mark_announced(self, comparison_id: str, now: datetime) -> bool:
        """Record the announcement; False when it already was."""
        ...

    async def rated_comparisons(
        self, guild_id: int, use_case: str | None, include_demo: bool
    ) -> list[ComparisonVotes]:
        """The server's rated comparisons with their counted votes."""
        ...


class SqliteVotes:
    """The vote operations on the process's one SQLite connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def apply_reaction(
        self, event: ReactionEvent, settings: GuildSettings | None, now: datetime
    ) -> VoteDecision:
        job = partial(_apply_reaction, event=event, settings=settings, now=now)
        return await self._db.run_in_transaction(job)

    async def target_for_message(self, message_id: int) -> VoteTarget | None:
        row = await self._db.fetchone(SQL_TARGET, (message_id,))
        return None if row is None else _target(row)

    async def latest_open(self, guild_id: int, channel_id: int) -> VoteTarget | None:
        row = await self._db.fetchone(SQL_LATEST_OPEN, (guild_id, channel_id))
        return None if row is None else _target(row)

    async def clear_reactions(self, message_id: int, emoji: str | None) -> int:
        params = {"message": message_id, "emoji": emoji}
        return await self._db.run_in_transaction(
            lambda conn: conn.execute(SQL_CLEAR_VOTES, params).rowcount
        )

    async def tally(self, comparison_id: str) -> Tally | None:
        return await self._db.run_read(partial(_load_tally, comparison_id=comparison_id))

    async def close(self, comparison_id: str, by: int | None, now: datetime) -> CloseResult | None:
        return await self._db.run_in_transaction(
            partial(_close, comparison_id=comparison_id, by=by, now=now)
        )

    async def close_due(self, now: datetime, limit: int) -> list[CloseResult]:
        return await self._db.run_in_transaction(partial(_close_due, now=now, limit=limit))

    async def next_deadline(self) -> datetime | None:
        row = await self._db.fetchone(SQL_NEXT_DEADLINE)
        return None if row is None else _parse_time(row[0])

    async def unannounced(self) -> list[CloseResult]:
        return await self._db.run_read(_unannounced)

    async def mark_announced(self, comparison_id: str, now: datetime) -> bool:
        return await self._db.execute(SQL_MARK_ANNOUNCED, (iso(now), comparison_id)) == 1

    async def rated_comparisons(
        self, guild_id: int, use_case: str | None, include_demo: bool
    ) -> list[ComparisonVotes]:
        return await self._db.run_read(
            partial(
                rated_comparisons,
                guild_id=guild_id,
                use_case=use_case,
                include_demo=include_demo,
            )
        )


def _backend_for(db: AnyDatabase) -> VoteBackend:
    from bot.voting.postgres import PostgresVotes

    # Typed as the interface, so that mypy checks that each backend implements all of it.
    sqlite: Callable[[Database], VoteBackend] = SqliteVotes
    postgresql: Callable[[PostgresDatabase], VoteBackend] = PostgresVotes
    return store_for(db, sqlite=sqlite, postgresql=postgresql)


class VoteStore:
    """Votes, closing and ratings for every server, over the shared database.

    ``fit`` builds a board from the stored comparisons (tests count its calls).
    """

    def __init__(
        self,
        db: AnyDatabase,
        *,
        clock: Callable[[], datetime] = utc_now,
        fit: FitBoard = leaderboard,
        max_cached_boards: int = MAX_CACHED_BOARDS,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self._db = db
        self._backend = _backend_for(db)
        self._clock = clock
        # Fits run on their own pool: a burst of composes never delays a leaderboard.
        self._boards = BoardCache(db, fit=fit, max_boards=max_cached_boards, offload=offload)

    async def handle_reaction(
        self, event: ReactionEvent, settings: GuildSettings | None = None
    ) -> VoteDecision:
        """Count, switch or withdraw a vote from one raw reaction event, or say why not."""
        # With settings=None the server's settings are read inside the vote's own transaction,
        # which saves the caller a database round trip per event.
        decision = screen(event)
        if decision is None:
            decision = await self._backend.apply_reaction(event, settings, self._clock())
        log.debug(
            "reaction %s by %d on message %d: %s",
            event.emoji,
            event.user_id,
            event.message_id,
            decision.reason,
        )
        return decision

    async def target_for_message(self, message_id: int) -> VoteTarget | None:
        """The comparison a message carries, as the rules see it (for permission checks)."""
        return await self._backend.target_for_message(message_id)

    async def latest_open(self, guild_id: int, channel_id: int) -> VoteTarget | None:
        """The newest comparison still open in a channel (for a bare ``/vote close``)."""
        return await self._backend.latest_open(guild_id, channel_id)

    async def clear_reactions(self, message_id: int, emoji: str | None = None) -> int:
        """Withdraw the votes cast by reactions a moderator cleared; returns how many."""
        return await self._backend.clear_reactions(message_id, emoji)

    async def tally(self, comparison_id: str) -> Tally | None:
        """The current counts and winner of a comparison, open or closed."""
        return await self._backend.tally(comparison_id)

    async def close(
        self, comparison_id: str, *, by: int | None, now: datetime | None = None
    ) -> CloseResult | None:
        """Close voting now; None when it is unknown, deleted or already closed."""
        result = await self._backend.close(comparison_id, by, now or self._clock())
        if result is not None:
            log.info("closed votes on %s (by %s): %s", comparison_id, by, result.tally.headline())
        return result

    async def close_due(self, now: datetime | None = None) -> list[CloseResult]:
        """Close every open comparison whose deadline has passed (also what fell due while down)."""
        at, results = now or self._clock(), []
        while True:
            # Batches keep each write transaction short after a long outage.
            batch = await self._backend.close_due(at, CLOSE_BATCH)
            results.extend(batch)
            if len(batch) < CLOSE_BATCH:
                break
        for result in results:
            log.info(
                "deadline closed votes on %s: %s",
                result.tally.comparison_id,
                result.tally.headline(),
            )
        return results

    async def next_deadline(self) -> datetime | None:
        """The earliest deadline of a comparison still open, to sleep until it."""
        return await self._backend.next_deadline()

    async def unannounced(self) -> list[CloseResult]:
        """Closed votes whose message was never edited (the bot stopped); call once at startup."""
        return await self._backend.unannounced()

    async def mark_announced(self, comparison_id: str, *, now: datetime | None = None) -> bool:
        """Record that the result message was edited; False when it already was."""
        return await self._backend.mark_announced(comparison_id, now or self._clock())

    async def rated_comparisons(
        self, guild_id: int, use_case: str | None = None, *, include_demo: bool = False
    ) -> list[ComparisonVotes]:
        """The server's comparisons (one use case, or all) with their panels and counted votes."""
        return await self._backend.rated_comparisons(guild_id, use_case, include_demo)

    async def leaderboard(
        self,
        guild_id: int,
        use_case: str | None,
        settings: GuildSettings,
        *,
        rounds: int = BOOTSTRAP_ROUNDS,
        seed: int = 0,
        include_demo: bool = False,
    ) -> Leaderboard:
        """The server's ratings with bootstrap intervals (one use case, or overall), for /leaderboard."""
        key = BoardKey.of(guild_id, use_case, settings, include_demo=include_demo)
        return await self._boards.board(key, rounds=rounds, seed=seed)

    async def standings(
        self,
        guild_id: int,
        use_case: str | None,
        settings: GuildSettings,
        *,
        include_demo: bool = False,
    ) -> Leaderboard:
        """The same board's point estimates, without bootstrap intervals: cheap, and cached."""
        key = BoardKey.of(guild_id, use_case, settings, include_demo=include_demo)
        return await self._boards.board(key, rounds=0)

    async def community_lines(
        self,
        guild_id: int,
        use_case: str | None,
        model_ids: Sequence[str],
        settings: GuildSettings,
        *,
        use_case_name: str | None = None,
        include_demo: bool = False,
    ) -> list[str]:
        """Lines a verdict cites for the ranked models among ``model_ids``; empty below threshold."""
        board = await self.standings(guild_id, use_case, settings, include_demo=include_demo)
        rows = [board.row(model) for model in model_ids]
        noun = use_case_name if use_case_name is not None else use_case
        return [community_line(row, noun) for row in rows if row is not None and row.ranked]
