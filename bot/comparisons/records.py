"""Stores every comparison, its panels and its message, for votes, follow-ups and audits.

A comparison is written in the same transaction as the settle that charges for it (the job
hands its :class:`RecordRows` to the ledger), with ``delivery = 'pending'``; posting attaches its
message (:func:`attach_message`), and a result that never reached the member is marked
``failed`` in the same transaction as its refund (:class:`Undelivered`).

On either backend (``bot.db.storage``): the rows are built once; SQLite stores times as ISO
text and flags as 0/1, PostgreSQL casts the same values to ``timestamptz`` and ``boolean``.
Both writes that join a ledger transaction are ``TransactionStep``s, with one method per backend.

Longer than the ~400-line guide on purpose: a comparison's record and its SQL for both backends, kept side by side so the two stay in step.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.db import AnyDatabase, PostgresDatabase
from bot.db.storage import Row, run_step
from bot.measure.ocr import TextAccuracy
from bot.measure.store import (
    PANEL_TEXT_COLUMNS,
    text_from_row,
    write_text_accuracy,
    write_text_accuracy_pg,
)

if TYPE_CHECKING:
    from bot.comparisons.plan import Plan
    from bot.comparisons.service import PanelOutcome
    from bot.compose import Composite
    from bot.db.postgres import PgConnection

SQL_INSERT_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, charged, refunded, image_format, image_bytes, image_sha256, state,
    vote_deadline, created_at, delivery, kind, parent_id, hold_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)
"""
SQL_INSERT_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, upstream_model, status,
    reason, latency_s, price, credits, width, height, image_bytes, image_sha256, params, reused)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
SQL_INSERT_IMAGE = """
INSERT INTO panel_images (comparison_id, idx, mime_type, data) VALUES (?, ?, ?, ?)
"""
SQL_IMAGES = "SELECT idx, mime_type, data FROM panel_images WHERE comparison_id = ?"
SQL_COMPARISON = "SELECT * FROM comparisons WHERE id = ?"
SQL_COMPARISON_BY_MESSAGE = "SELECT * FROM comparisons WHERE message_id = ?"
SQL_PANELS = f"""
SELECT p.*, {PANEL_TEXT_COLUMNS}
FROM panels p LEFT JOIN panel_text t ON t.comparison_id = p.comparison_id AND t.idx = p.idx
WHERE p.comparison_id = ? ORDER BY p.idx
"""
SQL_ATTACH_MESSAGE = """
UPDATE comparisons SET channel_id = :channel, message_id = :message, vote_deadline = :deadline,
    posted_at = :now, delivery = 'posted'
WHERE id = :id AND delivery = 'pending'
"""
SQL_MARK_UNDELIVERED = """
UPDATE comparisons SET delivery = 'failed', refunded = refunded + charged, charged = 0
WHERE id = ? AND delivery = 'pending'
"""
SQL_UNDELIVERED_PANELS = "UPDATE panels SET credits = 0 WHERE comparison_id = ?"
SQL_STALE_PENDING = """
SELECT id, hold_id FROM comparisons WHERE delivery = 'pending' AND created_at <= ? ORDER BY created_at
"""
SQL_MARK_DELETED = (
    "UPDATE comparisons SET state = 'deleted', closed_at = ? WHERE id = ? AND state <> 'deleted'"
)
PG_INSERT_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, charged, refunded, image_format, image_bytes, image_sha256, state,
    vote_deadline, created_at, delivery, kind, parent_id, hold_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::int <> 0, $11::int <> 0, $12, $13, $14, $15,
    $16, 'open', $17::text::timestamptz, $18::text::timestamptz, $19, $20, $21, $22)
