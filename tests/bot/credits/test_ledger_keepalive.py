"""Keeping holds open: a live owner's marks keep the stale-hold sweep off its holds, on both
backends, without ever touching a closed hold; once the marks stop, the sweep refunds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.credits.ledger import RECOVERY_REASON, HoldState, Ledger
from bot.db import AnyDatabase
from tests.bot.credits.ledger_fakes import GPT, NANO, PAIR, FakeClock
from tests.pg import fetch, stamp

WINDOW = timedelta(minutes=30)
HOLD_COLUMNS = "id, state, amount, charged, refunded, created_at, closed_at, kept_at"


async def hold_rows(db: AnyDatabase) -> list[tuple[object, ...]]:
    return await fetch(db, f"SELECT {HOLD_COLUMNS} FROM holds ORDER BY id")


async def ledger_rows(db: AnyDatabase) -> list[tuple[object, ...]]:
    return await fetch(db, "SELECT id, delta, kind, reason, hold_id FROM ledger ORDER BY id")


async def test_a_kept_hold_is_not_swept_while_an_untouched_one_of_the_same_age_is(
    ledger: Ledger, clock: FakeClock
) -> None:
    kept = await ledger.reserve(1, 2, [GPT], comparison_id="kept")
    untouched = await ledger.reserve(1, 2, [NANO], comparison_id="untouched")
    clock.advance(minutes=20)
    assert await ledger.keep_open([kept.id]) == {kept.id}
    clock.advance(minutes=15)  # both are 35 minutes old; one was marked 15 minutes ago

    assert await ledger.recover_stale_holds(WINDOW) == 1
    late = await ledger.settle(untouched.id, ["nano-banana-pro"], {})
    assert late.already_closed and late.state == HoldState.RELEASED
    settled = await ledger.settle(kept.id, ["gpt-image-2"], {})
    assert not settled.already_closed and settled.charged == 8
    assert await ledger.balance(1, 2) == 60 - 8
    assert await ledger.audit() == []


async def test_once_the_marks_stop_the_sweep_refunds_one_window_after_the_last(
    ledger: Ledger, clock: FakeClock
) -> None:
    """What a crash leaves: nobody marks the holds any more, and they are refunded in time."""
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="round")
    for _ in range(4):  # 100 minutes of rounds, marked every 25 minutes
        clock.advance(minutes=25)
        assert await ledger.recover_stale_holds(WINDOW) == 0
        assert await ledger.keep_open([hold.id]) == {hold.id}
    clock.advance(minutes=29, seconds=59)
    assert await ledger.recover_stale_holds(WINDOW) == 0
    clock.advance(seconds=1)
    assert await ledger.recover_stale_holds(WINDOW) == 1
    assert await ledger.balance(1, 2) == 60
    newest = (await ledger.history(1, 2)).entries[0]
    assert (newest.kind, newest.delta, newest.reason) == ("recovery", 30, RECOVERY_REASON)
    assert await ledger.keep_open([hold.id]) == set(), "a swept hold is never reopened"
    assert await ledger.audit() == []


async def test_keep_open_leaves_settled_released_and_unknown_holds_exactly_as_they_were(
    ledger: Ledger, db: AnyDatabase, clock: FakeClock
) -> None:
    settled = await ledger.reserve(1, 2, PAIR, comparison_id="settled")
    released = await ledger.reserve(1, 3, PAIR, comparison_id="released")
    still_open = await ledger.reserve(1, 4, PAIR, comparison_id="open")
    await ledger.settle(settled.id, ["gpt-image-2"], {"nano-banana-pro": "refused"})
    await ledger.release(released.id, "cancelled")
    clock.advance(minutes=5)
    before_holds, before_ledger = await hold_rows(db), await ledger_rows(db)
    balances = [await ledger.balance(1, user) for user in (2, 3, 4)]

    kept = await ledger.keep_open([settled.id, released.id, still_open.id, 999_999])

    assert kept == {still_open.id}
    after_holds = await hold_rows(db)
    assert after_holds[:2] == before_holds[:2], "closed holds are not touched"
    marked = after_holds[2]
    assert marked[:7] == before_holds[2][:7], "only the open hold's mark changed"
    assert (before_holds[2][7], marked[7]) == (None, stamp(db, clock.now))
    assert await ledger_rows(db) == before_ledger
    assert [await ledger.balance(1, user) for user in (2, 3, 4)] == balances
    assert await ledger.keep_open([]) == set()
    assert await ledger.audit() == []


async def test_a_mark_never_moves_a_hold_back_into_reach(ledger: Ledger, clock: FakeClock) -> None:
    """A process whose clock lags marks with an earlier time: the later mark stands."""
    hold = await ledger.reserve(1, 2, [GPT], comparison_id="round")
    clock.advance(minutes=20)
    await ledger.keep_open([hold.id])
    clock.advance(minutes=-10)
    assert await ledger.keep_open([hold.id]) == {hold.id}
    clock.advance(minutes=35)  # 35 minutes after the lagging mark, 25 after the real one
    assert await ledger.recover_stale_holds(WINDOW) == 0
    clock.advance(minutes=5)
    assert await ledger.recover_stale_holds(WINDOW) == 1


async def test_keep_open_refuses_what_is_not_a_hold_id(ledger: Ledger) -> None:
    for bad in (True, -1, 2**63, "1"):
        with pytest.raises(ValueError, match="hold_id"):
            await ledger.keep_open([bad])  # type: ignore[list-item]


async def test_racing_marks_and_sweeps_close_each_hold_once_or_keep_it(
    ledger: Ledger, clock: FakeClock
) -> None:
    """Every hold is either kept (and not refunded) or refunded once (and not kept)."""
    holds = [await ledger.reserve(1, 2, [GPT], comparison_id=f"c{n}") for n in range(6)]
    clock.advance(hours=1)
    ids = [hold.id for hold in holds]
    results = await asyncio.gather(
        ledger.keep_open(ids[:3]),
        ledger.recover_stale_holds(WINDOW),
        ledger.keep_open(ids[3:]),
        ledger.recover_stale_holds(WINDOW),
        ledger.keep_open(ids[::2]),
    )
    kept = set().union(*(r for r in results if isinstance(r, frozenset)))
    swept = sum(r for r in results if isinstance(r, int))
    still_open = 0
    for hold_id in ids:
        late = await ledger.settle(hold_id, ["gpt-image-2"], {})
        assert late.already_closed == (hold_id not in kept)
        still_open += not late.already_closed
    assert swept == len(ids) - still_open
    assert await ledger.balance(1, 2) == 60 - 8 * still_open
    assert await ledger.audit() == []
