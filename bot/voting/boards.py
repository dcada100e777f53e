"""The server's board read from the database, fitted, and cached until something it reads changes.

Fitting is pure-Python arithmetic: one Newton fit for the point ratings, 200 more for the
bootstrap intervals (hundreds of milliseconds on a busy server, holding the GIL even in a
thread). Every /compare, /versus and vote close cites the board, so it is fitted on purpose:

- Boards are cached per server, use case, demo flag and ranking settings (``BoardKey``).
- Each server has a generation in the database (migration 0004; PostgreSQL's 0004 has the same
  triggers) that triggers move on every
  write a board reads: a vote cast, switched or withdrawn, a close, a comparison added or
  deleted. A cached board serves while its generation stands; whoever made the change (the
  vote store, the Delete button, the CLI, another process on the same file) invalidates it.
- Only ``/leaderboard`` asks for bootstrap rounds. Verdicts and /versus ask for ``rounds=0``:
  point ratings, which any cached board has, bootstrapped or not.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from bot.db import AnyDatabase, PostgresDatabase
from bot.guild_settings import GuildSettings
from bot.voting.leaderboard import Leaderboard, leaderboard
from bot.voting.ratings import ComparisonVotes, PanelFacts
from bot.workers import Offload

#: the bootstrap rounds behind /leaderboard's intervals
BOOTSTRAP_ROUNDS = 200
#: fitted boards kept per process (least recently used go first); each is a few rows
MAX_CACHED_BOARDS = 512

# An open blind comparison counts only once it closes: until then, watching the leaderboard
# move after a vote would give its models away.
SQL_RATED_PANELS = """
SELECT c.id, c.blind, p.letter, p.model_id, p.label, p.status,
    CASE WHEN p.reused = 1 THEN NULL ELSE p.latency_s END, p.credits
FROM comparisons c JOIN panels p ON p.comparison_id = c.id
WHERE c.guild_id = :guild AND c.state <> 'deleted' AND (c.demo = 0 OR :include_demo)
    AND c.delivery = 'posted' AND c.kind <> 'variants'
    AND NOT (c.blind = 1 AND c.state = 'open')
    AND (:use_case IS NULL OR c.use_case = :use_case)
ORDER BY c.created_at, c.id, p.idx
"""
SQL_RATED_VOTES = """
SELECT v.comparison_id, v.choice
FROM comparisons c JOIN votes v ON v.comparison_id = c.id
WHERE c.guild_id = :guild AND c.state <> 'deleted' AND (c.demo = 0 OR :include_demo)
    AND c.delivery = 'posted' AND c.kind <> 'variants'
    AND NOT (c.blind = 1 AND c.state = 'open')
    AND (:use_case IS NULL OR c.use_case = :use_case)
ORDER BY v.comparison_id, v.user_id
"""
SQL_BOARD_GENERATION = "SELECT generation FROM board_generations WHERE guild_id = ?"


def rated_comparisons(
    conn: sqlite3.Connection, guild_id: int, use_case: str | None, include_demo: bool
) -> list[ComparisonVotes]:
    """The server's comparisons (one use case, or all) with their panels and counted votes."""
    params = {"guild": guild_id, "use_case": use_case, "include_demo": int(include_demo)}
    panels: dict[str, tuple[bool, list[PanelFacts]]] = {}
    for cid, blind, *facts in conn.execute(SQL_RATED_PANELS, params):
        panels.setdefault(cid, (bool(blind), []))[1].append(PanelFacts(*facts))
    choices: dict[str, list[str]] = {}
    for cid, choice in conn.execute(SQL_RATED_VOTES, params):
        choices.setdefault(cid, []).append(choice)
    return [
        ComparisonVotes(cid, blind, tuple(facts), tuple(choices.get(cid, ())))
        for cid, (blind, facts) in panels.items()
    ]


