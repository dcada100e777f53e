"""Shoot-outs end to end in SimCord: start (modal, price, Start), rounds in a thread, team votes,
closing on time with a report, restart in the middle, the team pool, and the export.

The tables are read through ``tests.pg.fetch``, so ``tests/cogs/test_postgres.py`` runs these
same tests on PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.cli.main import main
from bot.client import NotModerator, SplitshotBot
from bot.comparisons.capacity import Capacity
from bot.comparisons.records import panel_images
from bot.guild_settings import update_guild_settings
from bot.shootouts.pool import POOL_USER_ID
from tests.cogs.conftest import Behaviour, FakeAdapter, VirtualSleep, World
from tests.pg import fetch

HOUR = 3600
PROMPTS = {
    "prompt1": 'A poster for the summer fair, title "SUMMER FAIR"',
    "prompt2": "A poster for a jazz night in a small club",
    "prompt3": "A poster for a charity run at dawn",
}
MODELS = {"model_a": "gpt-image-2", "model_b": "nano-banana-pro"}
ROUND_PRICE = 8 + 22


@dataclass(slots=True)
class PromptAwareFake(FakeAdapter):
    """The usual fake, which can also be slow for prompts containing ``slow_prompt``."""

    slow_prompt: str | None = None

    async def generate(self, target: Any, request: Any, *, deadline: float) -> Any:
        if self.slow_prompt and self.slow_prompt in request.prompt:
            await self.sleep(600)
        return await FakeAdapter.generate(self, target, request, deadline=deadline)


@pytest.fixture
def fake(virtual_sleep: VirtualSleep) -> PromptAwareFake:
    return PromptAwareFake(sleep=virtual_sleep)


async def open_start(
    w: World, by: simcord.MemberActor, **options: Any
) -> simcord.InteractionResult:
    values: dict[str, Any] = {"name": "Event posters", "use_case": "poster", **MODELS, "hours": 1}
    values.update(options)
    return await by.slash(
        w.channel, "shootout start", **{k: v for k, v in values.items() if v is not None}
    )


async def priced(
    w: World, by: simcord.MemberActor, prompts: dict[str, str] | None = None, **options: Any
) -> simcord.InteractionResult:
    shown = await open_start(w, by, **options)
    return await by.submit_modal(shown, PROMPTS if prompts is None else prompts)


async def started(w: World, by: simcord.MemberActor, **options: Any) -> simcord.ChannelHandle:
    confirm = await priced(w, by, **options)
    assert confirm.response is not None and confirm.response.ephemeral
    await by.click(confirm.response, label="Start")
    (thread,) = w.channel.threads
    return thread


ROUND_COLUMNS = ("idx", "state", "note", "id", "message_id", "blind", "charged", "refunded")


async def rounds(w: World) -> list[dict[str, Any]]:
    rows = await fetch(
        w.bot.db,
        "SELECT r.idx, r.state, r.note, c.id, c.message_id, c.blind, c.charged, c.refunded "
        "FROM shootout_rounds r LEFT JOIN comparisons c ON c.id = r.comparison_id ORDER BY r.idx",
    )
    return [dict(zip(ROUND_COLUMNS, row, strict=True)) for row in rows]


def round_messages(thread: simcord.ChannelHandle) -> list[discord.Message]:
    return [m for m in thread.history() if m.attachments]


async def fund_pool(w: World, amount: int) -> None:
    res = await w.moderator.slash(w.channel, "credits pool grant", amount=amount, reason="posters")
    assert res.response is not None and res.response.ephemeral
    assert f"Granted **{amount:,} credits** to the team pool" in res.response.content


async def pool_balance(w: World) -> int:
    return await w.bot.ledger.balance(w.guild.id, POOL_USER_ID)


# ------------------------------------------------------------------ the whole thing
async def test_a_whole_team_shootout_from_pool_to_report_and_export(
    world: World, tmp_path: Path
) -> None:
    w = world
    team = w.guild.create_role("Poster team")
    voter1 = w.guild.add_member(w.env.create_user("carol"), roles=[team])
    voter2 = w.guild.add_member(w.env.create_user("dave"), roles=[team])
    outsider = w.other

    await fund_pool(w, 500)
    confirm = await priced(w, w.moderator, team=team, pool=True)
    price = confirm.response.embeds[0].description or ""
    assert "3 prompts × 2 models = 90 credits" in price, price
    assert "GPT-Image 2: 3 prompts × 8 = 24 credits" in price
    assert await pool_balance(w) == 500, "nothing is spent before Start"

    await w.moderator.click(confirm.response, label="Start")
    (thread,) = w.channel.threads
    posted = round_messages(thread)
    assert len(posted) == 3
    assert await pool_balance(w) == 500 - 3 * ROUND_PRICE
    stored = await rounds(w)
    assert [r["state"] for r in stored] == ["posted"] * 3
    assert all(r["blind"] for r in stored)
    for message in posted:
        assert "Votes count from" in message.content and str(team.id) in message.content
        text = json.dumps(message.embeds[0].to_dict())
        assert "GPT-Image 2" not in text and "Nano Banana Pro" not in text, "blind until it closes"

    # Team members' votes count; an outsider's reaction is ignored.
    for message in posted:
        await voter1.react(message, "🇦")
        await voter2.react(message, "🇦")
        await outsider.react(message, "🇧")
    votes = await fetch(w.bot.db, "SELECT user_id FROM votes")
    assert {row[0] for row in votes} == {voter1.id, voter2.id}

    await w.env.advance_time(HOUR + 60)
    states = await fetch(w.bot.db, "SELECT state FROM comparisons WHERE kind = 'shootout'")
    assert [row[0] for row in states] == ["closed"] * 3
    report = next(m for m in thread.history() if m.embeds and "report" in (m.embeds[0].title or ""))
    embed = report.embeds[0]
    assert "Rounds" in [f.name for f in embed.fields]
    assert {f.name for f in embed.fields} >= {"GPT-Image 2", "Nano Banana Pro"}
    assert "No clear winner after 6 votes" in (embed.description or "") or "Recommended" in (
        embed.description or ""
    )
    notes = next(f.value for f in embed.fields if f.name == "Notes")
    assert "text accuracy is not available" in (notes or "")

    # The ledger balances, and the pool's spend is in its history.
    assert await w.bot.ledger.audit() == []
    kinds = await fetch(
        w.bot.db, "SELECT kind FROM ledger WHERE user_id = ? ORDER BY id", POOL_USER_ID
    )
    assert [k[0] for k in kinds] == ["grant", "spend", "spend", "spend"]

    # Export from the report's button: the HTML holds every round's images, the JSON the rows.
    exported = await voter1.click(report, label="Export")
    files = {a.filename: await a.read() for a in exported.response.attachments}
    (html_name,) = [n for n in files if n.endswith(".html")]
    (json_name,) = [n for n in files if n.endswith(".json")]
    page = files[html_name].decode()
    document = json.loads(files[json_name])
    for row in stored:
        for mime, data in (await panel_images(w.bot.db, row["id"])).values():
            assert f"data:{mime};base64,{base64.b64encode(data).decode()}" in page
    assert [r["prompt"] for r in document["rounds"]] == list(PROMPTS.values())
    for r, row in zip(document["rounds"], stored, strict=True):
        c = r["comparison"]
        assert c["id"] == row["id"] and c["charged"] == row["charged"]
        assert [p["model_id"] for p in c["panels"]] != []
        db_votes = await fetch(
            w.bot.db,
            "SELECT user_id, choice FROM votes WHERE comparison_id = ? ORDER BY user_id",
            row["id"],
        )
        assert sorted((v["user_id"], v["choice"]) for v in c["votes"]) == db_votes
    assert document["paid_by"] == "team pool"

    # The command line writes the same export from the database.
    shootout_id = document["id"]
    out = tmp_path / "report.html"
    code = await asyncio.to_thread(
        main,
        [
            "export",
            "--db",
            w.bot.settings.db_target,
            "--shootout",
            shootout_id,
            "--out",
            str(out),
        ],
        settings=w.bot.settings,
    )
    assert code == 0
    assert out.read_text().count("data:image/png;base64,") == page.count("data:image/png;base64,")
    cli_document = json.loads(out.with_suffix(".json").read_text())
    assert cli_document["rounds"] == document["rounds"]


# ------------------------------------------------------------------ restart
async def test_a_restart_in_the_middle_refunds_what_did_not_run_and_still_closes_on_time(
    world: World, fake: PromptAwareFake
) -> None:
    w = world
    await fund_pool(w, 500)
    confirm = await priced(w, w.moderator, pool=True)
    # The second round takes a while: the bot restarts while it runs.
    fake.slow_prompt = "jazz"
    await w.moderator.click(confirm.response, label="Start")
    await w.env.restart_bot(SplitshotBot(w.bot.resources, clock=w.bot.clock, progress_interval=10))
    stored = await rounds(w)
    assert [r["state"] for r in stored] == ["posted", "refunded", "refunded"]
    assert await pool_balance(w) == 500 - ROUND_PRICE, "the rounds that did not finish are refunded"
    assert await w.bot.ledger.audit() == []

    (thread,) = w.channel.threads
    await w.env.advance_time(HOUR + 60)
    ((state, reported_at),) = await fetch(w.bot.db, "SELECT state, reported_at FROM shootouts")
    assert state == "closed" and reported_at is not None
    assert any(m.embeds and "report" in (m.embeds[0].title or "") for m in thread.history())


async def test_a_start_that_cannot_hold_every_round_gives_back_all_it_took(world: World) -> None:
    w = world
    capacity = w.bot.service.capacity = Capacity(w.bot.service.slots)
    await fund_pool(w, 500)
    confirm = await priced(w, w.moderator, pool=True)
    # Between the price shown and Start, the pool drops to one round and a bit.
    left = ROUND_PRICE + 10
    await w.bot.ledger.revoke(
        w.guild.id, POOL_USER_ID, 500 - left, "spent elsewhere", actor_id=w.moderator.id
    )
    res = await w.moderator.click(confirm.response, label="Start")
    assert "short" in w.private_answer(res)
    assert await pool_balance(w) == left, "the first round's hold was given back"
    assert capacity.running == 0, "no place in the running count is left behind"
    assert await w.bot.ledger.audit() == []


# ------------------------------------------------------------------ bad input
async def test_no_prompts_is_refused_privately(world: World) -> None:
    w = world
    res = await priced(w, w.member, prompts={})
    assert "at least one prompt" in w.private_answer(res)


async def test_a_banned_word_names_the_prompt_and_spends_nothing(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, banned_words=("jazz",))
    res = await priced(w, w.member)
    assert w.private_answer(res).startswith("Prompt 2: This server does not allow")
    assert w.channel.threads == []


async def test_a_member_short_of_credits_sees_the_shortfall(world: World) -> None:
    w = world
    res = await priced(w, w.member)
    answer = w.private_answer(res)
    assert "You have 60 credits; this shoot-out costs 90, 30 short" in answer
    assert await w.balance(w.member) == 60


async def test_an_empty_pool_refuses_with_the_shortfall(world: World) -> None:
    w = world
    res = await priced(w, w.moderator, pool=True)
    assert "The team pool has 0 credits; this shoot-out costs 90, 90 short" in w.private_answer(res)


async def test_only_moderators_spend_the_pool(world: World) -> None:
    w = world
    res = await open_start(w, w.member, pool=True)
    assert "Only moderators can spend the team pool" in w.private_answer(res)


async def test_disabled_models_are_refused(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, enabled_models=("gpt-image-2", "flux-2-pro"))
    res = await priced(w, w.moderator)
    assert "Nano Banana Pro is turned off on this server" in w.private_answer(res)


async def test_a_refusing_model_is_refunded_for_that_round_and_the_rest_continue(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    fake.behaviour["nano-banana-pro"] = Behaviour(refuse="the prompt was declined")
    thread = await started(w, w.member, prompts=None)
    stored = await rounds(w)
    assert [r["state"] for r in stored] == ["posted"] * 3
    assert [r["refunded"] for r in stored] == [22] * 3
    assert all("declined" in (r["note"] or "") for r in stored)
    assert await w.balance(w.member) == 500 - 3 * 8
    assert len(round_messages(thread)) == 3


async def test_close_by_command_and_list(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    thread = await started(w, w.member)
    refused = await w.other.slash(thread, "shootout close")
    assert "Only the member who started" in w.private_answer(refused)
    listed = await w.member.slash(w.channel, "shootout list")
    assert "Event posters" in (listed.response.embeds[0].description or "")
    closed = await w.member.slash(thread, "shootout close")
    assert "closed" in closed.response.content
    assert any(m.embeds and "report" in (m.embeds[0].title or "") for m in thread.history())


async def test_export_of_an_open_blind_comparison_is_refused(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    await started(w, w.member)
    row = (await rounds(w))[0]
    res = await w.member.slash(w.channel, "export comparison", id=row["id"])
    assert "blind and still open" in w.private_answer(res)
    res = await w.member.slash(w.channel, "export shootout", id="nope")
    assert "no shoot-out" in w.private_answer(res)


async def test_pool_grants_are_moderator_only_and_audited(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, audit_channel_id=w.audit.id)
    await fund_pool(w, 100)
    res = await w.member.slash(w.channel, "credits pool grant", amount=5, reason="please")
    simcord.assert_error(w.env, NotModerator)
    simcord.assert_responded(res, ephemeral=True, contains="Only moderators")
    balance = await w.member.slash(w.channel, "credits pool balance")
    assert "100 credits" in balance.response.content
    assert any(
        "team pool" in (m.embeds[0].description or "") for m in w.audit.history() if m.embeds
    )
    assert await w.bot.ledger.audit() == []
    top = await w.member.slash(w.channel, "credits top")
    assert "<@0>" not in (top.response.embeds[0].description or ""), "the pool is not a member"


# ------------------------------------------------------------------ mid-way failures
def report_in(channel: simcord.ChannelHandle) -> discord.Message | None:
    return next(
        (m for m in channel.history() if m.embeds and "report" in (m.embeds[0].title or "")), None
    )


async def test_without_thread_permission_the_rounds_go_to_the_channel(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    w.env.inject_error(
        "POST", "/channels/*/threads", status=403, code=50013, message="Missing Permissions"
    )
    confirm = await priced(w, w.member)
    started_ = await w.member.click(confirm.response, label="Start")
    assert w.channel.threads == []
    assert len(round_messages(w.channel)) == 3
    answer = started_.response.content if started_.response else ""
    assert "couldn't create a thread" in answer


async def test_a_thread_deleted_mid_way_keeps_votes_and_reports_in_the_channel(
    world: World, fake: PromptAwareFake
) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    fake.slow_prompt = "jazz"
    thread = await started(w, w.member)
    (first,) = round_messages(thread)
    await w.other.react(first, "🇦")
    await w.bot.get_channel(thread.id).delete()  # type: ignore[union-attr]
    await w.env.advance_time(601)  # round 2 finishes after its thread is gone

    stored = await rounds(w)
    assert [r["state"] for r in stored] == ["posted"] * 3
    assert len(round_messages(w.channel)) == 2, "the later rounds went to the channel"
    assert await w.balance(w.member) == 500 - 3 * ROUND_PRICE
    await w.env.advance_time(HOUR)
    report = report_in(w.channel)
    assert report is not None
    rounds_field = next(f.value for f in report.embeds[0].fields if f.name == "Rounds") or ""
    assert rounds_field.startswith("**1.**") and "1 votes" in rounds_field.splitlines()[0]
    assert await w.bot.ledger.audit() == []


async def test_a_deleted_team_role_lets_everyone_vote_and_is_reported(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    team = w.guild.create_role("Poster team")
    thread = await started(w, w.member, team=team)
    first = round_messages(thread)[0]
    await w.other.react(first, "🇦")
    assert await fetch(w.bot.db, "SELECT user_id, choice FROM votes") == []
    await w.bot.get_guild(w.guild.id).get_role(team.id).delete()  # type: ignore[union-attr]
    await w.other.react(first, "🇧")
    assert await fetch(w.bot.db, "SELECT user_id, choice FROM votes") == [(w.other.id, "B")]
    await w.env.advance_time(HOUR + 60)
    report = report_in(thread)
    assert report is not None
    notes = next(f.value for f in report.embeds[0].fields if f.name == "Notes") or ""
    assert "team role was deleted" in notes


# ------------------------------------------------------------------ the playground's hint
async def test_the_playground_hint_runs_a_two_prompt_shootout(
    simcord_env: simcord.Env, simcord_bot: SplitshotBot, virtual_sleep: VirtualSleep
) -> None:
    """What the welcome message tells a moderator to do works, in the playground's world."""
    from bot.playground import PLAYGROUND_SETTINGS, build_world, welcome_text

    env = simcord_env
    virtual_sleep.env = env
    hint = welcome_text(simcord_bot.resources)
    assert "/credits pool grant amount:200" in hint and "/shootout start" in hint
    world = build_world(env)
    await update_guild_settings(simcord_bot.db, world.guild.id, **PLAYGROUND_SETTINGS)
    mod, channel = world.moderator, world.channel

    await mod.slash(channel, "credits pool grant", amount=200, reason="posters")
    shown = await mod.slash(
        channel, "shootout start", name="Posters", use_case="poster", **MODELS, pool=True
    )
    confirm = await mod.submit_modal(
        shown, {"prompt1": "a fair poster", "prompt2": "a jazz poster"}
    )
    await mod.click(confirm.response, label="Start")
    (thread,) = channel.threads
    assert len(round_messages(thread)) == 2
    for message in round_messages(thread):
        await world.member.react(message, "🇦")
    closed = await mod.slash(thread, "shootout close")
    assert "closed" in closed.response.content
    assert report_in(thread) is not None
    assert await simcord_bot.ledger.balance(world.guild.id, POOL_USER_ID) == 200 - 2 * ROUND_PRICE


