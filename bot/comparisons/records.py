"""Stores every comparison, its panels and its message, for votes, follow-ups and audits.

On either backend (``bot.db.storage``): the rows are built once; SQLite stores times as ISO
text and flags as 0/1, PostgreSQL casts the same values to ``timestamptz`` and ``boolean``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.comparisons.service import ComparisonResult
from bot.db import AnyDatabase, PostgresDatabase
from bot.db.storage import Row

SQL_INSERT_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, charged, refunded, image_format, image_bytes, image_sha256, state,
    vote_deadline, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)
"""
SQL_INSERT_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, upstream_model, status,
    reason, latency_s, price, credits, width, height, image_bytes, image_sha256, params)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
SQL_COMPARISON = "SELECT * FROM comparisons WHERE id = ?"
SQL_COMPARISON_BY_MESSAGE = "SELECT * FROM comparisons WHERE message_id = ?"
SQL_PANELS = "SELECT * FROM panels WHERE comparison_id = ? ORDER BY idx"
SQL_MARK_DELETED = (
    "UPDATE comparisons SET state = 'deleted', closed_at = ? WHERE id = ? AND state <> 'deleted'"
)
PG_INSERT_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, charged, refunded, image_format, image_bytes, image_sha256, state,
    vote_deadline, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::int <> 0, $11::int <> 0, $12, $13, $14, $15,
    $16, 'open', $17::text::timestamptz, $18::text::timestamptz)
"""
PG_INSERT_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, upstream_model, status,
    reason, latency_s, price, credits, width, height, image_bytes, image_sha256, params)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
"""
PG_COMPARISON = "SELECT * FROM comparisons WHERE id = $1"
PG_COMPARISON_BY_MESSAGE = "SELECT * FROM comparisons WHERE message_id = $1"
PG_PANELS = "SELECT * FROM panels WHERE comparison_id = $1 ORDER BY idx"
PG_MARK_DELETED = """
UPDATE comparisons SET state = 'deleted', closed_at = $1 WHERE id = $2 AND state <> 'deleted'
"""


@dataclass(frozen=True, slots=True)
class PanelRecord:
    """One stored panel."""

    idx: int
    letter: str
    model_id: str
    label: str
    adapter: str
    status: str
    reason: str | None
    latency_s: float | None
    credits: int
    width: int | None
    height: int | None
    #: what the panel cost when reserved (credits is what was kept: 0 when refunded)
    price: int = 0
    upstream_model: str | None = None
    params: str = "{}"


@dataclass(frozen=True, slots=True)
class ComparisonRecord:
    """One stored comparison with its panels."""

    id: str
    guild_id: int
    channel_id: int | None
    message_id: int | None
    user_id: int
    prompt: str
    use_case: str
    aspect: str
    quality: str
    blind: bool
    demo: bool
    charged: int
    state: str
    vote_deadline: datetime | None
    created_at: datetime
    panels: tuple[PanelRecord, ...]
    refunded: int = 0
    image_format: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(value: str | datetime) -> datetime:
    """A stored time: ISO text from SQLite, a datetime from PostgreSQL."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def record_comparison(
    db: AnyDatabase,
    result: ComparisonResult,
    *,
    guild_id: int,
    user_id: int,
    channel_id: int | None = None,
    message_id: int | None = None,
    vote_deadline: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Store the comparison, every panel (model, adapter, parameters, latency, credits, hash)."""
    plan, composite = result.plan, result.composite
    created = _iso(now or datetime.now(UTC))
    comparison_row = (
        plan.id,
        guild_id,
        channel_id,
        message_id,
        user_id,
        plan.prompt,
        plan.use_case.id,
        plan.aspect,
        plan.quality,
        int(plan.blind),
        int(plan.uses_demo),
        result.charged,
        result.refunded,
        composite.format,
        len(composite.data),
        _sha(composite.data),
        _iso(vote_deadline) if vote_deadline else None,
        created,
    )
    params = json.dumps(
        {
            "aspect": plan.aspect,
            "quality": plan.quality,
            "references": len(plan.request.references),
            "seed": plan.request.seed,
        }
    )
    panel_rows = []
    for o in result.outcomes:
        image = o.result.image if o.result else None
        panel_rows.append(
            (
                plan.id,
                o.panel.index,
                o.panel.letter,
                o.panel.model.id,
                o.panel.label,
                o.panel.route.adapter.name,
                o.panel.route.target.upstream_id,
                o.status,
                o.reason,
                round(o.seconds, 3),
                o.panel.credits,
                o.panel.credits if o.ok else 0,
                o.result.width if o.result else None,
                o.result.height if o.result else None,
                len(image) if image else None,
                _sha(image) if image else None,
                params,
            )
        )

    if isinstance(db, PostgresDatabase):
        async with db.transaction() as pg:
            await pg.execute(PG_INSERT_COMPARISON, *comparison_row)
            await pg.executemany(PG_INSERT_PANEL, panel_rows)
        return

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(SQL_INSERT_COMPARISON, comparison_row)
        conn.executemany(SQL_INSERT_PANEL, panel_rows)

    await db.run_in_transaction(write)


