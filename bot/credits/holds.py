"""Holds: credits reserved for a running comparison, then settled or released exactly once.

Transaction bodies like those in ``bot.credits.accounts``: run on the database thread inside
one ``BEGIN IMMEDIATE`` transaction, returning (not raising) refusals.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.credits.accounts import SQL_ADD_UNCAPPED, SQL_DEBIT, balance_of, ensure_account, ledger_row
from bot.credits.rules import (
    HoldNotFound,
    InsufficientCredits,
    LedgerError,
    OperatorLimits,
    price_text,
)

RECOVERY_REASON = "refunded after restart"
DEFAULT_REFUND_REASON = "did not deliver"


class HoldState(StrEnum):
    """Where a reservation stands."""

    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"


@dataclass(frozen=True)
class LineItem:
    """One model's share of a comparison's price."""

    model_id: str
    label: str
    credits: int


@dataclass(frozen=True)
class Hold:
    """Credits taken for a comparison that is still running (or was, before it closed)."""

    id: int
    guild_id: int
    user_id: int
    comparison_id: str
    amount: int
    items: tuple[LineItem, ...]
    state: HoldState
    balance_after: int


@dataclass(frozen=True)
class Refund:
    """Credits given back for one model that did not deliver."""

    model_id: str
    label: str
    credits: int
    reason: str


@dataclass(frozen=True)
class Settlement:
    """How a hold closed; ``already_closed`` means this call changed nothing."""

    hold_id: int
    state: HoldState
    charged: int
    refunded: int
    refunds: tuple[Refund, ...]
    already_closed: bool
    balance: int

    @property
    def message(self) -> str:
        """A plain sentence for logs and replies about a repeated settle/release."""
        if self.already_closed:
            return f"Reservation #{self.hold_id} was already {self.state}; nothing changed."
        charged, refunded = f"{self.charged:,} charged", f"{self.refunded:,} refunded"
        return f"Reservation #{self.hold_id} {self.state}: {charged}, {refunded}."


SQL_INSERT_HOLD = """
INSERT INTO holds (guild_id, user_id, comparison_id, amount, created_at)
VALUES (?, ?, ?, ?, ?)
"""
SQL_INSERT_HOLD_ITEM = """
INSERT INTO hold_items (hold_id, position, model_id, label, credits) VALUES (?, ?, ?, ?, ?)
"""
SQL_SELECT_HOLD = """
SELECT id, guild_id, user_id, comparison_id, amount, state, charged, refunded
FROM holds WHERE id = ?
"""
SQL_SELECT_HOLD_ITEMS = """
SELECT model_id, label, credits, outcome, reason FROM hold_items WHERE hold_id = ? ORDER BY position
"""
# The state change is the exactly-once guard: only the call that moves the hold out of 'open'
# goes on to refund anything.
SQL_CLOSE_HOLD = """
UPDATE holds SET state = :state, charged = :charged, refunded = :refunded, closed_at = :now
WHERE id = :hold_id AND state = 'open'
"""
SQL_SET_ITEM_OUTCOME = """
UPDATE hold_items SET outcome = ?, reason = ? WHERE hold_id = ? AND model_id = ?
"""
# Stale: open, and neither made nor marked alive (``keep_open``) since the cutoff.
SQL_STALE_HOLDS = """
SELECT id FROM holds
WHERE state = 'open' AND created_at <= :cutoff AND (kept_at IS NULL OR kept_at <= :cutoff)
ORDER BY id
"""
# Only open holds, only forward: a closed hold is never touched, and a mark from a process whose
# clock lags cannot pull a hold back into the sweep's reach.
SQL_KEEP_OPEN = """
UPDATE holds SET kept_at = max(COALESCE(kept_at, created_at), :now)
WHERE state = 'open' AND id IN (SELECT value FROM json_each(:ids))
RETURNING id
"""


def reserve(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    items: tuple[LineItem, ...],
    comparison_id: str,
    now: str,
    limits: OperatorLimits | None = None,
) -> Hold | LedgerError:
    """Debit a comparison's price and open its hold, or return InsufficientCredits."""
    amount = sum(item.credits for item in items)
    debit = {"guild_id": guild_id, "user_id": user_id, "amount": amount}
    # Debit first: the account nearly always exists, so only a debit that finds no row (or a
    # free comparison) pays for the first-touch check, and then tries once more.
    if amount == 0 or conn.execute(SQL_DEBIT, debit).rowcount != 1:
        ensure_account(conn, guild_id, user_id, now, limits)
        if amount and conn.execute(SQL_DEBIT, debit).rowcount != 1:
            return InsufficientCredits(balance_of(conn, guild_id, user_id), amount, items)
    hold_id = conn.execute(
        SQL_INSERT_HOLD, (guild_id, user_id, comparison_id, amount, now)
    ).lastrowid
    assert hold_id is not None
    conn.executemany(
        SQL_INSERT_HOLD_ITEM,
        [(hold_id, n, item.model_id, item.label, item.credits) for n, item in enumerate(items)],
    )
    if amount:
        ledger_row(
            conn,
            guild_id,
            user_id,
            -amount,
            "spend",
            now,
            reason=price_text(items),
            actor_id=user_id,
            comparison_id=comparison_id,
            hold_id=hold_id,
        )
    balance = balance_of(conn, guild_id, user_id)
    return Hold(hold_id, guild_id, user_id, comparison_id, amount, items, HoldState.OPEN, balance)


