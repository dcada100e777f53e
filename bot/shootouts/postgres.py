"""Shoot-outs on PostgreSQL: the same operations as the SQLite ones in ``bot.shootouts.store``.

Where SQLite's one process owns every shoot-out, here several bot processes share them:

* A state change is a conditional ``UPDATE ... WHERE state = ...``: of two processes closing
  (or moving on) one shoot-out, one changes the row and the other changes nothing.
* A process owns a shoot-out while it runs the rounds, and while it closes and reports it, by a
  session advisory lock on a connection of its own (:meth:`PostgresShootoutStore.claim`): a
  second process skips it (or waits), and the session ending — a crash included — frees it.
* Restart recovery only takes what nobody owns: each unfinished round and each shoot-out still
  ``running`` passes ``pg_try_advisory_xact_lock`` on the same key, so a process starting never
  refunds, or opens the vote on, a shoot-out whose rounds another process is running. A
  shoot-out's row is written after its run took the lock, so a free key on a ``running``
  shoot-out means its run is over for good.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from bot.db.postgres import PostgresDatabase
from bot.shootouts.plan import ShootoutPlan
from bot.shootouts.store import RoundRow, ShootoutRow, _round, _shootout

log = logging.getLogger(__name__)

#: the advisory-lock key of a shoot-out is this text plus its id, hashed by hashtextextended
CLAIM_PREFIX = "shootout:"
#: how long a claim's own connection may take to say goodbye before it is cut
CLOSE_TIMEOUT = 5.0

SQL_CLAIM = "SELECT pg_advisory_lock(hashtextextended($1, 0))"
SQL_TRY_CLAIM = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
#: true when no session owns the shoot-out (held only until the statement's transaction ends)
UNOWNED = f"pg_try_advisory_xact_lock(hashtextextended('{CLAIM_PREFIX}' || {{id}}, 0))"

SQL_INSERT_SHOOTOUT = """
INSERT INTO shootouts (id, guild_id, channel_id, user_id, payer_id, name, use_case, models,
    team_role_id, blind, state, deadline, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', $11, $12)
"""
SQL_INSERT_ROUND = """
INSERT INTO shootout_rounds (shootout_id, idx, prompt, comparison_id, price)
VALUES ($1, $2, $3, $4, $5)
"""
SQL_SHOOTOUT = "SELECT * FROM shootouts WHERE id = $1"
SQL_ROUNDS = "SELECT * FROM shootout_rounds WHERE shootout_id = $1 ORDER BY idx"
SQL_SET_HOLD = "UPDATE shootout_rounds SET hold_id = $1 WHERE shootout_id = $2 AND idx = $3"
SQL_SET_ROUND = """
UPDATE shootout_rounds SET state = $1, note = COALESCE($2, note)
WHERE shootout_id = $3 AND idx = $4 AND state IN ('planned', 'running')
"""
SQL_SET_WHERE = """
UPDATE shootouts SET thread_id = $1, status_message_id = COALESCE($2, status_message_id)
WHERE id = $3
"""
SQL_OPEN_VOTING = "UPDATE shootouts SET state = 'open' WHERE id = $1 AND state = 'running'"
SQL_CLOSE = """
UPDATE shootouts SET state = 'closed', closed_at = $1, closed_by = $2
WHERE id = $3 AND state = 'open'
"""
SQL_DUE = "SELECT id FROM shootouts WHERE state = 'open' AND deadline <= $1 ORDER BY deadline"
SQL_NEXT_DEADLINE = "SELECT min(deadline) FROM shootouts WHERE state = 'open'"
SQL_UNREPORTED = """
SELECT id FROM shootouts WHERE state = 'closed' AND reported_at IS NULL ORDER BY closed_at
"""
SQL_MARK_REPORTED = """
UPDATE shootouts SET reported_at = $1, report_message_id = $2
WHERE id = $3 AND reported_at IS NULL
"""
SQL_UNFINISHED_ROUNDS = f"""
SELECT r.* FROM shootout_rounds r
WHERE r.state IN ('planned', 'running') AND {UNOWNED.format(id="r.shootout_id")}
ORDER BY r.shootout_id, r.idx
"""
SQL_STARTED_WITHOUT_RUNNER = f"""
UPDATE shootouts SET state = 'open' WHERE state = 'running' AND {UNOWNED.format(id="id")}
"""
SQL_RECENT = """
SELECT * FROM shootouts WHERE guild_id = $1 ORDER BY (state = 'closed'), created_at DESC LIMIT $2
"""
SQL_LATEST_OPEN = """
SELECT * FROM shootouts WHERE guild_id = $1 AND state IN ('running', 'open')
    AND (channel_id = $2 OR thread_id = $2)
ORDER BY created_at DESC LIMIT 1
"""
SQL_TEAM_FOR_MESSAGE = """
SELECT s.id, s.team_role_id, s.team_role_gone FROM comparisons c JOIN shootouts s ON s.id = c.parent_id
WHERE c.message_id = $1 AND c.kind = 'shootout'
"""
SQL_ROUND_MESSAGES = """
SELECT id, channel_id, message_id FROM comparisons
WHERE parent_id = $1 AND kind = 'shootout' AND message_id IS NOT NULL
"""
SQL_TEAM_ROLE_GONE = (
    "UPDATE shootouts SET team_role_gone = true WHERE id = $1 AND NOT team_role_gone"
)
SQL_ROUND_COMPARISON = "SELECT delivery, hold_id FROM comparisons WHERE id = $1"


def _changed(status: str) -> int:
    """Rows a command changed, from its status (``UPDATE 3`` -> 3)."""
    return int(status.rsplit(" ", 1)[1])


class PostgresShootoutStore:
    """The shoot-out operations on a PostgreSQL pool, shared by every bot process."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def create(
        self,
        plan: ShootoutPlan,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        payer_id: int,
        deadline: datetime,
        now: datetime,
    ) -> None:
        rounds = [(plan.id, n, r.prompt, r.id, r.total) for n, r in enumerate(plan.rounds)]
        async with self._db.transaction() as conn:
            await conn.execute(
                SQL_INSERT_SHOOTOUT,
                plan.id, guild_id, channel_id, user_id, payer_id, plan.name, plan.use_case.id,
                json.dumps(list(plan.models)), plan.team_role_id, plan.blind, deadline, now,
            )  # fmt: skip
            await conn.executemany(SQL_INSERT_ROUND, rounds)

    async def get(self, shootout_id: str) -> ShootoutRow | None:
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            row = await conn.fetchrow(SQL_SHOOTOUT, shootout_id)
            if row is None:
                return None
            return _shootout(row, await conn.fetch(SQL_ROUNDS, shootout_id))

    async def set_hold(self, shootout_id: str, idx: int, hold_id: int | None) -> None:
        await self._db.execute(SQL_SET_HOLD, hold_id, shootout_id, idx)

    async def set_round(
        self, shootout_id: str, idx: int, state: str, note: str | None = None
    ) -> bool:
        return await self._db.execute(SQL_SET_ROUND, state, note, shootout_id, idx) == "UPDATE 1"

    async def set_where(
        self, shootout_id: str, *, thread_id: int | None, status_message_id: int | None = None
    ) -> None:
        await self._db.execute(SQL_SET_WHERE, thread_id, status_message_id, shootout_id)

    async def open_voting(self, shootout_id: str) -> bool:
        return await self._db.execute(SQL_OPEN_VOTING, shootout_id) == "UPDATE 1"

    async def close(self, shootout_id: str, *, by: int | None, now: datetime) -> bool:
        return await self._db.execute(SQL_CLOSE, now, by, shootout_id) == "UPDATE 1"

    async def due(self, now: datetime) -> list[str]:
        return [row["id"] for row in await self._db.fetch(SQL_DUE, now)]

    async def next_deadline(self) -> datetime | None:
        value = await self._db.fetchval(SQL_NEXT_DEADLINE)
        return value if isinstance(value, datetime) else None

    async def unreported(self) -> list[str]:
        return [row["id"] for row in await self._db.fetch(SQL_UNREPORTED)]

    async def mark_reported(
        self, shootout_id: str, message_id: int | None, *, now: datetime
    ) -> bool:
        status = await self._db.execute(SQL_MARK_REPORTED, now, message_id, shootout_id)
        return status == "UPDATE 1"

    async def unfinished_rounds(self) -> list[RoundRow]:
        return [_round(row) for row in await self._db.fetch(SQL_UNFINISHED_ROUNDS)]

    async def orphaned_to_voting(self) -> int:
        return _changed(await self._db.execute(SQL_STARTED_WITHOUT_RUNNER))

    async def recent(self, guild_id: int, limit: int = 10) -> list[ShootoutRow]:
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            rows = await conn.fetch(SQL_RECENT, guild_id, limit)
            return [_shootout(row, await conn.fetch(SQL_ROUNDS, row["id"])) for row in rows]

    async def latest_open(self, guild_id: int, where_id: int) -> ShootoutRow | None:
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            row = await conn.fetchrow(SQL_LATEST_OPEN, guild_id, where_id)
            if row is None:
                return None
            return _shootout(row, await conn.fetch(SQL_ROUNDS, row["id"]))

    async def round_messages(self, shootout_id: str) -> dict[str, tuple[int, int]]:
        rows = await self._db.fetch(SQL_ROUND_MESSAGES, shootout_id)
        return {row[0]: (row[1], row[2]) for row in rows}

    async def team_for_message(self, message_id: int) -> tuple[str, int | None, bool] | None:
        row = await self._db.fetchrow(SQL_TEAM_FOR_MESSAGE, message_id)
        return None if row is None else (row[0], row[1], bool(row[2]))

    async def mark_team_role_gone(self, shootout_id: str) -> bool:
        return await self._db.execute(SQL_TEAM_ROLE_GONE, shootout_id) == "UPDATE 1"

    async def round_comparison(self, comparison_id: str) -> tuple[str, int | None] | None:
        row = await self._db.fetchrow(SQL_ROUND_COMPARISON, comparison_id)
        return None if row is None else (row["delivery"], row["hold_id"])

    @asynccontextmanager
    async def claim(self, shootout_id: str, *, wait: bool = False) -> AsyncIterator[bool]:
        # A connection of its own, not one of the pool's: the lock lasts as long as the
        # session, and ending the session frees it whatever happened — there is no unlock to
        # forget, and none that a cancellation could interrupt.
        conn = await asyncpg.connect(self._db.url)
        try:
            key = CLAIM_PREFIX + shootout_id
            if wait:
                await conn.execute(SQL_CLAIM, key)
                yield True
            else:
                yield bool(await conn.fetchval(SQL_TRY_CLAIM, key))
        finally:
            try:
                await conn.close(timeout=CLOSE_TIMEOUT)
            except Exception as exc:  # the server or the network ended it first: as good
                log.debug("claim on shoot-out %s ended with its connection: %s", shootout_id, exc)
            finally:
                if not conn.is_closed():
                    conn.terminate()
