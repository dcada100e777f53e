"""Voting end to end: reactions become votes, votes close (by time, command, button, restart)."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import replace

import discord
import pytest
import pytest_asyncio
import simcord

from bot.client import SplitshotBot
from bot.comparisons.records import get_comparison_by_message
from bot.credits.ledger import Ledger
from bot.db import Database
from bot.guild_settings import update_guild_settings
from bot.resources import Resources
from bot.voting.store import VoteStore
from cogs.votes.cog import (
    BadMessageLink,
    NoOpenVote,
    NotAComparison,
)
from tests.cogs.conftest import PROGRESS_INTERVAL, World, assert_refused_quietly

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"
HOUR = 3600


# --------------------------------------------------------------------- helpers
def field(embed: discord.Embed, name_start: str) -> str:
    for f in embed.fields:
        if (f.name or "").startswith(name_start):
            return f.value or ""
    raise AssertionError(f"no field {name_start!r} in {[f.name for f in embed.fields]}")


async def post(w: World, *, by: simcord.MemberActor | None = None, **options: object):
    """Run /compare and return the result message and its comparison id."""
    res = await (by or w.member).slash(w.channel, "compare", prompt=PROMPT, **options)
    record = await get_comparison_by_message(w.bot.db, res.response.id)
    assert record is not None, "the result was recorded"
    return res.response, record.id


async def counts(w: World, comparison_id: str) -> dict[str, int]:
    tally = await VoteStore(w.bot.db).tally(comparison_id)
    assert tally is not None
    return {option: n for option, n in tally.counts.items() if n}


async def state(w: World, comparison_id: str) -> str:
    row = await w.bot.db.fetchone("SELECT state FROM comparisons WHERE id = ?", (comparison_id,))
    assert row is not None
    return str(row[0])


async def reactors(w: World, message: object, emoji: str) -> list[int]:
    """Who reacted with ``emoji``, read through the bot (the test side cannot see `me`)."""
    fetched = await w.bot.get_partial_messageable(w.channel.id).fetch_message(message.id)  # type: ignore[attr-defined]
    reaction = next((r for r in fetched.reactions if str(r.emoji) == emoji), None)
    return [] if reaction is None else [u.id async for u in reaction.users()]


def reasons(caplog: pytest.LogCaptureFixture, user: simcord.MemberActor) -> list[str]:
    """The vote ladder's verdict on each reaction by ``user``, in order."""
    return [
        str(r.args[-1])  # type: ignore[index]
        for r in caplog.records
        if r.name == "bot.voting.store" and r.msg.startswith("reaction") and r.args[1] == user.id  # type: ignore[index]
    ]


def replies_to(w: World, message: object) -> list[discord.Message]:
    return [
        m
        for m in w.channel.history()
        if m.reference is not None and m.reference.message_id == message.id  # type: ignore[attr-defined]
    ]


@pytest.fixture
def ladder(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="bot.voting.store")
    return caplog


# ------------------------------------------------------------------- counting
async def test_a_moderator_clearing_reactions_withdraws_the_votes(world: World) -> None:
    w = world
    message, cid = await post(w)
    await w.other.react(message, "🇦")
    await w.moderator.react(message, "🇧")
    assert await counts(w, cid) == {"A": 1, "B": 1}
    where = {"message_id": message.id, "channel_id": w.channel.id, "guild_id": w.guild.id}
    # SimCord has no actor for clearing reactions; Discord sends these raw events for it.
    w.bot.dispatch(
        "raw_reaction_clear_emoji",
        discord.RawReactionClearEmojiEvent(where, discord.PartialEmoji(name="🇦")),  # type: ignore[arg-type]
    )
    await w.env.settle()
    assert await counts(w, cid) == {"B": 1}
    w.bot.dispatch("raw_reaction_clear", discord.RawReactionClearEvent(where))  # type: ignore[arg-type]
    await w.env.settle()
    assert await counts(w, cid) == {}


