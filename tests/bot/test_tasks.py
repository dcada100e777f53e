"""Stopping background work: the task's cancellation is absorbed, the caller's never is."""

from __future__ import annotations

import asyncio

import pytest

from bot.tasks import finish_task, stop_task


async def test_stop_task_cancels_and_waits() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(forever())
    await started.wait()
    await stop_task(task)
    assert task.cancelled()
    await stop_task(task)  # idempotent
    await stop_task(None)


async def test_stop_task_does_not_swallow_the_callers_cancellation() -> None:
    """The old ``suppress(CancelledError)`` let a cancelled closer carry on as if not asked."""
    stubborn_started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn() -> None:
        stubborn_started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # takes a while to wind down
            raise

    inner = asyncio.create_task(stubborn())
    await stubborn_started.wait()
    after_stop: list[str] = []

    async def caller() -> None:
        await stop_task(inner)
        after_stop.append("carried on")

    outer = asyncio.create_task(caller())
    await asyncio.sleep(0)
    outer.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert after_stop == [], "the caller's own cancellation must propagate"


async def test_finish_task_never_cancels() -> None:
    done: list[int] = []

    async def edit() -> None:
        await asyncio.sleep(0.01)
        done.append(1)

    task = asyncio.create_task(edit())
    await finish_task(task)
    assert done == [1] and not task.cancelled()
