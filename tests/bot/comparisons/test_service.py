"""The comparison service: concurrency, isolation of failures, and never charging for nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import Any

import pytest

from bot.catalog import Catalog, load_catalog
from bot.comparisons.service import (
    AllModelsFailed,
    CompareRequest,
    ComparisonResult,
    ComparisonService,
    Payer,
    State,
)
from bot.credits.ledger import Ledger
from bot.errors import BadInput
from providers.base import ReferenceImage, Refused, Unavailable
from providers.demo import DemoAdapter
from providers.registry import ModelUnavailable, Registry
from tests.conftest import FakeAdapter, png_bytes


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def service_with(catalog: Catalog, adapter: FakeAdapter, **kwargs: Any) -> ComparisonService:
    registry = Registry({"openai": adapter, "gemini": adapter, "fal": adapter})
    return ComparisonService(catalog, registry, **kwargs)


def test_plan_prices_itemised_and_uses_use_case_defaults(catalog: Catalog) -> None:
    service = service_with(catalog, FakeAdapter())
    plan = service.plan(CompareRequest("a fox", "portrait"))
    assert [p.model.id for p in plan.panels] == ["gpt-image-2", "nano-banana-pro"]
    assert plan.aspect == "3:4" and plan.quality == "standard"
    assert plan.price_text == "GPT-Image 2 8 + Nano Banana Pro 22 = 30 credits"
    assert plan.total == 30 and not plan.uses_demo


def test_demo_stand_ins_are_labelled(catalog: Catalog) -> None:
    service = ComparisonService(catalog, Registry({}, demo=DemoAdapter(latency=(0, 0))))
    plan = service.plan(CompareRequest("a fox", "poster"))
    assert plan.uses_demo
    assert [p.label for p in plan.panels] == ["GPT-Image 2 · demo", "Nano Banana Pro · demo"]
    with pytest.raises(ModelUnavailable, match="no provider key"):
        service.plan(CompareRequest("a fox", "poster"), allow_demo=False)


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 4001}, "limit is 4000"),
        ({"models": ["gpt-image-2"]}, "Pick 2 to 4 models; you picked 1"),
        ({"models": ["gpt-image-2"] * 2}, "only once"),
        (
            {
                "models": [
                    "gpt-image-2",
                    "nano-banana-pro",
                    "nano-banana-2",
                    "gpt-image-1.5",
                    "gpt-image-2",
                ]
            },
            "you picked 5",
        ),
        ({"models": ["gpt-image-2", "dall-e-3"]}, "Unknown model 'dall-e-3'"),
        ({"aspect": "7:1"}, "cannot draw 7:1"),
        ({"aspect": "wide"}, "not an aspect ratio"),
        ({"use_case": "selfie"}, "Unknown use case"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    catalog: Catalog, request_kwargs: dict[str, Any], message: str
) -> None:
    adapter = FakeAdapter()
    base: dict[str, Any] = {"prompt": "a fox", "use_case": "portrait"}
    with pytest.raises(Exception, match=message) as caught:
        service_with(catalog, adapter).plan(CompareRequest(**(base | request_kwargs)))
    assert isinstance(caught.value, BadInput) or "Unknown" in str(caught.value)
    assert adapter.calls == []


def test_banned_words_and_disabled_models_and_reference_capability(catalog: Catalog) -> None:
    service = service_with(catalog, FakeAdapter())
    with pytest.raises(BadInput, match="does not allow"):
        service.plan(CompareRequest("a Forbidden fox", "portrait"), banned_words=["forbidden"])
    with pytest.raises(BadInput, match="Nano Banana Pro is turned off"):
        service.plan(CompareRequest("a fox", "portrait"), enabled_models=["gpt-image-2"])
    ref = ReferenceImage(png_bytes())
    plan = service.plan(CompareRequest("a fox", "portrait", reference=ref))
    assert plan.request.references == (ref,)
    assert (
        service.plan(CompareRequest("a fox", "portrait"), price_overrides={"gpt-image-2": 3}).total
        == 25
    )


async def test_models_run_concurrently(catalog: Catalog) -> None:
    adapter = FakeAdapter(delay=0.2)
    service = service_with(catalog, adapter)
    plan = service.plan(
        CompareRequest(
            "a fox", "portrait", models=["gpt-image-2", "nano-banana-pro", "nano-banana-2"]
        )
    )
    outcomes = await service.run(plan)
    assert all(o.ok for o in outcomes)
    # Every call started before any call finished: they overlapped in time.
    starts = [start for _, start, _ in adapter.calls]
    ends = [end for _, _, end in adapter.calls]
    assert max(starts) < min(ends)


async def test_community_lines_are_fetched_while_the_models_run(catalog: Catalog) -> None:
    adapter = FakeAdapter(delay=0.05)
    service = service_with(catalog, adapter)
    plan = service.plan(CompareRequest("a fox", "portrait"))
    started: list[int] = []

    async def fetch() -> list[str]:
        started.append(len(adapter.calls))  # no model has finished yet
        return ["In this server, GPT-Image 2 won 3 of 4 portrait votes (rating 1,050 ± 40)"]

    result = await service.produce(plan, community=fetch)
    assert started == [0]
    assert result.verdict.community == (
        "In this server, GPT-Image 2 won 3 of 4 portrait votes (rating 1,050 ± 40)",
    )

    async def broken() -> list[str]:
        raise RuntimeError("leaderboard down")

    assert (await service.produce(plan, community=broken)).verdict.community == ()


def test_prompts_keep_their_line_breaks(catalog: Catalog) -> None:
    plan = service_with(catalog, FakeAdapter()).plan(
        CompareRequest("  A poster that reads:\n  SUMMER   SALE \n\n 50% off  ", "poster")
    )
    assert plan.prompt == "A poster that reads:\nSUMMER SALE\n\n50% off"


async def test_a_refund_the_database_refuses_is_retried(catalog: Catalog, db: Any) -> None:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    original = ledger.release
    attempts: list[int] = []

    async def flaky_release(hold_id: int, reason: str) -> Any:
        attempts.append(hold_id)
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return await original(hold_id, reason)

    ledger.release = flaky_release  # type: ignore[method-assign]
    service = service_with(catalog, FakeAdapter())

    async def deliver(result: ComparisonResult, balance_after: int | None) -> None:
        raise ConnectionError("upload failed")

    with pytest.raises(ConnectionError):
        await service.execute(service.plan(CompareRequest("a fox", "portrait")), deliver,
                              payer=Payer(ledger, 1, 2))  # fmt: skip
    assert len(attempts) == 3
    assert await ledger.balance(1, 2) == 60


async def test_a_refused_model_leaves_the_others_intact(catalog: Catalog) -> None:
    adapter = FakeAdapter(
        errors={"nano-banana-pro": Refused("safety: IMAGE_SAFETY")}, crash={"nano-banana-2"}
    )
    service = service_with(catalog, adapter)
    events: list[tuple[int, State]] = []
    plan = service.plan(
        CompareRequest(
            "a fox", "portrait", models=["gpt-image-2", "nano-banana-pro", "nano-banana-2"]
        )
    )
    result = await service.produce(plan, on_progress=lambda e: events.append((e.index, e.state)))
    states = [o.state for o in result.outcomes]
    assert states == [State.DONE, State.REFUSED, State.FAILED]
    assert result.outcomes[0].result is not None
    assert result.outcomes[1].refund_reason() == (
        "Nano Banana Pro declined this prompt (safety: IMAGE_SAFETY); 22 credits refunded"
    )
    assert result.outcomes[2].reason == "an unexpected error"
    assert (result.charged, result.refunded) == (8, 22 + 14)
    assert len(result.composite.panel_boxes) == 3
    assert (1, State.REFUSED) in events and (0, State.DONE) in events


async def test_a_model_past_its_deadline_fails_alone(catalog: Catalog) -> None:
    slow = FakeAdapter(delay=5)
    fast = FakeAdapter()
    registry = Registry({"openai": fast, "gemini": slow})
    service = ComparisonService(catalog, registry, model_timeout_s=0.05)
    outcomes = await service.run(service.plan(CompareRequest("a fox", "portrait")))
    assert [o.status for o in outcomes] == ["ok", "failed"]
    assert outcomes[1].error_kind == "timeout"


async def test_execute_charges_only_delivered_models(catalog: Catalog, db: Any) -> None:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    adapter = FakeAdapter(errors={"nano-banana-pro": Refused("safety")})
    service = service_with(catalog, adapter)
    plan = service.plan(CompareRequest("a fox", "portrait"))
    seen: list[int | None] = []

    async def deliver(result: ComparisonResult, balance_after: int | None) -> str:
        seen.append(balance_after)
        return "posted"

    done = await service.execute(plan, deliver, payer=Payer(ledger, 1, 2))
    assert done.delivery == "posted"
    assert await ledger.balance(1, 2) == 60 - 8 == seen[0] == done.balance_after
    assert await ledger.audit() == []


async def test_failed_delivery_refunds_everything(catalog: Catalog, db: Any) -> None:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    service = service_with(catalog, FakeAdapter())
    plan = service.plan(CompareRequest("a fox", "portrait"))

    async def deliver(result: ComparisonResult, balance_after: int | None) -> None:
        raise ConnectionError("upload failed")

    with pytest.raises(ConnectionError):
        await service.execute(plan, deliver, payer=Payer(ledger, 1, 2))
    assert await ledger.balance(1, 2) == 60
    assert await ledger.audit() == []


async def test_all_models_failing_refunds_everything(catalog: Catalog, db: Any) -> None:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    adapter = FakeAdapter(
        errors={"gpt-image-2": Unavailable("down"), "nano-banana-pro": Refused("safety")}
    )
    service = service_with(catalog, adapter)
    delivered: list[object] = []

    async def deliver(result: ComparisonResult, balance_after: int | None) -> None:
        delivered.append(result)

    with pytest.raises(AllModelsFailed, match="All 30 credits were refunded"):
        await service.execute(
            service.plan(CompareRequest("a fox", "portrait")), deliver, payer=Payer(ledger, 1, 2)
        )
    assert delivered == []
    assert await ledger.balance(1, 2) == 60


async def test_cancellation_mid_run_refunds(catalog: Catalog, db: Any) -> None:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    service = service_with(catalog, FakeAdapter(delay=10))

    async def deliver(result: ComparisonResult, balance_after: int | None) -> None:
        return None

    reserved = asyncio.Event()
    original_reserve = ledger.reserve

    async def reserve(*args: Any, **kwargs: Any) -> Any:
        hold = await original_reserve(*args, **kwargs)
        reserved.set()
        return hold

    ledger.reserve = reserve  # type: ignore[method-assign]
    task = asyncio.create_task(
        service.execute(
            service.plan(CompareRequest("a fox", "portrait")), deliver, payer=Payer(ledger, 1, 2)
        )
    )
    await reserved.wait()
    assert await ledger.balance(1, 2) == 30
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ledger.balance(1, 2) == 60
    assert await ledger.audit() == []


async def test_an_image_the_compositor_cannot_show_is_not_charged(
    catalog: Catalog, db: Any
) -> None:
    class Garbage(FakeAdapter):
        async def generate(self, target: Any, request: Any, *, deadline: float) -> Any:
            result = await super().generate(target, request, deadline=deadline)
            if target.model_id == "nano-banana-pro":
                return dataclasses.replace(result, image=b"\x89PNG not really")
            return result

    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    service = service_with(catalog, Garbage())
    plan = service.plan(CompareRequest("a fox", "portrait"))

    async def deliver(result: ComparisonResult, balance_after: int | None) -> list[str]:
        return [o.status for o in result.outcomes]

    done = await service.execute(plan, deliver, payer=Payer(ledger, 1, 2))
    assert done.delivery == ["ok", "failed"]
    assert done.result.outcomes[1].reason == "image could not be decoded"
    assert await ledger.balance(1, 2) == 60 - 8


def test_price_override_is_the_standard_price_and_other_tiers_scale(catalog: Catalog) -> None:
    service = service_with(catalog, FakeAdapter())
    overrides = {"gpt-image-2": 16}
    standard = service.plan(CompareRequest("a fox", "portrait"), price_overrides=overrides)
    high = service.plan(
        CompareRequest("a fox", "portrait", quality="high"), price_overrides=overrides
    )
    assert [p.credits for p in standard.panels] == [16, 22]
    # 16 x (39 / 8): the formula's high-to-standard ratio for a 3:4 GPT-Image 2; Pro's 4K is 32
    assert [p.credits for p in high.panels] == [78, 32]


async def test_blind_comparisons_hide_names_from_what_adapters_write(catalog: Catalog) -> None:
    adapter = FakeAdapter(errors={"nano-banana-pro": Refused("Model B declined this prompt")})
    service = ComparisonService(catalog, Registry({"openai": adapter, "gemini": adapter}))
    plan = service.plan(CompareRequest("a fox", "portrait", blind=True))
    assert [p.route.target.display_name for p in plan.panels] == ["Model A", "Model B"]
    assert sorted(p.label for p in plan.panels) == ["GPT-Image 2", "Nano Banana Pro"]
    # The letters do not follow the option order, or A would always be model_a.
    firsts = {service.plan(CompareRequest("a fox", "portrait", blind=True)).panels[0].model.id
              for _ in range(40)}  # fmt: skip
    assert firsts == {"gpt-image-2", "nano-banana-pro"}
    open_plan = service.plan(CompareRequest("a fox", "portrait"))
    assert [p.model.id for p in open_plan.panels] == ["gpt-image-2", "nano-banana-pro"]
    demo = ComparisonService(catalog, Registry({}, demo=DemoAdapter(latency=(0, 0))))
    demo_plan = demo.plan(CompareRequest("a fox", "portrait", blind=True))
    assert [p.route.target.display_name for p in demo_plan.panels] == ["Model A", "Model B"]


async def test_blind_ledger_rows_never_name_a_model(catalog: Catalog, db: Any) -> None:
    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    adapter = FakeAdapter(errors={"nano-banana-pro": Refused("safety")})
    service = service_with(catalog, adapter)
    plan = service.plan(CompareRequest("a fox", "portrait", blind=True))
    assert sorted(item.label for item in plan.line_items()) == ["Model A", "Model B"]

    async def deliver(result: ComparisonResult, balance_after: int | None) -> None:
        return None

    await service.execute(plan, deliver, payer=Payer(ledger, 1, 2))
    history = await ledger.history(1, 2)
    text = " | ".join(entry.reason for entry in history.entries)
    assert "Model A" in text and "declined this prompt" in text
    for name in ("GPT-Image", "Nano Banana"):
        assert name not in text, text
