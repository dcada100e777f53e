"""The process's one aiosqlite connection: pragmas, migrations and serialised write transactions."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import aiosqlite

from bot.db.migrate import (
    SQL_USER_VERSION,
    Migration,
    MigrationError,
    apply_migrations,
    bundled_migrations,
    check_schema,
    discover,
)
from bot.errors import SplitshotError

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

DEFAULT_BUSY_TIMEOUT = 5.0

SQL_BEGIN_WRITE = "BEGIN IMMEDIATE"
SQL_BEGIN_READ = "BEGIN"


class DatabaseUnavailable(SplitshotError):
    """The database file cannot be used: one sentence naming the file and why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot use {path} as the Splitshot database: {reason}.")


_CANNOT_OPEN = "it cannot be opened (a directory, a missing folder, or no permission)"
_READ_ONLY = "it is read-only"
_REASONS = (
    ("not a database", "it is not a SQLite database (corrupt, or another kind of file)"),
    ("malformed", "the file is corrupt"),
    ("unable to open", _CANNOT_OPEN),
    ("readonly", _READ_ONLY),
    ("read-only", _READ_ONLY),
    ("disk is full", "the disk is full"),
    ("disk i/o error", "the disk reported an I/O error"),
    ("locked", "another program holds it locked"),
)


def explain(error: BaseException) -> str:
    """A plain reason for a database error (the text of the ones it does not recognise)."""
    if isinstance(error, MigrationError):
        return str(error).rstrip(".")
    text = str(error)
    lowered = text.lower()
    for marker, reason in _REASONS:
        if marker in lowered:
            return reason
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return text.rstrip(".") or type(error).__name__


SQL_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"


def _check_version(conn: sqlite3.Connection, latest: int) -> int:
    """For a read-only open: the schema must be exactly the one this program writes."""
    check_schema(conn, latest)
    current = int(conn.execute(SQL_USER_VERSION).fetchone()[0])
    if current == 0 and conn.execute(SQL_TABLES).fetchone() is None:
        raise MigrationError("it is empty (the bot creates the schema on start)")
    if current != latest:
        older = "older" if current < latest else "newer"
        raise MigrationError(
            f"it is at schema version {current}, {older} than this program's {latest}; "
            "open it once with a matching Splitshot (e.g. start the bot) first"
        )
    return current


def _run_transaction(
    begin: str, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection
) -> T:
    """Run ``fn`` between BEGIN and COMMIT on the worker thread; roll back on any exception."""
    conn.execute(begin)
    try:
        result = fn(conn)
        conn.commit()
    except BaseException:
        # sqlite3's rollback() is a no-op when COMMIT already ended the transaction.
        conn.rollback()
        raise
    return result


def _configure(conn: sqlite3.Connection, busy_timeout_ms: int, synchronous: Synchronous) -> str:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return mode


def _target(file: Path, *, read_only: bool) -> str:
    """What to hand sqlite3.connect: the path, or a read-only URI (the file must exist)."""
    if file.is_dir():
        raise DatabaseUnavailable(file, "it is a directory")
    if read_only:
        if not file.is_file():
            raise DatabaseUnavailable(file, "there is no such file")
        return f"{file.resolve().as_uri()}?mode=ro"
    return str(file)


