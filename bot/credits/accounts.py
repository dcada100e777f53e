"""Accounts and ledger rows: first touch, daily allowance, moderator grants and revokes.

These are transaction bodies: plain functions of a ``sqlite3.Connection`` run inside one
``BEGIN IMMEDIATE`` transaction on the database thread (``Database.run_in_transaction``). A
refusal is *returned* as a ``LedgerError`` rather than raised, so the transaction still commits
what came before it (the first-touch account and its starter grant); ``Ledger`` raises it after.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.credits.rules import (
    MAX_BALANCE,
    BalanceLimit,
    DailyAlreadyClaimed,
    DailyDisabled,
    LedgerError,
    NothingToRevoke,
    OperatorLimits,
    OverGrantLimit,
    OverModeratorDailyCap,
    RevokeBeyondBalance,
    SelfGrant,
)
from bot.guild_settings import load_guild_settings

MODERATOR_CAP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class DailyClaim:
    """A successful daily claim."""

    amount: int
    balance: int
    next_due: datetime


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 text, so that text order is time order in SQL."""
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- accounts -------------------------------------------------------------------------------

SQL_CREATE_ACCOUNT = """
INSERT OR IGNORE INTO accounts (guild_id, user_id, balance, created_at) VALUES (?, ?, 0, ?)
"""
SQL_BALANCE = "SELECT balance FROM accounts WHERE guild_id = ? AND user_id = ?"
# Daily allowances and grants stop at MAX_BALANCE ...
SQL_CREDIT = """
UPDATE accounts SET balance = balance + :amount
WHERE guild_id = :guild_id AND user_id = :user_id AND balance <= :ceiling
"""
# ... while starter grants (at most MAX_AMOUNT, once) and refunds (which only return what was
# taken) always land, so a refund can never fail.
SQL_ADD_UNCAPPED = """
UPDATE accounts SET balance = balance + :amount WHERE guild_id = :guild_id AND user_id = :user_id
"""
# The one way credits leave an account: the WHERE clause is the balance check.
SQL_DEBIT = """
UPDATE accounts SET balance = balance - :amount
WHERE guild_id = :guild_id AND user_id = :user_id AND balance >= :amount
"""
SQL_INSERT_LEDGER = """
INSERT INTO ledger (guild_id, user_id, delta, kind, reason, actor_id, comparison_id, hold_id,
                    model_id, created_at)
VALUES (:guild_id, :user_id, :delta, :kind, :reason, :actor_id, :comparison_id, :hold_id,
        :model_id, :now)
"""


def ledger_row(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    delta: int,
    kind: str,
    now: str,
    *,
    reason: str = "",
    actor_id: int | None = None,
    comparison_id: str | None = None,
    hold_id: int | None = None,
    model_id: str | None = None,
) -> None:
    """Append one row to the ledger (in the caller's transaction, beside its balance change)."""
    conn.execute(
        SQL_INSERT_LEDGER,
        {
            "guild_id": guild_id,
            "user_id": user_id,
            "delta": delta,
            "kind": kind,
            "reason": reason,
            "actor_id": actor_id,
            "comparison_id": comparison_id,
            "hold_id": hold_id,
            "model_id": model_id,
            "now": now,
        },
    )


def balance_of(conn: sqlite3.Connection, guild_id: int, user_id: int) -> int:
    """Return the balance, 0 for a member who has no account yet."""
    row = conn.execute(SQL_BALANCE, (guild_id, user_id)).fetchone()
    return 0 if row is None else int(row[0])


def _credit(
    conn: sqlite3.Connection, guild_id: int, user_id: int, amount: int
) -> BalanceLimit | None:
    params = {"guild_id": guild_id, "user_id": user_id, "amount": amount}
    if conn.execute(SQL_CREDIT, params | {"ceiling": MAX_BALANCE - amount}).rowcount == 1:
        return None
    return BalanceLimit(balance_of(conn, guild_id, user_id), amount)


def ensure_account(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    now: str,
    limits: OperatorLimits | None = None,
) -> int:
    """Create the account on first touch with its starter grant (exactly once); return balance.

    The starter grant is the server's within the operator's ceiling, so a value saved before
    the ceiling existed cannot mint more.
    """
    # INSERT OR IGNORE under the write lock: of two racing first touches only one inserts,
    # and only the one that inserted pays the starter grant.
    if conn.execute(SQL_CREATE_ACCOUNT, (guild_id, user_id, now)).rowcount == 1:
        limits = limits or OperatorLimits.unlimited()
        starter = limits.starter_grant(load_guild_settings(conn, guild_id).starter_grant)
        if starter > 0:
            conn.execute(
                SQL_ADD_UNCAPPED, {"guild_id": guild_id, "user_id": user_id, "amount": starter}
            )
            ledger_row(conn, guild_id, user_id, starter, "starter", now, reason="starter grant")
        return starter
    return balance_of(conn, guild_id, user_id)