def board_generation(conn: sqlite3.Connection, guild_id: int) -> int:
    """The server's board generation: it moves whenever anything a board reads changes."""
    row = conn.execute(SQL_BOARD_GENERATION, (guild_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _snapshot(conn: sqlite3.Connection, key: BoardKey) -> tuple[int, list[ComparisonVotes]]:
    # One read snapshot: the generation is exactly the one of the comparisons read with it.
    generation = board_generation(conn, key.guild_id)
    return generation, rated_comparisons(conn, key.guild_id, key.use_case, key.include_demo)


class FitBoard(Protocol):
    """What builds a board from comparisons: ``bot.voting.leaderboard.leaderboard``."""

    def __call__(
        self,
        comparisons: Iterable[ComparisonVotes],
        *,
        min_votes: int,
        blind_only: bool,
        use_case: str | None,
        rounds: int,
        seed: int,
    ) -> Leaderboard: ...


@dataclass(frozen=True, slots=True)
class BoardKey:
    """Everything a board depends on besides the stored comparisons and votes."""

    guild_id: int
    use_case: str | None
    include_demo: bool
    blind_only: bool
    min_votes: int

    @classmethod
    def of(
        cls, guild_id: int, use_case: str | None, settings: GuildSettings, *, include_demo: bool
    ) -> BoardKey:
        """The key of a server's board under its ranking settings."""
        return cls(
            guild_id=guild_id,
            use_case=use_case,
            include_demo=include_demo,
            blind_only=settings.blind_only_ranking,
            min_votes=settings.min_votes_to_rank,
        )


@dataclass(frozen=True, slots=True)
class _Cached:
    generation: int
    board: Leaderboard
    seed: int

    def serves(self, rounds: int, seed: int) -> bool:
        # Point ratings come from the full-data fit, never the resamples: every board has them.
        return rounds == 0 or (self.board.rounds == rounds and self.seed == seed)


class BoardCache:
    """Fitted boards per ``BoardKey``, refit only when the server's generation has moved.

    ``fit`` builds a board from the stored comparisons (tests count its calls).
    """

    def __init__(
        self,
        db: AnyDatabase,
        *,
        fit: FitBoard = leaderboard,
        max_boards: int = MAX_CACHED_BOARDS,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self._db = db
        self._offload = offload
        self._fit = fit
        self._max_boards = max_boards
        self._boards: OrderedDict[BoardKey, _Cached] = OrderedDict()
        # One lock per server: a lookup waits for the fit in flight and then reuses it.
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def _generation(self, guild_id: int) -> int:
        if isinstance(self._db, PostgresDatabase):
            from bot.voting import postgres

            return await postgres.board_generation(self._db, guild_id)
        return await self._db.run_read(partial(board_generation, guild_id=guild_id))

    async def _snapshot(self, key: BoardKey) -> tuple[int, list[ComparisonVotes]]:
        if isinstance(self._db, PostgresDatabase):
            from bot.voting import postgres

            return await postgres.board_snapshot(
                self._db, key.guild_id, key.use_case, key.include_demo
            )
        return await self._db.run_read(partial(_snapshot, key=key))

    async def board(self, key: BoardKey, *, rounds: int, seed: int = 0) -> Leaderboard:
        """The cached board while nothing it reads has changed, else a fresh fit.

        ``rounds=0`` asks for point ratings only, which a bootstrapped board serves too.
        """
        async with self._locks[key.guild_id]:
            generation = await self._generation(key.guild_id)
            cached = self._boards.get(key)
            if (
                cached is not None
                and cached.generation == generation
                and cached.serves(rounds, seed)
            ):
                self._boards.move_to_end(key)
                return cached.board
            generation, comparisons = await self._snapshot(key)
            # Off the event loop; the bootstrap is hundreds of milliseconds on a busy server.
            board: Leaderboard = await self._offload(
                self._fit,
                comparisons,
                min_votes=key.min_votes,
                blind_only=key.blind_only,
                use_case=key.use_case,
                rounds=rounds,
                seed=seed,
            )
            self._boards[key] = _Cached(generation, board, seed)
            self._boards.move_to_end(key)
            while len(self._boards) > self._max_boards:
                self._boards.popitem(last=False)
            return board
