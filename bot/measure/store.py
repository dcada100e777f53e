"""Stored text measurements, and each model's mean measured text accuracy on a server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.measure.ocr import TextAccuracy
from bot.measure.textmatch import Box, match

if TYPE_CHECKING:
    from bot.db import AnyDatabase
    from bot.db.postgres import PgConnection
    from bot.db.storage import Row

#: the panel_text columns (table alias t) a panel query adds for ``text_from_row``
PANEL_TEXT_COLUMNS = (
    "t.requested AS text_requested, t.read AS text_read, t.score AS text_score, "
    "t.exact AS text_exact, t.truncated AS text_truncated"
)
SQL_INSERT_PANEL_TEXT = """
INSERT INTO panel_text (comparison_id, idx, requested, read, score, exact, truncated)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
# The same comparisons the leaderboard rates: an open blind comparison stays out until it
# closes, or the board moving would give its models away.
SQL_TEXT_MEANS = """
SELECT p.model_id, avg(t.score), count(*), sum(t.exact)
FROM comparisons c
JOIN panels p ON p.comparison_id = c.id
JOIN panel_text t ON t.comparison_id = p.comparison_id AND t.idx = p.idx
WHERE c.guild_id = :guild AND c.state <> 'deleted' AND (c.demo = 0 OR :include_demo)
    AND NOT (c.blind = 1 AND c.state = 'open')
    AND (:use_case IS NULL OR c.use_case = :use_case)
GROUP BY p.model_id
"""
PG_INSERT_PANEL_TEXT = """
INSERT INTO panel_text (comparison_id, idx, requested, read, score, exact, truncated)
VALUES ($1, $2, $3, $4, $5, $6::int <> 0, $7::int <> 0)
"""
PG_TEXT_MEANS = """
SELECT p.model_id, avg(t.score), count(*), sum(t.exact::int)
FROM comparisons c
JOIN panels p ON p.comparison_id = c.id
JOIN panel_text t ON t.comparison_id = p.comparison_id AND t.idx = p.idx
WHERE c.guild_id = $1 AND c.state <> 'deleted' AND (NOT c.demo OR $3)
    AND NOT (c.blind AND c.state = 'open')
    AND ($2::text IS NULL OR c.use_case = $2)
GROUP BY p.model_id
"""


@dataclass(frozen=True, slots=True)
class TextRecord:
    """One model's measured text accuracy over a server's comparisons."""

    model_id: str
    mean: float
    images: int
    exact: int

    def text(self) -> str:
        """E.g. '92% (14)': the mean score and how many images it rests on."""
        return f"{self.mean:.0%} ({self.images})"


def _text_rows(
    comparison_id: str, text: Sequence[TextAccuracy | None]
) -> list[tuple[str, int, str, str, float, int, int]]:
    return [
        (
            comparison_id,
            idx,
            json.dumps(list(a.requested), ensure_ascii=False),
            json.dumps(list(a.read), ensure_ascii=False),
            a.score,
            int(a.exact),
            int(a.truncated),
        )
        for idx, a in enumerate(text)
        if a is not None and a.measured and a.score is not None
    ]


def write_text_accuracy(
    conn: sqlite3.Connection, comparison_id: str, text: Sequence[TextAccuracy | None]
) -> None:
    """Store each measured panel's reading (inside the caller's transaction)."""
    rows = _text_rows(comparison_id, text)
    if rows:
        conn.executemany(SQL_INSERT_PANEL_TEXT, rows)


async def write_text_accuracy_pg(
    conn: PgConnection, comparison_id: str, text: Sequence[TextAccuracy | None]
) -> None:
    """The same on PostgreSQL (inside the caller's transaction)."""
    rows = _text_rows(comparison_id, text)
    if rows:
        await conn.executemany(PG_INSERT_PANEL_TEXT, rows)


def text_from_row(row: Row) -> TextAccuracy | None:
    """The stored reading of a panel row joined with PANEL_TEXT_COLUMNS; None if not measured."""
    if row["text_score"] is None:
        return None
    requested = tuple(json.loads(row["text_requested"]))
    read = tuple(json.loads(row["text_read"]))
    return TextAccuracy(
        requested,
        read,
        score=float(row["text_score"]),
        exact=bool(row["text_exact"]),
        truncated=bool(row["text_truncated"]),
        # Each string's score again, from what was read for it (the sentence names the worst).
        parts=tuple(match(r, [Box(t)]).score for r, t in zip(requested, read, strict=False)),
    )


def _means(
    conn: sqlite3.Connection, *, guild_id: int, use_case: str | None, include_demo: bool
) -> dict[str, TextRecord]:
    params = {"guild": guild_id, "use_case": use_case, "include_demo": include_demo}
    return {
        model: TextRecord(model, float(mean), int(images), int(exact))
        for model, mean, images, exact in conn.execute(SQL_TEXT_MEANS, params)
    }


async def text_means(
    db: AnyDatabase, guild_id: int, use_case: str | None, *, include_demo: bool = False
) -> dict[str, TextRecord]:
    """Mean measured text accuracy per model on this server (one use case, or all)."""
    from bot.db import PostgresDatabase

    if isinstance(db, PostgresDatabase):
        rows = await db.fetch(PG_TEXT_MEANS, guild_id, use_case, include_demo)
        return {
            model: TextRecord(model, float(mean), int(images), int(exact))
            for model, mean, images, exact in rows
        }
    return await db.run_read(
        lambda conn: _means(conn, guild_id=guild_id, use_case=use_case, include_demo=include_demo)
    )


SQL_CHILD_TEXT_MEANS = """
SELECT p.model_id, avg(t.score)
FROM comparisons c
JOIN panels p ON p.comparison_id = c.id
JOIN panel_text t ON t.comparison_id = p.comparison_id AND t.idx = p.idx
WHERE c.parent_id = ? AND c.state <> 'deleted'
GROUP BY p.model_id
"""


async def child_text_means(db: AnyDatabase, parent_id: str) -> dict[str, float]:
    """Mean measured text accuracy per model over the comparisons made from ``parent_id``
    (a shoot-out's rounds); empty when none of them was measured."""
    from bot.db import PostgresDatabase

    if isinstance(db, PostgresDatabase):
        found = await db.fetch(SQL_CHILD_TEXT_MEANS.replace("?", "$1"), parent_id)
        return {row[0]: float(row[1]) for row in found}
    rows = await db.fetchall(SQL_CHILD_TEXT_MEANS, (parent_id,))
    return {row[0]: float(row[1]) for row in rows}