# --- allowances and moderation --------------------------------------------------------------

SQL_LAST_DAILY = "SELECT last_daily_at FROM accounts WHERE guild_id = ? AND user_id = ?"
# Claimed-this-period and the balance ceiling are both in the WHERE clause, so two claims
# racing each other cannot both pass.
SQL_CLAIM_DAILY = """
UPDATE accounts SET balance = balance + :amount, last_daily_at = :now
WHERE guild_id = :guild_id AND user_id = :user_id
  AND (last_daily_at IS NULL OR last_daily_at <= :cutoff) AND balance <= :ceiling
"""
SQL_GRANTED_SINCE = """
SELECT COALESCE(SUM(delta), 0) FROM ledger
WHERE guild_id = ? AND actor_id = ? AND kind = 'grant' AND created_at > ?
"""


def claim_daily(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    now: datetime,
    limits: OperatorLimits | None = None,
) -> DailyClaim | LedgerError:
    """Credit the daily allowance (within the operator's ceiling) once the period has passed."""
    limits = limits or OperatorLimits.unlimited()
    stamp = iso(now)
    ensure_account(conn, guild_id, user_id, stamp, limits)
    settings = load_guild_settings(conn, guild_id)
    amount = limits.daily_allowance(settings.daily_allowance)
    period = timedelta(hours=settings.daily_period_hours)
    if amount == 0:
        return DailyDisabled()
    cutoff = iso(now - period)
    claim = {"guild_id": guild_id, "user_id": user_id, "amount": amount, "now": stamp}
    if (
        conn.execute(
            SQL_CLAIM_DAILY, claim | {"cutoff": cutoff, "ceiling": MAX_BALANCE - amount}
        ).rowcount
        != 1
    ):
        last = conn.execute(SQL_LAST_DAILY, (guild_id, user_id)).fetchone()[0]
        if last is not None and last > cutoff:
            return DailyAlreadyClaimed(datetime.fromisoformat(last) + period, now)
        return BalanceLimit(balance_of(conn, guild_id, user_id), amount)
    ledger_row(
        conn, guild_id, user_id, amount, "daily", stamp, reason="daily allowance", actor_id=user_id
    )
    return DailyClaim(amount, balance_of(conn, guild_id, user_id), now + period)


def grant(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    amount: int,
    reason: str,
    actor_id: int,
    now: datetime,
    limits: OperatorLimits | None = None,
) -> int | LedgerError:
    """Credit a validated amount within the per-grant maximum and the moderator's 24 h cap.

    Both caps are the server's within the operator's ``limits``; nobody grants to themselves.
    """
    if actor_id == user_id:
        return SelfGrant()
    limits = limits or OperatorLimits.unlimited()
    stamp = iso(now)
    ensure_account(conn, guild_id, user_id, stamp, limits)
    settings = load_guild_settings(conn, guild_id)
    max_grant = limits.grant_cap(settings.max_grant)
    if amount > max_grant:
        return OverGrantLimit(amount, max_grant)
    cap = limits.moderator_cap(settings.mod_daily_cap)
    if cap:
        # Read-then-check is safe here: BEGIN IMMEDIATE holds the write lock, so no other
        # grant can land between this sum and the insert below.
        window_start = iso(now - MODERATOR_CAP_WINDOW)
        used = conn.execute(SQL_GRANTED_SINCE, (guild_id, actor_id, window_start)).fetchone()[0]
        if used + amount > cap:
            return OverModeratorDailyCap(amount, cap, used)
    refused = _credit(conn, guild_id, user_id, amount)
    if refused is not None:
        return refused
    ledger_row(conn, guild_id, user_id, amount, "grant", stamp, reason=reason, actor_id=actor_id)
    return balance_of(conn, guild_id, user_id)


def revoke(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    amount: int,
    reason: str,
    actor_id: int,
    now: datetime,
    limits: OperatorLimits | None = None,
) -> int | LedgerError:
    """Debit a validated amount, refusing (and saying how much is there) beyond the balance."""
    stamp = iso(now)
    # No first touch here: opening the account would pay its starter grant, and a revoke must
    # never raise a balance.
    if conn.execute(SQL_BALANCE, (guild_id, user_id)).fetchone() is None:
        return NothingToRevoke(amount)
    params = {"guild_id": guild_id, "user_id": user_id, "amount": amount}
    if conn.execute(SQL_DEBIT, params).rowcount != 1:
        return RevokeBeyondBalance(balance_of(conn, guild_id, user_id), amount)
    ledger_row(conn, guild_id, user_id, -amount, "revoke", stamp, reason=reason, actor_id=actor_id)
    return balance_of(conn, guild_id, user_id)
