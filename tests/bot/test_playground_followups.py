"""In the playground's own world, on its demo models: compare → Variants of A → Reroll B →
Swap model → /edit, each a result of its own (SimCord, no browser)."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import simcord
from PIL import Image

from bot.client import SplitshotBot
from bot.comparisons.records import get_comparison_by_message
from bot.guild_settings import update_guild_settings
from bot.playground import PLAYGROUND_SETTINGS, build_world, welcome_text
from bot.resources import open_resources
from bot.settings import Settings


@pytest_asyncio.fixture
async def simcord_bot(tmp_path: Path) -> AsyncIterator[SplitshotBot]:
    settings = Settings.from_env(
        {"SPLITSHOT_DEMO_LATENCY": "0", "SPLITSHOT_DB": str(tmp_path / "pg.db")}
    )
    async with open_resources(settings, for_discord=False) as resources:
        # time.monotonic looked up at each call: SimCord swaps in its virtual clock.
        yield SplitshotBot(resources, sync_commands="global", clock=lambda: time.monotonic())


def picker(res: simcord.InteractionResult) -> Any:
    return (res.followups or [res.response])[0]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 128), (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


async def test_the_follow_up_walk_works_in_the_playground(
    simcord_env: simcord.Env, simcord_bot: SplitshotBot
) -> None:
    env, bot = simcord_env, simcord_bot
    world = build_world(env)
    await update_guild_settings(bot.db, world.guild.id, **PLAYGROUND_SETTINGS)
    assert "Variants" in welcome_text(bot.resources), "the welcome message points at them"
    await bot.ledger.grant(
        world.guild.id, world.member.id, 500, "walk", actor_id=world.moderator.id
    )
    you, channel = world.member, world.channel

    first = await you.slash(channel, "compare", prompt="a fox in the snow")
    assert first.response.attachments
    variants = await you.select(picker(await you.click(first.response, label="Variants")), ["A"])
    reroll = await you.select(picker(await you.click(first.response, label="Reroll")), ["B"])
    swap_models = await you.select(
        picker(await you.click(first.response, label="Swap model")), ["B"]
    )
    swap = await you.select(picker(swap_models), ["nano-banana-2"])
    edit = await you.slash(channel, "edit", image=("me.png", png()), prompt="add a red hat")
    # /compare and /edit share the member's cooldown (10 s here): it names the command used.
    assert "you can use /edit again in" in edit.response.content
    await env.advance_time(11)
    edit = await you.slash(channel, "edit", image=("me.png", png()), prompt="add a red hat")

    kinds = []
    for res in (variants, reroll, swap, edit):
        assert res.response is not None and res.response.attachments, env.errors
        record = await get_comparison_by_message(bot.db, res.response.id)
        assert record is not None
        kinds.append((record.kind, record.parent_id is not None))
    assert kinds == [("variants", True), ("reroll", True), ("swap", True), ("edit", False)]
    assert await bot.ledger.audit() == []