async def test_vote_switch_and_withdraw(world: World, ladder: pytest.LogCaptureFixture) -> None:
    w = world
    message, cid = await post(w)

    await w.other.react(message, "🇦")
    assert await counts(w, cid) == {"A": 1}

    await w.other.react(message, "🇧")
    assert await counts(w, cid) == {"B": 1}, "the latest reaction is the member's vote"
    assert w.other.id not in await reactors(w, message, "🇦"), "the bot removed the old reaction"
    assert w.bot.user is not None and w.bot.user.id in await reactors(w, message, "🇦")

    await w.other.unreact(message, "🇧")
    assert await counts(w, cid) == {}, "removing the active reaction withdraws the vote"

    await w.other.react(message, "🤝")
    assert await counts(w, cid) == {"tie": 1}
    assert reasons(ladder, w.other) == [
        "recorded A",
        "switched A → B",
        "ignored: not the active vote",  # the bot's removal of 🇦 comes back as an event
        "withdrawn",
        "recorded tie",
    ]


async def test_without_manage_messages_the_old_reaction_stays(world: World) -> None:
    w = world
    assert w.bot.user is not None
    w.channel = w.guild.create_text_channel(
        "no-manage", overwrites={w.bot.user: discord.PermissionOverwrite(manage_messages=False)}
    )
    message, cid = await post(w)

    await w.other.react(message, "🇦")
    await w.other.react(message, "🇧")
    assert await counts(w, cid) == {"B": 1}
    assert w.other.id in await reactors(w, message, "🇦")
    assert not [r for r in w.env.http_requests if r.method == "DELETE" and "/reactions/" in r.path]

    await w.other.unreact(message, "🇦")
    assert await counts(w, cid) == {"B": 1}, "only the active reaction withdraws"


async def test_what_never_counts(world: World, ladder: pytest.LogCaptureFixture) -> None:
    w = world
    message, cid = await post(w)
    unrelated = await w.other.send(w.channel, "nice lighthouse")

    await w.robot.react(message, "🇦")
    await w.member.react(message, "🇦")  # the requester, excluded by default
    await w.other.react(message, "🔥")
    await w.other.react(unrelated, "🇦")
    assert await counts(w, cid) == {}
    assert reasons(ladder, w.robot) == ["ignored: bot"]
    assert reasons(ladder, w.member) == ["ignored: requester excluded"]
    assert reasons(ladder, w.other) == ["ignored: unknown emoji", "ignored: not an open comparison"]
    assert w.bot.user is not None
    assert reasons(ladder, w.bot.user) == ["ignored: bot"] * 4, "its own 🇦 🇧 🤝 👎"  # type: ignore[arg-type]


async def test_the_requester_counts_when_the_server_allows_it(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, exclude_requester_votes=False)
    message, cid = await post(w)
    await w.member.react(message, "🇧")
    assert await counts(w, cid) == {"B": 1}


@pytest.mark.parametrize(
    ("hours", "first"),
    [(0, "recorded A"), (2, "ignored: member joined 0 min ago (< 2 h)")],
)
async def test_new_members_vote_under_each_config(
    world: World, ladder: pytest.LogCaptureFixture, hours: int, first: str
) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, min_member_age_hours=hours)
    newcomer = w.guild.add_member(w.env.create_user("newcomer"))
    message, cid = await post(w)

    await newcomer.react(message, "🇦")
    assert reasons(ladder, newcomer) == [first]
    if hours:
        assert await counts(w, cid) == {}
        await w.env.advance_time(3 * HOUR)
        await newcomer.react(message, "🇧")
        assert reasons(ladder, newcomer)[-1] == "recorded B"
    assert sum((await counts(w, cid)).values()) == 1


async def test_votes_count_on_results_from_before_a_restart(world: World) -> None:
    w = world
    message, cid = await post(w)
    await w.env.restart_bot(SplitshotBot(w.bot.resources, clock=w.bot.clock, progress_interval=10))
    await w.other.react(message, "🇦")  # a message the new bot's cache never saw
    await w.other.react(message, "🇧")
    assert await counts(w, cid) == {"B": 1}
    counts_by_emoji = {str(r.emoji): r.count for r in message.message.reactions}
    assert counts_by_emoji["🇦"] == 1, "only the bot's own 🇦 is left"