def refund_reasons(
    items: Sequence[LineItem], delivered: Collection[str], reasons: Mapping[str, str]
) -> dict[str, str]:
    """Map each model that did not deliver to its refund reason; refuse ids not in the hold."""
    known = {item.model_id for item in items}
    unknown = (set(delivered) | set(reasons)) - known
    if unknown:
        raise ValueError(f"models not in this hold: {sorted(unknown)}")
    contradictory = set(delivered) & set(reasons)
    if contradictory:
        raise ValueError(f"models both delivered and refunded: {sorted(contradictory)}")
    return {
        item.model_id: reasons.get(item.model_id, DEFAULT_REFUND_REASON)
        for item in items
        if item.model_id not in delivered
    }


def _as_closed(conn: sqlite3.Connection, hold: sqlite3.Row, rows: list[sqlite3.Row]) -> Settlement:
    """The settlement recorded earlier, for a repeated settle or release."""
    refunds = tuple(
        Refund(row["model_id"], row["label"], row["credits"], row["reason"] or "")
        for row in rows
        if row["outcome"] == "refunded"
    )
    balance = balance_of(conn, hold["guild_id"], hold["user_id"])
    state = HoldState(hold["state"])
    return Settlement(hold["id"], state, hold["charged"], hold["refunded"], refunds, True, balance)


def close_hold(
    conn: sqlite3.Connection,
    hold_id: int,
    state: HoldState,
    now: str,
    *,
    delivered: Collection[str] | None = None,
    reasons: Mapping[str, str] | None = None,
    kind: str = "refund",
    release_reason: str = "",
) -> Settlement | LedgerError:
    """Settle or release a hold, exactly once.

    Settle passes ``delivered`` (and ``reasons`` for the others) and writes one refund row per
    refunded model. Release and recovery pass ``delivered=None``: every model is refunded with
    a single ledger row of ``kind`` saying ``release_reason``.
    """
    hold = conn.execute(SQL_SELECT_HOLD, (hold_id,)).fetchone()
    if hold is None:
        return HoldNotFound(hold_id)
    rows = conn.execute(SQL_SELECT_HOLD_ITEMS, (hold_id,)).fetchall()
    items = [LineItem(row["model_id"], row["label"], row["credits"]) for row in rows]
    if delivered is None:
        refund_for = {item.model_id: release_reason for item in items}
    else:
        refund_for = refund_reasons(items, delivered, reasons or {})
    if hold["state"] != HoldState.OPEN:
        return _as_closed(conn, hold, rows)
    refunds = tuple(
        Refund(item.model_id, item.label, item.credits, refund_for[item.model_id])
        for item in items
        if item.model_id in refund_for
    )
    refunded = sum(refund.credits for refund in refunds)
    charged = hold["amount"] - refunded
    params = {"hold_id": hold_id, "state": state, "now": now}
    if (
        conn.execute(SQL_CLOSE_HOLD, params | {"charged": charged, "refunded": refunded}).rowcount
        != 1
    ):
        return _as_closed(conn, hold, rows)  # unreachable under the write lock
    conn.executemany(
        SQL_SET_ITEM_OUTCOME,
        [
            ("refunded", refund_for[item.model_id], hold_id, item.model_id)
            if item.model_id in refund_for
            else ("charged", None, hold_id, item.model_id)
            for item in items
        ],
    )
    guild_id, user_id = hold["guild_id"], hold["user_id"]
    link = {"comparison_id": hold["comparison_id"], "hold_id": hold_id}
    if refunded:
        conn.execute(
            SQL_ADD_UNCAPPED, {"guild_id": guild_id, "user_id": user_id, "amount": refunded}
        )
    if delivered is None and refunded:
        ledger_row(conn, guild_id, user_id, refunded, kind, now, reason=release_reason, **link)
    elif delivered is not None:
        for refund in refunds:
            if refund.credits:
                why = f"{refund.label}: {refund.reason}"
                ledger_row(
                    conn,
                    guild_id,
                    user_id,
                    refund.credits,
                    kind,
                    now,
                    reason=why,
                    model_id=refund.model_id,
                    **link,
                )
    balance = balance_of(conn, guild_id, user_id)
    return Settlement(hold_id, state, charged, refunded, refunds, False, balance)


