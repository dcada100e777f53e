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


async def test_a_cancelled_head_of_the_line_lets_in_what_waited_behind_it() -> None:
    budget = Line(100)
    await budget.acquire(60)
    giant = asyncio.create_task(budget.acquire(500))  # waits for the line to empty
    await settle()
    small = asyncio.create_task(budget.acquire(30))  # fits, but not before the giant
    await settle()
    assert not small.done()
    giant.cancel()
    await settle()
    assert small.done() and budget.used == 90, "let in at once, not at the next release"


async def test_quiet_turns_and_turns_that_show_their_place_share_one_order() -> None:
    line = Line(1)
    await line.acquire(1)
    places: list[int] = []

    async def shown(ahead: int) -> None:
        places.append(ahead)

    quiet = [asyncio.create_task(line.acquire(1)) for _ in range(3)]
    await settle()
    told = asyncio.create_task(line.acquire(1, shown))
    await settle()
    assert places == [3]
    for expected_done in range(1, 4):
        line.release(1)
        await settle()
        assert sum(t.done() for t in quiet) == expected_done, "first come, first served"
    assert places == [3, 2, 1, 0] and not told.done()
    line.release(1)
    await settle()
    assert told.done() and line.used == 1


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


async def test_a_quiet_turn_cancelled_as_it_is_granted_passes_its_grant_on() -> None:
    line = Line(1)
    await line.acquire(1)
    waiter = asyncio.create_task(line.acquire(1))
    await settle()
    waiter.cancel()
    line.release(1)  # grants the waiter before its task has run the cancellation
    await settle()
    assert waiter.cancelled() and line.used == 0 and line.waiting == 0
