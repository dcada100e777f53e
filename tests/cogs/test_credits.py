"""/credits: balance, history paging, top, daily, and the moderators' grant and revoke."""

from __future__ import annotations

import discord
import pytest
import simcord

from bot.guild_settings import update_guild_settings
from tests.cogs.conftest import World, assert_refused_quietly


async def test_balance_gives_the_starter_grant_once(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "credits balance")
    simcord.assert_responded(res, ephemeral=True, contains="You have **60 credits**.")
    await w.member.slash(w.channel, "credits balance")
    assert await w.ledger_rows(w.member) == [("starter", 60)]

    other = await w.member.slash(w.channel, "credits balance", member=w.other)
    simcord.assert_responded(other, ephemeral=True, contains="has **0 credits**")
    assert await w.ledger_rows(w.other) == [], "looking someone up does not open their account"

    robot = await w.member.slash(w.channel, "credits balance", member=w.robot)
    assert_refused_quietly(w.env)
    simcord.assert_responded(robot, ephemeral=True, contains="Bots don't have credits")


async def test_daily_once_per_period(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "credits daily")
    simcord.assert_responded(
        res, ephemeral=True, contains="You claimed **20 credits** — balance 80."
    )
    again = await w.member.slash(w.channel, "credits daily")
    assert_refused_quietly(w.env)
    simcord.assert_responded(again, ephemeral=True, contains="already claimed")
    assert await w.balance(w.member) == 80


async def test_grant_and_revoke_post_to_the_audit_channel(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, audit_channel_id=w.audit.id)
    res = await w.moderator.slash(
        w.channel, "credits grant", member=w.member, amount=40, reason="contest winner"
    )
    simcord.assert_responded(res, ephemeral=True, contains="Granted **40 credits**")
    assert "their balance is 100" in res.response.content
    assert await w.balance(w.member) == 100

    res = await w.moderator.slash(
        w.channel, "credits revoke", member=w.member, amount=25, reason="duplicate"
    )
    simcord.assert_responded(res, ephemeral=True, contains="Revoked **25 credits**")
    assert await w.balance(w.member) == 75

    posts = w.audit.history()
    assert [p.embeds[0].title for p in posts] == ["Credits granted", "Credits revoked"]
    assert "contest winner" in posts[0].embeds[0].description
    assert w.moderator.mention in posts[0].embeds[0].description
    rows = await w.ledger_rows(w.member)
    assert rows == [("starter", 60), ("grant", 40), ("revoke", -25)]