def recover_stale(conn: sqlite3.Connection, cutoff: str, now: str) -> list[int]:
    """Release every hold open, and not marked alive, since ``cutoff``; return their ids."""
    stale = [row[0] for row in conn.execute(SQL_STALE_HOLDS, {"cutoff": cutoff})]
    for hold_id in stale:
        close_hold(
            conn, hold_id, HoldState.RELEASED, now, kind="recovery", release_reason=RECOVERY_REASON
        )
    return stale


def keep_open(conn: sqlite3.Connection, hold_ids: tuple[int, ...], now: str) -> list[int]:
    """Mark the open ones among ``hold_ids`` alive as of ``now``; return their ids."""
    rows = conn.execute(SQL_KEEP_OPEN, {"now": now, "ids": json.dumps(hold_ids)}).fetchall()
    return sorted(row[0] for row in rows)


SQL_UNSETTLE_HOLD = """
UPDATE holds SET state = 'released', charged = 0, refunded = amount, closed_at = :now
WHERE id = :hold_id AND state = 'settled'
"""
SQL_CHARGED_ITEMS = """
SELECT model_id, label, credits FROM hold_items
WHERE hold_id = ? AND outcome = 'charged' ORDER BY position
"""


def unsettle(
    conn: sqlite3.Connection, hold_id: int, reason: str, now: str
) -> Settlement | LedgerError:
    """Give back what a settled hold kept (its result never reached the member); exactly once.

    The hold ends released, every line item refunded, one refund row per model that had been
    charged, so the audit reconciles it like any other refund.
    """
    hold = conn.execute(SQL_SELECT_HOLD, (hold_id,)).fetchone()
    if hold is None:
        return HoldNotFound(hold_id)
    if hold["state"] != HoldState.SETTLED:
        rows = conn.execute(SQL_SELECT_HOLD_ITEMS, (hold_id,)).fetchall()
        return _as_closed(conn, hold, rows)
    charged = conn.execute(SQL_CHARGED_ITEMS, (hold_id,)).fetchall()
    if conn.execute(SQL_UNSETTLE_HOLD, {"hold_id": hold_id, "now": now}).rowcount != 1:
        rows = conn.execute(SQL_SELECT_HOLD_ITEMS, (hold_id,)).fetchall()
        return _as_closed(conn, hold, rows)  # unreachable under the write lock
    guild_id, user_id = hold["guild_id"], hold["user_id"]
    conn.executemany(
        SQL_SET_ITEM_OUTCOME, [("refunded", reason, hold_id, row["model_id"]) for row in charged]
    )
    total = sum(row["credits"] for row in charged)
    if total:
        conn.execute(SQL_ADD_UNCAPPED, {"guild_id": guild_id, "user_id": user_id, "amount": total})
    link = {"comparison_id": hold["comparison_id"], "hold_id": hold_id}
    for row in charged:
        if row["credits"]:
            ledger_row(
                conn,
                guild_id,
                user_id,
                row["credits"],
                "refund",
                now,
                reason=f"{row['label']}: {reason}",
                model_id=row["model_id"],
                **link,
            )
    refunds = tuple(Refund(r["model_id"], r["label"], r["credits"], reason) for r in charged)
    balance = balance_of(conn, guild_id, user_id)
    return Settlement(hold_id, HoldState.RELEASED, 0, hold["amount"], refunds, False, balance)
