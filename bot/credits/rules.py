"""Credit limits, the ledger's typed errors and the validators that raise them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.errors import SplitshotError

if TYPE_CHECKING:
    from bot.credits.holds import LineItem

# One amount (a grant, a revoke, a line item, a hold) stays below a billion credits and a
# balance fed by grants and allowances stays below a trillion, so a balance plus everything
# that can be refunded into it is still ~10^7 times below SQLite's 2^63 - 1: no sum can wrap.
MAX_AMOUNT = 1_000_000_000
MAX_BALANCE = 1_000_000_000_000
MAX_REASON_LENGTH = 300


@dataclass(frozen=True, slots=True)
class OperatorLimits:
    """What the person running the bot allows every server, from the environment.

    A server's own settings can only be stricter. ``None`` means no limit of that kind.
    Spend is counted in the catalog's credits per image (what a model costs the operator),
    not in the prices a server charges its members.
    """

    #: largest single /credits grant, whatever a server sets
    max_grant: int | None = 10_000
    #: credits one moderator may grant per 24 h; a server's "0 = no cap" means this one
    mod_daily_cap: int | None = 50_000
    #: highest starter grant and daily allowance a server may set
    max_starter_grant: int | None = 1_000
    max_daily_allowance: int | None = 1_000
    #: provider spend per server, and over every server, per UTC day
    guild_daily_budget: int | None = None
    global_daily_budget: int | None = None
    #: a server's price override may not go below this share of the model's catalog price
    price_floor_percent: int = 100
    #: comparisons running at once over every server (and every shard on the database)
    max_running: int | None = 400

    @classmethod
    def unlimited(cls) -> OperatorLimits:
        """No ceilings at all (tests and tools that act as the operator)."""
        return cls(
            max_grant=None,
            mod_daily_cap=None,
            max_starter_grant=None,
            max_daily_allowance=None,
            guild_daily_budget=None,
            global_daily_budget=None,
            price_floor_percent=0,
            max_running=None,
        )

    def starter_grant(self, server_value: int) -> int:
        """The starter grant paid: the server's, within the operator's ceiling."""
        ceiling = self.max_starter_grant
        return server_value if ceiling is None else min(server_value, ceiling)

    def daily_allowance(self, server_value: int) -> int:
        """The daily allowance paid: the server's, within the operator's ceiling."""
        ceiling = self.max_daily_allowance
        return server_value if ceiling is None else min(server_value, ceiling)

    def grant_cap(self, server_cap: int) -> int:
        """The largest single grant: the server's, within the operator's."""
        return server_cap if self.max_grant is None else min(server_cap, self.max_grant)

    def moderator_cap(self, server_cap: int) -> int:
        """Credits one moderator may grant per 24 h; 0 means no cap at all."""
        caps = [cap for cap in (server_cap, self.mod_daily_cap or 0) if cap > 0]
        return min(caps) if caps else 0


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")

HOW_TO_GET_MORE = "Claim your daily credits with /credits daily or ask a moderator for a grant."


def credits_text(amount: int) -> str:
    """Return ``"1 credit"`` / ``"1,500 credits"``."""
    return f"{amount:,} credit" if amount == 1 else f"{amount:,} credits"


def price_text(items: Sequence[LineItem]) -> str:
    """Return the itemised price, e.g. ``"GPT-Image 2 8 + Nano Banana Pro 22"``."""
    return " + ".join(f"{item.label} {item.credits:,}" for item in items)


def _wait_text(delta: timedelta) -> str:
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


class LedgerError(SplitshotError):
    """A credits operation was refused; nothing changed and the message says why."""


class InsufficientCredits(LedgerError):
    """The balance does not cover the price of a comparison."""

    def __init__(self, balance: int, price: int, items: Sequence[LineItem] = ()) -> None:
        self.balance = balance
        self.price = price
        breakdown = f" ({price_text(items)})" if items else ""
        super().__init__(
            f"You have {credits_text(balance)}; this comparison costs {price:,}{breakdown}. "
            f"{HOW_TO_GET_MORE}"
        )


class DailyAlreadyClaimed(LedgerError):
    """The member already claimed the daily allowance in the current period."""

    def __init__(self, next_due: datetime, now: datetime) -> None:
        self.next_due = next_due
        super().__init__(
            "You already claimed your daily credits. The next claim opens in "
            f"{_wait_text(next_due - now)} ({next_due:%Y-%m-%d %H:%M} UTC)."
        )


class DailyDisabled(LedgerError):
    """The server set its daily allowance to zero."""

    def __init__(self) -> None:
        super().__init__("Daily credits are turned off in this server.")


class InvalidAmount(LedgerError):
    """An amount that is not a positive whole number within the limit."""


class AmountNotInteger(InvalidAmount):
    """The amount is not a whole number (a float, a bool, text, ...)."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(f"The amount must be a whole number of credits, not {value!r}.")