# -------------------------------------------------------------------- closing
async def test_the_deadline_closes_the_vote_and_shows_the_winner(
    world: World, ladder: pytest.LogCaptureFixture
) -> None:
    w = world
    # The shortest window a server may set: the default day costs seconds of simulated gateway.
    await update_guild_settings(w.bot.db, w.guild.id, vote_window_hours=1)
    message, cid = await post(w)
    await w.other.react(message, "🇦")
    await w.moderator.react(message, "🇦")

    await w.env.advance_time(HOUR - 60)
    assert await state(w, cid) == "open" and replies_to(w, message) == []

    await w.env.advance_time(120)
    assert await state(w, cid) == "closed"
    (embed,) = message.embeds
    assert "🏁 **Voting closed:** GPT-Image 2 wins with 2 of 2 votes." in (embed.description or "")
    assert field(embed, "Votes").splitlines() == [
        "🇦 GPT-Image 2 — 2",
        "🇧 Nano Banana Pro — 0",
        "🤝 Tie — 0",
        "👎 All bad — 0",
    ]
    assert not [f for f in embed.fields if f.name == "Vote"], "no more 'how to vote'"
    assert embed.colour == discord.Colour(0x4F545C)
    assert embed.image.url is None and message.attachments, "the image stays the attachment"
    assert len(message.attachments) == 1, "the split image is kept"
    assert [b["label"] for row in message.components for b in row["components"]] == [
        "Variants",
        "Reroll",
        "Swap model",
        "Details",
        "Delete",
    ]

    (reply,) = replies_to(w, message)
    assert reply.content == "🏁 Voting has closed: GPT-Image 2 wins with 2 of 2 votes."
    row = await w.bot.db.fetchone(
        "SELECT announced_at FROM vote_closures WHERE comparison_id = ?", (cid,)
    )
    assert row is not None and row[0] is not None

    await w.other.react(message, "🇧")
    assert await counts(w, cid) == {"A": 2}, "reactions after closing are ignored"
    assert reasons(ladder, w.other)[-1] == "ignored: voting closed"


async def test_no_action_waits_for_the_sleeping_closer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The closer sleeps between looks. That wait must not hold up an action even when it ends
    # inside SimCord's settle window (30 s here; the playground's is minutes): a bare sleep made
    # every action wait for it — up to 5 minutes in the playground — and jumped the clock.
    w = world
    monkeypatch.setattr("cogs.votes.closer.MAX_SLEEP", 3.0)  # well inside the settle window
    await w.env.advance_time(600)  # the closer wakes, looks, and now sleeps 3 s
    before = w.env.now()
    res = await w.member.slash(w.channel, "models list")
    assert res.response.embeds, "answered"
    assert w.env.now() == before, "the action did not wait for the closer's timer"


async def test_a_moderator_closes_early(world: World) -> None:
    w = world
    message, cid = await post(w)
    await w.other.react(message, "👎")

    res = await w.moderator.slash(w.channel, "vote close")
    simcord.assert_responded(res, ephemeral=True, contains="Voting closed. All bad: 1 of 1 vote")
    assert await state(w, cid) == "closed"
    (reply,) = replies_to(w, message)
    assert reply.content.startswith(f"🏁 <@{w.moderator.id}> closed voting: All bad")
    (sent,) = w.requests("POST", f"/channels/{w.channel.id}/messages")
    assert sent.json["allowed_mentions"]["parse"] == [], "naming the moderator pings nobody"


async def test_closing_takes_the_bots_reactions_away_and_ignores_later_ones(
    world: World, ladder: pytest.LogCaptureFixture
) -> None:
    w = world
    message, cid = await post(w)
    await w.other.react(message, "🇦")
    assert w.bot.user is not None and w.bot.user.id in await reactors(w, message, "🇧")
    await w.moderator.slash(w.channel, "vote close")

    for emoji in ("🇦", "🇧", "🤝", "👎"):
        assert w.bot.user.id not in await reactors(w, message, emoji), emoji
    assert await reactors(w, message, "🇦") == [w.other.id], "members' reactions stay"

    await w.moderator.react(message, "🇧")
    assert await counts(w, cid) == {"A": 1}, "a reaction after the close is no vote"
    assert reasons(ladder, w.moderator) == ["ignored: voting closed"]
    assert len(replies_to(w, message)) == 1, "and it gets no answer: the result says it is over"


