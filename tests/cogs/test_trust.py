"""Who may change the rules and mint credits, what the operator pays, and what member text can
do inside the bot's own messages — end to end through SimCord."""

from __future__ import annotations

import re

import discord
import pytest
import simcord

from bot.credits.budget import Budget
from bot.credits.ledger import OperatorLimits
from bot.guild_settings import get_guild_settings, settings_history
from tests.cogs.conftest import World, assert_refused_quietly


async def role_moderator(w: World) -> simcord.MemberActor:
    """A member whose only power is the configured moderator role (no Manage Server)."""
    helpers = w.guild.create_role("Helpers")
    await w.moderator.slash(w.channel, "config set", moderator_role=helpers)
    for command in await w.bot.tree.fetch_commands():
        if command.name in ("config", "credits"):
            w.guild.set_command_permissions(command.id, {helpers: True})
    return w.guild.add_member(w.env.create_user("helper"), roles=[helpers])


async def test_a_role_moderator_cannot_lift_caps_or_change_who_moderates(world: World) -> None:
    w = world
    helper = await role_moderator(w)
    for options in (
        {"max_grant": 1_000_000_000, "mod_daily_cap": 0},
        {"starter_grant": 1_000},
        {"price_overrides": "gpt-image-2=8"},
        {"moderator_role": w.guild.create_role("Mine")},
        {"audit_channel": w.channel},
    ):
        res = await helper.slash(w.channel, "config set", **options)
        assert_refused_quietly(w.env)
        simcord.assert_responded(res, ephemeral=True, contains="Manage Server")
    res = await helper.slash(w.channel, "config reset", setting="max_grant")
    assert_refused_quietly(w.env)
    settings = await get_guild_settings(w.bot.db, w.guild.id)
    assert (settings.max_grant, settings.mod_daily_cap, settings.starter_grant) == (
        10_000,
        50_000,
        60,
    )
    # The rest of the settings are theirs to change.
    res = await helper.slash(w.channel, "config set", vote_window_hours=12, blind_default=True)
    simcord.assert_responded(res, ephemeral=True, contains="Saved.")


async def test_nobody_grants_to_themselves(world: World) -> None:
    w = world
    helper = await role_moderator(w)
    for who in (helper, w.moderator):
        res = await who.slash(w.channel, "credits grant", member=who, amount=100, reason="me")
        assert_refused_quietly(w.env)
        simcord.assert_responded(res, ephemeral=True, contains="can't grant credits to yourself")
        assert await w.balance(who) == 0
    res = await helper.slash(w.channel, "credits grant", member=w.member, amount=5, reason="prize")
    simcord.assert_responded(res, ephemeral=True, contains="Granted **5 credits**")


async def test_operator_ceilings_refuse_a_server_lifting_its_caps(world: World) -> None:
    w = world
    res = await w.moderator.slash(w.channel, "config set", max_grant=1_000_000_000)
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains="at most 10,000 on this bot")
    res = await w.moderator.slash(w.channel, "config set", price_overrides="nano-banana-pro=0")
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains="can't go below 22")
    assert (await get_guild_settings(w.bot.db, w.guild.id)).max_grant == 10_000


@pytest.mark.parametrize("which", ["everyone", "managed"])
async def test_everyone_and_managed_roles_cannot_moderate(world: World, which: str) -> None:
    w = world
    role = (
        w.guild.default_role
        if which == "everyone"
        else w.guild.create_role("Some Bot", managed=True)
    )
    res = await w.moderator.slash(w.channel, "config set", moderator_role=role)
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains="can't be the moderator role")
    assert (await get_guild_settings(w.bot.db, w.guild.id)).moderator_role_id is None
    # So a member is still no moderator.
    credits = next(c for c in await w.bot.tree.fetch_commands() if c.name == "credits")
    w.guild.set_command_permissions(credits.id, {w.guild.default_role: True})
    res = await w.member.slash(w.channel, "credits grant", member=w.other, amount=5, reason="x")
    assert_refused_quietly(w.env)


