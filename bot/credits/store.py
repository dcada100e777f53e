"""The ledger's storage interface and its SQLite implementation.

``LedgerStore`` is what ``Ledger`` needs from a backend: one method per ledger operation, each
one transaction, arguments already validated, refusals *returned* as a ``LedgerError`` (so that
what came before them in the transaction — a first-touch account and its starter grant — still
commits; ``Ledger`` raises them after). ``SqliteLedgerStore`` ships the transaction bodies in
``bot.credits.accounts`` / ``holds`` / ``audit`` to the database thread;
``bot.credits.postgres.PostgresLedgerStore`` is the asyncpg one.

Longer than the ~400-line guide on purpose: the interface and its SQLite implementation stay
side by side, so an operation is added to both at once.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from bot.credits import accounts, holds
from bot.credits.accounts import DailyClaim, iso
from bot.credits.audit import Discrepancy, audit
from bot.credits.holds import RECOVERY_REASON, Hold, HoldState, LineItem, Settlement
from bot.credits.rules import LedgerError, OperatorLimits
from bot.db import Database
from bot.db.storage import TransactionStep


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row as shown in a member's history."""

    id: int
    delta: int
    kind: str
    reason: str
    actor_id: int | None
    comparison_id: str | None
    model_id: str | None
    created_at: datetime
    balance_after: int


@dataclass(frozen=True)
class HistoryPage:
    """One page of a member's ledger, newest first."""

    entries: tuple[LedgerEntry, ...]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one, even for an empty history)."""
        return max(1, math.ceil(self.total / self.per_page))


@dataclass(frozen=True)
class LedgerCounts:
    """How much a ledger holds, for the audit summary."""

    accounts: int
    rows: int
    holds: int
    open_holds: int


class LedgerStore(Protocol):
    """One backend's ledger operations; each is one transaction (see the module docstring)."""

    async def ensure_account(
        self, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
    ) -> int:
        """Create the account with its starter grant on first touch; return the balance."""
        ...

    async def balance(self, guild_id: int, user_id: int) -> int:
        """The balance, 0 without an account (never creates one)."""
        ...

    async def reserve(
        self,
        guild_id: int,
        user_id: int,
        items: tuple[LineItem, ...],
        comparison_id: str,
        now: datetime,
        limits: OperatorLimits,
    ) -> Hold | LedgerError:
        """Debit the price and open a hold, or return InsufficientCredits."""
        ...

    async def close_hold(
        self,
        hold_id: int,
        state: HoldState,
        now: datetime,
        *,
        delivered: Collection[str] | None = None,
        reasons: Mapping[str, str] | None = None,
        release_reason: str = "",
        also: TransactionStep | None = None,
    ) -> Settlement | LedgerError:
        """Settle (``delivered`` given) or release a hold, exactly once.

        ``also`` runs in the same transaction when this call closed the hold.
        """
        ...

    async def unsettle(
        self, hold_id: int, reason: str, now: datetime, also: TransactionStep | None = None
    ) -> Settlement | LedgerError:
        """Refund what a settled hold kept, exactly once; ``also`` joins its transaction."""
        ...

    async def recover_stale(self, cutoff: datetime, now: datetime) -> list[int]:
        """Release every hold open and unmarked since ``cutoff``, each by one caller; their ids."""
        ...

    async def keep_open(self, hold_ids: tuple[int, ...], now: datetime) -> list[int]:
        """Mark the open ones of ``hold_ids`` alive as of ``now``, nothing else; their ids."""
        ...

    async def claim_daily(
        self, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
    ) -> DailyClaim | LedgerError:
        """Credit the daily allowance once per period."""
        ...

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        reason: str,
        actor_id: int,
        now: datetime,
        limits: OperatorLimits,
    ) -> int | LedgerError:
        """A moderator's capped credit; return the new balance."""
        ...

    async def revoke(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        reason: str,
        actor_id: int,
        now: datetime,
        limits: OperatorLimits,
    ) -> int | LedgerError:
        """A moderator's debit, never below zero; return the new balance."""
        ...

    async def history(self, guild_id: int, user_id: int, page: int, per_page: int) -> HistoryPage:
        """One page of a member's ledger, newest first, with the running balance."""
        ...

    async def top(self, guild_id: int, limit: int) -> list[tuple[int, int]]:
        """The highest positive balances in a guild."""
        ...

    async def audit(self) -> list[Discrepancy]:
        """Every broken invariant, checked in one snapshot."""
        ...

    async def counts(self) -> LedgerCounts:
        """Accounts, ledger rows, holds and open holds, in one snapshot."""
        ...


