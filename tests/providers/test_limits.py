"""Request slots: first come first served, a visible place in line, per-model caps, cancels."""

from __future__ import annotations

import asyncio

import pytest

from providers.limits import DEFAULT_REQUESTS, Lane, RequestSlots, SlotLimits


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_requests_beyond_the_slots_wait_in_order_and_see_their_place() -> None:
    lane = Lane("openai", 1, {})
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    order: list[str] = []
    done = {name: asyncio.Event() for name in seen}

    async def request(name: str) -> None:
        async def moved(position: int) -> None:
            seen[name].append(position)

        async with lane.slot("gpt-image-2", moved):
            order.append(name)
            await done[name].wait()

    tasks = [asyncio.create_task(request("a"))]
    await settle()
    tasks += [asyncio.create_task(request(n)) for n in ("b", "c")]
    await settle()
    assert seen == {"a": [], "b": [1], "c": [2]} and lane.waiting == 2
    done["a"].set()
    await settle()
    assert order == ["a", "b"] and seen["c"] == [2, 1], "c is told when it moves up"
    done["b"].set()
    done["c"].set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert lane.running == 0 and lane.waiting == 0


async def test_a_model_at_its_own_cap_lets_other_models_pass() -> None:
    lane = Lane("gemini", 3, {"nano-banana-pro": 1})
    hold = asyncio.Event()
    started: list[str] = []

    async def request(model: str) -> None:
        async with lane.slot(model):
            started.append(model)
            await hold.wait()

    tasks = [
        asyncio.create_task(request(m))
        for m in ("nano-banana-pro", "nano-banana-pro", "nano-banana-2")
    ]
    await settle()
    assert started == ["nano-banana-pro", "nano-banana-2"]
    assert lane.waiting == 1
    hold.set()
    await asyncio.gather(*tasks)
    assert started.count("nano-banana-pro") == 2


async def test_a_cancelled_waiter_leaves_the_line_and_gives_back_nothing_it_did_not_take() -> None:
    lane = Lane("openai", 1, {})
    hold = asyncio.Event()
    positions: list[int] = []

    async def holder() -> None:
        async with lane.slot("m"):
            await hold.wait()

    async def last(position: int) -> None:
        positions.append(position)

    running = asyncio.create_task(holder())
    await settle()
    quitter = asyncio.create_task(lane.acquire("m"))
    await settle()
    waiter = asyncio.create_task(lane.acquire("m", last))
    await settle()
    quitter.cancel()
    await settle()
    assert positions == [2, 1] and lane.waiting == 1
    hold.set()
    await running
    await waiter
    assert lane.running == 1


def test_the_expected_wait_counts_whole_rounds_of_requests_ahead() -> None:
    lane = Lane("openai", 2, {})
    assert lane.expected_wait("gpt-image-2") == 0.0
    lane.running = 2
    assert lane.expected_wait("gpt-image-2") == pytest.approx(60.0)  # one round of ~60 s
    lane.observe("gpt-image-2", 20.0)
    assert lane.expected_wait("gpt-image-2") == pytest.approx(20.0)


def test_limits_default_to_each_providers_documented_tier() -> None:
    slots = RequestSlots(SlotLimits({"gemini": 50}, {"gpt-image-2": 2}))
    assert slots.lane("openai").size == DEFAULT_REQUESTS["openai"] == 5
    assert slots.lane("gemini").size == 50
    assert slots.lane("openai").capacity("gpt-image-2") == 2
    assert slots.lane("openai") is slots.lane("openai")
