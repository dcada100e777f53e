"""The progress board stops by flag: an edit already on the wire lands before the result.

Regression: stopping used to cancel the board's task mid-edit; the edit could still reach
Discord after the result was posted and overwrite it with a progress frame.
"""

from __future__ import annotations

import asyncio

import discord

from bot.catalog import load_catalog
from bot.comparisons.plan import CompareRequest
from bot.comparisons.policy import Policy
from cogs.compare.run import ProgressBoard
from providers.demo import DemoAdapter
from providers.registry import Registry


def plan() -> object:
    catalog = load_catalog()
    registry = Registry({}, demo=DemoAdapter(latency=(0, 0)))
    return Policy(catalog, registry).plan(CompareRequest("a fox"))


async def test_stop_waits_for_an_edit_in_flight_and_no_frame_follows() -> None:
    on_the_wire = asyncio.Event()
    release = asyncio.Event()
    landed: list[str] = []
    calls = 0

    async def edit(embed: discord.Embed) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first tick's frame is slow to land
            on_the_wire.set()
            await release.wait()
        landed.append(f"frame {calls}")
        return True

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    board = ProgressBoard(plan(), edit=edit, clock=lambda: 0.0, interval=1.0, sleep=no_wait)  # type: ignore[arg-type]
    await board.start()
    await on_the_wire.wait()
    stopping = asyncio.create_task(board.stop())
    await asyncio.sleep(0.01)
    assert not stopping.done(), "stop waits for the frame on the wire"
    release.set()
    await stopping
    landed.append("result")
    await asyncio.sleep(0.01)
    assert landed == ["frame 1", "frame 2", "result"], "no frame lands after the result"


async def test_stop_cancels_a_board_that_is_only_waiting() -> None:
    frames: list[int] = []

    async def edit(embed: discord.Embed) -> bool:
        frames.append(1)
        return True

    board = ProgressBoard(plan(), edit=edit, clock=lambda: 0.0, interval=3600.0)  # type: ignore[arg-type]
    await board.start()
    await asyncio.wait_for(board.stop(), 1.0)  # does not wait out the hour
    assert frames == [1]


async def test_the_board_shows_a_place_in_line_then_the_composes_ahead() -> None:
    from bot.comparisons.events import Composing, PanelChanged
    from bot.comparisons.plan import Plan, State

    shown = plan()
    assert isinstance(shown, Plan)

    async def edit(embed: discord.Embed) -> bool:
        return True

    board = ProgressBoard(shown, edit=edit, clock=lambda: 0.0, interval=1.0)
    board.update(PanelChanged(shown, 1, State.QUEUED, 0.0, position=3))
    assert "queued — position 3" in (board.render().description or "")
    board.update(PanelChanged(shown, 0, State.DONE, 1.0))
    board.update(PanelChanged(shown, 1, State.DONE, 2.0))
    board.composing(Composing(shown, 2))
    text = board.render().description or ""
    assert "position" not in text and "🧩 Composing — 2 ahead" in text
