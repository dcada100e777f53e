"""Ledger refusals — daily claims, grant caps, revokes, amounts, reasons — each with its message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.credits.ledger import (
    MAX_AMOUNT,
    MAX_BALANCE,
    AmountNotInteger,
    AmountNotPositive,
    AmountTooLarge,
    BalanceLimit,
    DailyAlreadyClaimed,
    DailyDisabled,
    InvalidAmount,
    Ledger,
    MissingReason,
    OverGrantLimit,
    OverModeratorDailyCap,
    ReasonTooLong,
    RevokeBeyondBalance,
    parse_amount,
    validate_amount,
)
from bot.db import AnyDatabase
from bot.errors import SplitshotError
from bot.guild_settings import update_guild_settings
from tests.bot.credits.ledger_fakes import START, FakeClock
from tests.pg import run_script, stamp


async def test_daily_claim_once_per_period_then_says_when(ledger: Ledger, clock: FakeClock) -> None:
    claim = await ledger.claim_daily(1, 2)
    assert (claim.amount, claim.balance, claim.next_due) == (20, 80, START + timedelta(hours=24))
    clock.advance(hours=20, minutes=30)
    with pytest.raises(DailyAlreadyClaimed) as caught:
        await ledger.claim_daily(1, 2)
    assert caught.value.next_due == START + timedelta(hours=24)
    assert caught.value.next_due.tzinfo == UTC
    assert str(caught.value) == (
        "You already claimed your daily credits. "
        "The next claim opens in 3 h 30 min (2026-05-11 12:00 UTC)."
    )
    clock.advance(hours=3, minutes=30)
    assert (await ledger.claim_daily(1, 2)).balance == 100


async def test_racing_daily_claims_pay_once(ledger: Ledger) -> None:
    results = await asyncio.gather(
        *(ledger.claim_daily(1, 2) for _ in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, DailyAlreadyClaimed) for r in results if isinstance(r, Exception))
    assert await ledger.balance(1, 2) == 80


async def test_daily_follows_guild_settings(
    ledger: Ledger, db: AnyDatabase, clock: FakeClock
) -> None:
    await update_guild_settings(db, 1, daily_allowance=5, daily_period_hours=1)
    await update_guild_settings(db, 2, daily_allowance=0)
    assert (await ledger.claim_daily(1, 2)).amount == 5
    clock.advance(hours=1)
    assert (await ledger.claim_daily(1, 2)).balance == 70
    with pytest.raises(DailyDisabled, match="turned off"):
        await ledger.claim_daily(2, 2)


async def test_starter_grant_follows_guild_settings(ledger: Ledger, db: AnyDatabase) -> None:
    await update_guild_settings(db, 1, starter_grant=0)
    await update_guild_settings(db, 2, starter_grant=250)
    assert await ledger.ensure_account(1, 2) == 0
    assert await ledger.ensure_account(2, 2) == 250
    assert (await ledger.history(1, 2)).total == 0


async def test_grant_above_the_per_grant_maximum_is_refused(
    ledger: Ledger, db: AnyDatabase
) -> None:
    with pytest.raises(OverGrantLimit) as caught:
        await ledger.grant(1, 2, 10_001, "too generous", actor_id=9)
    assert str(caught.value) == (
        "A single grant is limited to 10,000 credits in this server (you asked for 10,001)."
    )
    await update_guild_settings(db, 1, max_grant=20_000)
    assert await ledger.grant(1, 2, 10_001, "now allowed", actor_id=9) == 10_061


async def test_moderator_daily_cap_is_per_moderator_and_rolling(
    ledger: Ledger, db: AnyDatabase, clock: FakeClock
) -> None:
    for user in range(5):
        await ledger.grant(1, user, 10_000, "event prize", actor_id=9)
    with pytest.raises(OverModeratorDailyCap) as caught:
        await ledger.grant(1, 99, 1, "one more", actor_id=9)
    assert (caught.value.used, caught.value.cap) == (50_000, 50_000)
    assert "at most 0 more now" in str(caught.value)
    assert await ledger.grant(1, 99, 1, "another moderator", actor_id=8) == 61
    assert await ledger.grant(2, 99, 1, "another server", actor_id=9) == 61
    clock.advance(hours=24)
    assert await ledger.grant(1, 99, 10_000, "a day later", actor_id=9) == 10_061
    await update_guild_settings(db, 3, mod_daily_cap=0)
    for user in range(6):
        await ledger.grant(3, user, 10_000, "no cap here", actor_id=9)


async def test_racing_grants_respect_the_moderator_cap(ledger: Ledger) -> None:
    results = await asyncio.gather(
        *(ledger.grant(1, n, 10_000, "race", actor_id=9) for n in range(8)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 5
    assert sum(isinstance(r, OverModeratorDailyCap) for r in results) == 3


async def test_revoke_never_goes_below_zero_and_says_what_is_there(ledger: Ledger) -> None:
    await ledger.ensure_account(1, 2)
    assert await ledger.revoke(1, 2, 48, "spam", actor_id=9) == 12
    with pytest.raises(RevokeBeyondBalance) as caught:
        await ledger.revoke(1, 2, 13, "more spam", actor_id=9)
    assert caught.value.balance == 12
    assert str(caught.value) == (
        "That member has only 12 credits, so you cannot revoke 13; revoke at most 12."
    )
    assert await ledger.revoke(1, 2, 12, "all of it", actor_id=9) == 0
    assert await ledger.audit() == []


@pytest.mark.parametrize(
    ("amount", "error", "message"),
    [
        (0, AmountNotPositive, "The amount must be at least 1 credit (got 0)."),
        (-5, AmountNotPositive, "The amount must be at least 1 credit (got -5)."),
        (1.5, AmountNotInteger, "The amount must be a whole number of credits, not 1.5."),
        (10.0, AmountNotInteger, "The amount must be a whole number of credits, not 10.0."),
        (True, AmountNotInteger, "The amount must be a whole number of credits, not True."),
        ("10", AmountNotInteger, "The amount must be a whole number of credits, not '10'."),
        (
            MAX_AMOUNT + 1,
            AmountTooLarge,
            "The amount 1,000,000,001 is too large; one operation moves at most "
            "1,000,000,000 credits.",
        ),
        (
            2**63,
            AmountTooLarge,
            "The amount 9,223,372,036,854,775,808 is too large; one operation moves at most "
            "1,000,000,000 credits.",
        ),
    ],
)
async def test_bad_amounts_are_refused_with_their_own_message(
    ledger: Ledger, amount: object, error: type[InvalidAmount], message: str
) -> None:
    for operation in (ledger.grant, ledger.revoke):
        with pytest.raises(error) as caught:
            await operation(1, 2, amount, "reason", actor_id=9)  # type: ignore[arg-type]
        assert str(caught.value) == message
        assert isinstance(caught.value, SplitshotError)
    assert await ledger.balance(1, 2) == 0  # refused before touching the database


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1500", 1500), ("1,500", 1500), (" 1_500 ", 1500), ("+7", 7)],
)
def test_parse_amount_accepts_whole_numbers(text: str, expected: int) -> None:
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [("1.5", AmountNotInteger), ("1e9", AmountNotInteger), ("", AmountNotInteger),
     ("²", AmountNotInteger), ("0", AmountNotPositive), ("-3", AmountNotPositive),
     ("99999999999999999999999", AmountTooLarge)],
)  # fmt: skip
def test_parse_amount_refuses_the_rest(text: str, error: type[InvalidAmount]) -> None:
    with pytest.raises(error):
        parse_amount(text)


def test_validate_amount_returns_the_amount() -> None:
    assert validate_amount(MAX_AMOUNT) == MAX_AMOUNT


async def test_reasons_are_required_and_bounded(ledger: Ledger) -> None:
    for reason in ("", "   ", None):
        with pytest.raises(MissingReason, match="give a reason"):
            await ledger.grant(1, 2, 5, reason, actor_id=9)  # type: ignore[arg-type]
    with pytest.raises(ReasonTooLong, match="301 characters"):
        await ledger.revoke(1, 2, 5, "x" * 301, actor_id=9)
    assert await ledger.grant(1, 2, 5, "  trimmed  ", actor_id=9) == 65
    assert (await ledger.history(1, 2)).entries[0].reason == "trimmed"


async def test_balances_stay_far_from_64_bit_overflow(ledger: Ledger, db: AnyDatabase) -> None:
    await update_guild_settings(db, 1, max_grant=MAX_AMOUNT, mod_daily_cap=0)
    await ledger.ensure_account(1, 2)
    near_the_ceiling = MAX_BALANCE - 60 - 10
    # A consistent shortcut past a thousand max grants.
    await run_script(
        db,
        [
            ("UPDATE accounts SET balance = balance + ?", (near_the_ceiling,)),
            (
                "INSERT INTO ledger (guild_id, user_id, delta, kind, reason, created_at)"
                " VALUES (1, 2, ?, 'grant', 'setup', ?)",
                (near_the_ceiling, stamp(db, START)),
            ),
        ],
    )
    with pytest.raises(BalanceLimit, match="maximum of 1,000,000,000,000"):
        await ledger.grant(1, 2, 11, "over the top", actor_id=9)
    assert await ledger.grant(1, 2, 10, "exactly to the top", actor_id=9) == MAX_BALANCE
    with pytest.raises(BalanceLimit):
        await ledger.claim_daily(1, 2)
    assert await ledger.audit() == []


async def test_a_naive_clock_is_a_programming_error(db: AnyDatabase) -> None:
    naive = Ledger(db, clock=lambda: datetime(2026, 5, 10, 12, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        await naive.claim_daily(1, 2)


async def test_ids_must_be_discord_ids(ledger: Ledger) -> None:
    for guild, user in ((-1, 2), (1, 2**63), (True, 2)):
        with pytest.raises(ValueError, match="Discord id"):
            await ledger.ensure_account(guild, user)