async def test_the_requester_closes_by_message_link(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, compare_cooldown_seconds=0)
    first, first_id = await post(w)
    _, second_id = await post(w)
    link = f"https://discord.com/channels/{w.guild.id}/{w.channel.id}/{first.id}"

    res = await w.member.slash(w.channel, "vote close", message=link)
    simcord.assert_responded(res, ephemeral=True, contains="No votes, so no winner.")
    assert link in res.response.content
    assert await state(w, first_id) == "closed" and await state(w, second_id) == "open"

    again = await w.member.slash(w.channel, "vote close", message=str(first.id))
    assert_refused_quietly(w.env)
    simcord.assert_responded(
        again, ephemeral=True, content="Voting on that comparison has already closed."
    )


async def test_other_members_may_not_close(world: World) -> None:
    w = world
    message, cid = await post(w)
    res = await w.other.slash(w.channel, "vote close")
    assert_refused_quietly(w.env)
    simcord.assert_responded(
        res,
        ephemeral=True,
        content="Only the member who ran this comparison or a moderator can close its vote.",
    )
    assert await state(w, cid) == "open" and replies_to(w, message) == []


@pytest.mark.parametrize(
    ("message", "error", "expected"),
    [
        (None, NoOpenVote, "There is no open vote in this channel."),
        ("not a link", BadMessageLink, "Give the result's message link"),
        ("123456789", NotAComparison, "That message is not a Splitshot comparison"),
    ],
)
async def test_close_says_why_when_there_is_nothing_to_close(
    world: World, message: str | None, error: type[Exception], expected: str
) -> None:
    w = world
    options = {} if message is None else {"message": message}
    res = await w.moderator.slash(w.channel, "vote close", **options)
    assert_refused_quietly(w.env)
    simcord.assert_responded(res, ephemeral=True, contains=expected)


async def test_closing_a_blind_comparison_reveals_the_models(world: World) -> None:
    w = world
    message, _ = await post(w, blind=True)
    assert message.embeds[0].title == "Blind comparison: A vs B — Portrait"
    # Blind letters are shuffled per comparison; read which is which from the record.
    record = await get_comparison_by_message(w.bot.db, message.id)
    assert record is not None
    names = {p.letter: p.label for p in record.panels}
    a, b = names["A"], names["B"]
    assert {a, b} == {"GPT-Image 2", "Nano Banana Pro"}
    await w.other.react(message, "🇧")

    await w.member.slash(w.channel, "vote close")

    (embed,) = message.embeds
    assert embed.title == f"{a} vs {b} — Portrait"
    assert f"{b} (B) wins with 1 of 1 vote." in (embed.description or "")
    assert f"🇧 {b} (B) — 1" in field(embed, "Votes")
    assert f"🇦 **{a}**" in field(embed, "Panels")
    (reply,) = replies_to(w, message)
    assert reply.content.splitlines() == [
        f"🏁 <@{w.member.id}> closed voting: {b} (B) wins with 1 of 1 vote.",
        f"🙈 Revealed: 🇦 {a} · 🇧 {b}.",
    ]


async def test_the_close_button_is_limited_and_removed_once_closed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What cogs/compare/views.py::result_view does once it adds the button (diff requested).
    from cogs.compare.views import result_view
    from cogs.votes.views import CloseVoteButton

    def with_close_button(comparison_id: str) -> discord.ui.View:
        view = result_view(comparison_id)
        if not any(isinstance(item, CloseVoteButton) for item in view.children):
            view.add_item(CloseVoteButton(comparison_id))
        return view

    monkeypatch.setattr(sys.modules["cogs.compare.run"], "result_view", with_close_button)
    w = world
    message, cid = await post(w)
    await w.other.react(message, "🇦")

    refused = await w.other.click(message, label="Close vote")
    simcord.assert_responded(refused, ephemeral=True, contains="Only the member who ran")
    assert await state(w, cid) == "open"

    done = await w.member.click(message, label="Close vote")
    simcord.assert_responded(done, ephemeral=True, contains="GPT-Image 2 wins with 1 of 1 vote.")
    assert await state(w, cid) == "closed"
    labels = [b["label"] for row in message.components for b in row["components"]]
    assert labels == ["Variants", "Reroll", "Swap model", "Details", "Delete"]
    details = await w.other.click(message, label="Details")
    simcord.assert_responded(details, ephemeral=True)


