"""The credits API: integer balances per (guild, member), an append-only ledger, holds.

Every change is one transaction in the backend's ``LedgerStore`` (``bot.credits.store``):
SQLite ships each as one ``BEGIN IMMEDIATE`` job to the database thread, PostgreSQL runs each on
a pooled connection (``bot.credits.postgres``). Either way a debit is one conditional
``UPDATE ... WHERE balance >= ...`` checked by its result, written together with its ledger
row, so concurrent spends can never overdraw and the balance always equals the ledger's sum.
This module validates, logs, and keeps a cancelled reserve from losing credits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.credits.accounts import DailyClaim
from bot.credits.audit import Discrepancy
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
from bot.credits.store import (
    HistoryPage,
    LedgerCounts,
    LedgerEntry,
    LedgerStore,
    SqliteLedgerStore,
)
from bot.db import AnyDatabase, Database, PostgresDatabase, store_for
from bot.db.storage import TransactionStep

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
    "LedgerCounts",
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


def _store_for(db: AnyDatabase) -> LedgerStore:
    from bot.credits.postgres import PostgresLedgerStore

    # Typed as the interface, so that mypy checks that each store implements all of it.
    sqlite: Callable[[Database], LedgerStore] = SqliteLedgerStore
    postgresql: Callable[[PostgresDatabase], LedgerStore] = PostgresLedgerStore
    return store_for(db, sqlite=sqlite, postgresql=postgresql)


class Ledger:
    """Credits for one database; every method is safe to call from many tasks at once.

    ``db`` is either backend (``bot.db.Database`` for SQLite, ``bot.db.PostgresDatabase``);
    with PostgreSQL it is also safe to run many processes against one database.
    """

    def __init__(
        self,
        db: AnyDatabase,
        *,
        clock: Callable[[], datetime] = utc_now,
        limits: OperatorLimits | None = None,
    ) -> None:
        self._db = db
        self._store = _store_for(db)
        self._clock = clock
        #: the operator's ceilings on grants (none unless given)
        self.limits = limits or OperatorLimits.unlimited()
        self._background: set[asyncio.Future[Any]] = set()

    @property
    def db(self) -> AnyDatabase:
        """The database this ledger writes to."""
        return self._db

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    async def _write(self, operation: Awaitable[T | LedgerError]) -> T:
        """Await one store operation; raise the refusal it returned, after its commit."""
        result = await operation
        if isinstance(result, LedgerError):
            raise result
        return result

    async def ensure_account(self, guild_id: int, user_id: int) -> int:
        """Create the member's account with its starter grant on first touch; return the balance."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        return await self._store.ensure_account(guild_id, user_id, self._now(), self.limits)

    async def balance(self, guild_id: int, user_id: int) -> int:
        """Return the member's balance without creating the account (0 if there is none yet)."""
        return await self._store.balance(guild_id, user_id)

    async def reserve(
        self, guild_id: int, user_id: int, items: Sequence[LineItem], *, comparison_id: str
    ) -> Hold:
        """Take a comparison's itemised price and open a hold, or raise InsufficientCredits."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        checked = _check_items(items)
        if not comparison_id:
            raise ValueError("a reservation needs its comparison id")
        job = asyncio.ensure_future(
            self._write(
                self._store.reserve(
                    guild_id, user_id, checked, comparison_id, self._now(), self.limits
                )
            )
        )
        try:
            hold = await asyncio.shield(job)
        except asyncio.CancelledError:
            # The debit commits in the database regardless; a caller cancelled now would
            # never learn the hold id, so give the credits back as soon as it lands.
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
        also: TransactionStep | None = None,
    ) -> Settlement:
        """Keep the delivered models' share, refund the rest (one row each); exactly once.

        ``also`` runs in the same transaction (e.g. to store the comparison's record), so the
        charge and the record land together or not at all. Idempotent by hold id: a retried or
        racing settle (or release) of the same hold returns the settlement recorded first, with
        ``already_closed`` set, and changes nothing.
        """
        settlement = await self._write(
            self._store.close_hold(
                hold_id,
                HoldState.SETTLED,
                self._now(),
                delivered=frozenset(delivered),
                reasons=dict(reasons),
                also=also,
            )
        )
        log.debug("%s", settlement.message)
        return settlement

    async def unsettle(
        self, hold_id: int, reason: str, *, also: TransactionStep | None = None
    ) -> Settlement:
        """Refund what a settled hold kept, because the member never got the result; exactly once."""
        settlement = await self._write(
            self._store.unsettle(hold_id, reason.strip() or "not delivered", self._now(), also=also)
        )
        log.debug("%s", settlement.message)
        return settlement

    async def release(self, hold_id: int, reason: str) -> Settlement:
        """Refund a hold in full (upload failed, everything failed, cancelled); exactly once."""
        settlement = await self._write(
            self._store.close_hold(
                hold_id,
                HoldState.RELEASED,
                self._now(),
                release_reason=reason.strip() or "released",
            )
        )
        log.debug("%s", settlement.message)
        return settlement

    async def recover_stale_holds(self, older_than: timedelta) -> int:
        """Release holds open for longer than ``older_than`` ("refunded after restart").

        A hold's age counts from its reserve or from the last ``keep_open`` of it, whichever is
        later. Safe to run from several processes at once: each stale hold is refunded by one.
        """
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        now = self._now()
        recovered = await self._store.recover_stale(now - older_than, now)
        if recovered:
            log.warning("refunded %d holds left open by a restart: %s", len(recovered), recovered)
        return len(recovered)

    async def keep_open(self, hold_ids: Collection[int]) -> frozenset[int]:
        """Say that the comparisons holding ``hold_ids`` are still live: the stale-hold sweep
        counts those holds' age from now. Returns the ids still open; the others were settled,
        released or already swept, and are left exactly as they were.

        For an owner that reserves ahead and runs later (a shoot-out's rounds). It must mark the
        holds again within every sweep window; once it stops (a crash), the sweep refunds them
        one window after the last mark.
        """
        ids = tuple(sorted({_check_id("hold_id", hold_id) for hold_id in hold_ids}))
        if not ids:
            return frozenset()
        kept = frozenset(await self._store.keep_open(ids, self._now()))
        if len(kept) < len(ids):
            log.debug("holds %s are closed; not kept open", sorted(set(ids) - kept))
        return kept

    async def claim_daily(self, guild_id: int, user_id: int) -> DailyClaim:
        """Credit the daily allowance once per period, or raise DailyAlreadyClaimed."""
        guild_id, user_id = _check_id("guild_id", guild_id), _check_id("user_id", user_id)
        return await self._write(
            self._store.claim_daily(guild_id, user_id, self._now(), self.limits)
        )

    async def grant(
        self, guild_id: int, user_id: int, amount: int, reason: str, *, actor_id: int
    ) -> int:
        """Give a member credits as a moderator (capped); return the new balance."""
        return await self._moderate(
            self._store.grant, "granted", "to", guild_id, user_id, amount, reason, actor_id
        )

    async def revoke(
        self, guild_id: int, user_id: int, amount: int, reason: str, *, actor_id: int
    ) -> int:
        """Take credits from a member as a moderator, never below zero; return the new balance."""
        return await self._moderate(
            self._store.revoke, "revoked", "from", guild_id, user_id, amount, reason, actor_id
        )

    async def _moderate(
        self,
        operation: Callable[
            [int, int, int, str, int, datetime, OperatorLimits], Awaitable[int | LedgerError]
        ],
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
            operation(guild_id, user_id, amount, reason, actor_id, now, self.limits)
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
        return await self._store.history(guild_id, user_id, page, per_page)

    async def top(self, guild_id: int, limit: int = 10) -> list[tuple[int, int]]:
        """Return up to ``limit`` (user id, balance) pairs with the highest balances in a guild."""
        if not 1 <= limit <= MAX_TOP:
            raise ValueError(f"limit must be within 1..{MAX_TOP}")
        return await self._store.top(guild_id, limit)

    async def audit(self) -> list[Discrepancy]:
        """Check every balance against its ledger and every hold's money; [] when healthy."""
        found = await self._store.audit()
        for discrepancy in found:
            log.error("ledger audit: %s", discrepancy)
        return found

    async def counts(self) -> LedgerCounts:
        """How many accounts, ledger rows, holds and open holds the ledger has."""
        return await self._store.counts()