def _parse(row: Row, panels: Sequence[Row]) -> ComparisonRecord:
    deadline = row["vote_deadline"]
    return ComparisonRecord(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        user_id=row["user_id"],
        prompt=row["prompt"],
        use_case=row["use_case"],
        aspect=row["aspect"],
        quality=row["quality"],
        blind=bool(row["blind"]),
        demo=bool(row["demo"]),
        charged=row["charged"],
        refunded=row["refunded"],
        image_format=row["image_format"],
        state=row["state"],
        vote_deadline=_moment(deadline) if deadline else None,
        created_at=_moment(row["created_at"]),
        panels=tuple(
            PanelRecord(
                p["idx"],
                p["letter"],
                p["model_id"],
                p["label"],
                p["adapter"],
                p["status"],
                p["reason"],
                p["latency_s"],
                p["credits"],
                p["width"],
                p["height"],
                price=p["price"],
                upstream_model=p["upstream_model"],
                params=p["params"],
            )
            for p in panels
        ),
    )


async def _load(db: AnyDatabase, sql: str, key: object) -> ComparisonRecord | None:
    if isinstance(db, PostgresDatabase):
        pg_sql = PG_COMPARISON if sql == SQL_COMPARISON else PG_COMPARISON_BY_MESSAGE
        async with db.transaction(isolation="repeatable_read", readonly=True) as pg:
            found = await pg.fetchrow(pg_sql, key)
            if found is None:
                return None
            return _parse(found, await pg.fetch(PG_PANELS, found["id"]))

    def read(conn: sqlite3.Connection) -> ComparisonRecord | None:
        row = conn.execute(sql, (key,)).fetchone()
        if row is None:
            return None
        return _parse(row, conn.execute(SQL_PANELS, (row["id"],)).fetchall())

    return await db.run_read(read)


async def get_comparison(db: AnyDatabase, comparison_id: str) -> ComparisonRecord | None:
    """The stored comparison with this id."""
    return await _load(db, SQL_COMPARISON, comparison_id)


async def get_comparison_by_message(db: AnyDatabase, message_id: int) -> ComparisonRecord | None:
    """The stored comparison posted as this message."""
    return await _load(db, SQL_COMPARISON_BY_MESSAGE, message_id)


async def mark_deleted(db: AnyDatabase, comparison_id: str, *, now: datetime | None = None) -> bool:
    """Mark a comparison deleted (its message was removed); False when it already was."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    if isinstance(db, PostgresDatabase):
        return await db.execute(PG_MARK_DELETED, at, comparison_id) == "UPDATE 1"
    return await db.execute(SQL_MARK_DELETED, (_iso(at), comparison_id)) == 1
