"""`make run` without a Discord token: the same bot against SimCord's simulated Discord.

A pre-made server with a #compare channel, a member with credits and a moderator, shown in
SimCord's browser preview on 127.0.0.1. Models run on the offline demo stand-ins unless
provider keys are set. Nothing leaves the machine except calls to providers you have keys for.

Longer than the ~400-line guide on purpose: the simulated world, its clock and the preview loop are one program.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.client import SplitshotBot
from bot.credits.ledger import Ledger
from bot.db.connection import DatabaseUnavailable, explain
from bot.db.postgres import database_name, recreate_database, with_database
from bot.guild_settings import update_guild_settings
from bot.resources import Resources, open_resources
from bot.settings import Settings
from bot.tasks import stop_task

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
#: how often simulated time catches up with the wall clock between actions
CLOCK_TICK_SECONDS = 5.0
#: the longest /wait skips: a week, past the longest vote window a server may set
MAX_WAIT_MINUTES = 7 * 24 * 60


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
        CHANNEL_NAME, topic="Type /compare to run one prompt through two to four image models"
    )
    moderators = guild.create_role("Moderators", permissions=discord.Permissions(manage_guild=True))
    member = guild.add_member(env.create_user("you", global_name="You"))
    moderator = guild.add_member(
        env.create_user("moderator", global_name="Moderator"), roles=[moderators]
    )
    return World(guild, channel, member, moderator)


def welcome_text(resources: Resources) -> str:
    """The first message in #compare: three short steps, the example prompt in a copyable block."""
    catalog = resources.catalog
    example = catalog.examples.get("boardwalk")
    prompt = example[1] if example else "A portrait of a skateboarder on a boardwalk at night"
    demo = resources.service.allow_demo and not resources.registry.configured
    lines = [
        "👋 **Welcome to the Splitshot playground** — a simulated Discord server on your machine.",
        "**1.** Type `/compare`, paste this prompt and press Send:",
        f"```\n{prompt}\n```",
        "**2.** Vote with a reaction under the result, then type `/vote close`.",
        "**3.** See the ratings with `/leaderboard portrait`.",
        "*More: **Variants**, **Reroll** and **Swap model** under a result, `/edit`, `/history`, "
        "`/versus`, `/models list`, `/credits balance`, and `/wait` to let simulated time "
        "pass. Switch “Viewing as” to Moderator for `/config`. Here your own vote counts.*",
        "🏁 *Shoot-outs:* as the Moderator, fund the team pool with "
        "`/credits pool grant amount:200 reason:posters`, then `/shootout start` with "
        "`pool:True` and two prompts; `/shootout close` posts the report and its **Export**.",
    ]
    if demo:
        lines.append("⚠️ No provider keys are set: the models are **demo stand-ins**.")
    return "\n".join(lines)


REAL_MONEY_FLAG = "SPLITSHOT_PLAYGROUND_REAL"


def playground_settings(settings: Settings, *, say: Callable[[str], None]) -> Settings:
    """The settings the playground runs on: provider keys only with SPLITSHOT_PLAYGROUND_REAL=1.

    `make run` without a token lands here, often by accident on a machine whose shell has
    real keys; without the flag the models are the offline stand-ins, and either way it says
    so loudly.
    """
    keyed = settings.keyed_adapters()
    if not keyed:
        return settings
    bar = "!" * 78
    if settings.playground_real:
        say(
            f"{bar}\nThe playground is using REAL provider keys ({', '.join(keyed)}): every "
            f"comparison here spends real money.\n{bar}"
        )
        return settings
    say(
        f"{bar}\nProvider keys are set ({', '.join(keyed)}), but the playground does not spend "
        f"real money unless {REAL_MONEY_FLAG}=1: using the offline demo stand-ins instead.\n{bar}"
    )
    keyless = replace(settings.providers, openai_api_key=None, gemini_api_key=None, fal_key=None)
    return replace(settings, providers=keyless, demo_mode=True)


def start_clock_at(env: Env, when: datetime) -> None:
    """Start the simulated clock at ``when`` rather than SimCord's fixed 2026-01-01.

    Dates then read as they would on Discord ("closes in 24 hours", "catalog updated June 8")
    instead of months before the catalog was written. Only before the bot starts: no timer
    is pending yet, so nothing fires on the way.
    """
    ahead = (when - env.now()).total_seconds()
    if ahead > 0:
        env.backend.advance_clock(ahead)


