"""The credits API: integer balances per (guild, member), an append-only ledger, holds.

Every change is one ``BEGIN IMMEDIATE`` transaction shipped to the database thread as a single
job (see ``bot.credits.accounts`` and ``bot.credits.holds``): a debit is one conditional
``UPDATE ... WHERE balance >= ?`` checked by its row count, written together with its ledger
row, so concurrent spends can never overdraw and the balance always equals the ledger's sum.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from bot.credits import accounts as ledger_accounts
from bot.credits import holds as ledger_holds
from bot.credits.accounts import DailyClaim, iso
from bot.credits.audit import Discrepancy, audit
from bot.credits.holds import RECOVERY_REASON, Hold, HoldState, LineItem, Refund, Settlement
from bot.credits.rules import (
    MAX_AMOUNT,
    MAX_BALANCE,
    AmountNotInteger,
    AmountNotPositive,
    AmountTooLarge,
    BalanceLimit,
    DailyAlreadyClaimed,
    DailyDisabled,
    HoldNotFound,
    InsufficientCredits,
    InvalidAmount,
    LedgerError,
    MissingReason,
    NothingToRevoke,
    OperatorLimits,
    OverGrantLimit,
    OverModeratorDailyCap,
    ReasonTooLong,
    RevokeBeyondBalance,
    SelfGrant,
    parse_amount,
    validate_amount,
    validate_reason,
)
from bot.db import Database

__all__ = [
    "MAX_AMOUNT",
    "MAX_BALANCE",
    "MAX_PER_PAGE",
    "MAX_TOP",
    "RECOVERY_REASON",
    "AmountNotInteger",
    "AmountNotPositive",
    "AmountTooLarge",
    "BalanceLimit",
    "DailyAlreadyClaimed",
    "DailyClaim",
    "DailyDisabled",
    "Discrepancy",
    "HistoryPage",
    "Hold",
    "HoldNotFound",
    "HoldState",
    "InsufficientCredits",
    "InvalidAmount",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LineItem",
    "MissingReason",
    "NothingToRevoke",
    "OperatorLimits",
    "OverGrantLimit",
    "OverModeratorDailyCap",
    "ReasonTooLong",
    "Refund",
    "RevokeBeyondBalance",
    "SelfGrant",
    "Settlement",
    "parse_amount",
    "utc_now",
    "validate_amount",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

ORPHAN_REASON = "cancelled while reserving"
MAX_LINE_ITEMS = 16
MAX_PER_PAGE = 50
MAX_TOP = 100
_MAX_ID = 2**63 - 1


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the ledger's default clock)."""
    return datetime.now(UTC)


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


def _check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_ID:
        raise ValueError(f"{name} must be a Discord id (a non-negative 64-bit int), not {value!r}")
    return value


def _check_items(items: Sequence[LineItem]) -> tuple[LineItem, ...]:
    """Refuse prices no catalog should produce; these are bugs, not member mistakes."""
    checked = tuple(items)
    if not 1 <= len(checked) <= MAX_LINE_ITEMS:
        raise ValueError(f"a reservation needs 1 to {MAX_LINE_ITEMS} line items")
    if len({item.model_id for item in checked}) != len(checked):
        raise ValueError("a reservation lists each model once")
    for item in checked:
        credits = item.credits
        if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            raise ValueError(f"line item credits must be a non-negative int, not {credits!r}")
    if sum(item.credits for item in checked) > MAX_AMOUNT:
        raise ValueError(f"a reservation costs at most {MAX_AMOUNT:,} credits")
    return checked


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


