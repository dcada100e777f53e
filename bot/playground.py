"""`make run` without a Discord token: the same bot against SimCord's simulated Discord.

A pre-made server with a #compare channel, a member with credits and a moderator, shown in
SimCord's browser preview on 127.0.0.1. Models run on the offline demo stand-ins unless
provider keys are set. Nothing leaves the machine except calls to providers you have keys for.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from bot.client import SplitshotBot
from bot.credits.ledger import Ledger
from bot.db.postgres import database_name, recreate_database, with_database
from bot.guild_settings import update_guild_settings
from bot.resources import Resources, open_resources
from bot.settings import Settings

if TYPE_CHECKING:
    from simcord import ChannelHandle, Env, GuildHandle, MemberActor

log = logging.getLogger(__name__)

BOT_NAME = "Splitshot"
SERVER_NAME = "Splitshot Playground"
CHANNEL_NAME = "compare"
PLAYGROUND_DB = "splitshot-playground.db"
PLAYGROUND_SUFFIX = "_playground"
#: one person plays every part: their own votes count, and one vote ranks a model
PLAYGROUND_SETTINGS = {"exclude_requester_votes": False, "min_votes_to_rank": 1}
#: how often the open page is redrawn from the simulated Discord (the page polls twice a second)
REPUBLISH_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class World:
    """The simulated server a newcomer lands in."""

    guild: GuildHandle
    channel: ChannelHandle
    member: MemberActor
    moderator: MemberActor


def playground_db_path(settings: Settings) -> Path:
    """A database of its own next to the configured one, so simulated servers never mix with real ones."""
    return settings.db_path.with_name(PLAYGROUND_DB)


def playground_database_url(url: str) -> str:
    """On PostgreSQL, the playground's database of its own: the configured name + ``_playground``."""
    return with_database(url, database_name(url) + PLAYGROUND_SUFFIX)


def build_world(env: Env) -> World:
    """The server, its channels, a member and a moderator."""
    guild = env.create_guild(SERVER_NAME)
    channel = guild.create_text_channel(
        CHANNEL_NAME, topic="Type /compare to run one prompt through two models"
    )
    moderators = guild.create_role("Moderators", permissions=discord.Permissions(manage_guild=True))
    member = guild.add_member(env.create_user("you", global_name="You"))
    moderator = guild.add_member(
        env.create_user("moderator", global_name="Moderator"), roles=[moderators]
    )
    return World(guild, channel, member, moderator)


def welcome_text(resources: Resources) -> str:
    """The first message in #compare: what to type, and the comparison page's portrait prompt."""
    catalog = resources.catalog
    example = catalog.examples.get("boardwalk")
    prompt = example[1] if example else "A portrait of a skateboarder on a boardwalk at night"
    demo = resources.service.allow_demo and not resources.registry.configured
    lines = [
        "👋 **Welcome to the Splitshot playground** — a simulated Discord server, running offline.",
        "Type `/compare` in the box below, paste a prompt, pick a use case and press Send. "
        "Try the comparison page's portrait prompt:",
        f"```{prompt}```",
        "Then vote with the reactions (change your mind by picking another), close the vote with "
        "`/vote close`, and see the ratings with `/leaderboard portrait`. "
        "Open **Details**, or try `/versus`, `/models list`, `/credits balance`. "
        "Switch to the *moderator* viewer for `/config` and `/credits grant`.",
        "🗳️ Here you play every part, so your votes on your own results count and one vote "
        "ranks a model (a real server ignores the requester's vote and needs more).",
    ]
    if demo:
        lines.append(
            "⚠️ No provider keys are set, so the models are **demo stand-ins** — not real model output."
        )
    return "\n".join(lines)


def run_playground(settings: Settings, *, stop_after: float | None = None) -> int:
    """Serve the playground until Ctrl+C, SIGTERM, the page's End button, or ``stop_after``."""
    try:
        return asyncio.run(_serve(settings, stop_after))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("Playground stopped.", flush=True)
        return 0


