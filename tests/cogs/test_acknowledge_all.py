"""Every command and button that reads the database acknowledges Discord first.

Discord gives an interaction 3 seconds; a busy database (another shard's write, a long settle)
must never make a member see "The application did not respond".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cogs.conftest import World

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"


def callback_types(w: World) -> list[int]:
    return [c.json["type"] for c in w.requests("POST", "/callback")]


@pytest.mark.parametrize(
    ("actor", "command", "options"),
    [
        ("member", "credits balance", {}),
        ("member", "credits history", {}),
        ("member", "credits top", {}),
        ("member", "credits daily", {}),
        ("moderator", "config show", {}),
        ("moderator", "config history", {}),
        ("member", "history", {}),
        ("member", "leaderboard", {}),
        ("member", "versus", {"model_a": "gpt-image-2", "model_b": "nano-banana-pro"}),
    ],
)
async def test_commands_that_read_the_database_defer_first(
    world: World, actor: str, command: str, options: dict[str, Any]
) -> None:
    w = world
    who = getattr(w, actor)
    res = await who.slash(w.channel, command, **options)
    assert res.acknowledged
    assert callback_types(w)[0] == 5, f"/{command} answered before acknowledging"


async def test_buttons_that_read_the_database_defer_first(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    message = res.response
    for label in ("Details", "Delete", "Variants", "Reroll", "Swap model"):
        before = len(callback_types(w))
        await w.member.click(message, label=label)
        assert callback_types(w)[before] == 5, f"{label} answered before acknowledging"
