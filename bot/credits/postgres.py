"""The ledger on PostgreSQL: the same operations and invariants as SQLite's, for many processes.

Concurrency comes from the database, not from a process-local lock:

* A debit is one conditional ``UPDATE accounts ... WHERE balance >= $n RETURNING balance``. Two
  debits of one account serialise on its row lock, and the second re-checks the WHERE clause
  against the first's committed balance, so no process can overdraw another's spend.
* The common reserve — the account exists and can pay — is one call of ``ledger_reserve``
  (a PL/pgSQL function, migration 0011: debit, hold, its line items and the spend row), and so
  a single round trip and a single transaction.
* Settle and release are one call of ``ledger_close_hold``, which closes the hold
  ``WHERE state = 'open'``, records each item's outcome, refunds the account and appends the
  refund rows (or, refunding nothing, leaves the account and the ledger alone). It needs the
  hold's amount and line items, which never change: remembered from the reserve when this
  process made it (one round trip in all), read first otherwise. Only the call whose guard
  matched refunds anything: a retry, or a racing call that waited for the row lock, matches
  nothing and reports the settlement recorded first. Unique indexes on the ledger back this up:
  one spend row per hold, one refund row per model of a hold.
* Stale-hold recovery claims holds with ``FOR UPDATE SKIP LOCKED``: two processes sweeping at
  once take disjoint sets, so each stale hold is refunded by exactly one of them.
* The moderator cap (a sum over recent grants) is read under a transaction-scoped advisory lock
  per (guild, moderator), so two grants cannot both pass it.

Longer than the ~400-line guide on purpose: it implements the whole ledger store protocol for PostgreSQL in one place, operation by operation beside the SQLite one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from bot.credits.accounts import MODERATOR_CAP_WINDOW, DailyClaim
from bot.credits.audit import (
    SQL_AUDIT_ORPHAN_ROWS,
    SQL_AUDIT_UNLINKED_ROWS,
    Discrepancy,
    discrepancies,
)
from bot.credits.holds import (
    RECOVERY_REASON,
    Hold,
    HoldState,
    LineItem,
    Refund,
    Settlement,
    refund_reasons,
)
from bot.credits.rules import (
    MAX_BALANCE,
    BalanceLimit,
    DailyAlreadyClaimed,
    DailyDisabled,
    HoldNotFound,
    InsufficientCredits,
    LedgerError,
    NothingToRevoke,
    OperatorLimits,
    OverGrantLimit,
    OverModeratorDailyCap,
    RevokeBeyondBalance,
    SelfGrant,
    price_text,
)
from bot.credits.store import HistoryPage, LedgerCounts, LedgerEntry
from bot.db.postgres import PostgresDatabase
from bot.guild_settings import load_guild_settings_pg

if TYPE_CHECKING:
    from bot.db.postgres import PgConnection
    from bot.db.storage import TransactionStep

RECOVERY_BATCH = 100
#: holds remembered between reserve and settle (comparisons in flight in this process)
RESERVED_CACHE = 10_000

# --- accounts -------------------------------------------------------------------------------

SQL_BALANCE = "SELECT balance FROM accounts WHERE guild_id = $1 AND user_id = $2"
SQL_CREATE_ACCOUNT = """
INSERT INTO accounts (guild_id, user_id, balance, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING balance
"""
SQL_INSERT_LEDGER = """
INSERT INTO ledger (guild_id, user_id, delta, kind, reason, actor_id, comparison_id, hold_id,
                    model_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
# Grants and allowances stop at MAX_BALANCE; refunds (only returning what was taken) never do.
SQL_CREDIT = """
UPDATE accounts SET balance = balance + $3
WHERE guild_id = $1 AND user_id = $2 AND balance <= $4
RETURNING balance
"""
# The one way credits leave an account: the WHERE clause is the balance check.
SQL_DEBIT = """
UPDATE accounts SET balance = balance - $3
WHERE guild_id = $1 AND user_id = $2 AND balance >= $3
RETURNING balance
"""
SQL_CLAIM_DAILY = """
UPDATE accounts SET balance = balance + $3, last_daily_at = $4
WHERE guild_id = $1 AND user_id = $2
  AND (last_daily_at IS NULL OR last_daily_at <= $5) AND balance <= $6
RETURNING balance
"""
SQL_LAST_DAILY = "SELECT last_daily_at FROM accounts WHERE guild_id = $1 AND user_id = $2"
SQL_LOCK_MODERATOR = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
SQL_GRANTED_SINCE = """
SELECT COALESCE(SUM(delta), 0)::bigint FROM ledger
WHERE guild_id = $1 AND actor_id = $2 AND kind = 'grant' AND created_at > $3
"""

# --- holds ----------------------------------------------------------------------------------

# Debit, hold, line items and spend row in one call of the function (migration 0011): nothing
# is written unless the debit found the account and it could pay; then both columns are NULL.
SQL_RESERVE = """
SELECT new_hold_id, new_balance FROM ledger_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
# The hold and its line items in one read; the amount and the items never change once written,
# so a settle may compute its refunds from this read and leave the guard to its one write.
SQL_HOLD_WITH_ITEMS = """
SELECT h.id, h.guild_id, h.user_id, h.comparison_id, h.amount, h.state, h.charged, h.refunded,
       i.model_id, i.label, i.credits, i.outcome, i.reason
FROM holds AS h LEFT JOIN hold_items AS i ON i.hold_id = h.id
WHERE h.id = $1
ORDER BY i.position
"""
# Close the hold, record each item's outcome, refund the account and write the refund rows in
# one call, so one transaction: `WHERE state = 'open'` inside is the exactly-once guard. Of two
# racing closes, the second waits for the first's row lock, re-checks the guard, writes nothing
# and returns NULL; otherwise the balance after the close.
SQL_CLOSE_HOLD = """
SELECT ledger_close_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""
# The guard of an unsettle: only a settled hold is refunded, once; the row lock it takes makes
# a racing unsettle wait, re-check and change nothing.
SQL_UNSETTLE_HOLD = """
UPDATE holds SET state = 'released', charged = 0, refunded = amount, closed_at = $2
WHERE id = $1 AND state = 'settled'
RETURNING guild_id, user_id, comparison_id, amount
"""
SQL_CHARGED_ITEMS = """
SELECT model_id, label, credits FROM hold_items
WHERE hold_id = $1 AND outcome = 'charged' ORDER BY position
"""
SQL_REFUND_ITEMS = """
UPDATE hold_items SET outcome = 'refunded', reason = $2 WHERE hold_id = $1 AND outcome = 'charged'
"""
SQL_ADD_UNCAPPED = """
UPDATE accounts SET balance = balance + $3 WHERE guild_id = $1 AND user_id = $2 RETURNING balance
"""
# Stale: open, and neither made nor marked alive (keep_open) since the cutoff.
# SKIP LOCKED: a hold another process is recovering (or settling) right now is left to it.
# Account order keeps two sweeps from locking the same accounts in opposite orders.
SQL_CLAIM_STALE = """
SELECT id FROM holds
WHERE state = 'open' AND created_at <= $1 AND (kept_at IS NULL OR kept_at <= $1)
ORDER BY guild_id, user_id, id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
# Only open holds, only forward. A hold a sweep has claimed is locked: this waits, re-checks
# `state = 'open'` after the sweep commits and leaves it alone. A hold marked first no longer
# matches a sweep's claim, which re-checks its WHERE clause against the marked row.
SQL_KEEP_OPEN = """
UPDATE holds SET kept_at = GREATEST(COALESCE(kept_at, created_at), $2)
WHERE id = ANY($1::bigint[]) AND state = 'open'
RETURNING id
"""

# --- reading --------------------------------------------------------------------------------

SQL_HISTORY_COUNT = "SELECT COUNT(*) FROM ledger WHERE guild_id = $1 AND user_id = $2"
SQL_HISTORY_PAGE = """
SELECT id, delta, kind, reason, actor_id, comparison_id, model_id, created_at, balance_after
FROM (
    SELECT *, (SUM(delta) OVER (ORDER BY id))::bigint AS balance_after
    FROM ledger WHERE guild_id = $1 AND user_id = $2
) AS l
ORDER BY id DESC LIMIT $3 OFFSET $4
"""
# user_id 0 is the server's own account (the shoot-outs' team pool), not a member.
SQL_TOP = """
SELECT user_id, balance FROM accounts
WHERE guild_id = $1 AND balance > 0 AND user_id <> 0
ORDER BY balance DESC, user_id
LIMIT $2
"""
SQL_COUNTS = """
SELECT (SELECT COUNT(*) FROM accounts) AS accounts,
       (SELECT COUNT(*) FROM ledger) AS rows,
       (SELECT COUNT(*) FROM holds) AS holds,
       (SELECT COUNT(*) FROM holds WHERE state = 'open') AS open_holds
"""
SQL_AUDIT_BALANCES = """
SELECT a.guild_id, a.user_id, a.balance, COALESCE(l.total, 0) AS ledger_total
FROM accounts AS a
LEFT JOIN (
    SELECT guild_id, user_id, SUM(delta)::bigint AS total FROM ledger GROUP BY guild_id, user_id
) AS l ON l.guild_id = a.guild_id AND l.user_id = a.user_id
WHERE a.balance <> COALESCE(l.total, 0) OR a.balance < 0
"""
SQL_AUDIT_HOLDS = """
WITH money AS (
    SELECT l.hold_id,
           -SUM(CASE WHEN l.kind = 'spend' THEN l.delta ELSE 0 END)::bigint AS spent,
           SUM(CASE WHEN l.kind IN ('refund', 'recovery') THEN l.delta ELSE 0 END)::bigint
               AS returned,
           COUNT(*) FILTER (WHERE l.kind NOT IN ('spend', 'refund', 'recovery')
                            OR l.guild_id <> h.guild_id OR l.user_id <> h.user_id) AS stray
    FROM ledger AS l JOIN holds AS h ON h.id = l.hold_id
    GROUP BY l.hold_id
), items AS (
    SELECT hold_id, SUM(credits)::bigint AS total, COUNT(*) AS n,
           COUNT(*) FILTER (WHERE outcome IS NULL) AS pending,
           SUM(CASE WHEN outcome = 'refunded' THEN credits ELSE 0 END)::bigint AS refunded
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


async def _balance(conn: PgConnection, guild_id: int, user_id: int) -> int:
    value = await conn.fetchval(SQL_BALANCE, guild_id, user_id)
    return 0 if value is None else int(value)


async def _ledger_row(
    conn: PgConnection,
    guild_id: int,
    user_id: int,
    delta: int,
    kind: str,
    now: datetime,
    *,
    reason: str = "",
    actor_id: int | None = None,
    comparison_id: str | None = None,
    hold_id: int | None = None,
    model_id: str | None = None,
) -> None:
    await conn.execute(
        SQL_INSERT_LEDGER,
        guild_id, user_id, delta, kind, reason, actor_id, comparison_id, hold_id, model_id, now,
    )  # fmt: skip


async def _ensure_account(
    conn: PgConnection, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
) -> int:
    """Create the account with its starter grant (exactly once); return the balance.

    The starter grant is the server's within the operator's ceiling.
    """
    balance = await conn.fetchval(SQL_BALANCE, guild_id, user_id)
    if balance is not None:
        return int(balance)
    starter = limits.starter_grant((await load_guild_settings_pg(conn, guild_id)).starter_grant)
    # Of two racing first touches, the second waits on the first's key and then inserts
    # nothing: only the one that inserted writes the starter row.
    created = await conn.fetchval(SQL_CREATE_ACCOUNT, guild_id, user_id, starter, now)
    if created is None:
        return await _balance(conn, guild_id, user_id)
    if starter > 0:
        await _ledger_row(conn, guild_id, user_id, starter, "starter", now, reason="starter grant")
    return starter


def _reserved(row: asyncpg.Record | None) -> tuple[int, int] | None:
    """(hold id, balance) from ``ledger_reserve``; None when it wrote nothing."""
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


def _as_closed(hold: asyncpg.Record, rows: list[asyncpg.Record], balance: int) -> Settlement:
    """The settlement recorded earlier, for a repeated settle or release."""
    refunds = tuple(
        Refund(row["model_id"], row["label"], int(row["credits"]), row["reason"] or "")
        for row in rows
        if row["outcome"] == "refunded"
    )
    return Settlement(
        int(hold["id"]),
        HoldState(hold["state"]),
        int(hold["charged"]),
        int(hold["refunded"]),
        refunds,
        True,
        balance,
    )


async def audit_on(conn: PgConnection) -> list[Discrepancy]:
    """The ledger audit on this connection, in its current transaction (e.g. before a COMMIT)."""
    return discrepancies(
        await conn.fetch(SQL_AUDIT_BALANCES),
        await conn.fetch(SQL_AUDIT_ORPHAN_ROWS),
        await conn.fetch(SQL_AUDIT_UNLINKED_ROWS),
        await conn.fetch(SQL_AUDIT_HOLDS),
    )


async def _write_close(
    conn: PgConnection,
    hold_id: int,
    amount: int,
    items: Sequence[LineItem],
    state: HoldState,
    now: datetime,
    delivered: Collection[str] | None,
    reasons: Mapping[str, str],
    kind: str,
    release_reason: str,
) -> Settlement | None:
    """Close an open hold in one call; None when it was not open (nothing written)."""
    if delivered is None:
        refund_for = {item.model_id: release_reason for item in items}
    else:
        refund_for = refund_reasons(items, delivered, reasons)
    refunds = tuple(
        Refund(item.model_id, item.label, item.credits, refund_for[item.model_id])
        for item in items
        if item.model_id in refund_for
    )
    refunded = sum(refund.credits for refund in refunds)
    charged = amount - refunded
    outcomes = (
        [item.model_id for item in items],
        ["refunded" if item.model_id in refund_for else "charged" for item in items],
        [refund_for.get(item.model_id) for item in items],
    )
    if delivered is None:
        # A release or recovery: one row for the whole hold, with no model.
        refund_rows: tuple[list[str | None], list[int], list[str]] = (
            [None], [refunded], [release_reason]
        )  # fmt: skip
    else:
        refund_rows = (
            [refund.model_id for refund in refunds],
            [refund.credits for refund in refunds],
            [f"{refund.label}: {refund.reason}" for refund in refunds],
        )
    balance = await conn.fetchval(
        SQL_CLOSE_HOLD,
        hold_id, state.value, charged, refunded, now, *outcomes, kind, *refund_rows,
    )  # fmt: skip
    if balance is None:
        return None
    return Settlement(hold_id, state, charged, refunded, refunds, False, int(balance))


async def _close(
    conn: PgConnection,
    hold_id: int,
    state: HoldState,
    now: datetime,
    delivered: Collection[str] | None,
    reasons: Mapping[str, str],
    kind: str,
    release_reason: str,
) -> Settlement | LedgerError:
    """Read the hold and its items, then close it with ``_write_close`` (or report it closed)."""
    rows = list(await conn.fetch(SQL_HOLD_WITH_ITEMS, hold_id))
    if not rows:
        return HoldNotFound(hold_id)
    hold = rows[0]
    items = [
        LineItem(row["model_id"], row["label"], int(row["credits"]))
        for row in rows
        if row["model_id"] is not None
    ]
    if delivered is not None:
        refund_reasons(items, delivered, reasons)  # a bad call is refused even on a closed hold
    guild_id, user_id = int(hold["guild_id"]), int(hold["user_id"])
    if hold["state"] == HoldState.OPEN:
        settled = await _write_close(
            conn, hold_id, int(hold["amount"]), items, state, now, delivered, reasons, kind,
            release_reason,
        )  # fmt: skip
        if settled is not None:
            return settled
        # Another call closed it between our read and our write: report what it did.
        rows = list(await conn.fetch(SQL_HOLD_WITH_ITEMS, hold_id))
        hold = rows[0]
    return _as_closed(hold, rows, await _balance(conn, guild_id, user_id))


async def _unsettle(
    conn: PgConnection, hold_id: int, reason: str, now: datetime
) -> Settlement | LedgerError:
    """Give back what a settled hold kept, as SQLite's ``holds.unsettle`` (in a transaction)."""
    hold = await conn.fetchrow(SQL_UNSETTLE_HOLD, hold_id, now)
    if hold is None:
        rows = list(await conn.fetch(SQL_HOLD_WITH_ITEMS, hold_id))
        if not rows:
            return HoldNotFound(hold_id)
        first = rows[0]
        balance = await _balance(conn, int(first["guild_id"]), int(first["user_id"]))
        return _as_closed(first, rows, balance)
    guild_id, user_id = int(hold["guild_id"]), int(hold["user_id"])
    charged = list(await conn.fetch(SQL_CHARGED_ITEMS, hold_id))
    await conn.execute(SQL_REFUND_ITEMS, hold_id, reason)
    total = sum(int(row["credits"]) for row in charged)
    balance = await conn.fetchval(SQL_ADD_UNCAPPED, guild_id, user_id, total)
    for row in charged:
        if row["credits"]:
            await _ledger_row(
                conn, guild_id, user_id, int(row["credits"]), "refund", now,
                reason=f"{row['label']}: {reason}", comparison_id=hold["comparison_id"],
                hold_id=hold_id, model_id=row["model_id"],
            )  # fmt: skip
    refunds = tuple(
        Refund(row["model_id"], row["label"], int(row["credits"]), reason) for row in charged
    )
    return Settlement(
        hold_id, HoldState.RELEASED, 0, int(hold["amount"]), refunds, False, int(balance)
    )


class PostgresLedgerStore:
    """The ledger on a PostgreSQL pool; safe to share one database between many processes."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        # hold id -> (amount, items) of holds this process reserved and has not closed yet:
        # facts that never change, kept so the common settle needs no read. Correctness never
        # depends on it (the guarded write does); a miss just costs the read.
        self._reserved: OrderedDict[int, tuple[int, tuple[LineItem, ...]]] = OrderedDict()

    async def ensure_account(
        self, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
    ) -> int:
        async with self._db.transaction() as conn:
            return await _ensure_account(conn, guild_id, user_id, now, limits)

    async def balance(self, guild_id: int, user_id: int) -> int:
        value = await self._db.fetchval(SQL_BALANCE, guild_id, user_id)
        return 0 if value is None else int(value)

    async def reserve(
        self,
        guild_id: int,
        user_id: int,
        items: tuple[LineItem, ...],
        comparison_id: str,
        now: datetime,
        limits: OperatorLimits,
    ) -> Hold | LedgerError:
        amount = sum(item.credits for item in items)
        args = (
            guild_id,
            user_id,
            amount,
            comparison_id,
            now,
            [item.model_id for item in items],
            [item.label for item in items],
            [item.credits for item in items],
            price_text(items),
        )
        # Nearly always the account exists and can pay: one call, one transaction.
        reserved = _reserved(await self._db.fetchrow(SQL_RESERVE, *args))
        if reserved is None:
            # First touch (or not enough credits): create the account with its starter grant
            # and try once more, in one transaction that commits the account either way.
            async with self._db.transaction() as conn:
                await _ensure_account(conn, guild_id, user_id, now, limits)
                reserved = _reserved(await conn.fetchrow(SQL_RESERVE, *args))
                if reserved is None:
                    balance = await _balance(conn, guild_id, user_id)
                    return InsufficientCredits(balance, amount, items)
        hold_id, balance = reserved
        self._reserved[hold_id] = (amount, items)
        if len(self._reserved) > RESERVED_CACHE:
            self._reserved.popitem(last=False)
        return Hold(
            hold_id, guild_id, user_id, comparison_id, amount, items, HoldState.OPEN, balance
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
        if also is not None:
            # The hold and whatever joins it (the comparison's record) commit together.
            async with self._db.transaction() as conn:
                settlement = await self._close_on(
                    conn, hold_id, state, now, delivered, reasons, release_reason
                )
                if not isinstance(settlement, LedgerError):
                    await also.write_postgres(conn)
                return settlement
        async with self._db.pool.acquire() as conn:
            return await self._close_on(
                conn, hold_id, state, now, delivered, reasons, release_reason
            )

    async def unsettle(
        self, hold_id: int, reason: str, now: datetime, also: TransactionStep | None = None
    ) -> Settlement | LedgerError:
        async with self._db.transaction() as conn:
            settlement = await _unsettle(conn, hold_id, reason, now)
            if also is not None and not isinstance(settlement, LedgerError):
                await also.write_postgres(conn)
            return settlement

    async def _close_on(
        self,
        conn: PgConnection,
        hold_id: int,
        state: HoldState,
        now: datetime,
        delivered: Collection[str] | None,
        reasons: Mapping[str, str] | None,
        release_reason: str,
    ) -> Settlement | LedgerError:
        known = self._reserved.pop(hold_id, None)
        if known is not None:
            # Reserved by this process: the amount and items are known (they never change),
            # so the one guarded call is the whole settle — one round trip.
            amount, items = known
            settled = await _write_close(
                conn, hold_id, amount, items, state, now, delivered, reasons or {},
                "refund", release_reason,
            )  # fmt: skip
            if settled is not None:
                return settled
        # Reserved elsewhere (another process, before a restart) or already closed: read
        # the hold, then write. Two round trips, with no BEGIN/COMMIT
        # of their own (or inside the caller's, when something joins it).
        return await _close(
            conn, hold_id, state, now, delivered, reasons or {}, "refund", release_reason
        )

    async def recover_stale(self, cutoff: datetime, now: datetime) -> list[int]:
        recovered: list[int] = []
        while True:
            async with self._db.transaction() as conn:
                claimed = [
                    row["id"] for row in await conn.fetch(SQL_CLAIM_STALE, cutoff, RECOVERY_BATCH)
                ]
                for hold_id in claimed:
                    await _close(
                        conn, hold_id, HoldState.RELEASED, now, None, {}, "recovery",
                        RECOVERY_REASON,
                    )  # fmt: skip
            recovered.extend(claimed)
            if len(claimed) < RECOVERY_BATCH:
                return recovered

    async def claim_daily(
        self, guild_id: int, user_id: int, now: datetime, limits: OperatorLimits
    ) -> DailyClaim | LedgerError:
        async with self._db.transaction() as conn:
            await _ensure_account(conn, guild_id, user_id, now, limits)
            settings = await load_guild_settings_pg(conn, guild_id)
            amount = limits.daily_allowance(settings.daily_allowance)
            period = timedelta(hours=settings.daily_period_hours)
            if amount == 0:
                return DailyDisabled()
            cutoff = now - period
            balance = await conn.fetchval(
                SQL_CLAIM_DAILY, guild_id, user_id, amount, now, cutoff, MAX_BALANCE - amount
            )
            if balance is None:
                last = await conn.fetchval(SQL_LAST_DAILY, guild_id, user_id)
                if last is not None and last > cutoff:
                    return DailyAlreadyClaimed(last + period, now)
                return BalanceLimit(await _balance(conn, guild_id, user_id), amount)
            await _ledger_row(
                conn, guild_id, user_id, amount, "daily", now,
                reason="daily allowance", actor_id=user_id,
            )  # fmt: skip
            return DailyClaim(amount, int(balance), now + period)

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
        if actor_id == user_id:
            return SelfGrant()
        async with self._db.transaction() as conn:
            await _ensure_account(conn, guild_id, user_id, now, limits)
            settings = await load_guild_settings_pg(conn, guild_id)
            max_grant = limits.grant_cap(settings.max_grant)
            if amount > max_grant:
                return OverGrantLimit(amount, max_grant)
            cap = limits.moderator_cap(settings.mod_daily_cap)
            if cap:
                # The cap is a sum over rows, which no row lock protects: serialise this
                # moderator's grants in this guild until the transaction ends.
                await conn.execute(SQL_LOCK_MODERATOR, f"grant-cap:{guild_id}:{actor_id}")
                used = int(
                    await conn.fetchval(
                        SQL_GRANTED_SINCE, guild_id, actor_id, now - MODERATOR_CAP_WINDOW
                    )
                )
                if used + amount > cap:
                    return OverModeratorDailyCap(amount, cap, used)
            balance = await conn.fetchval(
                SQL_CREDIT, guild_id, user_id, amount, MAX_BALANCE - amount
            )
            if balance is None:
                return BalanceLimit(await _balance(conn, guild_id, user_id), amount)
            await _ledger_row(
                conn, guild_id, user_id, amount, "grant", now, reason=reason, actor_id=actor_id
            )
            return int(balance)

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
        async with self._db.transaction() as conn:
            # No first touch: opening the account would pay its starter grant, and a revoke
            # must never raise a balance.
            if await conn.fetchval(SQL_BALANCE, guild_id, user_id) is None:
                return NothingToRevoke(amount)
            balance = await conn.fetchval(SQL_DEBIT, guild_id, user_id, amount)
            if balance is None:
                return RevokeBeyondBalance(await _balance(conn, guild_id, user_id), amount)
            await _ledger_row(
                conn, guild_id, user_id, -amount, "revoke", now, reason=reason, actor_id=actor_id
            )
            return int(balance)

    async def history(self, guild_id: int, user_id: int, page: int, per_page: int) -> HistoryPage:
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            total = int(await conn.fetchval(SQL_HISTORY_COUNT, guild_id, user_id))
            rows = await conn.fetch(SQL_HISTORY_PAGE, guild_id, user_id, per_page, page * per_page)
        entries = tuple(
            LedgerEntry(
                int(row["id"]),
                int(row["delta"]),
                row["kind"],
                row["reason"],
                row["actor_id"],
                row["comparison_id"],
                row["model_id"],
                row["created_at"],
                int(row["balance_after"]),
            )
            for row in rows
        )
        return HistoryPage(entries, page, per_page, total)

    async def top(self, guild_id: int, limit: int) -> list[tuple[int, int]]:
        rows = await self._db.fetch(SQL_TOP, guild_id, limit)
        return [(int(row[0]), int(row[1])) for row in rows]

    async def audit(self) -> list[Discrepancy]:
        # One snapshot for all four queries, as SQLite's deferred read transaction gives.
        async with self._db.transaction(isolation="repeatable_read", readonly=True) as conn:
            return await audit_on(conn)

    async def counts(self) -> LedgerCounts:
        row = await self._db.fetchrow(SQL_COUNTS)
        assert row is not None
        return LedgerCounts(row["accounts"], row["rows"], row["holds"], row["open_holds"])

    async def keep_open(self, hold_ids: tuple[int, ...], now: datetime) -> list[int]:
        rows = await self._db.fetch(SQL_KEEP_OPEN, list(hold_ids), now)
        return sorted(int(row["id"]) for row in rows)