async def _serve(settings: Settings, stop_after: float | None) -> int:
    main = asyncio.current_task()
    if main is not None:
        # SIGTERM (a service manager, `kill`) stops it as cleanly as Ctrl+C does.
        with suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        with _quiet("discord.state", "discord.client"):
            # Importing SimCord probes discord.py with a voiceless, intent-less client,
            # which logs warnings that mean nothing here.
            import simcord
    except ImportError:
        print(
            "The playground needs SimCord's preview: run `.venv/bin/pip install -e '.[playground]'` "
            "(make run does this), or set DISCORD_TOKEN to run the bot on Discord.",
            file=sys.stderr,
        )
        return 2
    # SimCord builds the same world with the same ids on every start, so rows from an earlier
    # run would point at messages that no longer exist (and collide with the new ones).
    target: str | Path
    if settings.database_url:
        target = playground_database_url(settings.database_url)
        await recreate_database(settings.database_url, database_name(target))
    else:
        target = playground_db_path(settings)
        for leftover in (
            target,
            target.with_name(target.name + "-wal"),
            target.with_name(target.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
    async with open_resources(settings, for_discord=False, db_path=target) as opened:
        # Credits must tell time by the simulated Discord's clock (it starts on 2026-01-01),
        # or every "next daily claim" would read months away.
        assert opened.db is not None
        resources = replace(opened, ledger=Ledger(opened.db, clock=discord.utils.utcnow))
        bot = SplitshotBot(resources)
        # A comparison with real providers can take minutes; SimCord waits for the bot's work.
        settle = settings.model_timeout_s + 60
        env = simcord.Env(bot, check_errors=False, settle_timeout=settle)
        with suppress(AttributeError):  # cosmetic: SimCord names every bot "TestBot"
            env.backend.bot_user.name = BOT_NAME
        async with _running(env):
            world = build_world(env)
            await bot.ledger.ensure_account(world.guild.id, world.member.id)
            await update_guild_settings(bot.db, world.guild.id, **PLAYGROUND_SETTINGS)
            guide = world.guild.create_webhook(world.channel, "Splitshot guide")
            await guide.send(welcome_text(resources))
            async with AsyncExitStack() as stack:
                try:
                    preview = await stack.enter_async_context(
                        env.preview(
                            world.channel,
                            viewers=[world.member, world.moderator],
                            layout="channel",
                            port=settings.playground_port,
                        )
                    )
                except (OSError, simcord.SetupError) as exc:
                    print(
                        f"Cannot serve the playground on port {settings.playground_port} ({exc}). "
                        "Set SPLITSHOT_PLAYGROUND_PORT=0 to use any free port.",
                        file=sys.stderr,
                    )
                    return 2
                print(f"Playground ready: {preview.url}", flush=True)
                print(
                    "Open that address in a browser (it only answers on this machine). Ctrl+C stops.",
                    flush=True,
                )
                await _until_done(preview, bot, env, stop_after)
    return 0


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@asynccontextmanager
async def _running(env: Env) -> AsyncIterator[Env]:
    """What ``simcord.run`` does, for an Env built here (so the bot can be named first)."""
    await env.start()
    try:
        with env.time_context():
            yield env
    finally:
        await env.shutdown()


async def _until_done(preview: Any, bot: SplitshotBot, env: Env, stop_after: float | None) -> None:
    republish = asyncio.create_task(_republish(preview, bot, env))
    try:
        closed = asyncio.ensure_future(preview.wait_closed())
        await asyncio.wait([closed], timeout=stop_after)
        closed.cancel()
    finally:
        republish.cancel()
        with suppress(asyncio.CancelledError):
            await republish


async def _republish(preview: Any, bot: SplitshotBot, env: Env) -> None:
    """Redraw the open pages while a comparison runs, so its progress edits show up live.

    SimCord's page shows the snapshot published when an action settles, and a comparison
    edits its progress message *during* its /compare action. Publishing is read-only, but it
    bumps the page revision that browser actions are checked against; the page cannot start
    another action while one is running, so only publish then (and only after a change).
    """
    seen = -1
    while True:
        await asyncio.sleep(REPUBLISH_SECONDS)
        changes = len(env.http_requests)
        if not bot.comparisons or changes == seen:
            continue
        seen = changes
        pages = getattr(preview, "_pages", None)
        publish = getattr(preview, "_publish", None)
        if not pages or publish is None:
            continue
        for page in tuple(pages.values()):
            try:
                publish(page, reason="refresh")
            except Exception:  # a page closing mid-loop; the next tick catches up
                log.debug("republish failed", exc_info=True)
