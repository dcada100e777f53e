"""The storage seam: which backend a ``SPLITSHOT_DB`` / ``--db`` value names, and opening it.

Splitshot keeps its data in one of two backends with the same invariants:

* SQLite (``Database``): a file path; one connection, one writer; the embedded default.
* PostgreSQL (``PostgresDatabase``): a ``postgresql://`` URL; a pool shared by several bot
  processes, each of which may run on its own machine.

Each domain defines its own small store interface — a ``Protocol`` of async operations that
speak in domain objects, never in SQL rows — and one implementation per backend beside it; its
facade (``Ledger``, the guild-settings functions, ...) validates input, picks the store with
``store_for`` and keeps logging and cancellation handling in one place. So far:

* credits: ``bot.credits.store.LedgerStore`` (SQLite and PostgreSQL)
* guild settings: ``bot.guild_settings`` (SQLite and PostgreSQL)
* comparison records: ``bot.comparisons.records`` (both; a record is a ``TransactionStep``)
* votes: ``bot.voting.store.VoteBackend`` (SQLite and PostgreSQL)
* shoot-outs: ``bot.shootouts.store.ShootoutStore`` (SQLite and PostgreSQL)

A ``TransactionStep`` is a write that joins another operation's transaction on either backend:
the ledger's settle runs the comparison's record insert inside its own transaction, so the
charge and the record land together or not at all.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.db.connection import Database
from bot.db.postgres import PostgresDatabase, is_postgres_url, redact

if TYPE_CHECKING:
    from bot.db.postgres import PgConnection

__all__ = [
    "AnyDatabase",
    "Row",
    "TransactionStep",
    "describe_target",
    "is_postgres_url",
    "open_database",
    "run_step",
    "store_for",
]

#: Either backend; code that works on both takes this.
AnyDatabase = Database | PostgresDatabase

S = TypeVar("S")


class Row(Protocol):
    """A result row read by column name: ``sqlite3.Row`` or ``asyncpg.Record``."""

    def __getitem__(self, key: str, /) -> Any: ...


class TransactionStep(Protocol):
    """Writes that run inside another operation's transaction, on either backend."""

    def write_sqlite(self, conn: sqlite3.Connection) -> None:
        """Write on the SQLite database thread, inside the caller's transaction."""
        ...

    async def write_postgres(self, conn: PgConnection) -> None:
        """Write on a PostgreSQL connection, inside the caller's transaction."""
        ...


async def run_step(db: AnyDatabase, step: TransactionStep) -> None:
    """Run a step in a transaction of its own (when there is nothing to join)."""
    if isinstance(db, PostgresDatabase):
        async with db.transaction() as conn:
            await step.write_postgres(conn)
        return
    await db.run_in_transaction(step.write_sqlite)


def describe_target(target: str | os.PathLike[str]) -> str:
    """A ``--db`` value as safe to print: a path as given, a URL without its password."""
    text = os.fspath(target)
    return redact(text) if is_postgres_url(text) else text


async def open_database(
    target: str | os.PathLike[str], *, pool_size: int | None = None, read_only: bool = False
) -> AnyDatabase:
    """Open (and migrate) the database a ``SPLITSHOT_DB`` / ``--db`` value names.

    ``read_only`` applies to SQLite (a report on a read-only file or a copy); a PostgreSQL
    report reads through the same pool as any other client.
    """
    text = os.fspath(target)
    if is_postgres_url(text):
        if pool_size is None:
            return await PostgresDatabase.open(text)
        return await PostgresDatabase.open(text, max_size=pool_size)
    return await Database.open(Path(text), read_only=read_only)


def store_for(
    db: AnyDatabase,
    *,
    sqlite: Callable[[Database], S],
    postgresql: Callable[[PostgresDatabase], S],
) -> S:
    """Build the domain store that matches the backend ``db`` is."""
    if isinstance(db, PostgresDatabase):
        return postgresql(db)
    return sqlite(db)
