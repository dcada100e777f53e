"""Shoot-outs and their rounds: created before anything runs, closed on time.

A round's comparison is an ordinary comparison (``kind = 'shootout'``, ``parent_id`` = the
shoot-out), recorded by the comparison job; this module keeps what the job does not know:
the shoot-out's thread, team role, deadline, each round's hold, and whether it was reported.

``ShootoutStore`` is the interface, on either backend (``bot.db.storage``): the SQLite one is
here (``SqliteShootoutStore``), the PostgreSQL one in ``bot.shootouts.postgres``;
:func:`shootout_store` picks the one that matches the database.

Longer than the ~400-line guide on purpose: the stored rows, their interface and the SQLite
implementation, which the PostgreSQL one mirrors statement by statement.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.db import AnyDatabase, Database, PostgresDatabase, store_for
from bot.db.storage import Row
from bot.shootouts.plan import ShootoutPlan

SQL_INSERT_SHOOTOUT = """
INSERT INTO shootouts (id, guild_id, channel_id, user_id, payer_id, name, use_case, models,
    team_role_id, blind, state, deadline, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)
"""
SQL_INSERT_ROUND = """
INSERT INTO shootout_rounds (shootout_id, idx, prompt, comparison_id, price) VALUES (?, ?, ?, ?, ?)
"""
SQL_SHOOTOUT = "SELECT * FROM shootouts WHERE id = ?"
SQL_ROUNDS = "SELECT * FROM shootout_rounds WHERE shootout_id = ? ORDER BY idx"
SQL_SET_HOLD = "UPDATE shootout_rounds SET hold_id = ? WHERE shootout_id = ? AND idx = ?"
SQL_SET_ROUND = """
UPDATE shootout_rounds SET state = :state, note = COALESCE(:note, note)
WHERE shootout_id = :id AND idx = :idx AND state IN ('planned', 'running')
"""
SQL_SET_WHERE = """
UPDATE shootouts SET thread_id = :thread, status_message_id = COALESCE(:status, status_message_id)
WHERE id = :id
"""
SQL_OPEN_VOTING = "UPDATE shootouts SET state = 'open' WHERE id = ? AND state = 'running'"
SQL_CLOSE = """
UPDATE shootouts SET state = 'closed', closed_at = ?, closed_by = ? WHERE id = ? AND state = 'open'
"""
SQL_DUE = "SELECT id FROM shootouts WHERE state = 'open' AND deadline <= ? ORDER BY deadline"
SQL_NEXT_DEADLINE = "SELECT min(deadline) FROM shootouts WHERE state = 'open'"
SQL_UNREPORTED = """
SELECT id FROM shootouts WHERE state = 'closed' AND reported_at IS NULL ORDER BY closed_at
"""
SQL_MARK_REPORTED = """
UPDATE shootouts SET reported_at = ?, report_message_id = ? WHERE id = ? AND reported_at IS NULL
"""
SQL_UNFINISHED_ROUNDS = """
SELECT r.* FROM shootout_rounds r WHERE r.state IN ('planned', 'running') ORDER BY r.shootout_id, r.idx
"""
SQL_STARTED_WITHOUT_RUNNER = "UPDATE shootouts SET state = 'open' WHERE state = 'running'"
SQL_RECENT = """
SELECT * FROM shootouts WHERE guild_id = ? ORDER BY (state = 'closed'), created_at DESC LIMIT ?
"""
SQL_LATEST_OPEN = """
SELECT * FROM shootouts WHERE guild_id = :guild AND state IN ('running', 'open')
    AND (channel_id = :where OR thread_id = :where)
