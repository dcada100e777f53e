"""Ledger core: reserve/settle/release, races, crash recovery, history, audit, property test."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.credits.ledger import (
    RECOVERY_REASON,
    Hold,
    HoldNotFound,
    HoldState,
    InsufficientCredits,
    Ledger,
    LedgerError,
    LineItem,
)
from bot.db import AnyDatabase, is_postgres_url, open_database
from tests.bot.credits.ledger_fakes import GPT, NANO, PAIR, START, FakeClock
from tests.pg import empty_database, fetch, run_script, schema_errors, stamp

REPO = Path(__file__).resolve().parents[3]


async def kinds(db: AnyDatabase, guild: int = 1, user: int = 2) -> list[str]:
    rows = await fetch(
        db, "SELECT kind FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id", guild, user
    )
    return [row[0] for row in rows]


async def test_first_touch_grants_the_starter_once(ledger: Ledger, db: AnyDatabase) -> None:
    assert await ledger.balance(1, 2) == 0  # reading does not create the account
    assert await ledger.ensure_account(1, 2) == 60
    assert await ledger.ensure_account(1, 2) == 60
    assert await kinds(db) == ["starter"]


async def test_starter_grant_race_across_two_connections(db_target: str) -> None:
    first = await open_database(db_target)
    second = await open_database(db_target)
    try:
        ledgers = [Ledger(first), Ledger(second)]
        touches = [ledgers[n % 2].ensure_account(1, 2) for n in range(60)]
        touches += [ledgers[n % 2].reserve(1, 2, [GPT], comparison_id=f"c{n}") for n in range(4)]
        await asyncio.gather(*touches)
        assert await kinds(first) == ["starter"] + ["spend"] * 4
        assert await ledgers[0].balance(1, 2) == 60 - 4 * 8
        assert await ledgers[1].audit() == []
    finally:
        await second.close()
        await first.close()


async def test_200_concurrent_reserves_exactly_60_succeed(ledger: Ledger) -> None:
    await ledger.ensure_account(1, 2)
    await ledger.grant(1, 2, 60 * 30 - 60, "funding the race", actor_id=9)
    results = await asyncio.gather(
        *(ledger.reserve(1, 2, PAIR, comparison_id=f"c{n}") for n in range(200)),
        return_exceptions=True,
    )
    holds = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(holds), len(refused)) == (60, 140)
    assert all(r.balance < 30 and r.price == 30 for r in refused)
    assert await ledger.balance(1, 2) == 0
    assert await ledger.audit() == []


async def test_concurrent_reserves_from_two_connections_never_overdraw(db_target: str) -> None:
    first = await open_database(db_target)
    second = await open_database(db_target)
    try:
        one, two = Ledger(first), Ledger(second)
        await one.grant(1, 2, 20 * 30 - 60, "funding", actor_id=9)
        calls = [(one, two)[n % 2].reserve(1, 2, PAIR, comparison_id=f"c{n}") for n in range(50)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) == 20
        assert sum(isinstance(r, InsufficientCredits) for r in results) == 30
        assert await two.balance(1, 2) == 0
        assert await one.audit() == []
    finally:
        await second.close()
        await first.close()


async def test_insufficient_credits_says_balance_price_and_how_to_get_more(
    ledger: Ledger, db: AnyDatabase
) -> None:
    await ledger.reserve(1, 2, PAIR, comparison_id="a")
    with pytest.raises(InsufficientCredits) as caught:
        await ledger.reserve(1, 2, [*PAIR, LineItem("x", "X", 1)], comparison_id="b")
    assert (caught.value.balance, caught.value.price) == (30, 31)
    assert str(caught.value) == (
        "You have 30 credits; this comparison costs 31 (GPT-Image 2 8 + Nano Banana Pro 22 + X 1)."
        " Claim your daily credits with /credits daily or ask a moderator for a grant."
    )
    assert await kinds(db) == ["starter", "spend"]


async def test_a_refused_first_reserve_still_keeps_the_new_account(ledger: Ledger) -> None:
    with pytest.raises(InsufficientCredits):
        await ledger.reserve(1, 2, [LineItem("big", "Big", 61)], comparison_id="a")
    assert await ledger.balance(1, 2) == 60
    assert await ledger.ensure_account(1, 2) == 60


async def test_settle_keeps_delivered_share_and_refunds_each_failure(
    ledger: Ledger, db: AnyDatabase
) -> None:
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="cmp")
    assert (hold.amount, hold.state, hold.balance_after) == (30, HoldState.OPEN, 30)
    settlement = await ledger.settle(
        hold.id, ["gpt-image-2"], {"nano-banana-pro": "declined (safety)"}
    )
    assert (settlement.charged, settlement.refunded, settlement.balance) == (8, 22, 52)
    assert not settlement.already_closed
    assert [(r.model_id, r.credits, r.reason) for r in settlement.refunds] == [
        ("nano-banana-pro", 22, "declined (safety)")
    ]
    rows = await fetch(db, "SELECT kind, delta, reason, model_id FROM ledger ORDER BY id")
    assert rows[-1] == (
        "refund",
        22,
        "Nano Banana Pro: declined (safety)",
        "nano-banana-pro",
    )


async def test_settle_with_nothing_delivered_writes_one_row_per_model(
    ledger: Ledger, db: AnyDatabase
) -> None:
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="cmp")
    settlement = await ledger.settle(hold.id, [], {"gpt-image-2": "timed out"})
    assert (settlement.charged, settlement.refunded) == (0, 30)
    assert [r.reason for r in settlement.refunds] == ["timed out", "did not deliver"]
    assert await kinds(db) == ["starter", "spend", "refund", "refund"]


async def test_settle_twice_release_after_settle_change_nothing(
    ledger: Ledger, db: AnyDatabase
) -> None:
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="cmp")
    first = await ledger.settle(hold.id, ["gpt-image-2"], {})
    again = await ledger.settle(hold.id, ["gpt-image-2", "nano-banana-pro"], {})
    released = await ledger.release(hold.id, "upload failed")
    assert again.already_closed and released.already_closed
    assert again.state == released.state == HoldState.SETTLED
    assert (again.charged, again.refunded) == (first.charged, first.refunded)
    assert "already settled; nothing changed" in released.message
    assert await ledger.balance(1, 2) == 60 - 8
    assert await kinds(db) == ["starter", "spend", "refund"]


async def test_settle_after_release_changes_nothing(ledger: Ledger, db: AnyDatabase) -> None:
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="cmp")
    released = await ledger.release(hold.id, "upload failed")
    assert (released.state, released.refunded, released.balance) == (HoldState.RELEASED, 30, 60)
    settled = await ledger.settle(hold.id, ["gpt-image-2"], {})
    assert settled.already_closed and settled.state == HoldState.RELEASED
    assert (await ledger.release(hold.id, "again")).already_closed
    assert await ledger.balance(1, 2) == 60
    assert await kinds(db) == ["starter", "spend", "refund"]
    assert await ledger.audit() == []


async def test_racing_settles_and_releases_close_a_hold_once(ledger: Ledger) -> None:
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="cmp")
    calls = [ledger.settle(hold.id, ["gpt-image-2"], {}) for _ in range(10)]
    calls += [ledger.release(hold.id, "cancelled") for _ in range(10)]
    results = await asyncio.gather(*calls)
    assert sum(not r.already_closed for r in results) == 1
    assert await ledger.audit() == []


async def test_settle_refuses_models_that_are_not_in_the_hold(ledger: Ledger) -> None:
    hold = await ledger.reserve(1, 2, PAIR, comparison_id="cmp")
    with pytest.raises(ValueError, match="not in this hold"):
        await ledger.settle(hold.id, ["gpt-image-9"], {})
    with pytest.raises(ValueError, match="both delivered and refunded"):
        await ledger.settle(hold.id, ["gpt-image-2"], {"gpt-image-2": "?"})
    with pytest.raises(HoldNotFound):
        await ledger.release(hold.id + 1, "nope")
    assert (await ledger.settle(hold.id, ["gpt-image-2"], {})).charged == 8


async def test_reserve_refuses_malformed_prices(ledger: Ledger) -> None:
    for items in ([], [GPT, GPT], [LineItem("a", "A", -1)], [LineItem("a", "A", True)]):
        with pytest.raises(ValueError):
            await ledger.reserve(1, 2, items, comparison_id="c")
    with pytest.raises(ValueError):
        await ledger.reserve(1, 2, PAIR, comparison_id="")


async def test_a_reserve_cancelled_mid_flight_gives_the_credits_back(
    ledger: Ledger, db: AnyDatabase
) -> None:
    # Cancel after 0, 1, 2, ... loop ticks, so the cancellation lands before the reserve job
    # is queued in some rounds and after it committed in others; every round must end with
    # the credits back. Which round hits which window depends on scheduling, so the test
    # asserts each round's invariant and that the interesting window was hit at least once.
    await ledger.ensure_account(1, 2)
    refunded_after_commit = 0
    for round_no, ticks in enumerate(range(8)):
        before = await kinds(db)
        task = asyncio.create_task(ledger.reserve(1, 2, PAIR, comparison_id=f"cmp{round_no}"))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        cancelled = False
        try:
            await task
        except asyncio.CancelledError:
            cancelled = True
        else:  # finished before the cancel arrived: give it back the ordinary way
            hold = task.result()
            await ledger.release(hold.id, "test")
        await ledger.wait_background()
        assert await ledger.balance(1, 2) == 60
        added = (await kinds(db))[len(before) :]
        assert added in ([], ["spend", "refund"]), added
        refunded_after_commit += cancelled and added == ["spend", "refund"]
        assert await ledger.audit() == []
    assert refunded_after_commit >= 1


CRASH_AFTER_RESERVE = """
import asyncio, os, sys
from bot.db import open_database
from bot.credits.ledger import Ledger, LineItem

