"""The compose budget queues and never refuses; the CPU pools are separate."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.workers import Line, Pool, Workers, trim_heap


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_at_most_capacity_composes_run_and_the_rest_wait_in_order() -> None:
    line = Line(2)
    running: list[int] = []
    peak = 0
    ahead: dict[int, list[int]] = {}
    gates = {i: asyncio.Event() for i in range(5)}

    async def compose(i: int) -> None:
        nonlocal peak

        async def told(count: int) -> None:
            ahead.setdefault(i, []).append(count)

        async with line.hold(1, told):
            running.append(i)
            peak = max(peak, len(running))
            await gates[i].wait()
            running.remove(i)

    tasks = [asyncio.create_task(compose(i)) for i in range(5)]
    await settle()
    assert running == [0, 1] and line.waiting == 3, "never refused: queued"
    assert ahead == {2: [0], 3: [1], 4: [2]}
    gates[0].set()
    await settle()
    assert running == [1, 2] and ahead[4] == [2, 1]
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert peak == 2 and line.used == 0


async def test_the_memory_budget_holds_back_what_does_not_fit_and_admits_a_giant_alone() -> None:
    budget = Line(100)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in ("a", "giant", "b")}

    async def comparison(name: str, cost: int) -> None:
        async with budget.hold(cost):
            order.append(name)
            await gates[name].wait()

    tasks = [asyncio.create_task(comparison("a", 60))]
    await settle()
    tasks.append(asyncio.create_task(comparison("giant", 500)))
    await settle()
    tasks.append(asyncio.create_task(comparison("b", 10)))
    await settle()
    assert order == ["a"], "b fits, but does not overtake the giant waiting before it"
    gates["a"].set()
    await settle()
    assert order == ["a", "giant"] and budget.used == 500
    gates["giant"].set()
    gates["b"].set()
    await asyncio.gather(*tasks)
    assert order == ["a", "giant", "b"] and budget.used == 0


async def test_a_cancelled_turn_leaves_the_line() -> None:
    line = Line(1)
    await line.acquire(1)
    waiter = asyncio.create_task(line.acquire(1))
    await settle()
    waiter.cancel()
    await settle()
    assert line.waiting == 0
    line.release(1)
    assert line.used == 0


async def test_each_kind_of_cpu_work_has_its_own_threads() -> None:
    workers = Workers(compose_slots=1)
    try:
        names = {
            pool.name: await pool.run(lambda: threading.current_thread().name)
            for pool in (workers.compose, workers.checks, workers.boards)
        }
        assert all(name.startswith(pool) for pool, name in names.items())
        assert workers.composes.capacity == 1
    finally:
        workers.close()


async def test_a_pool_passes_arguments_and_results() -> None:
    pool = Pool("checks", 1)
    try:
        assert await pool.run(pow, 2, 10) == 1024
    finally:
        pool.close()


async def test_a_pool_runs_its_after_hook_on_the_same_thread_after_every_job() -> None:
    seen: list[tuple[str, str]] = []

    def after() -> None:
        seen.append(("after", threading.current_thread().name))

    def job(fail: bool) -> str:
        seen.append(("job", threading.current_thread().name))
        if fail:
            raise ValueError("boom")
        return "done"

    pool = Pool("hooked", 1, after=after)
    try:
        assert await pool.run(job, False) == "done"
        with pytest.raises(ValueError, match="boom"):
            await pool.run(job, True)
    finally:
        pool.close()
    assert [kind for kind, _ in seen] == ["job", "after", "job", "after"]
    assert {name for _, name in seen} == {seen[0][1]} and seen[0][1].startswith("hooked")


def test_the_compose_pool_trims_the_heap_after_each_compose() -> None:
    workers = Workers()
    try:
        assert workers.compose.after is trim_heap
        trim_heap()  # safe to call anywhere, glibc or not
    finally:
        workers.close()
