"""``include_demo``: demo comparisons count only when the caller asks (the playground does)."""

from __future__ import annotations

from bot.db import AnyDatabase
from bot.guild_settings import GuildSettings
from bot.voting.store import VoteStore
from tests.bot.voting.test_store import GUILD, Clock, add_comparison, react

SETTINGS = GuildSettings(min_votes_to_rank=1)


async def test_demo_comparisons_count_only_when_asked(db: AnyDatabase) -> None:
    store = VoteStore(db, clock=Clock())
    await add_comparison(db, "real", message=1)
    await add_comparison(db, "demo", message=2, demo=True)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)
    await store.handle_reaction(react("🇧", message=2), SETTINGS)

    real_only = await store.leaderboard(GUILD, "portrait", SETTINGS, rounds=20)
    assert real_only.votes == 1 and real_only.comparisons == 1
    with_demo = await store.leaderboard(GUILD, "portrait", SETTINGS, rounds=20, include_demo=True)
    assert with_demo.votes == 2 and with_demo.comparisons == 2

    models = ["gpt-image-2", "nano-banana-pro"]
    real_lines = await store.community_lines(GUILD, "portrait", models, SETTINGS)
    demo_lines = await store.community_lines(GUILD, "portrait", models, SETTINGS, include_demo=True)
    assert "won 1 of 1 portrait votes" in real_lines[0]
    assert "won 1 of 2 portrait votes" in demo_lines[0]
