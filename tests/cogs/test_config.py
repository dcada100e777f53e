"""/config: hidden from members, checked in code, and a faithful round trip to the database."""

from __future__ import annotations

import pytest
import simcord

from bot.guild_settings import get_guild_settings
from tests.cogs.conftest import World, assert_refused_quietly


async def test_config_set_show_reset_round_trip(world: World) -> None:
    w = world
    res = await w.moderator.slash(
        w.channel,
        "config set",
        starter_grant=100,
        daily_allowance=5,
        max_grant=500,
        mod_daily_cap=100,
        vote_window_hours=48,
        blind_default=True,
        moderator_role=w.mod_role,
        audit_channel=w.audit,
        banned_words="castle, moat",
        demo_mode="off",
        enabled_models="GPT-Image 2, nano-banana-pro",
        price_overrides="gpt-image-2=12",
        compare_cooldown_seconds=0,
    )
    simcord.assert_responded(res, ephemeral=True, contains="Saved.")
    assert "**Starter grant:** 60 → 100" in res.response.content
    settings = await get_guild_settings(w.bot.db, w.guild.id)
    assert (
        settings.starter_grant == 100
        and settings.daily_allowance == 5
        and settings.max_grant == 500
    )
    assert (
        settings.mod_daily_cap == 100
        and settings.vote_window_hours == 48
        and settings.blind_default
    )
    assert settings.moderator_role_id == w.mod_role.id and settings.audit_channel_id == w.audit.id
    assert settings.banned_words == ("castle", "moat") and settings.demo_mode is False
    assert settings.enabled_models == ("gpt-image-2", "nano-banana-pro")
    assert dict(settings.price_overrides) == {"gpt-image-2": 12}

    show = await w.moderator.slash(w.channel, "config show")
    (embed,) = show.response.embeds
    text = "\n".join(f.value for f in embed.fields)
    assert "**Starter grant:** 100 ✎" in text and "||castle||, ||moat||" in text
    assert f"<@&{w.mod_role.id}>" in text and f"<#{w.audit.id}>" in text
    assert "**Enabled models:** GPT-Image 2, Nano Banana Pro ✎" in text

    reset = await w.moderator.slash(w.channel, "config reset", setting="starter_grant")
    simcord.assert_responded(reset, ephemeral=True, contains="back to its default: 60")
    assert (await get_guild_settings(w.bot.db, w.guild.id)).starter_grant == 60

    # The new starter grant and the banned words apply to members straight away.
    await w.moderator.slash(w.channel, "config set", starter_grant=10)
    await w.member.slash(w.channel, "credits balance")
    assert await w.balance(w.member) == 10
    refused = await w.member.slash(w.channel, "compare", prompt="A moat around a castle")
    assert "does not allow" in w.private_answer(refused)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "Pick at least one setting"),
        ({"enabled_models": "gpt-image-2"}, "at least two models"),
        ({"enabled_models": "gpt-image-2, dall-e"}, "Unknown model 'dall-e'"),
        ({"price_overrides": "midjourney=3"}, "Unknown model 'midjourney'"),
    ],
)
async def test_config_set_refuses_bad_values(world: World, options: dict, expected: str) -> None:
    w = world
    res = await w.moderator.slash(w.channel, "config set", **options)
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains=expected)


async def test_config_is_hidden_from_members_and_refused_in_code(world: World) -> None:
    w = world
    with pytest.raises(simcord.SetupError, match="not visible"):
        await w.member.slash(w.channel, "config show")

    # A server admin may show the command to everyone; the bot still says no.
    config = next(c for c in await w.bot.tree.fetch_commands() if c.name == "config")
    w.guild.set_command_permissions(config.id, {w.guild.default_role: True})
    res = await w.member.slash(w.channel, "config set", starter_grant=1_000_000)
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains="Only moderators")
    assert (await get_guild_settings(w.bot.db, w.guild.id)).starter_grant == 60

    with pytest.raises(simcord.OptionError):
        await w.moderator.slash(w.channel, "config set", vote_window_hours=0)