ORDER BY created_at DESC LIMIT 1
"""
SQL_TEAM_FOR_MESSAGE = """
SELECT s.id, s.team_role_id, s.team_role_gone FROM comparisons c JOIN shootouts s ON s.id = c.parent_id
WHERE c.message_id = ? AND c.kind = 'shootout'
"""
SQL_ROUND_MESSAGES = """
SELECT id, channel_id, message_id FROM comparisons
WHERE parent_id = ? AND kind = 'shootout' AND message_id IS NOT NULL
"""
SQL_TEAM_ROLE_GONE = "UPDATE shootouts SET team_role_gone = 1 WHERE id = ? AND team_role_gone = 0"
SQL_ROUND_COMPARISON = "SELECT delivery, hold_id FROM comparisons WHERE id = ?"


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds (text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class RoundRow:
    """One stored round."""

    shootout_id: str
    idx: int
    prompt: str
    comparison_id: str
    hold_id: int | None
    price: int
    state: str
    note: str | None


@dataclass(frozen=True, slots=True)
class ShootoutRow:
    """One stored shoot-out with its rounds."""

    id: str
    guild_id: int
    channel_id: int
    thread_id: int | None
    status_message_id: int | None
    report_message_id: int | None
    user_id: int
    payer_id: int
    name: str
    use_case: str
    models: tuple[str, ...]
    team_role_id: int | None
    team_role_gone: bool
    blind: bool
    state: str
    deadline: datetime
    created_at: datetime
    closed_at: datetime | None
    closed_by: int | None
    reported_at: datetime | None
    rounds: tuple[RoundRow, ...]

    @property
    def where_id(self) -> int:
        """Where the rounds are: the thread, else the channel."""
        return self.thread_id or self.channel_id


def _time(value: str | datetime | None) -> datetime | None:
    """A stored time: ISO text from SQLite, a datetime from PostgreSQL."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if value else None


def _round(row: Row) -> RoundRow:
    return RoundRow(
        row["shootout_id"],
        row["idx"],
        row["prompt"],
        row["comparison_id"],
        row["hold_id"],
        row["price"],
        row["state"],
        row["note"],
    )


def _shootout(row: Row, rounds: Sequence[Row]) -> ShootoutRow:
    deadline, created = _time(row["deadline"]), _time(row["created_at"])
    assert deadline is not None and created is not None
    return ShootoutRow(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        thread_id=row["thread_id"],
        status_message_id=row["status_message_id"],
        report_message_id=row["report_message_id"],
        user_id=row["user_id"],
        payer_id=row["payer_id"],
        name=row["name"],
        use_case=row["use_case"],
        models=tuple(json.loads(row["models"])),
        team_role_id=row["team_role_id"],
        team_role_gone=bool(row["team_role_gone"]),
        blind=bool(row["blind"]),
        state=row["state"],
        deadline=deadline,
        created_at=created,
        closed_at=_time(row["closed_at"]),
        closed_by=row["closed_by"],
        reported_at=_time(row["reported_at"]),
        rounds=tuple(_round(r) for r in rounds),
    )


def _load(conn: sqlite3.Connection, row: sqlite3.Row | None) -> ShootoutRow | None:
    if row is None:
        return None
    return _shootout(row, conn.execute(SQL_ROUNDS, (row["id"],)).fetchall())


