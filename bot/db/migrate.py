"""Numbered ``NNNN_name.sql`` migrations, applied in order, tracked by ``PRAGMA user_version``."""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_-]+\.sql$")

SQL_USER_VERSION = "PRAGMA user_version"
SQL_FOREIGN_KEY_CHECK = "PRAGMA foreign_key_check"
SQL_FOREIGN_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
)


class MigrationError(RuntimeError):
    """The migrations on disk or the database's schema version cannot be reconciled."""


@dataclass(frozen=True)
class Migration:
    """One migration file: its number, file name and SQL text."""

    version: int
    name: str
    sql: str


def bundled_migrations() -> Traversable:
    """Return the migrations directory shipped inside the package."""
    return resources.files("bot.db") / "migrations"


def discover(directory: Traversable) -> list[Migration]:
    """Return the migrations in ``directory`` sorted by number; numbers must run 1, 2, 3, ..."""
    found: list[Migration] = []
    for entry in directory.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"Migration file {entry.name!r} is not named NNNN_name.sql.")
            continue
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(found, start=1):
        # A gap or a duplicate would make user_version ambiguous; refuse to guess.
        if migration.version != expected:
            raise MigrationError(
                f"Migrations must be numbered 0001, 0002, ... without gaps or duplicates; "
                f"found {migration.name!r} where number {expected:04d} was expected."
            )
    return found


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies and quoted ``;`` stay whole)."""
    statements: list[str] = []
    buffer = ""
    *pieces, tail = script.split(";")
    for piece in pieces:
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    leftover = [
        line
        for line in (buffer + tail).splitlines()
        if line.strip() and not line.strip().startswith("--")
    ]
    if leftover:
        raise MigrationError(
            f"Migration ends with an incomplete statement: {leftover[0].strip()[:60]!r}"
        )
    return statements


def check_schema(conn: sqlite3.Connection, latest: int) -> None:
    """Refuse, before writing anything, a database this program must not touch.

    Another program's database (tables but no Splitshot schema version) would get Splitshot's
    tables built inside it; a newer one would be written by code that does not know its schema.
    """
    current = int(conn.execute(SQL_USER_VERSION).fetchone()[0])
    if current > latest:
        raise MigrationError(
            f"it is at schema version {current}, newer than this program knows "
            f"({latest}); upgrade Splitshot before using this database"
        )
    if current == 0:
        foreign = [row[0] for row in conn.execute(SQL_FOREIGN_TABLES)]
        if foreign:
            raise MigrationError(
                f"it is not a Splitshot database: it has other tables ({', '.join(foreign[:3])}) "
                "and no Splitshot schema version"
            )


def apply_migrations(conn: sqlite3.Connection, migrations: list[Migration]) -> int:
    """Apply every migration newer than the database, one transaction each; return the version.

    Runs on the connection's own thread. ``conn`` must be in autocommit mode
    (``isolation_level=None``) so that the explicit ``BEGIN IMMEDIATE`` is the only transaction.
    """
    latest = migrations[-1].version if migrations else 0
    check_schema(conn, latest)
    for migration in migrations:
        # BEGIN IMMEDIATE before reading the version: a second process starting at the same
        # time waits here and then sees the migration as done instead of applying it twice.
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute(SQL_USER_VERSION).fetchone()[0])
            if migration.version <= current:
                conn.rollback()
                continue
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            violations = conn.execute(SQL_FOREIGN_KEY_CHECK).fetchall()
            if violations:
                raise MigrationError(
                    f"Migration {migration.name} left {len(violations)} foreign-key violations."
                )
            # user_version lives in the database header, which is written inside this same
            # transaction: the schema change and its version number commit together or not at all.
            conn.execute(f"PRAGMA user_version = {migration.version:d}")
            conn.commit()
            log.info("applied migration %s", migration.name)
        except BaseException:
            conn.rollback()
            raise
    current = int(conn.execute(SQL_USER_VERSION).fetchone()[0])
    if current > latest:
        raise MigrationError(
            f"it is at schema version {current}, newer than this program knows "
            f"({latest}); upgrade Splitshot before using this database"
        )
    return current
