"""The operator's budget: per-server and global provider spend per UTC day, and a cap on
comparisons running at once; refused comparisons are charged nothing. On both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.catalog import Catalog, load_catalog
from bot.comparisons.job import ComparisonJob, Requester
from bot.comparisons.plan import CompareRequest
from bot.comparisons.service import ComparisonService
from bot.credits.budget import Budget, OverBudget, TooBusy
from bot.credits.ledger import Ledger, OperatorLimits
from bot.db import AnyDatabase
from providers.base import Unavailable
from providers.demo import DemoAdapter
from providers.registry import Registry
from tests.bot.comparisons.conftest import plan_with
from tests.bot.credits.ledger_fakes import FakeClock
from tests.conftest import FakeAdapter
from tests.pg import fetch

START = datetime(2026, 5, 10, 23, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def make_service(
    catalog: Catalog, db: AnyDatabase, limits: OperatorLimits, clock: FakeClock, adapter: Any = None
) -> ComparisonService:
    adapter = adapter or FakeAdapter()
    registry = Registry({"openai": adapter, "gemini": adapter, "fal": adapter})
    return ComparisonService(catalog, registry, budget=Budget(db, limits, clock=clock))


async def run(service: ComparisonService, ledger: Ledger, guild: int, user: int) -> Any:
    plan = plan_with(service, CompareRequest("a fox", "portrait"))  # 8 + 22 = 30 credits
    job = ComparisonJob(
        plan,
        service=service,
        catalog=service.catalog,
        ledger=ledger,
        requester=Requester(guild, user),
    )
    result = await job.produce()
    await job.delivered()
    return result


async def test_server_budget_refuses_with_nothing_charged_and_resets_at_midnight(
    catalog: Catalog, db: AnyDatabase
) -> None:
    clock = FakeClock(START)
    service = make_service(catalog, db, OperatorLimits(guild_daily_budget=60), clock)
    ledger = Ledger(db, clock=clock)
    await run(service, ledger, 1, 2)
    await run(service, ledger, 1, 3)
    assert await ledger.balance(1, 4) == 0
    with pytest.raises(OverBudget) as caught:
        await run(service, ledger, 1, 4)
    assert str(caught.value) == (
        "This server has used today's image budget; it resets at 00:00 UTC. Nothing was charged."
    )
    # Nothing charged: no hold, no ledger row, not even an account for the refused member.
    assert await ledger.balance(1, 4) == 0
    assert await fetch(db, "SELECT 1 FROM holds WHERE user_id = 4") == []
    # Another server has its own budget.
    await run(service, ledger, 2, 4)
    clock.advance(hours=1)  # 00:00 UTC
    await run(service, ledger, 1, 4)
    assert await ledger.audit() == []


async def test_global_budget_covers_every_server(catalog: Catalog, db: AnyDatabase) -> None:
    clock = FakeClock(START)
    service = make_service(catalog, db, OperatorLimits(global_daily_budget=60), clock)
    ledger = Ledger(db, clock=clock)
    await run(service, ledger, 1, 2)
    await run(service, ledger, 2, 2)
    with pytest.raises(OverBudget, match="Splitshot has used today's image budget for all"):
        await run(service, ledger, 3, 2)


async def test_refunded_models_do_not_use_the_budget(catalog: Catalog, db: AnyDatabase) -> None:
    clock = FakeClock(START)
    adapter = FakeAdapter(errors={"nano-banana-pro": Unavailable("down", adapter="fake")})
    service = make_service(catalog, db, OperatorLimits(guild_daily_budget=38), clock, adapter)
    ledger = Ledger(db, clock=clock)
    await run(service, ledger, 1, 2)  # only GPT-Image 2 (8) delivered
    await run(service, ledger, 1, 3)  # 8 + 30 fits 38 only because the failed 22 came back
    assert service.budget is not None
    report = await service.budget.report(days=1)
    by_model = {(row.model_id): (row.images, row.cost) for row in report}
    assert by_model == {"gpt-image-2": (2, 16), "nano-banana-pro": (0, 0)}


async def test_demo_stand_ins_cost_the_operator_nothing(catalog: Catalog, db: AnyDatabase) -> None:
    clock = FakeClock(START)
    registry = Registry({}, demo=DemoAdapter(latency=(0, 0)))
    limits = OperatorLimits(guild_daily_budget=1)
    service = ComparisonService(catalog, registry, budget=Budget(db, limits, clock=clock))
    ledger = Ledger(db, clock=clock)
    for user in (2, 3, 4):
        await run(service, ledger, 1, user)


async def test_running_cap_counts_comparisons_across_servers(
    catalog: Catalog, db: AnyDatabase
) -> None:
    clock = FakeClock(START)
    adapter = FakeAdapter(delay=0.2)
    service = make_service(catalog, db, OperatorLimits(max_running=2), clock, adapter)
    ledger = Ledger(db, clock=clock)
    first = asyncio.create_task(run(service, ledger, 1, 2))
    second = asyncio.create_task(run(service, ledger, 2, 2))
    await asyncio.sleep(0.05)
    before = await ledger.balance(3, 2)
    with pytest.raises(TooBusy, match="running 2 comparisons right now"):
        await run(service, ledger, 3, 2)
    assert await ledger.balance(3, 2) == before == 0
    await asyncio.gather(first, second)
    await run(service, ledger, 3, 2)  # a slot is free again


async def test_a_crashed_comparison_stops_taking_a_slot_after_the_window(
    catalog: Catalog, db: AnyDatabase
) -> None:
    clock = FakeClock(START)
    limits = OperatorLimits(max_running=1)
    budget = Budget(db, limits, clock=clock, running_window=timedelta(minutes=30))
    service = make_service(catalog, db, limits, clock)
    plan = plan_with(service, CompareRequest("a fox", "portrait"))
    await budget.admit(1, plan)  # never finished: the process died
    with pytest.raises(TooBusy):
        await budget.admit(1, plan_with(service, CompareRequest("a fox", "portrait")))
    clock.advance(minutes=31)
    await budget.admit(1, plan_with(service, CompareRequest("a fox", "portrait")))


async def test_spend_report_per_day_server_and_model(catalog: Catalog, db: AnyDatabase) -> None:
    clock = FakeClock(START)
    service = make_service(catalog, db, OperatorLimits(), clock)
    ledger = Ledger(db, clock=clock)
    await run(service, ledger, 1, 2)
    clock.advance(hours=2)
    await run(service, ledger, 1, 2)
    await run(service, ledger, 7, 2)
    assert service.budget is not None
    rows = await service.budget.report(days=2)
    got = [(r.day, r.guild_id, r.model_id, r.images, r.cost) for r in rows]
    assert got == [
        (date(2026, 5, 11), 1, "gpt-image-2", 1, 8),
        (date(2026, 5, 11), 1, "nano-banana-pro", 1, 22),
        (date(2026, 5, 11), 7, "gpt-image-2", 1, 8),
        (date(2026, 5, 11), 7, "nano-banana-pro", 1, 22),
        (date(2026, 5, 10), 1, "gpt-image-2", 1, 8),
        (date(2026, 5, 10), 1, "nano-banana-pro", 1, 22),
    ]
    assert [r.guild_id for r in await service.budget.report(days=1, guild_id=7)] == [7, 7]
