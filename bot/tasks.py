"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait for it; re-raise if the *caller* is being cancelled meanwhile.

    ``suppress(CancelledError)`` around ``await task`` would also swallow a cancellation aimed
    at the caller; this one only absorbs the task's own.
    """
    if task is None or task.done():
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieve it, so asyncio does not log "never retrieved"
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait({task})
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
    if not task.cancelled() and task.exception() is not None:
        return  # the task failed on its own; its owner already logged it


async def finish_task(task: asyncio.Task[Any] | None) -> None:
    """Let ``task`` run to its end (e.g. an edit already on the wire); never cancel it."""
    if task is None:
        return
    await asyncio.wait({task})