async def test_revoking_from_a_newcomer_never_raises_their_balance(world: World) -> None:
    w = world
    res = await w.moderator.slash(
        w.channel, "credits revoke", member=w.other, amount=1, reason="spam"
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains="never used Splitshot")
    assert await w.balance(w.other) == 0 and await w.ledger_rows(w.other) == []


async def test_settings_changes_are_kept_and_posted_to_the_audit_channel(world: World) -> None:
    w = world
    await w.moderator.slash(w.channel, "config set", audit_channel=w.audit)
    await w.moderator.slash(w.channel, "config set", starter_grant=100)
    await w.moderator.slash(w.channel, "config reset", setting="starter_grant")
    elsewhere = w.guild.create_text_channel("mod-log")
    await w.moderator.slash(w.channel, "config set", audit_channel=elsewhere)

    changes = await settings_history(w.bot.db, w.guild.id)
    assert [(c.action, c.setting, c.old, c.new) for c in reversed(changes)] == [
        ("set", "audit_channel_id", None, w.audit.id),
        ("set", "starter_grant", 60, 100),
        ("reset", "starter_grant", 100, 60),
        ("set", "audit_channel_id", w.audit.id, elsewhere.id),
    ]
    assert all(c.actor_id == w.moderator.id for c in changes)

    posts = [m for m in w.audit.history() if m.author.bot]
    texts = [m.embeds[0].description for m in posts]
    assert any("**Starter grant:** 60 → 100" in t for t in texts)
    assert any("**Starter grant:** 100 → 60" in t for t in texts)
    # Moving the audit channel is posted to the old one too, and to the new one.
    assert any(f"<#{elsewhere.id}>" in t for t in texts)
    assert any(f"<#{elsewhere.id}>" in m.embeds[0].description for m in elsewhere.history())

    res = await w.moderator.slash(w.channel, "config history")
    (embed,) = res.response.embeds
    assert res.response.ephemeral and "**Starter grant:** 100 → 60" in embed.description
    assert f"<@{w.moderator.id}>" in embed.description


async def test_a_long_banned_word_list_is_saved_and_said_saved(world: World) -> None:
    w = world
    words = [f"forbiddenword{n:03d}" for n in range(160)]
    res = await w.moderator.slash(w.channel, "config set", banned_words=", ".join(words))
    simcord.assert_responded(res, ephemeral=True, contains="Saved.")
    assert len(res.response.content) <= 2000
    assert (await get_guild_settings(w.bot.db, w.guild.id)).banned_words == tuple(words)


async def test_over_budget_refuses_privately_with_nothing_charged(world: World) -> None:
    w = world
    w.bot.service.budget = Budget(w.bot.db, OperatorLimits(guild_daily_budget=30))
    first = await w.member.slash(w.channel, "compare", prompt="a red fox", use_case="portrait")
    assert first.response.attachments
    res = await w.other.slash(w.channel, "compare", prompt="a red fox", use_case="portrait")
    text = w.private_answer(res)
    assert "This server has used today's image budget" in text and "resets at 00:00 UTC" in text
    assert await w.balance(w.other) == 0 and await w.ledger_rows(w.other) == []


async def test_member_markdown_is_shown_literally(world: World) -> None:
    w = world
    prompt = "[claim free credits](https://evil.example) ||secret|| **loud** a fox"
    res = await w.member.slash(w.channel, "compare", prompt=prompt, use_case="portrait")
    description = res.response.embeds[0].description
    assert "\\[claim free credits](https://evil.example)" in description
    assert "\\|\\|secret\\|\\|" in description and "\\*\\*loud\\*\\*" in description
    assert re.search(r"(?<!\\)\[claim", description) is None, "no live masked link"

    await w.moderator.slash(
        w.channel, "credits grant", member=w.member, amount=5, reason="[prize](https://x.y)"
    )
    history = await w.member.slash(w.channel, "credits history")
    assert "\\[prize](https://x.y)" in history.response.embeds[0].description
    assert isinstance(history.response.embeds[0], discord.Embed)