@pytest_asyncio.fixture
async def second_db(resources: Resources) -> AsyncIterator[Database]:
    """Another connection to the same database file, as a second bot process would open."""
    db = await Database.open(resources.settings.db_path)
    yield db
    await db.close()


# ``second_db`` comes first, so it closes after the simulated Discord has stopped the bot.
async def test_a_restarted_bot_closes_what_fell_due_while_it_was_down(
    second_db: Database, world: World, resources: Resources
) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, compare_cooldown_seconds=0, vote_window_hours=1
    )
    overdue, overdue_id = await post(w)
    unannounced, unannounced_id = await post(w)
    await w.other.react(overdue, "🇧")
    await w.other.react(unannounced, "🇦")
    # The first bot stops closing votes (as if it went down); one closure it made in the
    # database but died before showing on the message.
    await w.bot.remove_cog("Votes")
    store = VoteStore(w.bot.db, clock=discord.utils.utcnow)
    assert await store.close(unannounced_id, by=w.moderator.id) is not None
    await w.env.advance_time(2 * HOUR)
    assert await state(w, overdue_id) == "open"
    before = len(w.env.http_requests)

    second = SplitshotBot(
        replace(resources, db=second_db, ledger=Ledger(second_db)),
        clock=w.bot.clock,
        progress_interval=PROGRESS_INTERVAL,
    )
    await w.env.restart_bot(second)
    await w.env.settle()

    assert await state(w, overdue_id) == "closed"
    edits = [
        r.path
        for r in w.env.http_requests[before:]
        if r.method == "PATCH" and r.path.startswith(f"/channels/{w.channel.id}/messages/")
    ]
    assert sorted(edits) == sorted(
        f"/channels/{w.channel.id}/messages/{m.id}" for m in (overdue, unannounced)
    )
    assert "Nano Banana Pro wins with 1 of 1 vote." in (overdue.embeds[0].description or "")
    assert "GPT-Image 2 wins with 1 of 1 vote." in (unannounced.embeds[0].description or "")
    assert replies_to(w, overdue)[0].content.startswith("🏁 Voting has closed")
    assert replies_to(w, unannounced)[0].content.startswith(f"🏁 <@{w.moderator.id}> closed")
    assert await VoteStore(second_db).unannounced() == []


async def test_a_deleted_result_is_given_up_quietly(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, vote_window_hours=1)
    message, cid = await post(w)
    janitors = w.guild.create_role(
        "Janitors", permissions=discord.Permissions(manage_messages=True)
    )
    janitor = w.guild.add_member(w.env.create_user("janitor"), roles=[janitors])
    await janitor.delete(message)  # gone without the Delete button: still open in the database
    await w.env.advance_time(HOUR + 60)
    assert await state(w, cid) == "closed"
    assert await VoteStore(w.bot.db).unannounced() == [], "a vanished message is not retried"


def test_message_links_and_ids_are_understood() -> None:
    from cogs.votes.cog import message_id_from

    assert message_id_from(" 123 ") == 123
    assert message_id_from("https://discord.com/channels/1/2/345") == 345
    assert message_id_from("https://ptb.discordapp.com/channels/@me/2/345") == 345
    with pytest.raises(BadMessageLink):
        message_id_from("https://example.com/345")


async def test_later_restarts_leave_closed_votes_alone(world: World) -> None:
    w = world
    message, cid = await post(w)
    await w.moderator.slash(w.channel, "vote close")
    await w.env.restart_bot(SplitshotBot(w.bot.resources, clock=w.bot.clock, progress_interval=10))
    await w.env.settle()
    assert len(replies_to(w, message)) == 1, "announced once, not again after a restart"
    assert await state(w, cid) == "closed"
