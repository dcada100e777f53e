"""Copy a SQLite deployment into an empty PostgreSQL database, in one transaction.

Every table the two schemas share is copied row for row with its ids (``COPY``, in foreign-key
order), times turned from ISO text into ``timestamptz``, days into ``date`` and 0/1 flags into
booleans by the target column's type, and the identity sequences moved past the copied ids.
``board_generations`` is not copied: the target's triggers count the copied rows themselves. A ``verify`` hook
runs on the target connection before COMMIT; when it reports anything, nothing is kept.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot.db.connection import Database
from bot.db.postgres import PostgresDatabase
from bot.errors import SplitshotError

if TYPE_CHECKING:
    from bot.db.postgres import PgConnection

log = logging.getLogger(__name__)

#: Parents before children, so every foreign key finds its row.
TABLES: tuple[str, ...] = (
    "guild_settings",
    "accounts",
    "holds",
    "hold_items",
    "ledger",
    "comparisons",
    "panels",
    "votes",
    "vote_closures",
    "panel_images",
    "panel_text",
    "settings_history",
    "provider_spend",
    "shootouts",
    "shootout_rounds",
)
#: Tables whose ``id`` is an identity column that must continue after the copied ids.
IDENTITIES = ("holds", "ledger", "settings_history")

SQL_TARGET_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $1
ORDER BY ordinal_position
"""
SQL_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"


class TransferError(SplitshotError):
    """The copy was refused or did not verify; the target was left as it was."""


@dataclass(frozen=True)
class TransferReport:
    """What was copied: rows per table."""

    rows: dict[str, int]

    @property
    def total(self) -> int:
        """All rows copied."""
        return sum(self.rows.values())


#: (target connection inside the copy's transaction, the source rows by table) -> problems
Verify = Callable[["PgConnection", Mapping[str, Sequence[sqlite3.Row]]], Awaitable[Sequence[str]]]


def _converter(data_type: str) -> Callable[[Any], Any]:
    if data_type == "timestamp with time zone":
        return lambda value: datetime.fromisoformat(value) if isinstance(value, str) else value
    if data_type == "date":
        return lambda value: date.fromisoformat(value) if isinstance(value, str) else value
    if data_type == "bytea":
        return lambda value: None if value is None else bytes(value)
    if data_type == "boolean":
        return lambda value: None if value is None else bool(value)
    if data_type == "double precision":
        return lambda value: None if value is None else float(value)
    return lambda value: value


def _read_tables(
    conn: sqlite3.Connection, columns: dict[str, list[str]]
) -> dict[str, list[sqlite3.Row]]:
    """Every table's rows from one snapshot (run as one read transaction)."""
    present = {row[0] for row in conn.execute(SQL_SQLITE_TABLES)}
    # Table and column names come from TABLES and the target's catalogue, never from input.
    return {
        table: conn.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall()
        if table in present
        else []
        for table, names in columns.items()
    }


async def copy_sqlite_to_postgres(
    source: Database, target: PostgresDatabase, *, verify: Verify | None = None
) -> TransferReport:
    """Copy every shared table from ``source`` into the empty ``target``; verify; commit."""
    rows: dict[str, int] = {}
    async with target.transaction() as conn:
        for table in TABLES:
            # Lock out writers until COMMIT: nothing may appear in the target while we copy.
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                raise TransferError(
                    f"The PostgreSQL database already has rows in {table}; "
                    "migrate-to-postgres only copies into an empty database."
                )
        described = {table: await conn.fetch(SQL_TARGET_COLUMNS, table) for table in TABLES}
        columns = {table: [row["column_name"] for row in rows] for table, rows in described.items()}
        snapshot = await source.run_read(lambda sqlite: _read_tables(sqlite, columns))
        for table in TABLES:
            convert = [_converter(row["data_type"]) for row in described[table]]
            records = [
                tuple(fn(value) for fn, value in zip(convert, row, strict=True))
                for row in snapshot[table]
            ]
            if records:
                await conn.copy_records_to_table(table, records=records, columns=columns[table])
            rows[table] = len(records)
            log.info("copied %d rows of %s", len(records), table)
        for table in IDENTITIES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        problems = list(await verify(conn, snapshot)) if verify is not None else []
        if problems:
            raise TransferError(
                f"The copy did not verify, so nothing was kept ({len(problems)} problems): "
                + "; ".join(problems[:5])
            )
    return TransferReport(rows)
