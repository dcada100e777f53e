"""The comparison service: concurrency, isolation of failures, and what the compositor shows."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot.catalog import Catalog
from bot.comparisons.plan import CompareRequest, State
from bot.comparisons.service import AllModelsFailed, ComparisonService
from providers.base import Refused, Unavailable
from providers.registry import Registry
from tests.bot.comparisons.conftest import plan_with, service_with
from tests.conftest import FakeAdapter


async def test_models_run_concurrently(catalog: Catalog) -> None:
    adapter = FakeAdapter(delay=0.2)
    service = service_with(catalog, adapter)
    models = ["gpt-image-2", "nano-banana-pro", "nano-banana-2"]
    outcomes = await service.run(plan_with(service, CompareRequest("a fox", models=models)))
    assert all(o.ok for o in outcomes)
    # Every call started before any call finished: they overlapped in time.
    starts = [start for _, start, _ in adapter.calls]
    ends = [end for _, _, end in adapter.calls]
    assert max(starts) < min(ends)


async def test_a_refused_model_leaves_the_others_intact(catalog: Catalog) -> None:
    adapter = FakeAdapter(
        errors={"nano-banana-pro": Refused("safety: IMAGE_SAFETY")}, crash={"nano-banana-2"}
    )
    service = service_with(catalog, adapter)
    events: list[tuple[int, State]] = []
    models = ["gpt-image-2", "nano-banana-pro", "nano-banana-2"]
    plan = plan_with(service, CompareRequest("a fox", "portrait", models=models))
    outcomes, composite = await service.produce(
        plan, on_progress=lambda e: events.append((e.index, e.state))
    )
    assert [o.state for o in outcomes] == [State.DONE, State.REFUSED, State.FAILED]
    assert outcomes[0].result is not None
    assert outcomes[1].refund_reason() == (
        "Nano Banana Pro declined this prompt (safety: IMAGE_SAFETY); 22 credits refunded"
    )
    assert outcomes[2].reason == "an unexpected error"
    assert len(composite.panel_boxes) == 3
    assert (1, State.REFUSED) in events and (0, State.DONE) in events


async def test_a_model_past_its_deadline_fails_alone(catalog: Catalog) -> None:
    registry = Registry({"openai": FakeAdapter(), "gemini": FakeAdapter(delay=5)})
    service = ComparisonService(catalog, registry, model_timeout_s=0.05)
    outcomes = await service.run(plan_with(service, CompareRequest("a fox", "portrait")))
    assert [o.status for o in outcomes] == ["ok", "failed"]
    assert outcomes[1].error_kind == "timeout"


async def test_every_model_failing_is_one_error(catalog: Catalog) -> None:
    adapter = FakeAdapter(
        errors={"gpt-image-2": Unavailable("down"), "nano-banana-pro": Refused("safety")}
    )
    service = service_with(catalog, adapter)
    with pytest.raises(AllModelsFailed, match="No model produced an image"):
        await service.produce(plan_with(service, CompareRequest("a fox", "portrait")))


async def test_an_image_the_compositor_cannot_show_is_a_failure(catalog: Catalog) -> None:
    class Garbage(FakeAdapter):
        async def generate(self, target: Any, request: Any, *, deadline: float) -> Any:
            result = await super().generate(target, request, deadline=deadline)
            if target.model_id == "nano-banana-pro":
                return dataclasses.replace(result, image=b"\x89PNG not really")
            return result

    service = service_with(catalog, Garbage())
    outcomes, _ = await service.produce(plan_with(service, CompareRequest("a fox", "portrait")))
    assert [o.status for o in outcomes] == ["ok", "failed"]
    assert outcomes[1].reason == "image could not be decoded"
