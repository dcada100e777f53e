"""The ledger audit: every balance equals its ledger sum, and every hold's money reconciles."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from bot.db.storage import Row


@dataclass(frozen=True)
class Discrepancy:
    """One broken invariant, with a sentence saying what and where."""

    kind: str
    detail: str
    guild_id: int | None = None
    user_id: int | None = None
    hold_id: int | None = None

    def __str__(self) -> str:
        return self.detail


SQL_AUDIT_BALANCES = """
SELECT a.guild_id, a.user_id, a.balance, COALESCE(l.total, 0) AS ledger_total
FROM accounts AS a
LEFT JOIN (
    SELECT guild_id, user_id, SUM(delta) AS total FROM ledger GROUP BY guild_id, user_id
) AS l ON l.guild_id = a.guild_id AND l.user_id = a.user_id
WHERE a.balance <> COALESCE(l.total, 0) OR a.balance < 0 OR typeof(a.balance) <> 'integer'
"""
SQL_AUDIT_ORPHAN_ROWS = """
SELECT l.guild_id, l.user_id, COUNT(*) AS n
FROM ledger AS l
LEFT JOIN accounts AS a ON a.guild_id = l.guild_id AND a.user_id = l.user_id
WHERE a.user_id IS NULL
GROUP BY l.guild_id, l.user_id
"""
SQL_AUDIT_UNLINKED_ROWS = """
SELECT id, guild_id, user_id, kind FROM ledger
WHERE kind IN ('spend', 'refund', 'recovery') AND hold_id IS NULL
"""
SQL_AUDIT_HOLDS = """
WITH money AS (
    SELECT l.hold_id,
           -SUM(CASE WHEN l.kind = 'spend' THEN l.delta ELSE 0 END) AS spent,
           SUM(CASE WHEN l.kind IN ('refund', 'recovery') THEN l.delta ELSE 0 END) AS returned,
           SUM(l.kind NOT IN ('spend', 'refund', 'recovery')
               OR l.guild_id <> h.guild_id OR l.user_id <> h.user_id) AS stray
    FROM ledger AS l JOIN holds AS h ON h.id = l.hold_id
    GROUP BY l.hold_id
), items AS (
    SELECT hold_id, SUM(credits) AS total, COUNT(*) AS n, SUM(outcome IS NULL) AS pending,
           SUM(CASE WHEN outcome = 'refunded' THEN credits ELSE 0 END) AS refunded
    FROM hold_items GROUP BY hold_id
)
SELECT h.id, h.guild_id, h.user_id, h.state, h.amount, h.charged, h.refunded, h.closed_at,
       COALESCE(m.spent, 0) AS spent, COALESCE(m.returned, 0) AS returned,
       COALESCE(m.stray, 0) AS stray, COALESCE(i.total, 0) AS items_total,
       COALESCE(i.n, 0) AS items, COALESCE(i.pending, 0) AS pending,
       COALESCE(i.refunded, 0) AS items_refunded
FROM holds AS h
LEFT JOIN money AS m ON m.hold_id = h.id
LEFT JOIN items AS i ON i.hold_id = h.id
ORDER BY h.id
"""


def _hold_problems(row: Row) -> list[str]:
    """Say what is wrong with one hold's figures (nothing, for a healthy hold)."""
    problems: list[str] = []
    amount, spent, returned = row["amount"], row["spent"], row["returned"]
    if spent != amount:
        problems.append(f"took {amount:,} credits but its spend rows total {spent:,}")
    if row["items_total"] != amount:
        problems.append(f"has line items totalling {row['items_total']:,}, not {amount:,}")
    if row["stray"]:
        problems.append(f"has {row['stray']} ledger rows of another kind or member")
    if row["state"] == "open":
        if returned or row["charged"] or row["refunded"] or row["closed_at"] is not None:
            problems.append("is open but has already been settled or refunded")
        if row["pending"] != row["items"]:
            problems.append("is open but some of its line items are already closed")
        return problems
    if row["charged"] + row["refunded"] != amount:
        problems.append(
            f"is {row['state']} with {row['charged']:,} charged + {row['refunded']:,} refunded "
            f"≠ {amount:,}"
        )
    if returned != row["refunded"]:
        problems.append(
            f"records {row['refunded']:,} refunded but its refund rows total {returned:,}"
        )
    if row["items_refunded"] != row["refunded"]:
        problems.append(f"has refunded line items totalling {row['items_refunded']:,}")
    if row["pending"]:
        problems.append(f"is {row['state']} but {row['pending']} line items have no outcome")
    return problems


def discrepancies(
    balances: Iterable[Row], orphans: Iterable[Row], unlinked: Iterable[Row], holds: Iterable[Row]
) -> list[Discrepancy]:
    """Turn the four audit queries' rows (either backend) into discrepancies."""
    found: list[Discrepancy] = []
    for row in balances:
        guild, user = row["guild_id"], row["user_id"]
        found.append(
            Discrepancy(
                "balance",
                f"Guild {guild}, member {user}: balance {row['balance']} but the ledger sums to "
                f"{row['ledger_total']}.",
                guild,
                user,
            )
        )
    for row in orphans:
        guild, user = row["guild_id"], row["user_id"]
        text = f"Guild {guild}, member {user}: {row['n']} ledger rows but no account."
        found.append(Discrepancy("orphan", text, guild, user))
    for row in unlinked:
        guild, user = row["guild_id"], row["user_id"]
        text = f"Ledger row #{row['id']} ({row['kind']}) is not linked to a reservation."
        found.append(Discrepancy("unlinked", text, guild, user))
    for row in holds:
        for problem in _hold_problems(row):
            text = f"Reservation #{row['id']} (guild {row['guild_id']}, member {row['user_id']}) "
            found.append(
                Discrepancy(
                    "hold", text + problem + ".", row["guild_id"], row["user_id"], row["id"]
                )
            )
    return found


def audit(conn: sqlite3.Connection) -> list[Discrepancy]:
    """Check every invariant in one snapshot; return the discrepancies (none when healthy)."""
    return discrepancies(
        conn.execute(SQL_AUDIT_BALANCES).fetchall(),
        conn.execute(SQL_AUDIT_ORPHAN_ROWS).fetchall(),
        conn.execute(SQL_AUDIT_UNLINKED_ROWS).fetchall(),
        conn.execute(SQL_AUDIT_HOLDS).fetchall(),
    )