async def test_a_named_round_exports_as_a_comparison(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    await started(w, w.member, blind=False)
    row = (await rounds(w))[0]
    res = await w.other.slash(w.channel, "export comparison", id=row["id"])
    files = {a.filename: await a.read() for a in res.response.attachments}
    assert sorted(files) == [
        f"splitshot-comparison-{row['id']}.html",
        f"splitshot-comparison-{row['id']}.json",
    ]
    page = files[f"splitshot-comparison-{row['id']}.html"].decode()
    for mime, data in (await panel_images(w.bot.db, row["id"])).values():
        assert f"data:{mime};base64,{base64.b64encode(data).decode()}" in page
    document = json.loads(files[f"splitshot-comparison-{row['id']}.json"])
    assert document["type"] == "comparison" and document["parent_id"] is not None
    assert document["prompt"] == PROMPTS["prompt1"]


async def test_a_crash_leaves_nothing_held_after_the_next_start(world: World) -> None:
    """A crash without a clean shutdown (no cancellation ran): the next start refunds."""
    from bot.comparisons.job import ComparisonJob, Requester
    from bot.shootouts.plan import ShootoutRequest, plan_shootout
    from cogs.shootouts.cog import ShootoutsCog

    w = world
    await update_guild_settings(w.bot.db, w.guild.id, starter_grant=500)
    cog = w.bot.get_cog("ShootoutsCog")
    assert isinstance(cog, ShootoutsCog)
    settings = await w.bot.guild_settings(w.guild.id)
    request = ShootoutRequest("Crash", "poster", tuple(MODELS.values()), list(PROMPTS.values()))
    plan = plan_shootout(w.bot.policy(settings), request)
    requester = Requester(w.guild.id, w.member.id, w.channel.id)
    now = discord.utils.utcnow()
    await cog.store.create(plan, guild_id=w.guild.id, channel_id=w.channel.id,
                           user_id=w.member.id, payer_id=w.member.id,
                           deadline=now + timedelta(hours=1), now=now)  # fmt: skip
    for idx, round_plan in enumerate(plan.rounds):
        job = ComparisonJob(round_plan, service=w.bot.service, catalog=w.bot.catalog,
                            ledger=w.bot.ledger, db=w.bot.db, requester=requester)  # fmt: skip
        hold = await job.reserve()
        await cog.store.set_hold(plan.id, idx, hold.id if hold else None)
    assert await w.balance(w.member) == 500 - 3 * ROUND_PRICE

    assert await cog.runner.recover() == 3
    assert await w.balance(w.member) == 500
    assert [r["state"] for r in await rounds(w)] == ["refunded"] * 3
    shootout = await cog.store.get(plan.id)
    assert shootout is not None and shootout.state == "open"
    assert await w.bot.ledger.audit() == []