class ShootoutStore(Protocol):
    """One backend's shoot-out operations; each write is one transaction."""

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
        """Store the shoot-out and its planned rounds (before any credit moves)."""
        ...

    async def get(self, shootout_id: str) -> ShootoutRow | None:
        """The shoot-out with this id."""
        ...

    async def set_hold(self, shootout_id: str, idx: int, hold_id: int | None) -> None:
        """Remember which hold paid for a round."""
        ...

    async def set_round(
        self, shootout_id: str, idx: int, state: str, note: str | None = None
    ) -> bool:
        """Move a round on; False when it had already finished."""
        ...

    async def set_where(
        self, shootout_id: str, *, thread_id: int | None, status_message_id: int | None = None
    ) -> None:
        """Where the rounds go and the status message."""
        ...

    async def open_voting(self, shootout_id: str) -> bool:
        """Every round has run: voting is all that is left."""
        ...

    async def close(self, shootout_id: str, *, by: int | None, now: datetime) -> bool:
        """Close it, exactly once."""
        ...

    async def due(self, now: datetime) -> list[str]:
        """Open shoot-outs whose deadline has passed."""
        ...

    async def next_deadline(self) -> datetime | None:
        """The earliest deadline of an open shoot-out."""
        ...

    async def unreported(self) -> list[str]:
        """Closed shoot-outs whose report was never posted."""
        ...

    async def mark_reported(
        self, shootout_id: str, message_id: int | None, *, now: datetime
    ) -> bool:
        """The report is posted; False when it already was."""
        ...

    async def unfinished_rounds(self) -> list[RoundRow]:
        """Rounds a run planned or started but never finished, and that no process runs now."""
        ...

    async def orphaned_to_voting(self) -> int:
        """Shoot-outs whose rounds no process runs any more go on to voting; how many."""
        ...

    async def recent(self, guild_id: int, limit: int = 10) -> list[ShootoutRow]:
        """Open shoot-outs first, then the newest closed ones."""
        ...

    async def latest_open(self, guild_id: int, where_id: int) -> ShootoutRow | None:
        """The newest running or open shoot-out started in (or posted to) this channel."""
        ...

    async def round_messages(self, shootout_id: str) -> dict[str, tuple[int, int]]:
        """Where each posted round is: comparison id -> (channel id, message id)."""
        ...

    async def team_for_message(self, message_id: int) -> tuple[str, int | None, bool] | None:
        """(shoot-out id, team role id, role gone) when this message is a shoot-out round."""
        ...

    async def mark_team_role_gone(self, shootout_id: str) -> bool:
        """The team role was deleted: every member's vote counts from now on."""
        ...

    async def round_comparison(self, comparison_id: str) -> tuple[str, int | None] | None:
        """(delivery, hold id) of a round's stored comparison; None when it was never stored."""
        ...

    def claim(self, shootout_id: str, *, wait: bool = False) -> AbstractAsyncContextManager[bool]:
        """Hold the shoot-out for this process while it runs, closes and reports, or recovers.

        Yields False when another process holds it (with ``wait``, waits for it instead).
        """
        ...


def shootout_store(db: AnyDatabase) -> ShootoutStore:
    """The shoot-out store on the backend ``db`` is."""
    from bot.shootouts.postgres import PostgresShootoutStore

    # Typed as the interface, so that mypy checks that each backend implements all of it.
    sqlite: Callable[[Database], ShootoutStore] = SqliteShootoutStore
    postgresql: Callable[[PostgresDatabase], ShootoutStore] = PostgresShootoutStore
    return store_for(db, sqlite=sqlite, postgresql=postgresql)


