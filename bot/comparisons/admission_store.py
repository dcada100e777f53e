"""Admission in the database: each claim and release one transaction, on SQLite and PostgreSQL.

A claim reads the member's running tickets and last start, applies
:func:`bot.comparisons.admission.refusal` and writes the ticket, with nobody else admitting that
member in between:

* SQLite: one ``BEGIN IMMEDIATE`` transaction, which every process writing the file waits for.
* PostgreSQL: one transaction that first locks the member's row (an upsert, so the first claim
  creates it); a second process claiming for the same member waits for that lock, then counts
  the first one's committed ticket. Members do not wait on each other.

Tickets past their lease are ignored by the count and deleted by the claim that finds them.
Release deletes the ticket by id (a second release finds nothing) and, unless the comparison
kept it, puts back the start the ticket replaced, only while the member's start is still the
ticket's own, so a later claim's cooldown is never undone.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from bot.comparisons.admission import AdmissionStore, Claim, Refusal, refusal
from bot.credits.accounts import iso
from bot.db.storage import store_for

if TYPE_CHECKING:
    from bot.db import AnyDatabase, Database, PostgresDatabase

__all__ = ["PostgresAdmissionStore", "SqliteAdmissionStore", "admission_store"]

# --- SQLite ---------------------------------------------------------------------------------

SQL_MEMBER = "SELECT last_start FROM admission_members WHERE guild_id = ? AND user_id = ?"
SQL_DROP_EXPIRED_OF = """
DELETE FROM admission_tickets WHERE guild_id = ? AND user_id = ? AND expires_at <= ?
"""
SQL_RUNNING = """
SELECT COUNT(*) FROM admission_tickets WHERE guild_id = ? AND user_id = ? AND expires_at > ?
"""
SQL_START = """
INSERT INTO admission_members (guild_id, user_id, last_start) VALUES (?, ?, ?)
ON CONFLICT (guild_id, user_id) DO UPDATE SET last_start = excluded.last_start
"""
SQL_ENSURE_MEMBER = """
INSERT INTO admission_members (guild_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING
"""
SQL_INSERT_TICKET = """
INSERT INTO admission_tickets (ticket_id, guild_id, user_id, owner, started_at, expires_at,
                               cooldown_start, previous_start)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
SQL_RELEASE = """
DELETE FROM admission_tickets WHERE ticket_id = ?
RETURNING guild_id, user_id, cooldown_start, previous_start
"""
SQL_GIVE_BACK = """
UPDATE admission_members SET last_start = ?
WHERE guild_id = ? AND user_id = ? AND last_start = ?
"""
SQL_CLEAR_OWNER = "DELETE FROM admission_tickets WHERE owner = ?"
SQL_SWEEP_TICKETS = "DELETE FROM admission_tickets WHERE expires_at <= ?"
SQL_SWEEP_MEMBERS = """
DELETE FROM admission_members
WHERE (last_start IS NULL OR last_start <= ?)
  AND NOT EXISTS (SELECT 1 FROM admission_tickets AS t
                  WHERE t.guild_id = admission_members.guild_id
                    AND t.user_id = admission_members.user_id)
"""


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def claim_sqlite(conn: sqlite3.Connection, claim: Claim) -> Refusal | None:
    """A claim, inside the caller's ``BEGIN IMMEDIATE`` transaction."""
    member = (claim.guild_id, claim.user_id)
    now = iso(claim.now)
    row = conn.execute(SQL_MEMBER, member).fetchone()
    last_start = _moment(row[0]) if row is not None else None
    conn.execute(SQL_DROP_EXPIRED_OF, (*member, now))
    running = int(conn.execute(SQL_RUNNING, (*member, now)).fetchone()[0])
    refused = refusal(running, last_start, claim)
    if refused is not None:
        return refused
    starts = claim.cooldown.total_seconds() > 0
    if starts:
        conn.execute(SQL_START, (*member, now))
    else:
        conn.execute(SQL_ENSURE_MEMBER, member)
    conn.execute(
        SQL_INSERT_TICKET,
        (
            claim.ticket_id,
            *member,
            claim.owner,
            now,
            iso(claim.expires_at),
            now if starts else None,
            row[0] if starts and row is not None else None,
        ),
    )
    return None


def release_sqlite(conn: sqlite3.Connection, ticket_id: str, keep_cooldown: bool) -> bool:
    """A release, inside the caller's transaction."""
    row = conn.execute(SQL_RELEASE, (ticket_id,)).fetchone()
    if row is None:
        return False
    guild_id, user_id, cooldown_start, previous_start = tuple(row)
    if cooldown_start is not None and not keep_cooldown:
        conn.execute(SQL_GIVE_BACK, (previous_start, guild_id, user_id, cooldown_start))
    return True


def _sweep_sqlite(conn: sqlite3.Connection, now: str, idle_since: str) -> int:
    swept = conn.execute(SQL_SWEEP_TICKETS, (now,)).rowcount
    conn.execute(SQL_SWEEP_MEMBERS, (idle_since,))
    return int(swept)


class SqliteAdmissionStore:
    """Admission on the SQLite file: each operation one ``BEGIN IMMEDIATE`` job."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, claim: Claim) -> Refusal | None:
        return await self._db.run_in_transaction(partial(claim_sqlite, claim=claim))

    async def release(self, ticket_id: str, *, keep_cooldown: bool) -> bool:
        return await self._db.run_in_transaction(
            partial(release_sqlite, ticket_id=ticket_id, keep_cooldown=keep_cooldown)
        )

    async def running(self, guild_id: int, user_id: int, now: datetime) -> int:
        row = await self._db.fetchone(SQL_RUNNING, (guild_id, user_id, iso(now)))
        assert row is not None
        return int(row[0])

    async def clear_owner(self, owner: str) -> int:
        return await self._db.execute(SQL_CLEAR_OWNER, (owner,))

    async def sweep(self, now: datetime, idle_since: datetime) -> int:
        return await self._db.run_in_transaction(
            partial(_sweep_sqlite, now=iso(now), idle_since=iso(idle_since))
        )


# --- PostgreSQL -----------------------------------------------------------------------------

# Creates the member's row on first use and locks it either way: the no-op update is what takes
# the row lock, and RETURNING reads the start as committed by whoever held it before.
PG_LOCK_MEMBER = """
INSERT INTO admission_members (guild_id, user_id) VALUES ($1, $2)
ON CONFLICT (guild_id, user_id) DO UPDATE SET last_start = admission_members.last_start
RETURNING last_start
"""
# Read committed: a new snapshot, so the tickets of a claim that held the lock before us count.
PG_RUNNING = """
WITH expired AS (
    DELETE FROM admission_tickets WHERE guild_id = $1 AND user_id = $2 AND expires_at <= $3
)
SELECT COUNT(*) FROM admission_tickets WHERE guild_id = $1 AND user_id = $2 AND expires_at > $3
"""
PG_COUNT_RUNNING = """
SELECT COUNT(*) FROM admission_tickets WHERE guild_id = $1 AND user_id = $2 AND expires_at > $3
"""
PG_INSERT_TICKET = """
WITH started AS (
    UPDATE admission_members SET last_start = $6
    WHERE guild_id = $2 AND user_id = $3 AND $6::timestamptz IS NOT NULL
)
INSERT INTO admission_tickets (ticket_id, guild_id, user_id, owner, started_at, expires_at,
                               cooldown_start, previous_start)
VALUES ($1, $2, $3, $4, $5, $7, $6, $8)
"""
# One statement: of two racing releases of one ticket only one deletes it, and the give-back
# re-checks the member's start after waiting for its row lock.
PG_RELEASE = """
WITH gone AS (
    DELETE FROM admission_tickets WHERE ticket_id = $1
    RETURNING guild_id, user_id, cooldown_start, previous_start
), given_back AS (
    UPDATE admission_members AS m SET last_start = gone.previous_start
    FROM gone
    WHERE NOT $2 AND gone.cooldown_start IS NOT NULL
      AND m.guild_id = gone.guild_id AND m.user_id = gone.user_id
      AND m.last_start = gone.cooldown_start
)
SELECT COUNT(*) FROM gone
"""
PG_CLEAR_OWNER = "DELETE FROM admission_tickets WHERE owner = $1"
PG_SWEEP = """
WITH expired AS (
    DELETE FROM admission_tickets WHERE expires_at <= $1 RETURNING 1
), idle AS (
    DELETE FROM admission_members AS m
    WHERE (m.last_start IS NULL OR m.last_start <= $2)
      AND NOT EXISTS (SELECT 1 FROM admission_tickets AS t
                      WHERE t.guild_id = m.guild_id AND t.user_id = m.user_id
                        AND t.expires_at > $1)
)
SELECT COUNT(*) FROM expired
"""


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresAdmissionStore:
    """Admission on PostgreSQL: a claim serialises on the member's row, nothing wider."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def claim(self, claim: Claim) -> Refusal | None:
        member = (claim.guild_id, claim.user_id)
        async with self._db.transaction() as conn:
            last_start = await conn.fetchval(PG_LOCK_MEMBER, *member)
            running = int(await conn.fetchval(PG_RUNNING, *member, claim.now))
            refused = refusal(running, last_start, claim)
            if refused is not None:
                return refused
            starts = claim.cooldown.total_seconds() > 0
            await conn.execute(
                PG_INSERT_TICKET,
                claim.ticket_id,
                *member,
                claim.owner,
                claim.now,
                claim.now if starts else None,
                claim.expires_at,
                last_start if starts else None,
            )
        return None

    async def release(self, ticket_id: str, *, keep_cooldown: bool) -> bool:
        return bool(await self._db.fetchval(PG_RELEASE, ticket_id, keep_cooldown))

    async def running(self, guild_id: int, user_id: int, now: datetime) -> int:
        return int(await self._db.fetchval(PG_COUNT_RUNNING, guild_id, user_id, now))

    async def clear_owner(self, owner: str) -> int:
        return _count(await self._db.execute(PG_CLEAR_OWNER, owner))

    async def sweep(self, now: datetime, idle_since: datetime) -> int:
        return int(await self._db.fetchval(PG_SWEEP, now, idle_since))


def admission_store(db: AnyDatabase) -> AdmissionStore:
    """The admission store for whichever backend ``db`` is."""
    return store_for(db, sqlite=_sqlite, postgresql=_postgresql)


def _sqlite(db: Database) -> AdmissionStore:
    return SqliteAdmissionStore(db)


def _postgresql(db: PostgresDatabase) -> AdmissionStore:
    return PostgresAdmissionStore(db)
