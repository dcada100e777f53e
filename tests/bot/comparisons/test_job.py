"""The comparison job owns the money and the record: charged only for what the member received.

Regressions from the one-home restructuring: the record is written in the settle's own
transaction (before the post), a crash between the settle and the post leaves a stored,
charged comparison whose Details still show after a restart and whose charge the recovery
gives back, and the verdict is decided once, in the view. Every test that stores anything runs
on both backends: SQLite, then PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from bot.catalog import Catalog
from bot.comparisons.capacity import Capacity
from bot.comparisons.events import Delivered, Failed, PanelChanged, Reserved, ResultReady
from bot.comparisons.job import Requester, recover_undelivered
from bot.comparisons.plan import CompareRequest
from bot.comparisons.records import get_comparison, get_comparison_by_message
from bot.comparisons.service import AllModelsFailed
from bot.credits.budget import Budget
from bot.credits.ledger import Ledger, OperatorLimits
from bot.db import AnyDatabase, open_database
from providers.base import Refused, Unavailable
from providers.limits import RequestSlots
from tests.bot.comparisons.conftest import job_for, plan_with, service_with
from tests.conftest import FakeAdapter


@pytest.fixture
async def db(db_target: str) -> AsyncIterator[AnyDatabase]:
    """Both backends: a temp SQLite file, then a fresh PostgreSQL database."""
    database = await open_database(db_target)
    yield database
    await database.close()


async def ledger_for(db: Any) -> Ledger:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    return ledger


async def test_a_delivered_job_charges_only_delivered_models_and_records_them(
    catalog: Catalog, db: Any
) -> None:
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter(errors={"nano-banana-pro": Refused("safety")}))
    job = job_for(
        service, plan_with(service, CompareRequest("a fox", "portrait")), ledger=ledger, db=db
    )
    events: list[type] = []
    job.events.subscribe(lambda e: events.append(type(e)))

    result = await job.produce()
    # Stored with its charge before anything is posted: reactions and Details find it at once.
    stored = await get_comparison(db, job.plan.id)
    assert stored is not None and stored.delivery == "pending" and stored.charged == 8
    assert stored.hold_id == job.hold.id  # type: ignore[union-attr]
    assert await ledger.balance(1, 2) == 60 - 8 == job.balance_after

    await job.delivered(channel_id=3, message_id=44, vote_deadline=None)
    posted = await get_comparison_by_message(db, 44)
    assert posted is not None and posted.delivery == "posted" and posted.channel_id == 3
    assert result.view.verdict is result.verdict, "the verdict is decided once, in the view"
    assert events[0] is Reserved and events[-2:] == [ResultReady, Delivered]
    assert PanelChanged in events
    assert await ledger.audit() == []


async def test_the_record_lands_in_the_settles_transaction(catalog: Catalog, db: Any) -> None:
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter())
    job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    settle = ledger.settle
    seen: list[object] = []

    async def spying_settle(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("also"))
        return await settle(*args, **kwargs)

    ledger.settle = spying_settle  # type: ignore[method-assign]
    await job.produce()
    assert seen and seen[0] is not None, "the record rides on the settle"
    # A record that cannot be written rolls the charge back with it (and the hold is released).
    job2 = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    job2.plan = job.plan  # same id: the INSERT fails on the primary key
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await job2.produce()
    assert await ledger.balance(1, 2) == 60 - 30
    assert await ledger.audit() == []


async def test_a_failed_post_refunds_what_was_kept(catalog: Catalog, db: Any) -> None:
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter(errors={"nano-banana-pro": Refused("safety")}))
    job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    events: list[object] = []
    job.events.subscribe(events.append)
    await job.produce()
    assert await ledger.balance(1, 2) == 52
    assert await job.undelivered("Discord did not accept the upload") == 8
    assert await ledger.balance(1, 2) == 60
    stored = await get_comparison(db, job.plan.id)
    assert stored is not None and (stored.delivery, stored.charged) == ("failed", 0)
    assert isinstance(events[-1], Failed) and events[-1].refunded == 8
    assert await job.undelivered("twice") == 0, "exactly once"
    assert await ledger.balance(1, 2) == 60
    assert await ledger.audit() == []


async def test_a_crash_between_settle_and_post_is_stored_then_recovered(
    catalog: Catalog, db_target: str
) -> None:
    db = await open_database(db_target)
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter())
    job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    await job.produce()
    await db.close()  # the process dies here: settled and recorded, never posted

    restarted = await open_database(db_target)
    try:
        again = Ledger(restarted)
        stored = await get_comparison(restarted, job.plan.id)
        assert stored is not None and stored.charged == 30 and stored.delivery == "pending"
        assert await again.balance(1, 2) == 30
        from bot.comparisons.view import view_from_record

        details = view_from_record(stored, catalog)  # what the Details button renders
        assert [p.name for p in details.panels] == ["GPT-Image 2", "Nano Banana Pro"]

        assert await recover_undelivered(again, restarted, timedelta(minutes=30)) == 0, "too new"
        assert await recover_undelivered(again, restarted, timedelta(0)) == 1
        assert await recover_undelivered(again, restarted, timedelta(0)) == 0, "exactly once"
        assert await again.balance(1, 2) == 60
        stored = await get_comparison(restarted, job.plan.id)
        assert stored is not None and stored.delivery == "failed"
        assert await again.audit() == []
    finally:
        await restarted.close()


async def test_two_processes_recovering_at_once_refund_each_result_once(
    catalog: Catalog, db_target: str
) -> None:
    db = await open_database(db_target)
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter())
    for _ in range(2):  # the starter grant's 60 credits pay for two
        job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
        await job.produce()  # settled and recorded, never posted
    await db.close()

    # Two bot processes start together on the same database and both run the recovery.
    first, second = await open_database(db_target), await open_database(db_target)
    try:
        counts = await asyncio.gather(
            recover_undelivered(Ledger(first), first, timedelta(0)),
            recover_undelivered(Ledger(second), second, timedelta(0)),
        )
        assert sum(counts) == 2, counts
        assert await Ledger(first).balance(1, 2) == 60
        assert await Ledger(second).audit() == []
    finally:
        await first.close()
        await second.close()


async def test_all_models_failing_refunds_everything(catalog: Catalog, db: Any) -> None:
    ledger = await ledger_for(db)
    adapter = FakeAdapter(
        errors={"gpt-image-2": Unavailable("down"), "nano-banana-pro": Refused("safety")}
    )
    service = service_with(catalog, adapter)
    job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    with pytest.raises(AllModelsFailed, match="All 30 credits were refunded"):
        await job.produce()
    assert await ledger.balance(1, 2) == 60
    assert await get_comparison(db, job.plan.id) is None


async def test_cancellation_mid_run_refunds(catalog: Catalog, db: Any) -> None:
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter(delay=10))
    job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    await job.reserve()
    task = asyncio.create_task(job.produce())
    await asyncio.sleep(0.05)
    assert await ledger.balance(1, 2) == 30
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ledger.balance(1, 2) == 60
    assert await ledger.audit() == []


async def test_a_refund_the_database_refuses_is_retried(catalog: Catalog, db: Any) -> None:
    ledger = await ledger_for(db)
    original = ledger.release
    attempts: list[int] = []

    async def flaky_release(hold_id: int, reason: str) -> Any:
        attempts.append(hold_id)
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return await original(hold_id, reason)

    ledger.release = flaky_release  # type: ignore[method-assign]
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)

    adapter = FakeAdapter(
        errors={m: Unavailable("down") for m in ("gpt-image-2", "nano-banana-pro")}
    )
    service = service_with(catalog, adapter)
    job = job_for(
        service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db, sleep=sleep
    )
    with pytest.raises(AllModelsFailed):
        await job.produce()
    assert len(attempts) == 3 and naps == [0.2, 1.0]
    assert await ledger.balance(1, 2) == 60


async def test_blind_ledger_rows_never_name_a_model(catalog: Catalog, db: Any) -> None:
    ledger = await ledger_for(db)
    service = service_with(catalog, FakeAdapter(errors={"nano-banana-pro": Refused("safety")}))
    plan = plan_with(service, CompareRequest("a fox", "portrait", blind=True))
    assert sorted(item.label for item in plan.line_items()) == ["Model A", "Model B"]
    job = job_for(service, plan, ledger=ledger, db=db)
    result = await job.produce()
    assert result.view.hidden and result.verdict.labels == ("A", "B")
    history = await ledger.history(1, 2)
    text = " | ".join(entry.reason for entry in history.entries)
    assert "Model" in text and "declined this prompt" in text
    for name in ("GPT-Image", "Nano Banana"):
        assert name not in text, text


async def test_community_lines_are_fetched_while_the_models_run(catalog: Catalog) -> None:
    adapter = FakeAdapter(delay=0.05)
    service = service_with(catalog, adapter)
    started: list[int] = []
    line = "In this server, GPT-Image 2 won 3 of 4 portrait votes (rating 1,050 ± 40)"

    async def fetch() -> list[str]:
        started.append(len(adapter.calls))  # no model has finished yet
        return [line]

    plan = plan_with(service, CompareRequest("a fox", "portrait"))
    result = await job_for(service, plan, requester=None, community=fetch).produce()
    assert started == [0] and result.verdict.community == (line,)

    async def broken() -> list[str]:
        raise RuntimeError("leaderboard down")

    plan = plan_with(service, CompareRequest("a fox", "portrait"))
    result = await job_for(service, plan, requester=None, community=broken).produce()
    assert result.verdict.community == ()


def test_a_job_that_charges_needs_its_requester(catalog: Catalog, db: Any) -> None:
    service = service_with(catalog, FakeAdapter())
    plan = plan_with(service, CompareRequest("a fox"))
    with pytest.raises(ValueError, match="requester"):
        job_for(service, plan, ledger=Ledger(db), requester=None)
    assert job_for(service, plan).requester == Requester(1, 2, 3)


async def test_a_reserved_job_abandoned_unrun_gives_back_hold_budget_and_place(
    catalog: Catalog, db: Any
) -> None:
    """A shoot-out round whose hold the sweep refunded is abandoned: nothing is refunded twice,
    and neither the process nor the operator's running cap counts it any more."""
    ledger = await ledger_for(db)
    slots = RequestSlots()
    capacity = Capacity(slots, max_running=1)
    budget = Budget(db, OperatorLimits(max_running=1))
    service = service_with(catalog, FakeAdapter(), slots=slots, capacity=capacity, budget=budget)
    swept = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    await swept.reserve()
    assert await ledger.recover_stale_holds(timedelta(0)) == 1

    await swept.abandon("its reservation had expired")

    assert capacity.running == 0
    assert await ledger.balance(1, 2) == 60, "refunded once, by the sweep"
    after = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    await after.produce()  # admitted: the abandoned job holds no place and no running budget
    assert await ledger.balance(1, 2) == 60 - 30
    assert await ledger.audit() == []
