"""PostgreSQL storage: an asyncpg pool, its transaction helper and numbered migrations.

The scale-out backend for several bot processes sharing one database. Each ledger operation is
one transaction on a connection borrowed from the pool (several run in parallel, unlike
SQLite's one writer); the row locks and conditional updates inside them, not a process-local
lock, keep concurrent operations from different processes correct.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.db.migrate import Migration, MigrationError, discover

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: A connection of its own or one borrowed from the pool; both run the same queries.
    PgConnection: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    )

log = logging.getLogger(__name__)

Isolation = Literal["read_committed", "repeatable_read", "serializable"]

URL_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_POOL_SIZE = 10

# One fixed key for pg_advisory_lock: processes starting together migrate one at a time.
MIGRATION_LOCK_KEY = 0x5370_6C69_7453_6800  # "SplitSh\0"

SQL_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SQL_APPLIED_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
SQL_RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"


def is_postgres_url(target: object) -> bool:
    """True when ``target`` is a ``postgresql://`` (or ``postgres://``) URL, not a file path."""
    return isinstance(target, str) and target.strip().lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database name."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def database_name(url: str) -> str:
    """The database a URL names (PostgreSQL's default: the user's name)."""
    parts = urlsplit(url)
    return parts.path.lstrip("/") or (parts.username or "postgres")


async def recreate_database(url: str, database: str) -> None:
    """Drop and create ``database`` on the server of ``url`` (connecting to ``url``'s own)."""
    if database == database_name(url):
        raise ValueError("refusing to drop the database the connection itself uses")
    quoted = '"' + database.replace('"', '""') + '"'
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


def bundled_postgres_migrations() -> Traversable:
    """Return the PostgreSQL migrations directory shipped inside the package."""
    return resources.files("bot.db") / "postgres_migrations"


async def apply_postgres_migrations(conn: PgConnection, migrations: list[Migration]) -> int:
    """Apply every migration newer than the database, one transaction each; return the version."""
    latest = migrations[-1].version if migrations else 0
    # A session-level advisory lock: a second process starting at the same time waits here
    # and then finds the migrations already applied instead of racing them.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(SQL_MIGRATIONS_TABLE)
        for migration in migrations:
            async with conn.transaction():
                current = int(await conn.fetchval(SQL_APPLIED_VERSION))
                if migration.version <= current:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(SQL_RECORD_MIGRATION, migration.version, migration.name)
            log.info("applied PostgreSQL migration %s", migration.name)
        current = int(await conn.fetchval(SQL_APPLIED_VERSION))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    if current > latest:
        raise MigrationError(
            f"The database is at schema version {current}, newer than this program knows "
            f"({latest}); upgrade Splitshot before using this database."
        )
    return current


async def _no_session_reset(conn: PgConnection) -> None:
    """Skip asyncpg's reset query on release (one more round trip per borrowed connection).

    Splitshot never leaves session state behind: no SET, no LISTEN, no cursors, and only
    transaction-scoped advisory locks (the migration lock is unlocked in ``finally``); asyncpg
    still rolls back any transaction left open before calling this.
    """


class PostgresDatabase:
    """A pool of asyncpg connections to one PostgreSQL database, migrated on open."""

    backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str, schema_version: int) -> None:
        self._pool = pool
        self.url = url
        self.schema_version = schema_version

    def __repr__(self) -> str:
        return f"PostgresDatabase({redact(self.url)!r}, schema_version={self.schema_version})"

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = DEFAULT_POOL_SIZE,
        migrations: Traversable | None = None,
    ) -> PostgresDatabase:
        """Connect a pool to ``url`` and bring the schema up to date."""
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            command_timeout=60,
            # No timers on idle connections or cached statements: the statements are a fixed
            # set and a pool this size costs the server little, while a timer armed per idle
            # connection and per statement keeps SimCord (the playground) from ever settling.
            max_inactive_connection_lifetime=0,
            max_cached_statement_lifetime=0,
            reset=_no_session_reset,
        )
        try:
            found = discover(
                migrations if migrations is not None else bundled_postgres_migrations()
            )
            async with pool.acquire() as conn:
                version = await apply_postgres_migrations(conn, found)
        except BaseException:
            await pool.close()
            raise
        log.info("opened PostgreSQL %s at schema version %d", redact(url), version)
        return cls(pool, url, version)

    async def close(self) -> None:
        """Wait for borrowed connections to come back, then close the pool."""
        await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The underlying pool (write through ``transaction()``)."""
        return self._pool

    @asynccontextmanager
    async def transaction(
        self, *, isolation: Isolation = "read_committed", readonly: bool = False
    ) -> AsyncIterator[PgConnection]:
        """Borrow a connection for one transaction; COMMIT at the end, ROLLBACK on any exception."""
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation=isolation, readonly=readonly),
        ):
            yield conn

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Run one statement (its own transaction) and return all its rows."""
        return list(await self._pool.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """Run one statement (its own transaction) and return its first row."""
        return await self._pool.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run one statement (its own transaction) and return the first column of its first row."""
        return await self._pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        """Run one statement (its own transaction) and return its status, e.g. ``UPDATE 1``."""
        return str(await self._pool.execute(sql, *args))
