"""A member's comparisons, newest first: kind, models, cost, winner and where they were posted."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.comparisons.plan import blind_name
from bot.db import AnyDatabase, PostgresDatabase
from bot.db.storage import Row

SQL_COUNT = """
SELECT COUNT(*) FROM comparisons
WHERE guild_id = ? AND user_id = ? AND delivery = 'posted' AND state <> 'deleted'
"""
SQL_PAGE = """
SELECT c.id, c.kind, c.created_at, c.charged, c.state, c.blind, c.channel_id, c.message_id,
       c.parent_id, k.winner
FROM comparisons AS c LEFT JOIN vote_closures AS k ON k.comparison_id = c.id
WHERE c.guild_id = ? AND c.user_id = ? AND c.delivery = 'posted' AND c.state <> 'deleted'
ORDER BY c.created_at DESC, c.id
LIMIT ? OFFSET ?
"""
SQL_PANEL_NAMES = "SELECT idx, letter, label FROM panels WHERE comparison_id = ? ORDER BY idx"
PG_COUNT = """
SELECT COUNT(*) FROM comparisons
WHERE guild_id = $1 AND user_id = $2 AND delivery = 'posted' AND state <> 'deleted'
"""
PG_PAGE = """
SELECT c.id, c.kind, c.created_at, c.charged, c.state, c.blind, c.channel_id, c.message_id,
       c.parent_id, k.winner
FROM comparisons AS c LEFT JOIN vote_closures AS k ON k.comparison_id = c.id
WHERE c.guild_id = $1 AND c.user_id = $2 AND c.delivery = 'posted' AND c.state <> 'deleted'
ORDER BY c.created_at DESC, c.id
LIMIT $3 OFFSET $4
"""
PG_PANEL_NAMES = "SELECT idx, letter, label FROM panels WHERE comparison_id = $1 ORDER BY idx"
OPTION_NAMES = {"tie": "tie", "bad": "none of them"}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One comparison as /history lists it (names hidden while a blind vote is open)."""

    id: str
    kind: str
    created_at: datetime
    charged: int
    state: str
    channel_id: int | None
    message_id: int | None
    parent_id: str | None
    names: tuple[str, ...]
    winner: str | None


def _entry(row: Row, panels: Sequence[Row]) -> HistoryEntry:
    hidden = bool(row["blind"]) and row["state"] != "closed"
    names = tuple(blind_name(p["letter"]) if hidden else p["label"] for p in panels)
    winner = row["winner"]
    if winner in OPTION_NAMES:
        winner = OPTION_NAMES[winner]
    elif winner is not None:
        winner = next((p["label"] for p in panels if p["letter"] == winner), winner)
    return HistoryEntry(
        id=row["id"],
        kind=row["kind"],
        created_at=_moment(row["created_at"]),
        charged=row["charged"],
        state=row["state"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        parent_id=row["parent_id"],
        names=names,
        winner=winner,
    )


def _moment(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def history_page(
    db: AnyDatabase,
    guild_id: int,
    user_id: int,
    *,
    page: int = 0,
    per_page: int = 8,
    viewer_id: int | None = None,
) -> tuple[list[HistoryEntry], int]:
    """One page of a member's posted comparisons, newest first, and how many there are."""
    if isinstance(db, PostgresDatabase):
        async with db.transaction(isolation="repeatable_read", readonly=True) as pg:
            total = int(await pg.fetchval(PG_COUNT, guild_id, user_id))
            rows = await pg.fetch(PG_PAGE, guild_id, user_id, per_page, page * per_page)
            entries = [_entry(row, await pg.fetch(PG_PANEL_NAMES, row["id"])) for row in rows]
        return entries, total

    def read(conn: sqlite3.Connection) -> tuple[list[HistoryEntry], int]:
        total = int(conn.execute(SQL_COUNT, (guild_id, user_id)).fetchone()[0])
        rows = conn.execute(SQL_PAGE, (guild_id, user_id, per_page, page * per_page)).fetchall()
        return [
            _entry(row, conn.execute(SQL_PANEL_NAMES, (row["id"],)).fetchall()) for row in rows
        ], total

    return await db.run_read(read)