class AmountNotPositive(InvalidAmount):
    """The amount is zero or negative."""

    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(f"The amount must be at least 1 credit (got {value:,}).")


class AmountTooLarge(InvalidAmount):
    """The amount exceeds the largest single amount the ledger accepts."""

    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(
            f"The amount {value:,} is too large; "
            f"one operation moves at most {MAX_AMOUNT:,} credits."
        )


class OverGrantLimit(LedgerError):
    """A grant above the server's per-grant maximum."""

    def __init__(self, amount: int, limit: int) -> None:
        self.amount = amount
        self.limit = limit
        super().__init__(
            f"A single grant is limited to {credits_text(limit)} in this server "
            f"(you asked for {amount:,})."
        )


class OverModeratorDailyCap(LedgerError):
    """A grant that would take the moderator past the per-moderator 24-hour cap."""

    def __init__(self, amount: int, cap: int, used: int) -> None:
        self.amount = amount
        self.cap = cap
        self.used = used
        left = max(0, cap - used)
        super().__init__(
            f"Moderators may grant at most {credits_text(cap)} per 24 hours in this server; "
            f"you have granted {used:,}, so at most {left:,} more now (you asked for {amount:,})."
        )


class RevokeBeyondBalance(LedgerError):
    """A revoke larger than the member's balance (balances never go below zero)."""

    def __init__(self, balance: int, amount: int) -> None:
        self.balance = balance
        self.amount = amount
        super().__init__(
            f"That member has only {credits_text(balance)}, so you cannot revoke {amount:,}; "
            f"revoke at most {balance:,}."
        )


class NothingToRevoke(RevokeBeyondBalance):
    """A revoke from a member who never used the bot here: there is no account, so nothing."""

    def __init__(self, amount: int) -> None:
        self.balance = 0
        self.amount = amount
        LedgerError.__init__(
            self,
            f"That member has never used Splitshot in this server, so they have no credits to "
            f"revoke (you asked for {amount:,}); nothing changed.",
        )


class SelfGrant(LedgerError):
    """A moderator tried to grant credits to themselves."""

    def __init__(self) -> None:
        super().__init__(
            "You can't grant credits to yourself; ask another moderator or a server admin."
        )


class BalanceLimit(LedgerError):
    """Crediting would take a balance past the ledger's maximum balance."""

    def __init__(self, balance: int, amount: int) -> None:
        self.balance = balance
        self.amount = amount
        super().__init__(
            f"Adding {credits_text(amount)} would take the balance of {balance:,} past the "
            f"maximum of {MAX_BALANCE:,} credits."
        )


class MissingReason(LedgerError):
    """Grants and revokes need a reason for the audit trail."""

    def __init__(self) -> None:
        super().__init__("Please give a reason; every grant and revoke is logged with one.")


class ReasonTooLong(LedgerError):
    """The reason does not fit the ledger row."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"The reason is {length:,} characters long; keep it under {MAX_REASON_LENGTH} "
            "characters."
        )


class HoldNotFound(LedgerError):
    """No reservation with that id exists."""

    def __init__(self, hold_id: int) -> None:
        self.hold_id = hold_id
        super().__init__(f"Reservation #{hold_id} does not exist.")


def validate_amount(value: object) -> int:
    """Return ``value`` if it is a whole number in 1..MAX_AMOUNT, else raise InvalidAmount."""
    # bool is an int subclass and True would otherwise grant one credit.
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmountNotInteger(value)
    if value <= 0:
        raise AmountNotPositive(value)
    if value > MAX_AMOUNT:
        raise AmountTooLarge(value)
    return value


def parse_amount(text: str) -> int:
    """Parse a typed amount ("1500", "1,500", "1_500") with the same refusals as validate_amount."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not _WHOLE_NUMBER.fullmatch(cleaned):
        raise AmountNotInteger(text)
    return validate_amount(int(cleaned))


def validate_reason(reason: object) -> str:
    """Return the stripped reason, refusing a missing or over-long one."""
    if not isinstance(reason, str) or not reason.strip():
        raise MissingReason()
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise ReasonTooLong(len(reason))
    return reason
