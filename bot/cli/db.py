"""``splitshot db migrate-to-postgres``: move a SQLite deployment to PostgreSQL, verified."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from bot.credits.ledger import Ledger
from bot.credits.postgres import audit_on
from bot.db import Database, MigrationError, PostgresDatabase, describe_target, is_postgres_url
from bot.db.transfer import TransferReport, copy_sqlite_to_postgres
from bot.errors import SplitshotError

if TYPE_CHECKING:
    from bot.db.postgres import PgConnection

EXIT_OK = 0
EXIT_REFUSED = 1  # the source is unhealthy, the target is not empty, or the copy did not verify
EXIT_USAGE = 2

SQL_TARGET_BALANCES = "SELECT guild_id, user_id, balance FROM accounts"
#: what decides a shoot-out's closing, report and refunds later: it must come over exactly
SHOOTOUT_COLUMNS = {
    "shootouts": ("id", "state", "payer_id", "reported_at IS NULL"),
    "shootout_rounds": ("shootout_id", "idx", "state", "hold_id", "price"),
}


def _fail(message: str, code: int) -> int:
    print(f"splitshot db: {message}", file=sys.stderr)
    return code


async def _verify(conn: PgConnection, source: Mapping[str, Sequence[sqlite3.Row]]) -> list[str]:
    """The target's own audit, every balance equal to the source's, and every shoot-out and
    round in the same state, paid by the same account and hold, as in the source."""
    problems = [str(discrepancy) for discrepancy in await audit_on(conn)]
    expected = {(row["guild_id"], row["user_id"]): row["balance"] for row in source["accounts"]}
    copied = {
        (row["guild_id"], row["user_id"]): row["balance"]
        for row in await conn.fetch(SQL_TARGET_BALANCES)
    }
    if copied != expected:
        differ = sorted(set(copied.items()) ^ set(expected.items()))[:3]
        problems.append(f"balances differ between SQLite and PostgreSQL, e.g. {differ}")
    for table, columns in SHOOTOUT_COLUMNS.items():
        # Column names come from SHOOTOUT_COLUMNS, never from input.
        target_rows = await conn.fetch(f"SELECT {', '.join(columns)} FROM {table}")
        copied_rows = Counter(tuple(row) for row in target_rows)
        source_rows = Counter(_shootout_facts(row, columns) for row in source[table])
        if copied_rows != source_rows:
            problems.append(f"{table} differ between SQLite and PostgreSQL")
    return problems


def _shootout_facts(row: sqlite3.Row, columns: Sequence[str]) -> tuple[object, ...]:
    """The source row's values of ``columns`` (``reported_at IS NULL`` as a flag)."""
    return tuple(
        row["reported_at"] is None if column == "reported_at IS NULL" else row[column]
        for column in columns
    )


async def migrate_to_postgres(source_path: Path, url: str) -> TransferReport:
    """Audit the SQLite source, copy it into the empty PostgreSQL target, verify, commit."""
    source = await Database.open(source_path)
    try:
        found = await Ledger(source).audit()
        if found:
            raise SplitshotError(
                f"The SQLite ledger does not audit clean ({len(found)} discrepancies, e.g. "
                f"{found[0]}); run `splitshot credits audit --db {source_path}` and fix it first."
            )
        target = await PostgresDatabase.open(url, max_size=2)
        try:
            report = await copy_sqlite_to_postgres(source, target, verify=_verify)
            # After COMMIT, through the ordinary code path, as the bot will see it.
            after = await Ledger(target).audit()
            if after:
                raise SplitshotError(f"PostgreSQL audit after the copy: {after[0]}")
            return report
        finally:
            await target.close()
    finally:
        await source.close()


def _run(args: argparse.Namespace) -> int:
    source, target = Path(args.source), args.target
    if not source.is_file():
        return _fail(f"no SQLite database at {source} (check --from)", EXIT_USAGE)
    if not is_postgres_url(target):
        return _fail("--to must be a postgresql:// URL", EXIT_USAGE)
    label = describe_target(target)
    try:
        report = asyncio.run(migrate_to_postgres(source, target))
    except SplitshotError as error:
        return _fail(str(error), EXIT_REFUSED)
    except (sqlite3.DatabaseError, asyncpg.PostgresError, OSError, MigrationError) as error:
        return _fail(f"cannot migrate {source} to {label}: {error}", EXIT_USAGE)
    copied = ", ".join(f"{table} {count:,}" for table, count in report.rows.items() if count)
    print(f"Copied {report.total:,} rows from {source} to {label} ({copied or 'nothing'}).")
    print(
        f"Audit clean on both sides; all {report.rows['accounts']:,} balances match. "
        f"Point SPLITSHOT_DB at {label} to use it."
    )
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``db migrate-to-postgres`` to the CLI."""
    db = subparsers.add_parser("db", help="move the database between backends")
    commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    migrate = commands.add_parser(
        "migrate-to-postgres",
        help="copy a SQLite database into an empty PostgreSQL database, verified",
        description=(
            "Copy ledger entries, holds, comparisons (with their panel images and measured "
            "text), votes, server settings and their history, the provider spend, and "
            "shoot-outs with their rounds from a SQLite file into an empty PostgreSQL database "
            "in one transaction; audit both sides and compare every balance and shoot-out "
            "before committing. Stop the bot first."
        ),
    )
    migrate.add_argument("--from", dest="source", required=True, help="the SQLite database file")
    migrate.add_argument("--to", dest="target", required=True, help="a postgresql:// URL")
    migrate.set_defaults(func=_run)