# --- SQLite ---------------------------------------------------------------------------------

SQL_HISTORY_COUNT = "SELECT COUNT(*) FROM ledger WHERE guild_id = ? AND user_id = ?"
SQL_HISTORY_PAGE = """
SELECT id, delta, kind, reason, actor_id, comparison_id, model_id, created_at, balance_after
FROM (
    SELECT *, SUM(delta) OVER (ORDER BY id) AS balance_after
    FROM ledger WHERE guild_id = ? AND user_id = ?
)
ORDER BY id DESC LIMIT ? OFFSET ?
"""
# user_id 0 is the server's own account (the shoot-outs' team pool), not a member.
SQL_TOP = """
SELECT user_id, balance FROM accounts
WHERE guild_id = ? AND balance > 0 AND user_id <> 0
ORDER BY balance DESC, user_id
LIMIT ?
"""
SQL_COUNTS = """
SELECT (SELECT COUNT(*) FROM accounts) AS accounts,
       (SELECT COUNT(*) FROM ledger) AS rows,
       (SELECT COUNT(*) FROM holds) AS holds,
       (SELECT COUNT(*) FROM holds WHERE state = 'open') AS open_holds
"""


def _history_page(
    conn: sqlite3.Connection, guild_id: int, user_id: int, page: int, per_page: int
) -> HistoryPage:
    total = conn.execute(SQL_HISTORY_COUNT, (guild_id, user_id)).fetchone()[0]
    rows = conn.execute(SQL_HISTORY_PAGE, (guild_id, user_id, per_page, page * per_page))
    entries = tuple(
        LedgerEntry(
            row["id"],
            row["delta"],
            row["kind"],
            row["reason"],
            row["actor_id"],
            row["comparison_id"],
            row["model_id"],
            datetime.fromisoformat(row["created_at"]),
            row["balance_after"],
        )
        for row in rows
    )
    return HistoryPage(entries, page, per_page, total)


def _counts(conn: sqlite3.Connection) -> LedgerCounts:
    row = conn.execute(SQL_COUNTS).fetchone()
    return LedgerCounts(row["accounts"], row["rows"], row["holds"], row["open_holds"])


def _then(
    operation: Callable[[sqlite3.Connection], Settlement | LedgerError],
    also: TransactionStep | None,
    conn: sqlite3.Connection,
) -> Settlement | LedgerError:
    """Close a hold, then run ``also`` in the same transaction unless the ledger refused."""
    settlement = operation(conn)
    if also is not None and not isinstance(settlement, LedgerError):
        also.write_sqlite(conn)
    return settlement