"""
PG_INSERT_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, upstream_model, status,
    reason, latency_s, price, credits, width, height, image_bytes, image_sha256, params, reused)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
    $18::int <> 0)
"""
PG_INSERT_IMAGE = """
INSERT INTO panel_images (comparison_id, idx, mime_type, data) VALUES ($1, $2, $3, $4)
"""
PG_IMAGES = "SELECT idx, mime_type, data FROM panel_images WHERE comparison_id = $1"
PG_COMPARISON = "SELECT * FROM comparisons WHERE id = $1"
PG_COMPARISON_BY_MESSAGE = "SELECT * FROM comparisons WHERE message_id = $1"
PG_PANELS = f"""
SELECT p.*, {PANEL_TEXT_COLUMNS}
FROM panels p LEFT JOIN panel_text t ON t.comparison_id = p.comparison_id AND t.idx = p.idx
WHERE p.comparison_id = $1 ORDER BY p.idx
"""
PG_ATTACH_MESSAGE = """
UPDATE comparisons SET channel_id = $2, message_id = $3, vote_deadline = $4, posted_at = $5,
    delivery = 'posted'
WHERE id = $1 AND delivery = 'pending'
"""
PG_MARK_UNDELIVERED = """
UPDATE comparisons SET delivery = 'failed', refunded = refunded + charged, charged = 0
WHERE id = $1 AND delivery = 'pending'
"""
PG_UNDELIVERED_PANELS = "UPDATE panels SET credits = 0 WHERE comparison_id = $1"
PG_STALE_PENDING = """
SELECT id, hold_id FROM comparisons WHERE delivery = 'pending' AND created_at <= $1
ORDER BY created_at
"""
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
    #: carried over from the parent comparison (a reroll or swap): shown, not paid again
    reused: bool = False
    #: what the OCR read when the prompt quoted text (None: not measured)
    text: TextAccuracy | None = None


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
    delivery: str = "posted"
    kind: str = "compare"
    parent_id: str | None = None
    hold_id: int | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(value: str | datetime) -> datetime:
    """A stored time: ISO text from SQLite, a datetime from PostgreSQL."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordRows:
    """A comparison's rows, built on the event loop and written inside another transaction."""

    comparison: tuple[Any, ...]
    panels: tuple[tuple[Any, ...], ...]
    images: tuple[tuple[Any, ...], ...] = ()
    #: what the OCR read per panel when the prompt quoted text (empty: not measured)
    text: tuple[TextAccuracy | None, ...] = ()

    def write_sqlite(self, conn: sqlite3.Connection) -> None:
        """Insert the rows inside the caller's SQLite transaction."""
        write_record(conn, self)

    async def write_postgres(self, conn: PgConnection) -> None:
        """Insert the rows inside the caller's PostgreSQL transaction."""
        await conn.execute(PG_INSERT_COMPARISON, *self.comparison)
        await conn.executemany(PG_INSERT_PANEL, self.panels)
        await conn.executemany(PG_INSERT_IMAGE, self.images)
        if self.text:
            await write_text_accuracy_pg(conn, self.comparison[0], self.text)


@dataclass(frozen=True, slots=True)
class Undelivered:
    """Mark a pending comparison failed, nothing kept: runs inside its refund's transaction."""

    comparison_id: str

    def write_sqlite(self, conn: sqlite3.Connection) -> None:
        """Mark it on SQLite, inside the caller's transaction."""
        mark_undelivered(conn, self.comparison_id)

    async def write_postgres(self, conn: PgConnection) -> None:
        """Mark it on PostgreSQL, inside the caller's transaction."""
        if await conn.execute(PG_MARK_UNDELIVERED, self.comparison_id) == "UPDATE 1":
            await conn.execute(PG_UNDELIVERED_PANELS, self.comparison_id)


