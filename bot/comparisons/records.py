"""Stores every comparison, its panels and its message, for votes, follow-ups and audits."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.comparisons.service import ComparisonResult
from bot.db import Database
from bot.measure.ocr import TextAccuracy
from bot.measure.store import PANEL_TEXT_COLUMNS, text_from_row, write_text_accuracy

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
SQL_PANELS = f"""
SELECT p.*, {PANEL_TEXT_COLUMNS}
FROM panels p LEFT JOIN panel_text t ON t.comparison_id = p.comparison_id AND t.idx = p.idx
WHERE p.comparison_id = ? ORDER BY p.idx
"""
SQL_MARK_DELETED = (
    "UPDATE comparisons SET state = 'deleted', closed_at = ? WHERE id = ? AND state <> 'deleted'"
)


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def record_comparison(
    db: Database,
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

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(SQL_INSERT_COMPARISON, comparison_row)
        conn.executemany(SQL_INSERT_PANEL, panel_rows)
        write_text_accuracy(conn, plan.id, result.verdict.text)

    await db.run_in_transaction(write)


def _parse(row: sqlite3.Row, panels: list[sqlite3.Row]) -> ComparisonRecord:
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
        vote_deadline=datetime.fromisoformat(deadline) if deadline else None,
        created_at=datetime.fromisoformat(row["created_at"]),
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
                text=text_from_row(p),
            )
            for p in panels
        ),
    )


async def _load(db: Database, sql: str, key: object) -> ComparisonRecord | None:
    def read(conn: sqlite3.Connection) -> ComparisonRecord | None:
        row = conn.execute(sql, (key,)).fetchone()
        if row is None:
            return None
        return _parse(row, conn.execute(SQL_PANELS, (row["id"],)).fetchall())

    return await db.run_read(read)


async def get_comparison(db: Database, comparison_id: str) -> ComparisonRecord | None:
    """The stored comparison with this id."""
    return await _load(db, SQL_COMPARISON, comparison_id)


async def get_comparison_by_message(db: Database, message_id: int) -> ComparisonRecord | None:
    """The stored comparison posted as this message."""
    return await _load(db, SQL_COMPARISON_BY_MESSAGE, message_id)


async def mark_deleted(db: Database, comparison_id: str, *, now: datetime | None = None) -> bool:
    """Mark a comparison deleted (its message was removed); False when it already was."""
    return await db.execute(SQL_MARK_DELETED, (_iso(now or datetime.now(UTC)), comparison_id)) == 1