class SqliteShootoutStore:
    """Every server's shoot-outs in the process's one SQLite database."""

    def __init__(self, db: Database) -> None:
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
        """Store the shoot-out and its planned rounds (before any credit moves)."""
        shootout = (
            plan.id,
            guild_id,
            channel_id,
            user_id,
            payer_id,
            plan.name,
            plan.use_case.id,
            json.dumps(list(plan.models)),
            plan.team_role_id,
            int(plan.blind),
            iso(deadline),
            iso(now),
        )
        rounds = [(plan.id, n, r.prompt, r.id, r.total) for n, r in enumerate(plan.rounds)]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(SQL_INSERT_SHOOTOUT, shootout)
            conn.executemany(SQL_INSERT_ROUND, rounds)

        await self._db.run_in_transaction(write)

    async def get(self, shootout_id: str) -> ShootoutRow | None:
        """The shoot-out with this id."""
        return await self._db.run_read(
            lambda conn: _load(conn, conn.execute(SQL_SHOOTOUT, (shootout_id,)).fetchone())
        )

    async def set_hold(self, shootout_id: str, idx: int, hold_id: int | None) -> None:
        """Remember which hold paid for a round (the restart refunds it if the round never ran)."""
        await self._db.execute(SQL_SET_HOLD, (hold_id, shootout_id, idx))

    async def set_round(
        self, shootout_id: str, idx: int, state: str, note: str | None = None
    ) -> bool:
        """Move a round on (running, posted, refunded); False when it had already finished."""
        params = {"state": state, "note": note, "id": shootout_id, "idx": idx}
        return await self._db.execute(SQL_SET_ROUND, params) == 1

    async def set_where(
        self, shootout_id: str, *, thread_id: int | None, status_message_id: int | None = None
    ) -> None:
        """Where the rounds go (a thread, or None for the channel) and the status message."""
        params = {"thread": thread_id, "status": status_message_id, "id": shootout_id}
        await self._db.execute(SQL_SET_WHERE, params)

    async def open_voting(self, shootout_id: str) -> bool:
        """Every round has run: voting is all that is left."""
        return await self._db.execute(SQL_OPEN_VOTING, (shootout_id,)) == 1

    async def close(self, shootout_id: str, *, by: int | None, now: datetime) -> bool:
        """Close it (exactly once: of two closes racing, one wins)."""
        return await self._db.execute(SQL_CLOSE, (iso(now), by, shootout_id)) == 1

    async def due(self, now: datetime) -> list[str]:
        """Open shoot-outs whose deadline has passed (also those that fell due while down)."""
        rows = await self._db.fetchall(SQL_DUE, (iso(now),))
        return [row[0] for row in rows]

    async def next_deadline(self) -> datetime | None:
        """The earliest deadline of an open shoot-out."""
        row = await self._db.fetchone(SQL_NEXT_DEADLINE)
        return None if row is None else _time(row[0])

    async def unreported(self) -> list[str]:
        """Closed shoot-outs whose report was never posted (the bot stopped in between)."""
        return [row[0] for row in await self._db.fetchall(SQL_UNREPORTED)]

    async def mark_reported(
        self, shootout_id: str, message_id: int | None, *, now: datetime
    ) -> bool:
        """The report is posted."""
        return await self._db.execute(SQL_MARK_REPORTED, (iso(now), message_id, shootout_id)) == 1

    async def unfinished_rounds(self) -> list[RoundRow]:
        """Rounds a previous run planned or started but never finished."""
        return [_round(row) for row in await self._db.fetchall(SQL_UNFINISHED_ROUNDS)]

    async def orphaned_to_voting(self) -> int:
        """After a restart nothing runs rounds any more: those shoot-outs go on to voting."""
        return await self._db.execute(SQL_STARTED_WITHOUT_RUNNER)

    async def recent(self, guild_id: int, limit: int = 10) -> list[ShootoutRow]:
        """Open shoot-outs first, then the newest closed ones."""

        def read(conn: sqlite3.Connection) -> list[ShootoutRow]:
            rows = conn.execute(SQL_RECENT, (guild_id, limit)).fetchall()
            return [s for row in rows if (s := _load(conn, row)) is not None]

        return await self._db.run_read(read)

    async def latest_open(self, guild_id: int, where_id: int) -> ShootoutRow | None:
        """The newest running or open shoot-out started in (or posted to) this channel."""

        def read(conn: sqlite3.Connection) -> ShootoutRow | None:
            row = conn.execute(SQL_LATEST_OPEN, {"guild": guild_id, "where": where_id}).fetchone()
            return _load(conn, row)

        return await self._db.run_read(read)

    async def round_messages(self, shootout_id: str) -> dict[str, tuple[int, int]]:
        """Where each posted round is: comparison id -> (channel id, message id)."""
        rows = await self._db.fetchall(SQL_ROUND_MESSAGES, (shootout_id,))
        return {row[0]: (row[1], row[2]) for row in rows}

    async def team_for_message(self, message_id: int) -> tuple[str, int | None, bool] | None:
        """(shoot-out id, team role id, role gone) when this message is a shoot-out round."""
        row = await self._db.fetchone(SQL_TEAM_FOR_MESSAGE, (message_id,))
        return None if row is None else (row[0], row[1], bool(row[2]))

    async def mark_team_role_gone(self, shootout_id: str) -> bool:
        """The team role was deleted: every member's vote counts from now on."""
        return await self._db.execute(SQL_TEAM_ROLE_GONE, (shootout_id,)) == 1

    async def round_comparison(self, comparison_id: str) -> tuple[str, int | None] | None:
        """(delivery, hold id) of a round's stored comparison; None when it was never stored."""
        row = await self._db.fetchone(SQL_ROUND_COMPARISON, (comparison_id,))
        return None if row is None else (row["delivery"], row["hold_id"])

    @asynccontextmanager
    async def claim(self, shootout_id: str, *, wait: bool = False) -> AsyncIterator[bool]:
        """Always this process's: one process owns a SQLite database."""
        yield True