class PlaygroundClock:
    """Simulated time that follows the wall clock, and skips ahead when asked (``/wait``).

    SimCord's clock only moves when told to. It moves here between page actions, never during
    one: an action and a move of the clock must not overlap (the page would report the action's
    outcome as uncertain), so both hold one lock. Timers due on the way — the vote closer, the
    hold sweeper — fire as the clock passes them, while no action waits for them.
    """

    def __init__(
        self,
        env: Env,
        *,
        wall: Callable[[], float] = time.monotonic,
        tick: float = CLOCK_TICK_SECONDS,
    ) -> None:
        self.env = env
        self.lock = asyncio.Lock()
        self.tick = tick
        self._wall = wall
        self._origin_wall = wall()
        self._origin_sim = env.now()
        self._skipped = 0.0
        self._requests: asyncio.Queue[float] = asyncio.Queue()

    def skip(self, seconds: float) -> None:
        """Move the clock ``seconds`` further ahead as soon as the current action is over."""
        self._requests.put_nowait(seconds)

    def serialise(self, action: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``action`` run under the clock's lock, so the clock never moves during it."""

        async def serialised(*args: Any, **kwargs: Any) -> Any:
            async with self.lock:
                return await action(*args, **kwargs)

        return serialised

    def behind(self) -> float:
        """Seconds the simulated clock is behind the wall clock (plus any skips)."""
        target = self._wall() - self._origin_wall + self._skipped
        return target - (self.env.now() - self._origin_sim).total_seconds()

    async def run(self, after_move: Callable[[], None]) -> None:
        """Keep simulated time in step until cancelled; ``after_move`` redraws the pages."""
        calls = 0
        while True:
            with suppress(TimeoutError):
                self._skipped += await asyncio.wait_for(self._requests.get(), self.tick)
            async with self.lock:
                # Comparisons move simulated time themselves (SimCord fires their timers),
                # so catch up to a target rather than adding the wall time that passed.
                behind = self.behind()
                if behind <= 0:
                    continue
                calls = len(self.env.http_requests)
                try:
                    await self.env.advance_time(behind)
                except Exception:
                    log.warning("could not move the simulated clock", exc_info=True)
            # Redrawing bumps the revision the page's next action is checked against, so only
            # when a timer on the way did something (a vote closed): otherwise a member's click
            # right after a tick would be refused as stale.
            if len(self.env.http_requests) != calls:
                after_move()


def wait_command(clock: PlaygroundClock) -> app_commands.Command[Any, ..., None]:
    """/wait: the playground's time machine, to see a vote close on its own or a daily return."""

    @app_commands.command(
        name="wait", description="Playground only: let simulated time pass (votes close on time)"
    )
    @app_commands.describe(minutes="How many simulated minutes pass (default 60)")
    async def wait(
        interaction: discord.Interaction[Any],
        minutes: app_commands.Range[int, 1, MAX_WAIT_MINUTES] = 60,
    ) -> None:
        clock.skip(minutes * 60)
        await interaction.response.send_message(
            f"⏩ {minutes} simulated minutes pass as soon as this reply is shown; "
            "votes whose window ends meanwhile close on their own.",
            ephemeral=True,
        )

    return wait


def run_playground(settings: Settings, *, stop_after: float | None = None) -> int:
    """Serve the playground until Ctrl+C, SIGTERM, the page's End button, or ``stop_after``."""
    settings = playground_settings(settings, say=lambda text: print(text, file=sys.stderr))
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
            "The playground needs SimCord's preview, which `make run` installs "
            "(or: pip install -e '.[playground]'); or set DISCORD_TOKEN to run the bot on Discord.",
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
            try:
                leftover.unlink(missing_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(target, explain(exc)) from None
    async with open_resources(settings, for_discord=False, db_path=target) as opened:
        # Credits must tell time by the simulated Discord's clock (it starts on 2026-01-01),
        # or every "next daily claim" would read months away.
        assert opened.db is not None
        resources = replace(
            opened,
            ledger=Ledger(opened.db, clock=discord.utils.utcnow, limits=settings.limits),
        )
        # SimCord is the whole of this Discord, and it answers only commands that were synced.
        bot = SplitshotBot(resources, sync_commands="global")
        # A comparison with real providers can take minutes; SimCord waits for the bot's work.
        settle = settings.model_timeout_s + 60
        env = simcord.Env(bot, check_errors=False, settle_timeout=settle)
        with suppress(AttributeError):  # cosmetic: SimCord names every bot "TestBot"
            env.backend.bot_user.name = BOT_NAME
        start_clock_at(env, datetime.now(UTC))
        clock = PlaygroundClock(env)
        bot.tree.add_command(wait_command(clock))
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
                await _until_done(preview, bot, env, clock, stop_after)
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


async def _until_done(
    preview: Any, bot: SplitshotBot, env: Env, clock: PlaygroundClock, stop_after: float | None
) -> None:
    action = getattr(preview, "_action", None)
    if action is not None:  # SimCord runs every page action through this one method
        preview._action = clock.serialise(action)
    publish = getattr(preview, "_publish", None)
    advance = getattr(preview, "_advance_presentation_time", None)
    if publish is not None and advance is not None:
        # The page words times relative to a "now" SimCord only moves on an explicit refresh,
        # so a credit spent a minute after the page opened read "in 1 minute". Every redraw
        # now takes the simulated clock's time, as a Discord client takes its own.
        def publish_now(*args: Any, **kwargs: Any) -> Any:
            advance()
            return publish(*args, **kwargs)

        preview._publish = publish_now
    republish = asyncio.create_task(_republish(preview, bot, env))
    ticking = asyncio.create_task(clock.run(lambda: _publish_all(preview)))
    try:
        closed = asyncio.ensure_future(preview.wait_closed())
        await asyncio.wait([closed], timeout=stop_after)
        closed.cancel()
    finally:
        await stop_task(republish)

        for task in (ticking, republish):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


def _publish_all(preview: Any) -> None:
    """Redraw every open page from the simulated Discord (read-only)."""
    pages = getattr(preview, "_pages", None)
    publish = getattr(preview, "_publish", None)
    if not pages or publish is None:
        return
    for page in tuple(pages.values()):
        try:
            publish(page, reason="refresh")
        except Exception:  # a page closing mid-loop; the next tick catches up
            log.debug("republish failed", exc_info=True)


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
        _publish_all(preview)