def _read_only_setup(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")


class Database:
    """One aiosqlite connection in WAL mode with a serialised write-transaction helper.

    Two ways to write, both ``BEGIN IMMEDIATE ... COMMIT`` with a rollback on any exception:
    ``transaction()`` yields the aiosqlite connection for a few awaited statements, and
    ``run_in_transaction(fn)`` ships a whole synchronous transaction to aiosqlite's worker
    thread as one job — one thread hand-off per transaction instead of one per statement, which
    is what lets the ledger settle thousands of comparisons a second. Jobs run on that one
    thread in FIFO order, so single-job transactions never interleave; the async lock keeps them
    (and reads) out of a multi-statement ``transaction()`` while one is open.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path, schema_version: int) -> None:
        self._conn = conn
        self.path = path
        self.schema_version = schema_version
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        # aiosqlite runs queued callables on its worker thread through Connection._execute; it
        # is private but has been stable for years, so it is reached in exactly one place.
        execute = getattr(conn, "_execute", None)
        if execute is None:
            raise RuntimeError("this aiosqlite version lacks Connection._execute")
        self._submit_job = cast(Callable[..., Awaitable[Any]], execute)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: Synchronous = "NORMAL",
        migrations: Traversable | None = None,
        read_only: bool = False,
    ) -> Database:
        """Open (creating if needed) the database file, set the pragmas and run migrations.

        ``read_only`` opens an existing database without writing anything (no pragmas that
        write, no migrations): reports work on a read-only file or a copy. Any problem with the
        file raises DatabaseUnavailable, whose message is one sentence for the user.
        """
        file = Path(path)
        # Misnumbered migration files are a packaging bug, not a problem with the file.
        found = discover(migrations if migrations is not None else bundled_migrations())
        try:
            target = await asyncio.to_thread(_target, file, read_only=read_only)
            try:
                return await cls._open(file, target, busy_timeout, synchronous, found, read_only)
            except sqlite3.OperationalError as error:
                if not read_only or explain(error) not in (_CANNOT_OPEN, _READ_ONLY):
                    raise
                # A WAL database in a folder this process cannot write: SQLite cannot make the
                # shared-memory file a reader needs, so read the file as it is on disk.
                immutable = f"{target}&immutable=1"
                return await cls._open(file, immutable, busy_timeout, synchronous, found, True)
        except DatabaseUnavailable:
            raise
        except (sqlite3.Error, MigrationError, OSError) as error:
            log.debug("cannot open database %s", file, exc_info=True)
            raise DatabaseUnavailable(file, explain(error)) from error

    @classmethod
    async def _open(
        cls,
        file: Path,
        target: str,
        busy_timeout: float,
        synchronous: Synchronous,
        found: list[Migration],
        read_only: bool,
    ) -> Database:
        # isolation_level=None: sqlite3 must not open implicit transactions behind our BEGINs.
        conn = await aiosqlite.connect(
            target, isolation_level=None, timeout=busy_timeout, uri=read_only
        )
        try:
            db = cls(conn, file, 0)
            if read_only:
                latest = found[-1].version if found else 0
                await db._on_thread(_read_only_setup)
                db.schema_version = await db._on_thread(partial(_check_version, latest=latest))
            else:
                latest = found[-1].version if found else 0
                await db._on_thread(partial(check_schema, latest=latest))
                mode = await db._on_thread(
                    partial(
                        _configure,
                        busy_timeout_ms=int(busy_timeout * 1000),
                        synchronous=synchronous,
                    )
                )
                if mode.lower() != "wal":
                    log.warning("database %s is in %s journal mode, not WAL", file, mode)
                db.schema_version = await db._on_thread(partial(apply_migrations, migrations=found))
        except BaseException:
            await conn.close()
            raise
        log.info(
            "opened database %s at schema version %d%s",
            file,
            db.schema_version,
            " (read-only)" if read_only else "",
        )
        return db

    async def close(self) -> None:
        """Wait for any open transaction, then close the connection."""
        async with self._lock:
            await self._conn.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        """The underlying aiosqlite connection (write through ``transaction()`` only)."""
        return self._conn

    async def _on_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(raw_connection)`` as one job on aiosqlite's worker thread."""
        # _conn is read on the loop thread but only *used* inside fn, on the worker thread.
        return cast(T, await self._submit_job(lambda: fn(self._conn._conn)))

    def _in_own_transaction(self) -> bool:
        return self._owner is not None and self._owner is asyncio.current_task()

    async def _job(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue one job, first waiting out another task's open ``transaction()``."""
        if self._lock.locked() and not self._in_own_transaction():
            async with self._lock:
                return await self._on_thread(fn)
        # No await between the check and the enqueue: a transaction() that starts later
        # queues its BEGIN behind this job, and the worker thread runs jobs in order.
        return await self._on_thread(fn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the writer lock; ROLLBACK on any exception."""
        if self._in_own_transaction():
            raise RuntimeError("transactions do not nest; use the connection you already have")
        async with self._lock:
            self._owner = asyncio.current_task()
            try:
                await self._conn.execute(SQL_BEGIN_WRITE)
                yield self._conn
                await self._conn.commit()
            except BaseException:
                # aiosqlite enqueues the ROLLBACK before its first await, so even if this task
                # is cancelled again here the ROLLBACK runs before any job queued after the
                # lock is released: the next transaction never starts inside this one.
                try:
                    await self._conn.rollback()
                except Exception:
                    log.exception("rollback failed")
                raise
            finally:
                self._owner = None

    async def run_in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the synchronous ``fn(conn)`` as one ``BEGIN IMMEDIATE`` transaction job."""
        if self._in_own_transaction():
            raise RuntimeError("transactions do not nest; use the connection you already have")
        return await self._job(partial(_run_transaction, SQL_BEGIN_WRITE, fn))

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the synchronous read-only ``fn(conn)`` in one snapshot (a deferred transaction)."""
        if self._in_own_transaction():
            return await self._on_thread(fn)
        return await self._job(partial(_run_transaction, SQL_BEGIN_READ, fn))

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Run one read statement and return its first row."""
        row = await self._job(lambda conn: conn.execute(sql, params).fetchone())
        return cast(sqlite3.Row | None, row)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run one read statement and return all its rows."""
        return await self._job(lambda conn: conn.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction and return its row count."""
        return await self.run_in_transaction(lambda conn: conn.execute(sql, params).rowcount)