async def main():
    ledger = Ledger(await open_database(sys.argv[1]))
    items = [LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22)]
    hold = await ledger.reserve(1, 2, items, comparison_id="crash")
    print(hold.id, flush=True)
    os._exit(9)  # killed between reserve and settle: no settle, no close, no cleanup

asyncio.run(main())
"""


async def test_crash_between_reserve_and_settle_is_refunded_once_on_restart(
    db_target: str,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH_AFTER_RESERVE, db_target,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 9
    hold_id = int(out)

    db = await open_database(db_target)
    try:
        ledger = Ledger(db)
        assert await ledger.balance(1, 2) == 30  # the reserve survived the crash
        assert await ledger.recover_stale_holds(timedelta(0)) == 1
        assert await ledger.recover_stale_holds(timedelta(0)) == 0
        assert await ledger.balance(1, 2) == 60
        newest = (await ledger.history(1, 2)).entries[0]
        assert (newest.kind, newest.delta, newest.reason) == ("recovery", 30, RECOVERY_REASON)
        late = await ledger.settle(hold_id, ["gpt-image-2"], {})
        assert late.already_closed and late.state == HoldState.RELEASED
        assert await ledger.audit() == []
    finally:
        await db.close()


async def test_recovery_only_touches_old_holds_and_runs_once_when_raced(
    ledger: Ledger, clock: FakeClock
) -> None:
    old = await ledger.reserve(1, 2, [GPT], comparison_id="old")
    clock.advance(minutes=20)
    young = await ledger.reserve(1, 2, [GPT], comparison_id="young")
    counts = await asyncio.gather(
        *(ledger.recover_stale_holds(timedelta(minutes=15)) for _ in range(5))
    )
    assert sorted(counts) == [0, 0, 0, 0, 1]
    assert (await ledger.settle(old.id, ["gpt-image-2"], {})).already_closed
    assert not (await ledger.settle(young.id, ["gpt-image-2"], {})).already_closed
    assert await ledger.balance(1, 2) == 60 - 8


async def test_history_is_paged_newest_first_with_running_balance(ledger: Ledger) -> None:
    for n in range(1, 13):
        await ledger.grant(1, 2, n, f"gift {n}", actor_id=9)
    first = await ledger.history(1, 2, per_page=5)
    assert (first.total, first.pages) == (13, 3)
    assert [e.reason for e in first.entries] == [f"gift {n}" for n in (12, 11, 10, 9, 8)]
    assert first.entries[0].balance_after == 60 + sum(range(1, 13))
    last = await ledger.history(1, 2, page=2, per_page=5)
    assert [e.kind for e in last.entries] == ["grant", "grant", "starter"]
    assert last.entries[0].created_at.tzinfo is not None
    assert (await ledger.history(1, 2, page=9, per_page=5)).entries == ()
    assert (await ledger.history(7, 7)).pages == 1


async def test_top_is_per_guild_and_ordered(ledger: Ledger) -> None:
    await ledger.grant(1, 10, 5, "x", actor_id=9)
    await ledger.grant(1, 11, 50, "x", actor_id=9)
    await ledger.grant(2, 12, 500, "x", actor_id=9)
    await ledger.ensure_account(1, 13)
    assert await ledger.top(1) == [(11, 110), (10, 65), (13, 60)]
    assert await ledger.top(1, limit=1) == [(11, 110)]


async def test_audit_reports_tampering(ledger: Ledger, db: AnyDatabase) -> None:
    first = await ledger.reserve(1, 2, [GPT], comparison_id="one")
    second = await ledger.reserve(1, 2, [NANO], comparison_id="two")
    assert await ledger.audit() == []
    refund_without_settling = (
        "INSERT INTO ledger (guild_id, user_id, delta, kind, hold_id, created_at)"
        " VALUES (1, 2, 8, 'refund', ?, ?)"
    )
    now = stamp(db, START)
    await run_script(
        db,
        [
            ("UPDATE accounts SET balance = balance + 5 WHERE user_id = 2", ()),
            (refund_without_settling, (first.id, now)),
            (
                "UPDATE holds SET state = 'settled', charged = 22, closed_at = ? WHERE id = ?",
                (now, second.id),
            ),
        ],
    )
    found = await ledger.audit()
    assert {d.kind for d in found} == {"balance", "hold"}
    assert any("ledger sums to 38" in str(d) for d in found)
    assert any(d.hold_id == first.id and "open but" in str(d) for d in found)
    assert any(d.hold_id == second.id and "no outcome" in str(d) for d in found)


async def test_the_schema_itself_refuses_bad_rows(ledger: Ledger, db: AnyDatabase) -> None:
    await ledger.ensure_account(1, 2)
    bad = [
        "UPDATE accounts SET balance = -1",
        "UPDATE ledger SET delta = 1000",
        "DELETE FROM ledger",
        "INSERT INTO ledger (guild_id, user_id, delta, kind, created_at)"
        " VALUES (1, 2, 5, 'spend', ?)",
        "UPDATE accounts SET balance = 9223372036854775807 + 1",
    ]
    for statement in bad:
        params = (stamp(db, START),) if "?" in statement else ()
        with pytest.raises(schema_errors(db)):
            await run_script(db, [(statement, params)])
    assert await ledger.audit() == []


# --- property: random operations, concurrent within a step, audit clean after every step ----

USERS = st.sampled_from([(1, 1), (1, 2), (2, 1)])
MODELS = [GPT, NANO, LineItem("free", "Free", 0), LineItem("big", "Big", 45)]
OPERATION = st.one_of(
    st.tuples(st.just("reserve"), USERS, st.lists(st.sampled_from(MODELS), min_size=1, max_size=3,
                                                   unique_by=lambda i: i.model_id)),
    st.tuples(st.just("settle"), st.integers(0, 30), st.lists(st.booleans(), min_size=3)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("daily"), USERS),
    st.tuples(st.just("grant"), USERS, st.integers(-5, 12_000)),
    st.tuples(st.just("revoke"), USERS, st.integers(-5, 200)),
    st.tuples(st.just("advance"), st.integers(1, 30)),
    st.tuples(st.just("recover"), st.integers(0, 2)),
)  # fmt: skip


async def _run_steps(target: str, steps: list[list[tuple[object, ...]]]) -> None:
    clock = FakeClock()
    db = await open_database(target)
    ledger = Ledger(db, clock=clock)
    holds: list[Hold] = []
    money = {"in": 0, "charged": 0}
    closed_by: dict[int, int] = {}

    async def apply(op: tuple[Any, ...]) -> None:
        name = op[0]
        try:
            if name == "reserve":
                (guild, user), items = op[1], op[2]
                holds.append(
                    await ledger.reserve(guild, user, items, comparison_id=f"c{len(holds)}")
                )
            elif name in ("settle", "release"):
                if not holds:
                    return
                hold = holds[op[1] % len(holds)]
                if name == "settle":
                    delivered = [i.model_id for i, ok in zip(hold.items, op[2], strict=False) if ok]
                    result = await ledger.settle(hold.id, delivered, {})
                else:
                    result = await ledger.release(hold.id, "cancelled")
                if not result.already_closed:
                    closed_by[hold.id] = closed_by.get(hold.id, 0) + 1
                    money["charged"] += result.charged
            elif name == "recover":
                await ledger.recover_stale_holds(timedelta(hours=op[1]))
            elif name == "daily":
                claim = await ledger.claim_daily(*op[1])
                money["in"] += claim.amount  # after the await: += would read a stale total
            elif name == "grant":
                await ledger.grant(*op[1], op[2], "property", actor_id=7)
                money["in"] += op[2]
            elif name == "revoke":
                await ledger.revoke(*op[1], op[2], "property", actor_id=7)
                money["in"] -= op[2]
        except LedgerError as refused:
            event(f"{name} refused: {type(refused).__name__}")
        else:
            event(f"{name} done")

    try:
        for step in steps:
            for op in step:
                if op[0] == "advance":
                    clock.advance(hours=op[1])
            await asyncio.gather(*(apply(op) for op in step if op[0] != "advance"))
            assert await ledger.audit() == []
            assert all(count == 1 for count in closed_by.values())
            [row] = await fetch(
                db,
                "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COALESCE(SUM(balance), 0) FROM"
                " accounts), (SELECT COALESCE(SUM(amount), 0) FROM holds WHERE state = 'open')",
            )
            accounts, balances, open_amount = row
            # Conservation: starters + dailies + grants - revokes = balances + in-flight + charged.
            assert 60 * accounts + money["in"] == balances + open_amount + money["charged"]
    finally:
        await db.close()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.lists(OPERATION, min_size=1, max_size=6), min_size=1, max_size=8))
def test_random_operations_keep_the_ledger_consistent(
    db_target: str, steps: list[list[tuple[object, ...]]]
) -> None:
    if is_postgres_url(db_target):
        # One database for the whole run (the fixture is made once), emptied per example.
        asyncio.run(empty_database(db_target))
        asyncio.run(_run_steps(db_target, steps))
        return
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_run_steps(str(Path(directory) / "property.db"), steps))
