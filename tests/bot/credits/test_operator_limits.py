"""Who may mint credits: no self-grants, operator ceilings above every server's caps, and a
revoke that never opens (and so never pays) an account. On both backends."""

from __future__ import annotations

import pytest

from bot.catalog import load_catalog
from bot.credits.budget import floored_prices, limit_refusal
from bot.credits.ledger import (
    Ledger,
    NothingToRevoke,
    OperatorLimits,
    OverGrantLimit,
    OverModeratorDailyCap,
    RevokeBeyondBalance,
    SelfGrant,
)
from bot.db import AnyDatabase
from bot.guild_settings import update_guild_settings
from bot.settings import Settings, SettingsError
from tests.bot.credits.ledger_fakes import FakeClock
from tests.pg import fetch


async def test_revoke_from_a_member_who_never_used_the_bot_changes_nothing(db: AnyDatabase) -> None:
    ledger = Ledger(db, clock=FakeClock())
    with pytest.raises(NothingToRevoke) as caught:
        await ledger.revoke(1, 2, 1, "spam", actor_id=9)
    assert isinstance(caught.value, RevokeBeyondBalance)
    assert "never used Splitshot" in str(caught.value) and "nothing changed" in str(caught.value)
    # No account was opened, so no starter grant was paid.
    assert await fetch(db, "SELECT 1 FROM accounts WHERE guild_id = 1 AND user_id = 2") == []
    assert await ledger.balance(1, 2) == 0
    assert await ledger.audit() == []


async def test_nobody_grants_to_themselves(db: AnyDatabase) -> None:
    ledger = Ledger(db, clock=FakeClock())
    with pytest.raises(SelfGrant, match="ask another moderator"):
        await ledger.grant(1, 9, 10, "me", actor_id=9)
    assert await ledger.balance(1, 9) == 0
    assert await ledger.grant(1, 2, 10, "prize", actor_id=9) == 70


async def test_operator_ceilings_hold_whatever_the_server_sets(db: AnyDatabase) -> None:
    limits = OperatorLimits(max_grant=500, mod_daily_cap=1_000)
    ledger = Ledger(db, clock=FakeClock(), limits=limits)
    # A server lifting its own caps (or switching the moderator cap off) gains nothing.
    await update_guild_settings(db, 1, max_grant=1_000_000_000, mod_daily_cap=0)
    with pytest.raises(OverGrantLimit) as too_big:
        await ledger.grant(1, 2, 501, "lots", actor_id=9)
    assert too_big.value.limit == 500
    assert await ledger.grant(1, 2, 500, "a", actor_id=9) == 560
    assert await ledger.grant(1, 3, 500, "b", actor_id=9) == 560
    with pytest.raises(OverModeratorDailyCap) as capped:
        await ledger.grant(1, 4, 1, "c", actor_id=9)
    assert capped.value.cap == 1_000
    # The stricter of the two wins, either way round.
    await update_guild_settings(db, 1, max_grant=100)
    with pytest.raises(OverGrantLimit):
        await ledger.grant(1, 2, 101, "d", actor_id=8)


def test_operator_limits_from_the_environment() -> None:
    limits = Settings.from_env({}).limits
    assert (limits.max_grant, limits.mod_daily_cap) == (10_000, 50_000)
    assert limits.price_floor_percent == 100 and limits.max_running == 400
    assert limits.guild_daily_budget is None and limits.global_daily_budget is None
    env = {
        "SPLITSHOT_MAX_GRANT": "250",
        "SPLITSHOT_MOD_DAILY_CAP": "0",
        "SPLITSHOT_MAX_STARTER_GRANT": "off",
        "SPLITSHOT_GUILD_DAILY_BUDGET": "300",
        "SPLITSHOT_DAILY_BUDGET": "1000",
        "SPLITSHOT_PRICE_FLOOR_PERCENT": "50",
        "SPLITSHOT_MAX_RUNNING": "3",
    }
    limits = Settings.from_env(env).limits
    assert limits.max_grant == 250 and limits.mod_daily_cap is None
    assert limits.max_starter_grant is None
    assert (limits.guild_daily_budget, limits.global_daily_budget) == (300, 1000)
    assert (limits.price_floor_percent, limits.max_running) == (50, 3)
    with pytest.raises(SettingsError, match="SPLITSHOT_DAILY_BUDGET"):
        Settings.from_env({"SPLITSHOT_DAILY_BUDGET": "lots"})


def test_limit_refusal_names_the_ceiling_and_the_price_floor() -> None:
    catalog = load_catalog()
    limits = OperatorLimits()
    assert limit_refusal("max_grant", 10_001, limits, catalog) is not None
    assert limit_refusal("max_grant", 10_000, limits, catalog) is None
    assert limit_refusal("starter_grant", 5_000, limits, catalog) is not None
    assert limit_refusal("daily_allowance", 5_000, limits, catalog) is not None
    assert "cannot be switched off" in str(limit_refusal("mod_daily_cap", 0, limits, catalog))
    free = limit_refusal("price_overrides", {"nano-banana-pro": 0}, limits, catalog)
    assert free is not None and "can't go below 22" in free
    assert limit_refusal("price_overrides", {"nano-banana-pro": 22}, limits, catalog) is None
    assert limit_refusal("starter_grant", 5_000, OperatorLimits.unlimited(), catalog) is None
    # Overrides saved before the floor are lifted to it when priced.
    assert floored_prices({"nano-banana-pro": 1, "gpt-image-2": 30}, catalog, limits) == {
        "nano-banana-pro": 22,
        "gpt-image-2": 30,
    }


async def test_starter_grant_and_allowance_saved_above_the_ceiling_pay_the_ceiling(
    db: AnyDatabase,
) -> None:
    # Saved before the operator set a ceiling (the settings layer itself allows it).
    await update_guild_settings(db, 1, starter_grant=1_000_000_000, daily_allowance=1_000_000)
    ledger = Ledger(db, clock=FakeClock(), limits=OperatorLimits(max_starter_grant=100))
    assert await ledger.ensure_account(1, 2) == 100
    limits = OperatorLimits(max_starter_grant=100, max_daily_allowance=25)
    ledger = Ledger(db, clock=FakeClock(), limits=limits)
    claim = await ledger.claim_daily(1, 3)
    assert (claim.amount, claim.balance) == (25, 125)
    assert await ledger.audit() == []