class SqliteLedgerStore:
    """The ledger on the process's one SQLite connection: each operation one thread job."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def ensure_account(
        self, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
    ) -> int:
        stamp = iso(now)
        return await self._db.run_in_transaction(
            lambda conn: accounts.ensure_account(conn, guild_id, user_id, stamp, limits)
        )

    async def balance(self, guild_id: int, user_id: int) -> int:
        return await self._db.run_read(
            partial(accounts.balance_of, guild_id=guild_id, user_id=user_id)
        )

    async def reserve(
        self,
        guild_id: int,
        user_id: int,
        items: tuple[LineItem, ...],
        comparison_id: str,
        now: datetime,
        limits: OperatorLimits,
    ) -> Hold | LedgerError:
        return await self._db.run_in_transaction(
            partial(
                holds.reserve,
                guild_id=guild_id,
                user_id=user_id,
                items=items,
                comparison_id=comparison_id,
                now=iso(now),
                limits=limits,
            )
        )

    async def close_hold(
        self,
        hold_id: int,
        state: HoldState,
        now: datetime,
        *,
        delivered: Collection[str] | None = None,
        reasons: Mapping[str, str] | None = None,
        release_reason: str = "",
        also: TransactionStep | None = None,
    ) -> Settlement | LedgerError:
        close = partial(
            holds.close_hold,
            hold_id=hold_id,
            state=state,
            now=iso(now),
            delivered=delivered,
            reasons=reasons,
            release_reason=release_reason,
        )
        return await self._db.run_in_transaction(partial(_then, close, also))

    async def unsettle(
        self, hold_id: int, reason: str, now: datetime, also: TransactionStep | None = None
    ) -> Settlement | LedgerError:
        refund = partial(holds.unsettle, hold_id=hold_id, reason=reason, now=iso(now))
        return await self._db.run_in_transaction(partial(_then, refund, also))

    async def recover_stale(self, cutoff: datetime, now: datetime) -> list[int]:
        # BEGIN IMMEDIATE makes the sweep exclusive: a second sweep finds the holds closed.
        return await self._db.run_in_transaction(
            partial(holds.recover_stale, cutoff=iso(cutoff), now=iso(now))
        )

    async def keep_open(self, hold_ids: tuple[int, ...], now: datetime) -> list[int]:
        return await self._db.run_in_transaction(
            partial(holds.keep_open, hold_ids=hold_ids, now=iso(now))
        )

    async def claim_daily(
        self, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
    ) -> DailyClaim | LedgerError:
        return await self._db.run_in_transaction(
            partial(
                accounts.claim_daily, guild_id=guild_id, user_id=user_id, now=now, limits=limits
            )
        )

    async def _moderate(
        self,
        operation: Callable[..., int | LedgerError],
        guild_id: int,
        user_id: int,
        amount: int,
        reason: str,
        actor_id: int,
        now: datetime,
        limits: OperatorLimits,
    ) -> int | LedgerError:
        """A moderator's grant or revoke: one transaction on the database thread."""
        return await self._db.run_in_transaction(
            partial(
                operation,
                guild_id=guild_id,
                user_id=user_id,
                amount=amount,
                reason=reason,
                actor_id=actor_id,
                now=now,
                limits=limits,
            )
        )

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        reason: str,
        actor_id: int,
        now: datetime,
        limits: OperatorLimits,
    ) -> int | LedgerError:
        return await self._moderate(
            accounts.grant, guild_id, user_id, amount, reason, actor_id, now, limits
        )

    async def revoke(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        reason: str,
        actor_id: int,
        now: datetime,
        limits: OperatorLimits,
    ) -> int | LedgerError:
        return await self._moderate(
            accounts.revoke, guild_id, user_id, amount, reason, actor_id, now, limits
        )

    async def history(self, guild_id: int, user_id: int, page: int, per_page: int) -> HistoryPage:
        return await self._db.run_read(
            partial(_history_page, guild_id=guild_id, user_id=user_id, page=page, per_page=per_page)
        )

    async def top(self, guild_id: int, limit: int) -> list[tuple[int, int]]:
        rows = await self._db.fetchall(SQL_TOP, (guild_id, limit))
        return [(int(row[0]), int(row[1])) for row in rows]

    async def audit(self) -> list[Discrepancy]:
        return await self._db.run_read(audit)

    async def counts(self) -> LedgerCounts:
        return await self._db.run_read(_counts)


__all__ = [
    "RECOVERY_REASON",
    "HistoryPage",
    "LedgerCounts",
    "LedgerEntry",
    "LedgerStore",
    "SqliteLedgerStore",
]
