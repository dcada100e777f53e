"""A comparison whose prompt quotes text reads each panel back as it lands."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.catalog import Catalog, load_catalog
from bot.comparisons.plan import CompareRequest
from bot.comparisons.service import ComparisonService
from bot.measure.ocr import TextMeter
from providers.base import ImageRequest, ImageResult, Target
from providers.registry import Registry
from tests.bot.comparisons.conftest import job_for, plan_with
from tests.bot.measure.fakes import FakeOcr
from tests.conftest import png_bytes

CATALOG: Catalog = load_catalog()
# FakeOcr keys on the red channel of the top-left pixel; each model draws its own colour.
RED = {"gpt-image-2": 10, "nano-banana-pro": 20, "nano-banana-2": 30}


class ColourAdapter:
    """Returns a one-colour PNG per model after that model's delay."""

    name = "fake"

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.delays = delays or {}
        self.finished: dict[str, float] = {}

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        await asyncio.sleep(self.delays.get(target.model_id, 0.0))
        self.finished[target.model_id] = time.monotonic()
        data = png_bytes((64, 64), (RED[target.model_id], 0, 0))
        return ImageResult(data, "image/png", 64, 64, 0.0, self.name, target.upstream_id)


def service(adapter: Any, meter: TextMeter | None) -> ComparisonService:
    registry = Registry({"openai": adapter, "gemini": adapter, "fal": adapter})
    return ComparisonService(CATALOG, registry, text_meter=meter)


async def test_the_measured_row_and_sentence_come_from_what_was_read() -> None:
    engine = FakeOcr({10: "OPEN 24/7", 20: "OPEN 2A/7"})
    meter = TextMeter(engine, workers=2)
    svc = service(ColourAdapter(), meter)
    plan = plan_with(svc, CompareRequest('a neon sign that reads "OPEN 24/7"', "poster"))
    try:
        result = await job_for(svc, plan, requester=None).produce()
    finally:
        meter.close()
    verdict = result.verdict
    row = verdict.row("text_measured")
    assert row.name == "Text (measured)" and row.basis == "measured"
    assert row.cells == ("100% ✓", "86%") and row.winner == "GPT-Image 2"
    ids = [r.criterion_id for r in verdict.rows]
    assert ids.index("text_measured") == ids.index("text_accuracy") + 1
    assert (
        "GPT-Image 2 spelled “OPEN 24/7” exactly; Nano Banana Pro wrote “OPEN 2A/7” (86%)."
        in verdict.quick_verdict
    )
    need = next(n for n in verdict.needs if "text" in n.need.lower())
    assert need.choose == "GPT-Image 2" and "measured" in need.why
    assert verdict.text[1] is not None and verdict.text[1].read == ("OPEN 2A/7",)


async def test_no_quoted_text_means_no_ocr_and_no_row() -> None:
    engine = FakeOcr(default="anything")
    svc = service(ColourAdapter(), TextMeter(engine, workers=1))
    result = await job_for(
        svc, plan_with(svc, CompareRequest("a fox at dawn", "poster")), requester=None
    ).produce()
    assert engine.started == []
    assert "text_measured" not in [r.criterion_id for r in result.verdict.rows]
    assert result.verdict.text == () and result.verdict.text_note == ""


async def test_without_ocr_installed_the_row_says_not_measured() -> None:
    svc = service(ColourAdapter(), TextMeter(installed=False))
    result = await job_for(
        svc, plan_with(svc, CompareRequest('a sign "OPEN"', "poster")), requester=None
    ).produce()
    row = result.verdict.row("text_measured")
    assert row.cells == ("—", "—") and row.winner == "—"
    assert result.verdict.text_note == "Text (measured): not measured (OCR not installed)."
    assert "spelled" not in result.verdict.quick_verdict


async def test_each_panel_is_read_as_soon_as_it_lands() -> None:
    engine = FakeOcr(default="OPEN")
    adapter = ColourAdapter({"gpt-image-2": 0.0, "nano-banana-pro": 0.5})
    meter = TextMeter(engine, workers=2)
    svc = service(adapter, meter)
    try:
        await job_for(
            svc, plan_with(svc, CompareRequest('a sign "OPEN"', "poster")), requester=None
        ).produce()
    finally:
        meter.close()
    # The fast panel's OCR began before the slow model had even delivered.
    assert min(engine.started) < adapter.finished["nano-banana-pro"]


async def test_a_failed_panel_has_no_score_and_cannot_win() -> None:
    from providers.base import Refused

    class Half(ColourAdapter):
        async def generate(
            self, target: Target, request: ImageRequest, *, deadline: float
        ) -> ImageResult:
            if target.model_id == "nano-banana-pro":
                raise Refused("safety", adapter=self.name)
            return await super().generate(target, request, deadline=deadline)

    meter = TextMeter(FakeOcr(default="OPE"), workers=1)
    svc = service(Half(), meter)
    try:
        result = await job_for(
            svc, plan_with(svc, CompareRequest('a sign "OPEN"', "poster")), requester=None
        ).produce()
    finally:
        meter.close()
    row = result.verdict.row("text_measured")
    assert row.cells == ("75%", "—") and row.winner == "—"  # nothing to compare it with
    assert result.verdict.text[1] is None
