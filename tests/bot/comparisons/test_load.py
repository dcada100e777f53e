"""Under load: one decode per image, request lines with a place shown, the deadline from the
request's start, the compose line, and refusals before anything is charged."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.catalog import Catalog
from bot.comparisons.capacity import Capacity, Overloaded
from bot.comparisons.events import Composing, PanelChanged
from bot.comparisons.plan import CompareRequest, State
from bot.comparisons.service import ComparisonService, output_estimate
from bot.credits.ledger import Ledger
from bot.render.embed import ProgressLine, progress_embed
from bot.workers import Workers
from providers.base import ImageRequest, ImageResult, Target
from providers.gemini import GeminiEndpoint, GeminiImages
from providers.limits import RequestSlots, SlotLimits
from providers.openai_images import OpenAIEndpoint, OpenAIImages
from providers.registry import Registry
from tests.bot.comparisons.conftest import job_for, plan_with, registry_with
from tests.conftest import png_bytes

TIMEOUT = 30.0


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@dataclass
class GatedAdapter:
    """Answers each call only when the test opens its gate; records start and deadline."""

    name: str = "fake"
    gates: list[asyncio.Event] = field(default_factory=list)
    calls: list[tuple[float, float]] = field(default_factory=list)

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        loop = asyncio.get_running_loop()
        self.calls.append((loop.time(), deadline))
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return ImageResult(png_bytes((96, 128)), "image/png", 96, 128, 0.0, self.name, "x")


def one_slot_service(catalog: Catalog, adapter: Any, **kwargs: Any) -> ComparisonService:
    slots = RequestSlots(SlotLimits({adapter.name: 1}))
    return ComparisonService(
        catalog, registry_with(adapter), model_timeout_s=TIMEOUT, slots=slots, **kwargs
    )


async def open_gates(adapter: GatedAdapter, task: asyncio.Task[Any]) -> None:
    while not task.done():
        await settle()
        for gate in adapter.gates:
            gate.set()


# ------------------------------------------------------------------ one decode per image
async def test_each_provider_image_is_decoded_exactly_once_through_the_real_adapters(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = base64.b64encode(png_bytes((256, 256), (30, 90, 160))).decode()

    def provider(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/images/generations"):
            body = {"data": [{"b64_json": png}], "output_format": "png"}
        else:
            part = {"inlineData": {"mimeType": "image/png", "data": png}}
            body = {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
        return httpx.Response(200, content=json.dumps(body).encode())

    decodes: list[str] = []
    real = Image._getdecoder

    def counting(mode: str, decoder_name: str, args: Any, extra: Any = ()) -> Any:
        decodes.append(decoder_name)
        return real(mode, decoder_name, args, extra)

    monkeypatch.setattr(Image, "_getdecoder", counting)
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as http:
        registry = Registry(
            {
                "openai": OpenAIImages(http, OpenAIEndpoint("sk-test", base_url="https://o.test")),
                "gemini": GeminiImages(http, GeminiEndpoint("g-test", base_url="https://g.test")),
            }
        )
        service = ComparisonService(catalog, registry, allow_demo=False)
        plan = plan_with(
            service, CompareRequest("a fox", models=("gpt-image-2", "nano-banana-pro"))
        )
        outcomes, composite = await service.produce(plan)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert composite.failures == (None, None)
    assert decodes == ["zip", "zip"], "validated from the header; decoded only to compose"


# ------------------------------------------------------------------ request slots
async def test_the_deadline_counts_from_when_the_request_starts_not_while_it_waits(
    catalog: Catalog,
) -> None:
    adapter = GatedAdapter()
    service = one_slot_service(catalog, adapter)
    plan = plan_with(service, CompareRequest("a fox", models=("gpt-image-2", "nano-banana-pro")))
    task = asyncio.create_task(service.run(plan))
    await settle()
    assert len(adapter.calls) == 1, "the second model waits for the one slot"
    await asyncio.sleep(0.05)  # the second model is kept waiting a while
    adapter.gates[0].set()
    await open_gates(adapter, task)
    (first_start, first_deadline), (second_start, second_deadline) = adapter.calls
    assert second_start > first_start
    assert first_deadline - first_start == pytest.approx(TIMEOUT, abs=0.01)
    assert second_deadline - second_start == pytest.approx(TIMEOUT, abs=0.01)


async def test_a_waiting_model_shows_its_place_in_line(catalog: Catalog) -> None:
    adapter = GatedAdapter()
    service = one_slot_service(catalog, adapter)
    plan = plan_with(
        service,
        CompareRequest("a fox", models=("gpt-image-2", "nano-banana-pro", "nano-banana-2")),
    )
    events: list[PanelChanged] = []
    task = asyncio.create_task(service.run(plan, events.append))
    await open_gates(adapter, task)
    queued = [(e.index, e.position) for e in events if e.state is State.QUEUED and e.position]
    assert (1, 1) in queued and (2, 2) in queued and (2, 1) in queued
    assert [e.position for e in events if e.state is not State.QUEUED] == [None] * 6

    line = ProgressLine("Model C", "queued", position=2)
    assert line.text() == "⏳ **Model C** — queued — position 2"
    assert ProgressLine("Model C", "queued").text() == "⏳ **Model C** — queued"


# ------------------------------------------------------------------ the compose line
async def test_composes_beyond_the_slots_wait_and_say_how_many_are_ahead(
    catalog: Catalog,
) -> None:
    from tests.conftest import FakeAdapter

    service = ComparisonService(
        catalog, registry_with(FakeAdapter()), workers=Workers(compose_slots=1)
    )
    try:
        await service.workers.composes.acquire(1)  # a compose already running
        seen: list[tuple[str, int]] = []

        def job(name: str) -> asyncio.Task[Any]:
            plan = plan_with(service, CompareRequest(f"a fox {name}"))
            told = lambda e: seen.append((name, e.ahead))  # noqa: E731
            return asyncio.create_task(service.produce(plan, on_compose=told))

        first = job("first")
        await asyncio.sleep(0.05)
        second = job("second")
        await asyncio.sleep(0.05)
        assert seen == [("first", 0), ("second", 1)], "queued, never refused"
        service.workers.composes.release(1)
        await asyncio.gather(first, second)
        assert ("second", 0) in seen and service.workers.composes.used == 0
    finally:
        service.workers.close()

    embed = progress_embed("t", "p", [], reserved="30 credits", composing=True, composing_ahead=3)
    assert "🧩 Composing — 3 ahead" in (embed.description or "")
    assert isinstance(Composing(plan_with(service, CompareRequest("x")), 3).ahead, int)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition()`` holds; fail, rather than hang, after about five seconds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"never happened: {what}")


def noisy_png(edge: int, seed: int) -> bytes:
    """A PNG of noise, so it stays about 3 bytes a pixel: big enough to be a large answer."""
    rng = random.Random(seed)
    pixels = bytes(rng.getrandbits(8) for _ in range(edge * edge * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", (edge, edge), pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


async def test_answers_over_the_output_budget_wait_unread_while_the_requests_all_run(
    catalog: Catalog,
) -> None:
    # Both comparisons' requests go out at once: a comparison waiting on its provider holds no
    # output. The second's answers, arriving while the first (answered, its claim shrunk to
    # its real bytes) waits to be composed, stay unread until the first is done.
    answers = {
        "openai": base64.b64encode(noisy_png(640, 1)).decode(),
        "gemini": base64.b64encode(noisy_png(640, 2)).decode(),
    }
    sent: list[str] = []

    def provider(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.host)
        if request.url.path.endswith("/images/generations"):
            body = {"data": [{"b64_json": answers["openai"]}], "output_format": "png"}
        else:
            part = {"inlineData": {"mimeType": "image/png", "data": answers["gemini"]}}
            body = {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
        return httpx.Response(200, content=json.dumps(body).encode())

    models = ("gpt-image-2", "nano-banana-pro")
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as http:
        registry = Registry(
            {
                "openai": OpenAIImages(http, OpenAIEndpoint("sk-test", base_url="https://o.test")),
                "gemini": GeminiImages(http, GeminiEndpoint("g-test", base_url="https://g.test")),
            }
        )
        probe = ComparisonService(catalog, registry, allow_demo=False)
        estimate = output_estimate(plan_with(probe, CompareRequest("x", models=models)))
        probe.workers.close()
        workers = Workers(compose_slots=1, output_budget=estimate)  # one estimate's room
        service = ComparisonService(catalog, registry, allow_demo=False, workers=workers)
        try:
            await workers.composes.acquire(1)  # the first will wait to be composed
            first = asyncio.create_task(
                service.produce(plan_with(service, CompareRequest("a fox", models=models)))
            )
            # answered, read, and in line for its compose
            await until(lambda: workers.composes.waiting == 1, "the first waits to be composed")
            held = workers.output.used
            assert 0 < held < estimate, "the first holds its real bytes, not the estimate"
            second = asyncio.create_task(
                service.produce(plan_with(service, CompareRequest("an owl", models=models)))
            )
            await until(lambda: len(sent) == 4, "the second's requests are sent")
            await asyncio.sleep(0.05)
            assert sorted(sent) == ["g.test", "g.test", "o.test", "o.test"], "all four ran"
            assert workers.output.waiting == 1, "the second's answers wait for room, unread"
            assert workers.output.used == held and not second.done()
            workers.composes.release(1)
            (outcomes, _), (later, _) = await asyncio.gather(first, second)
        finally:
            workers.close()
    assert [o.status for o in outcomes + later] == ["ok"] * 4
    assert workers.output.used == 0 and workers.output.waiting == 0
    assert workers.composes.used == 0


async def test_a_comparison_claims_budget_only_once_all_its_requests_have_slots(
    catalog: Catalog,
) -> None:
    # One OpenAI slot (the adapter's own limit matches, as settings wire it), budget for one
    # comparison. The fox's Gemini answer arrives while its GPT request waits for the slot the
    # owl's holds. Had the fox claimed the budget then, the owl's GPT answer would wait for
    # budget holding the slot the fox needs: each would wait on the other until the deadline.
    answers = {
        "openai": base64.b64encode(noisy_png(640, 1)).decode(),
        "gemini": base64.b64encode(noisy_png(640, 2)).decode(),
    }
    go = {(kind, who): asyncio.Event() for kind in ("openai", "gemini") for who in ("fox", "owl")}
    sent: list[tuple[str, str]] = []

    async def provider(request: httpx.Request) -> httpx.Response:
        kind = "openai" if request.url.path.endswith("/images/generations") else "gemini"
        who = "fox" if b"a fox" in request.content else "owl"
        sent.append((kind, who))
        await go[kind, who].wait()
        if kind == "openai":
            body: dict[str, Any] = {"data": [{"b64_json": answers[kind]}], "output_format": "png"}
        else:
            part = {"inlineData": {"mimeType": "image/png", "data": answers[kind]}}
            body = {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
        return httpx.Response(200, content=json.dumps(body).encode())

    models = ("gpt-image-2", "nano-banana-pro")
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as http:
        registry = Registry(
            {
                "openai": OpenAIImages(
                    http, OpenAIEndpoint("sk-test", base_url="https://o.test"), concurrency=1
                ),
                "gemini": GeminiImages(
                    http, GeminiEndpoint("g-test", base_url="https://g.test"), concurrency=4
                ),
            }
        )
        probe = ComparisonService(catalog, registry, allow_demo=False)
        estimate = output_estimate(plan_with(probe, CompareRequest("x", models=models)))
        probe.workers.close()
        workers = Workers(output_budget=estimate)
        slots = RequestSlots(SlotLimits({"openai": 1, "gemini": 4}))
        service = ComparisonService(
            catalog, registry, allow_demo=False, workers=workers, slots=slots, model_timeout_s=60
        )

        def start(prompt: str) -> asyncio.Task[Any]:
            plan = plan_with(service, CompareRequest(prompt, models=models))
            return asyncio.create_task(service.produce(plan))

        try:
            owl = start("an owl")
            await until(lambda: len(sent) == 2, "the owl's requests are sent")
            fox = start("a fox")
            await until(lambda: ("gemini", "fox") in sent, "the fox's Gemini request is sent")
            assert ("openai", "fox") not in sent, "the fox's GPT request waits for the one slot"
            go["gemini", "fox"].set()  # the fox's first answer arrives; its GPT has no slot
            await settle()
            await asyncio.sleep(0.05)
            assert workers.output.used == 0, "no claim while a request still waits for a slot"
            go["openai", "owl"].set()  # the owl's GPT answer: all its requests run, it claims
            await until(lambda: ("openai", "fox") in sent, "the fox gets the slot")
            go["openai", "fox"].set()
            go["gemini", "owl"].set()
            async with asyncio.timeout(10):
                (outcomes, _), (later, _) = await asyncio.gather(fox, owl)
        finally:
            workers.close()
    assert [o.status for o in outcomes + later] == ["ok"] * 4
    assert workers.output.used == 0 and slots.lane("openai").running == 0


async def test_a_comparison_without_network_answers_still_counts_against_the_budget(
    catalog: Catalog,
) -> None:
    adapter = GatedAdapter()  # answers from memory: no body is read, so no early claim
    workers = Workers(compose_slots=1, output_budget=1)
    service = ComparisonService(catalog, registry_with(adapter), workers=workers)
    try:
        await workers.output.acquire(1)  # the budget is full
        task = asyncio.create_task(service.produce(plan_with(service, CompareRequest("a fox"))))
        await settle()
        for gate in adapter.gates:
            gate.set()
        await until(lambda: workers.output.waiting == 1 or task.done(), "it waits for room")
        assert not task.done() and workers.composes.used == 0, "it waits before composing"
        workers.output.release(1)
        async with asyncio.timeout(10):
            await open_gates(adapter, task)
        outcomes, _ = task.result()
    finally:
        workers.close()
    assert all(o.ok for o in outcomes) and workers.output.used == 0


# ------------------------------------------------------------------ admission
async def test_work_that_cannot_start_in_time_is_refused_before_anything_is_charged(
    catalog: Catalog, db: Any
) -> None:
    ledger = Ledger(db)
    before = await ledger.ensure_account(1, 2)
    adapter = GatedAdapter()
    slots = RequestSlots(SlotLimits({"fake": 1}))
    capacity = Capacity(slots, max_wait_s=60.0)
    service = ComparisonService(catalog, registry_with(adapter), slots=slots, capacity=capacity)
    lane = slots.lane("fake")
    await lane.acquire("gpt-image-2")  # the one slot is taken: a new request waits a round
    lane.observe("gpt-image-2", 60.0)
    assert lane.expected_wait("gpt-image-2") == pytest.approx(60.0), "not over the limit"
    lane.observe("gpt-image-2", 150.0)  # rounds are slower now: over the limit
    job = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    with pytest.raises(Overloaded) as refused:
        await job.reserve()
    assert str(refused.value) == (
        "GPT-Image 2 is busy: about 2 minutes of requests are queued ahead of yours, longer "
        "than the 1 minute a comparison may wait to start. Nothing was charged; please try "
        "again later or pick another model."
    )
    assert job.hold is None and await ledger.balance(1, 2) == before
    assert capacity.running == 0


async def test_the_process_and_each_server_take_only_so_many_at_once(
    catalog: Catalog, db: Any
) -> None:
    from tests.conftest import FakeAdapter

    ledger = Ledger(db)
    await ledger.ensure_account(1, 2)
    slots = RequestSlots()
    capacity = Capacity(slots, max_running=2, max_running_per_server=1)
    service = ComparisonService(
        catalog, registry_with(FakeAdapter()), slots=slots, capacity=capacity
    )
    first = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    await first.reserve()
    second = job_for(service, plan_with(service, CompareRequest("a fox")), ledger=ledger, db=db)
    with pytest.raises(Overloaded) as per_server:
        await second.reserve()
    assert str(per_server.value) == (
        "This server already has 1 comparison running, as many as one server may have at "
        "once. Nothing was charged; please try again when one has finished."
    )
    other_server = capacity.admit(plan_with(service, CompareRequest("a fox")), 7)
    with pytest.raises(Overloaded) as everywhere:
        capacity.admit(plan_with(service, CompareRequest("a fox")), 8)
    assert str(everywhere.value) == (
        "Splitshot is already running 2 comparisons, as many as it takes at once. "
        "Nothing was charged; please try again in a minute."
    )
    other_server.release()
    await first.produce()
    assert capacity.running == 0, "a finished comparison gives its place back"


async def test_composes_running_together_share_the_cores(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.comparisons.service as service_module
    from tests.conftest import FakeAdapter

    monkeypatch.setattr(service_module, "usable_cores", lambda: 2)
    asked: list[int | None] = []
    real = service_module.compose

    def compose(*args: Any, max_threads: int | None = None, **kwargs: Any) -> Any:
        asked.append(max_threads)
        return real(*args, max_threads=max_threads, **kwargs)

    monkeypatch.setattr(service_module, "compose", compose)
    service = ComparisonService(
        catalog, registry_with(FakeAdapter()), workers=Workers(compose_slots=2)
    )
    try:
        await service.produce(plan_with(service, CompareRequest("alone")))
        await service.workers.composes.acquire(1)  # another compose is running
        await service.produce(plan_with(service, CompareRequest("beside another")))
        service.workers.composes.release(1)
    finally:
        service.workers.close()
    assert asked == [2, 1], "alone on every core; beside another, one each"
