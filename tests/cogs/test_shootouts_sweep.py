"""Shoot-outs and the stale-hold sweep, in SimCord: rounds that together outlast the sweep's
window keep their holds and are all charged, while the sweep goes on refunding what was truly
abandoned; a round whose hold was refunded anyway is not run. ``test_postgres_shootouts`` runs
these on PostgreSQL too."""

from __future__ import annotations

from datetime import timedelta

import discord
import pytest

from bot.credits.ledger import RECOVERY_REASON, LineItem
from bot.shootouts.pool import POOL_USER_ID
from cogs.shootouts.runner import EXPIRED
from tests.cogs.conftest import Behaviour, FakeAdapter, World
from tests.cogs.test_shootouts import (
    MODELS,
    PROMPTS,
    ROUND_PRICE,
    fund_pool,
    pool_balance,
    priced,
    round_messages,
    rounds,
)
from tests.pg import fetch

ROUND_MINUTES = 25  # each round's models take this long; three rounds outlast the sweep's window


@pytest.mark.parametrize("ledger_clock", [discord.utils.utcnow])  # holds age in SimCord's time
async def test_rounds_outlasting_the_stale_window_keep_their_holds_and_all_settle(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    window = timedelta(minutes=w.bot.settings.stale_hold_minutes)
    assert 2 * ROUND_MINUTES > window.total_seconds() / 60 > ROUND_MINUTES
    await fund_pool(w, 500)
    # A comparison left open by a crash, as old as the shoot-out: the sweep must refund it.
    with w.env.time_context():
        abandoned = await w.bot.ledger.reserve(
            w.guild.id, w.other.id, [LineItem("gpt-image-2", "GPT-Image 2", 8)],
            comparison_id="abandoned",
        )  # fmt: skip
    for model in MODELS.values():
        fake.behaviour[model] = Behaviour(delay=ROUND_MINUTES * 60)
    confirm = await priced(w, w.moderator, pool=True)
    await w.moderator.click(confirm.response, label="Start")
    assert await pool_balance(w) == 500 - 3 * ROUND_PRICE, "every round is reserved at Start"

    # The sweep runs every 10 minutes meanwhile: by the last round, its hold is 50
    # minutes old, and the second round's was past the window while that round ran.
    for _ in range(3):
        await w.env.advance_time(ROUND_MINUTES * 60)
    (thread,) = w.channel.threads

    assert [r["state"] for r in await rounds(w)] == ["posted"] * 3
    assert [(r["charged"], r["refunded"]) for r in await rounds(w)] == [(ROUND_PRICE, 0)] * 3
    assert len(round_messages(thread)) == 3
    assert await pool_balance(w) == 500 - 3 * ROUND_PRICE, "every round was charged"
    pool_kinds = await fetch(
        w.bot.db, "SELECT kind FROM ledger WHERE user_id = ? ORDER BY id", POOL_USER_ID
    )
    assert [k[0] for k in pool_kinds] == ["grant", "spend", "spend", "spend"]
    swept = await w.bot.ledger.settle(abandoned.id, ["gpt-image-2"], {})
    assert swept.already_closed and swept.state == "released", "the sweep ran meanwhile"
    assert (await w.ledger_rows(w.other))[-1] == ("recovery", 8)
    assert await w.bot.ledger.audit() == []


async def test_a_round_whose_hold_was_refunded_before_it_ran_is_not_run(
    world: World, fake: FakeAdapter
) -> None:
    """A shoot-out stalled past the window (its marks could not keep up): what the sweep
    refunded is not run, so the providers are not paid for a round nobody is charged for."""
    w = world
    await fund_pool(w, 500)
    for model in MODELS.values():
        fake.behaviour[model] = Behaviour(delay=60)
    confirm = await priced(w, w.moderator, pool=True)
    await w.moderator.click(confirm.response, label="Start")
    ((last_hold,),) = await fetch(w.bot.db, "SELECT hold_id FROM shootout_rounds WHERE idx = 2")
    # The first round is running; the sweep refunds the last one's hold meanwhile.
    assert not (await w.bot.ledger.release(last_hold, RECOVERY_REASON)).already_closed

    await w.env.advance_time(60)
    await w.env.advance_time(60)

    stored = await rounds(w)
    assert [r["state"] for r in stored] == ["posted", "posted", "refunded"]
    assert stored[2]["note"] == EXPIRED and stored[2]["id"] is None, "never run nor recorded"
    assert [req.prompt for _, req in fake.calls].count(PROMPTS["prompt3"]) == 0
    assert len(fake.calls) == 2 * len(MODELS)
    assert await pool_balance(w) == 500 - 2 * ROUND_PRICE
    ((state,),) = await fetch(w.bot.db, "SELECT state FROM shootouts")
    assert state == "open", "the shoot-out goes on to its vote with what was posted"
    assert await w.bot.ledger.audit() == []
