"""A throwaway PostgreSQL cluster for the test suite: initdb + pg_ctl in a temp dir.

The server refuses to run as root, so when the suite runs as root the cluster belongs to the
``postgres`` system user (``runuser -u postgres``); otherwise it runs as the current user. It
listens on a free loopback port only, with ``fsync=off`` (a test cluster never outlives the
run; ``bench/ledger.py --pg-cluster`` starts a durable one), and is stopped with
``pg_ctl stop -m immediate`` at the end.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bot.db import AnyDatabase, Database, PostgresDatabase

BACKENDS = ("sqlite", "postgresql")
TEMPLATE = "splitshot_template"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL server binary directory, or None when none is installed."""
    for candidate in sorted(glob.glob(PG_BIN_GLOB), key=_version_key, reverse=True):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).resolve().parent == Path(pg_ctl).resolve().parent:
        return Path(initdb).resolve().parent
    return None


def _version_key(path: str) -> int:
    digits = Path(path).parent.name
    return int(digits) if digits.isdigit() else 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """One running throwaway cluster; ``url(database)`` names a database on it."""

    bin_dir: Path
    root: Path
    port: int
    as_user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / command[0]), *command[1:]]
        if self.as_user is not None:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)

    @classmethod
    def start(cls, bin_dir: Path, *, durable: bool = False) -> PostgresCluster:
        """initdb and start a cluster in a new temp dir; raise RuntimeError with its log if not.

        ``durable`` keeps PostgreSQL's own settings (fsync, synchronous commit and full-page
        writes on), for measuring; the test suite's cluster turns them off.
        """
        as_user = SERVER_USER if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="splitshot-pg-"))
        if as_user is not None:
            shutil.chown(root, user=as_user)
        for _attempt in range(3):
            cluster = cls(bin_dir, root, _free_port(), as_user)
            if not cluster.data.exists():
                made = cluster._run(
                    "initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--no-sync",
                )  # fmt: skip
                if made.returncode != 0:
                    raise RuntimeError(f"initdb failed: {made.stderr or made.stdout}")
            options = f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1"
            options += " -c max_connections=200"
            if not durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            started = cluster._run(
                "pg_ctl", "-D", str(cluster.data), "-w", "-t", "60",
                "-l", str(root / "log"), "-o", options, "start",
            )  # fmt: skip
            if started.returncode == 0:
                return cluster
            # Most likely another process took the port between probing and binding.
            time.sleep(0.2)
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{log[-2000:]}")

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


_database_numbers = itertools.count(1)


async def create_template(cluster: PostgresCluster) -> None:
    """Create and migrate the template database every test database is copied from."""
    admin = await asyncpg.connect(cluster.url())
    try:
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    migrated = await PostgresDatabase.open(cluster.url(TEMPLATE), max_size=1)
    await migrated.close()


async def fresh_database(cluster: PostgresCluster) -> str:
    """Copy the migrated template into a new database; return its URL."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    admin = await asyncpg.connect(cluster.url())
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    return cluster.url(name)


TABLES = ("hold_items", "ledger", "holds", "accounts", "guild_settings")


async def empty_database(url: str) -> None:
    """Delete every row (the ledger's append-only triggers are switched off for this session)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    finally:
        await conn.close()


# --- raw SQL on either backend, for tests that inspect or tamper with the tables ------------

_QMARK = re.compile(r"\?")


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the tests put no ``?`` in literals)."""
    numbers = itertools.count(1)
    return _QMARK.sub(lambda _match: f"${next(numbers)}", sql)


def stamp(db: AnyDatabase, moment: datetime) -> Any:
    """A time as each backend stores it: ISO text in SQLite, timestamptz in PostgreSQL."""
    if isinstance(db, PostgresDatabase):
        return moment
    return moment.isoformat(timespec="microseconds")


async def fetch(db: AnyDatabase, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one query with ``?`` placeholders on either backend; rows as tuples."""
    if isinstance(db, PostgresDatabase):
        return [tuple(row) for row in await db.fetch(_numbered(sql), *params)]
    return [tuple(row) for row in await db.fetchall(sql, params)]


async def run_script(db: AnyDatabase, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run statements with ``?`` placeholders in one transaction on either backend."""
    if isinstance(db, PostgresDatabase):
        async with db.transaction() as conn:
            for sql, params in statements:
                await conn.execute(_numbered(sql), *params)
        return
    assert isinstance(db, Database)
    async with db.transaction() as conn:
        for sql, params in statements:
            await conn.execute(sql, tuple(params))


def schema_errors(db: AnyDatabase) -> tuple[type[Exception], ...]:
    """What each backend raises when its schema (constraints, triggers, types) refuses a row."""
    if isinstance(db, PostgresDatabase):
        return (asyncpg.IntegrityConstraintViolationError, asyncpg.NumericValueOutOfRangeError)
    return (sqlite3.IntegrityError,)