async def test_grant_caps_and_refusals(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, max_grant=100, mod_daily_cap=150)
    over = await w.moderator.slash(
        w.channel, "credits grant", member=w.member, amount=101, reason="x"
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(over, ephemeral=True, contains="limited to 100 credits")

    await w.moderator.slash(w.channel, "credits grant", member=w.member, amount=100, reason="a")
    capped = await w.moderator.slash(
        w.channel, "credits grant", member=w.other, amount=60, reason="b"
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(capped, ephemeral=True, contains="at most 50 more")

    too_much = await w.moderator.slash(
        w.channel, "credits revoke", member=w.member, amount=500, reason="c"
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(too_much, ephemeral=True, contains="revoke at most 160")

    robot = await w.moderator.slash(
        w.channel, "credits grant", member=w.robot, amount=5, reason="d"
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(robot, ephemeral=True, contains="Bots don't have credits")
    assert await w.balance(w.member) == 160


async def test_members_cannot_grant_and_are_told_who_can(world: World) -> None:
    w = world
    res = await w.member.slash(
        w.channel, "credits grant", member=w.member, amount=1000, reason="me"
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(
        res, ephemeral=True, contains="Only moderators — members with the Manage Server"
    )
    assert await w.ledger_rows(w.member) == []

    role = w.guild.create_role("Credit helpers")
    helper = w.guild.add_member(w.env.create_user("helper"), roles=[role])
    await update_guild_settings(w.bot.db, w.guild.id, moderator_role_id=role.id)
    denied = await w.member.slash(
        w.channel, "credits grant", member=w.member, amount=5, reason="me"
    )
    assert_refused_quietly(w.env)
    assert f"<@&{role.id}>" in denied.response.content
    allowed = await helper.slash(
        w.channel, "credits grant", member=w.member, amount=5, reason="helping"
    )
    simcord.assert_responded(allowed, ephemeral=True, contains="Granted **5 credits**")


async def test_history_pages_with_buttons(world: World) -> None:
    w = world
    for n in range(12):
        await w.moderator.slash(
            w.channel, "credits grant", member=w.member, amount=n + 1, reason=f"round {n + 1}"
        )
    res = await w.member.slash(w.channel, "credits history")
    simcord.assert_responded(res, ephemeral=True)
    (embed,) = res.response.embeds
    assert embed.title == "Credit history · page 1 of 2"
    assert "round 12" in embed.description and "round 1 " not in embed.description
    assert len(embed.description.splitlines()) == 10

    older = await w.member.click(res.response, label="Older")
    (embed,) = older.response.embeds
    assert embed.title == "Credit history · page 2 of 2"
    assert "starter grant" in embed.description and "round 1 " in embed.description + " "
    assert [c["disabled"] for row in older.response.components for c in row["components"]] == [
        False,
        True,
    ]

    newer = await w.member.click(older.response, label="Newer")
    assert newer.response.embeds[0].title == "Credit history · page 1 of 2"


async def test_top_lists_the_richest_members(world: World) -> None:
    w = world
    await w.moderator.slash(w.channel, "credits grant", member=w.other, amount=500, reason="prize")
    await w.member.slash(w.channel, "credits balance")
    res = await w.member.slash(w.channel, "credits top")
    assert not res.response.ephemeral
    lines = res.response.embeds[0].description.splitlines()
    assert lines[0].startswith("🥇") and w.other.mention in lines[0] and "560 credits" in lines[0]
    assert w.member.mention in lines[1] and "60 credits" in lines[1]


async def test_the_moderator_hears_first_and_a_failed_audit_post_is_not_a_retry(
    world: World,
) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, audit_channel_id=w.audit.id)
    w.env.inject_error("POST", f"/channels/{w.audit.id}/messages", status=500, times=1)
    res = await w.moderator.slash(
        w.channel, "credits grant", member=w.member, amount=40, reason="contest winner"
    )

    simcord.assert_responded(res, ephemeral=True, contains="Granted **40 credits**")
    (note,) = res.followups
    assert note.ephemeral and f"couldn't post this to <#{w.audit.id}>" in note.content
    assert "try again" not in res.response.content + note.content
    (callback,) = w.requests("POST", "/callback")
    (audit,) = w.requests("POST", f"/channels/{w.audit.id}/messages")
    requests = w.env.http_requests
    assert requests.index(callback) < requests.index(audit), "answered before the audit post"
    assert w.audit.history() == []
    assert await w.ledger_rows(w.member) == [("starter", 60), ("grant", 40)]

    again = await w.moderator.slash(
        w.channel, "credits revoke", member=w.member, amount=5, reason="typo"
    )
    simcord.assert_responded(again, ephemeral=True, contains="Revoked **5 credits**")
    assert again.followups == [], "no note when the audit post went through"
    assert [p.embeds[0].title for p in w.audit.history()] == ["Credits revoked"]


async def test_a_ledger_on_discords_clock_tells_the_next_claim_in_hours(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the playground does: credits tell time by the simulated Discord's clock.
    from dataclasses import replace

    from bot.credits.ledger import Ledger

    w = world
    ledger = Ledger(w.bot.db, clock=discord.utils.utcnow)
    monkeypatch.setattr(w.bot, "resources", replace(w.bot.resources, ledger=ledger))
    await w.member.slash(w.channel, "credits daily")
    again = await w.member.slash(w.channel, "credits daily")
    assert_refused_quietly(w.env)
    text = again.response.content
    assert "already claimed" in text and "week" not in text, text
    (row,) = await w.bot.db.fetchall(
        "SELECT created_at FROM ledger WHERE kind = 'daily' AND user_id = ?", (w.member.id,)
    )
    assert row["created_at"].startswith("2026-01-01"), "stored in the simulated Discord's time"
