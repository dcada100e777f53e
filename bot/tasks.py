"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait for it to end; re-raise if the *caller* is cancelled meanwhile.

    ``with suppress(CancelledError): await task`` would also swallow a cancellation aimed at
    the caller, which then carries on as if nothing happened; this absorbs only the task's own.
    """
    if task is None:
        return
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task})
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise asyncio.CancelledError
    if not task.cancelled():
        task.exception()  # retrieved: its owner logged it; asyncio must not warn again


async def finish_task(task: asyncio.Task[Any] | None) -> None:
    """Let ``task`` run to its end (e.g. an edit already on the wire); never cancel it."""
    if task is not None:
        await asyncio.wait({task})