def record_rows(
    plan: Plan,
    outcomes: Sequence[PanelOutcome],
    composite: Composite,
    *,
    guild_id: int,
    user_id: int,
    channel_id: int | None = None,
    message_id: int | None = None,
    vote_deadline: datetime | None = None,
    now: datetime | None = None,
    delivery: str = "pending",
    kind: str = "compare",
    parent_id: str | None = None,
    hold_id: int | None = None,
    text: Sequence[TextAccuracy | None] = (),
) -> RecordRows:
    """The comparison and every panel (model, adapter, parameters, latency, credits, hash)."""
    charged = sum(o.panel.credits for o in outcomes if o.ok)
    refunded = sum(o.panel.credits for o in outcomes if not o.ok)
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
        charged,
        refunded,
        composite.format,
        len(composite.data),
        _sha(composite.data),
        _iso(vote_deadline) if vote_deadline else None,
        _iso(now or datetime.now(UTC)),
        delivery,
        kind,
        parent_id,
        hold_id,
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
    for o in outcomes:
        image = o.result.image if o.result else None
        panel_rows.append(
            (
                plan.id,
                o.panel.index,
                o.panel.letter,
                o.panel.model.id,
                o.panel.label,
                o.panel.reused.adapter if o.panel.reused else o.panel.route.adapter.name,
                o.result.upstream_model if o.result else o.panel.route.target.upstream_id,
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
                int(o.panel.reused is not None),
            )
        )
    images = tuple(
        (plan.id, o.panel.index, o.result.mime_type, o.result.image)
        for o in outcomes
        if o.ok and o.result is not None
    )
    return RecordRows(comparison_row, tuple(panel_rows), images, tuple(text))


def write_record(conn: sqlite3.Connection, rows: RecordRows) -> None:
    """Insert a comparison and its panels (inside the caller's transaction)."""
    conn.execute(SQL_INSERT_COMPARISON, rows.comparison)
    conn.executemany(SQL_INSERT_PANEL, rows.panels)
    conn.executemany(SQL_INSERT_IMAGE, rows.images)
    if rows.text:
        write_text_accuracy(conn, rows.comparison[0], rows.text)


async def save_record(db: AnyDatabase, rows: RecordRows) -> None:
    """Insert a comparison and its panels in their own transaction (nothing was charged)."""
    await run_step(db, rows)


async def panel_images(db: AnyDatabase, comparison_id: str) -> dict[int, tuple[str, bytes]]:
    """Each stored panel image of a comparison: index -> (MIME type, bytes)."""
    rows: Sequence[Row]
    if isinstance(db, PostgresDatabase):
        rows = await db.fetch(PG_IMAGES, comparison_id)
    else:
        rows = await db.fetchall(SQL_IMAGES, (comparison_id,))
    return {row["idx"]: (row["mime_type"], bytes(row["data"])) for row in rows}


async def attach_message(
    db: AnyDatabase,
    comparison_id: str,
    *,
    channel_id: int | None,
    message_id: int | None,
    vote_deadline: datetime | None,
    now: datetime | None = None,
) -> bool:
    """The member has the result: store where it was posted; False if it was not pending."""
    if isinstance(db, PostgresDatabase):
        status = await db.execute(
            PG_ATTACH_MESSAGE,
            comparison_id,
            channel_id,
            message_id,
            vote_deadline,
            now or datetime.now(UTC),
        )
        return status == "UPDATE 1"
    params = {
        "id": comparison_id,
        "channel": channel_id,
        "message": message_id,
        "deadline": _iso(vote_deadline) if vote_deadline else None,
        "now": _iso(now or datetime.now(UTC)),
    }
    return await db.execute(SQL_ATTACH_MESSAGE, params) == 1


def mark_undelivered(conn: sqlite3.Connection, comparison_id: str) -> None:
    """The result never reached the member: nothing kept (inside the refund's transaction)."""
    if conn.execute(SQL_MARK_UNDELIVERED, (comparison_id,)).rowcount == 1:
        conn.execute(SQL_UNDELIVERED_PANELS, (comparison_id,))


async def stale_pending(db: AnyDatabase, cutoff: datetime) -> list[tuple[str, int | None]]:
    """Comparisons stored before ``cutoff`` that were never posted: (id, hold id)."""
    rows: Sequence[Row]
    if isinstance(db, PostgresDatabase):
        rows = await db.fetch(PG_STALE_PENDING, cutoff)
    else:
        rows = await db.fetchall(SQL_STALE_PENDING, (_iso(cutoff),))
    return [(row["id"], row["hold_id"]) for row in rows]


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
        delivery=row["delivery"],
        kind=row["kind"],
        parent_id=row["parent_id"],
        hold_id=row["hold_id"],
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
                reused=bool(p["reused"]),
                text=text_from_row(p),
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