class Ledger:
    """Credits for one database; every method is safe to call from many tasks at once."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utc_now,
        limits: OperatorLimits | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        #: the operator's ceilings on grants (none unless given)
        self.limits = limits or OperatorLimits.unlimited()
        self._background: set[asyncio.Future[Any]] = set()

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    async def _write(self, fn: Callable[[sqlite3.Connection], T | LedgerError]) -> T:
        """Run one transaction body; raise the refusal it returned, after its commit."""
        result = await self._db.run_in_transaction(fn)
        if isinstance(result, LedgerError):
            raise result
        return result

    async def ensure_account(self, guild_id: int, user_id: int) -> int:
        """Create the member's account with its starter grant on first touch; return the balance."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        now = iso(self._now())
        return await self._write(
            lambda conn: ledger_accounts.ensure_account(conn, guild_id, user_id, now, self.limits)
        )

    async def balance(self, guild_id: int, user_id: int) -> int:
        """Return the member's balance without creating the account (0 if there is none yet)."""
        return await self._db.run_read(
            partial(ledger_accounts.balance_of, guild_id=guild_id, user_id=user_id)
        )

    async def reserve(
        self, guild_id: int, user_id: int, items: Sequence[LineItem], *, comparison_id: str
    ) -> Hold:
        """Take a comparison's itemised price and open a hold, or raise InsufficientCredits."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        checked = _check_items(items)
        if not comparison_id:
            raise ValueError("a reservation needs its comparison id")
        now = iso(self._now())
        job = asyncio.ensure_future(
            self._write(
                partial(
                    ledger_holds.reserve,
                    guild_id=guild_id,
                    user_id=user_id,
                    items=checked,
                    comparison_id=comparison_id,
                    now=now,
                    limits=self.limits,
                )
            )
        )
        try:
            hold = await asyncio.shield(job)
        except asyncio.CancelledError:
            # The debit commits on the database thread regardless; a caller cancelled now
            # would never learn the hold id, so give the credits back as soon as it lands.
            job.add_done_callback(self._release_orphan)
            self._keep(job)
            raise
        log.debug("hold %d: %d credits for comparison %s", hold.id, hold.amount, comparison_id)
        return hold

    def _release_orphan(self, job: asyncio.Future[Hold]) -> None:
        if job.cancelled() or job.exception() is not None:
            return
        hold = job.result()
        log.info("releasing hold %d: its comparison was cancelled while reserving", hold.id)
        self._keep(asyncio.ensure_future(self.release(hold.id, ORPHAN_REASON)))

    def _keep(self, future: asyncio.Future[Any]) -> None:
        """Hold a reference to background work until it finishes (the loop keeps only weak ones)."""
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def wait_background(self) -> None:
        """Wait for refunds of reservations whose callers were cancelled mid-reserve."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def settle(
        self,
        hold_id: int,
        delivered: Collection[str],
        reasons: Mapping[str, str],
        *,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Settlement:
        """Keep the delivered models' share, refund the rest (one row each); exactly once.

        ``also`` runs in the same transaction (e.g. to store the comparison's record), so the
        charge and the record land together or not at all.
        """
        now = iso(self._now())
        close = partial(
            ledger_holds.close_hold,
            hold_id=hold_id,
            state=HoldState.SETTLED,
            now=now,
            delivered=frozenset(delivered),
            reasons=dict(reasons),
        )

        def body(conn: sqlite3.Connection) -> Settlement | LedgerError:
            settlement = close(conn)
            if also is not None and not isinstance(settlement, LedgerError):
                also(conn)
            return settlement

        settlement = await self._write(body)
        log.debug("%s", settlement.message)
        return settlement

    async def unsettle(
        self,
        hold_id: int,
        reason: str,
        *,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Settlement:
        """Refund what a settled hold kept, because the member never got the result; exactly once."""
        now = iso(self._now())

        def body(conn: sqlite3.Connection) -> Settlement | LedgerError:
            settlement = ledger_holds.unsettle(
                conn, hold_id, reason.strip() or "not delivered", now
            )
            if also is not None and not isinstance(settlement, LedgerError):
                also(conn)
            return settlement

        settlement = await self._write(body)
        log.debug("%s", settlement.message)
        return settlement

    async def release(self, hold_id: int, reason: str) -> Settlement:
        """Refund a hold in full (upload failed, everything failed, cancelled); exactly once."""
        now = iso(self._now())
        settlement = await self._write(
            partial(
                ledger_holds.close_hold,
                hold_id=hold_id,
                state=HoldState.RELEASED,
                now=now,
                release_reason=reason.strip() or "released",
            )
        )
        log.debug("%s", settlement.message)
        return settlement

    async def recover_stale_holds(self, older_than: timedelta) -> int:
        """Release holds open for longer than ``older_than`` ("refunded after restart")."""
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        now = self._now()
        recovered = await self._db.run_in_transaction(
            partial(ledger_holds.recover_stale, cutoff=iso(now - older_than), now=iso(now))
        )
        if recovered:
            log.warning("refunded %d holds left open by a restart: %s", len(recovered), recovered)
        return len(recovered)

    async def claim_daily(self, guild_id: int, user_id: int) -> DailyClaim:
        """Credit the daily allowance once per period, or raise DailyAlreadyClaimed."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        now = self._now()
        return await self._write(
            partial(
                ledger_accounts.claim_daily,
                guild_id=guild_id,
                user_id=user_id,
                now=now,
                limits=self.limits,
            )
        )

    async def grant(
        self, guild_id: int, user_id: int, amount: int, reason: str, *, actor_id: int
    ) -> int:
        """Give a member credits as a moderator (capped); return the new balance."""
        return await self._moderate(
            ledger_accounts.grant, "granted", "to", guild_id, user_id, amount, reason, actor_id
        )

    async def revoke(
        self, guild_id: int, user_id: int, amount: int, reason: str, *, actor_id: int
    ) -> int:
        """Take credits from a member as a moderator, never below zero; return the new balance."""
        return await self._moderate(
            ledger_accounts.revoke, "revoked", "from", guild_id, user_id, amount, reason, actor_id
        )

    async def _moderate(
        self,
        operation: Callable[..., int | LedgerError],
        verb: str,
        preposition: str,
        guild_id: int,
        user_id: int,
        amount: int,
        reason: str,
        actor_id: int,
    ) -> int:
        """A moderator's grant or revoke: validate, write in one transaction, log one line."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        amount, reason = validate_amount(amount), validate_reason(reason)
        actor_id, now = _check_id("actor_id", actor_id), self._now()
        balance: int = await self._write(
            partial(
                operation,
                guild_id=guild_id,
                user_id=user_id,
                amount=amount,
                reason=reason,
                actor_id=actor_id,
                now=now,
                limits=self.limits,
            )
        )
        log.info(
            "guild %d: %d %s %d credits %s %d (%s)",
            guild_id, actor_id, verb, amount, preposition, user_id, reason,
        )  # fmt: skip
        return balance

    async def history(
        self, guild_id: int, user_id: int, *, page: int = 0, per_page: int = 10
    ) -> HistoryPage:
        """Return one page of the member's ledger, newest first (page 0 is the newest)."""
        if page < 0 or not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"page must be >= 0 and per_page within 1..{MAX_PER_PAGE}")
        return await self._db.run_read(
            partial(_history_page, guild_id=guild_id, user_id=user_id, page=page, per_page=per_page)
        )

    async def top(self, guild_id: int, limit: int = 10) -> list[tuple[int, int]]:
        """Return up to ``limit`` (user id, balance) pairs with the highest balances in a guild."""
        if not 1 <= limit <= MAX_TOP:
            raise ValueError(f"limit must be within 1..{MAX_TOP}")
        rows = await self._db.fetchall(SQL_TOP, (guild_id, limit))
        return [(int(row[0]), int(row[1])) for row in rows]

    async def audit(self) -> list[Discrepancy]:
        """Check every balance against its ledger and every hold's money; [] when healthy."""
        found = await self._db.run_read(audit)
        for discrepancy in found:
            log.error("ledger audit: %s", discrepancy)
        return found
