"""The discord.py bot: the Bot subclass, sharding, and ``run_bot``.

The startup code opens the shared resources (HTTP client, database, catalog, providers) and hands
them to :class:`SplitshotBot`; the bot never opens or closes them itself, so they close in reverse
order around it. Cogs are glue over the engine and reach it through the bot's properties.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import aiohttp
import discord
from discord.ext import commands, tasks

from bot.comparisons.admission import Admission
from bot.comparisons.job import recover_undelivered
from bot.comparisons.policy import Policy
from bot.errors import SplitshotError
from bot.guild_settings import GuildSettings, get_guild_settings
from bot.interactions import SplitshotTree
from bot.resources import Resources, open_resources
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.comparisons.service import ComparisonService
    from bot.credits.ledger import Ledger
    from bot.db import AnyDatabase

log = logging.getLogger(__name__)

T = TypeVar("T")
#: where ``setup_hook`` publishes the slash commands: "dev_guild" to the dev server when one is
#: set (else nowhere: ``splitshot sync`` publishes globally, on purpose), "global" for a
#: simulated Discord (the playground, tests), "none" for a bot that publishes by hand
CommandSync = Literal["dev_guild", "global", "none"]
#: (guild id, use case id, model ids) -> lines such as "in this server GPT-Image 2 won 14 of 22"
CommunitySource = Callable[[int, str, Sequence[str]], Awaitable[Sequence[str]]]

BASE_COGS = (
    "cogs.compare",
    "cogs.followups",
    "cogs.versus",
    "cogs.credits",
    "cogs.config",
)
# Loaded when present, so the voting feature lands by adding its file.
OPTIONAL_COGS = ("cogs.votes", "cogs.shootouts")
COGS = BASE_COGS + tuple(name for name in OPTIONAL_COGS if importlib.util.find_spec(name))

#: the fastest a progress message is edited (Discord allows ~5 edits per 5 s per message)
PROGRESS_INTERVAL = 2.0
#: how often holds left open by a crash or restart are looked for
HOLD_SWEEP_MINUTES = 10.0
#: the longest the checks before acknowledging wait for a server's settings (Discord allows 3 s)
SETTINGS_READ_BUDGET = 0.5
#: how long shutdown waits for running comparisons to refund themselves
SHUTDOWN_GRACE = 15.0


# -------------------------------------------------------------------------- bot
class SplitshotBot(commands.Bot):
    """The Discord client; resources are handed in and owned by whoever opened them."""

    def __init__(
        self,
        resources: Resources,
        *,
        dev_guild_id: int | None = None,
        sync_commands: CommandSync = "dev_guild",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        progress_interval: float = PROGRESS_INTERVAL,
        cogs: Sequence[str] = COGS,
        **client_options: Any,
    ) -> None:
        if resources.db is None or resources.ledger is None:
            raise ValueError("the bot needs the database: open the resources with with_db=True")
        # Splitshot never joins voice: discord.py's "PyNaCl/davey is not installed" is noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=SplitshotTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=False
            ),
            **client_options,
        )
        self.resources = resources
        self.dev_guild_id = dev_guild_id
        self.sync_commands = sync_commands
        #: monotonic seconds for cooldowns and progress (injectable so tests can use virtual time)
        self.clock = clock
        #: how progress waits between frames (injectable like ``clock``)
        self.sleep = sleep
        self.progress_interval = progress_interval
        self.cog_names = tuple(cogs)
        #: comparison tasks in flight, cancelled (and so refunded) on shutdown
        self.comparisons: set[asyncio.Task[Any]] = set()
        #: those of them whose result the member already has: shutdown lets them settle
        self.delivered_comparisons: set[asyncio.Task[Any]] = set()
        #: set by the voting feature so verdicts and /versus can cite this server's votes
        self.community_source: CommunitySource | None = None
        #: per-member running slots and cooldowns for /compare
        self.admission = Admission(clock)
        #: each server's settings as last read, for the checks that run before acknowledging
        self._settings_cache: dict[int, GuildSettings] = {}

    @property
    def settings(self) -> Settings:
        """Process-wide settings."""
        return self.resources.settings

    @property
    def catalog(self) -> Catalog:
        """Models, use cases and criteria."""
        return self.resources.catalog

    @property
    def service(self) -> ComparisonService:
        """The comparison engine."""
        return self.resources.service

    @property
    def db(self) -> AnyDatabase:
        """The database: SQLite's one connection or a PostgreSQL pool."""
        assert self.resources.db is not None
        return self.resources.db

    @property
    def ledger(self) -> Ledger:
        """Credits."""
        assert self.resources.ledger is not None
        return self.resources.ledger

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """This server's settings, read fresh (defaults until a moderator changes one)."""
        settings = await get_guild_settings(self.db, guild_id)
        self._settings_cache[guild_id] = settings
        return settings

    def cached_guild_settings(self, guild_id: int) -> GuildSettings | None:
        """This server's settings as last read, without waiting on the database (None if unread).

        Only for checks before an interaction is acknowledged; everything that spends reads
        :meth:`guild_settings` again after it.
        """
        return self._settings_cache.get(guild_id)

    async def settings_for_checks(self, guild_id: int) -> GuildSettings | None:
        """Settings for the checks before acknowledging: cached, else one read bounded in time.

        None when the database does not answer at once; the checks then use the defaults and
        everything is checked again, unbounded, after the acknowledgement.
        """
        cached = self._settings_cache.get(guild_id)
        if cached is not None:
            return cached
        try:
            return await asyncio.wait_for(self.guild_settings(guild_id), SETTINGS_READ_BUDGET)
        except TimeoutError:
            log.info("settings of guild %d not read in time; checking with defaults", guild_id)
            return None

    def remember_guild_settings(self, guild_id: int, settings: GuildSettings) -> None:
        """A moderator changed this server's settings: checks before acknowledging use them now."""
        self._settings_cache[guild_id] = settings

    def policy(self, settings: GuildSettings) -> Policy:
        """What this server allows and charges, the same rules the command line applies."""
        return Policy.for_server(
            self.catalog,
            self.resources.registry,
            allow_demo=self.service.allow_demo,
            settings=settings,
        )

    async def community_lines(
        self, guild_id: int, use_case_id: str, model_ids: Sequence[str]
    ) -> list[str]:
        """This server's voting results for these models (none until voting provides them)."""
        if self.community_source is None:
            return []
        try:
            return list(await self.community_source(guild_id, use_case_id, model_ids))
        except Exception:
            log.exception("community results failed for guild %d", guild_id)
            return []

    def mark_delivered(self) -> None:
        """The calling comparison posted its result: shutdown must not cancel (refund) it."""
        task = asyncio.current_task()
        if task is not None and task in self.comparisons:
            self.delivered_comparisons.add(task)

    def forget_comparison(self, task: asyncio.Task[Any]) -> None:
        """A comparison task finished (delivered or not)."""
        self.comparisons.discard(task)
        self.delivered_comparisons.discard(task)

    async def setup_hook(self) -> None:
        """Refund holds a previous run left open, load the cogs, sync commands if asked to.

        A production start never syncs globally: every start (and every shard) would rewrite
        the global commands and spend the application's sync rate limit for nothing. Global
        commands change with a release, through ``splitshot sync``.
        """
        self.sweep_holds.start()
        for name in self.cog_names:
            await self.load_extension(name)
        if self.sync_commands == "global":
            await self.publish_commands()
        elif self.sync_commands == "dev_guild" and self.dev_guild_id is not None:
            await self.publish_commands(self.dev_guild_id)
        else:
            log.info("slash commands not synced on start (`splitshot sync` publishes them)")

    async def publish_commands(self, guild_id: int | None = None) -> int:
        """Sync the command tree to one server (global commands copied in, shown at once) or
        globally (can take a while to appear); returns how many commands were synced."""
        if guild_id is None:
            synced = await self.tree.sync()
            log.info("synced %d global commands (they can take a while to appear)", len(synced))
            return len(synced)
        guild = discord.Object(id=guild_id)
        self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        log.info("synced %d commands to the server %d", len(synced), guild_id)
        return len(synced)

    @tasks.loop(minutes=HOLD_SWEEP_MINUTES)
    async def sweep_holds(self) -> None:
        """Refund credits held by comparisons that can no longer finish (crash, restart)."""
        try:
            older_than = timedelta(minutes=self.settings.stale_hold_minutes)
            await self.ledger.recover_stale_holds(older_than)
            await recover_undelivered(self.ledger, self.db, older_than)
        except Exception:
            log.exception("could not recover stale holds")

    async def on_ready(self) -> None:
        """One line when the gateway session is ready."""
        user = self.user
        log.info("ready as %s in %d servers", user, len(self.guilds))

    async def close(self) -> None:
        """Stop the sweeper, let running comparisons refund or settle themselves, then disconnect.

        A comparison whose result is already posted is not cancelled: the member has the image,
        so it must settle (be charged), not be refunded.
        """
        self.sweep_holds.cancel()
        running = [task for task in self.comparisons if not task.done()]
        for task in running:
            if task not in self.delivered_comparisons:
                task.cancel()
        if running:
            await asyncio.wait(running, timeout=SHUTDOWN_GRACE)
        await super().close()


class ShardedSplitshotBot(SplitshotBot, commands.AutoShardedBot):
    """The same bot over several Discord shards in one process (``SPLITSHOT_SHARD_IDS``).

    Every process of a sharded deployment runs its own shard range against one database;
    votes, buttons and settings work whichever process posted the message, because their
    state is in the database.
    """

    def __init__(
        self,
        resources: Resources,
        *,
        shard_ids: Sequence[int] | None,
        shard_count: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            resources,
            shard_ids=list(shard_ids) if shard_ids is not None else None,
            shard_count=shard_count,
            **kwargs,
        )


def make_bot(resources: Resources, settings: Settings) -> SplitshotBot:
    """The bot for these settings: sharded when the operator named shards, else one client."""
    if settings.shard_ids is None and settings.shard_count is None:
        return SplitshotBot(resources, dev_guild_id=settings.dev_guild_id)
    log.info("running shards %s of %s", settings.shard_ids or "auto", settings.shard_count)
    return ShardedSplitshotBot(
        resources,
        dev_guild_id=settings.dev_guild_id,
        shard_ids=settings.shard_ids,
        shard_count=settings.shard_count,
    )


# ------------------------------------------------------------------------ run
def run_bot(settings: Settings) -> int:
    """Run the bot on Discord until interrupted; returns the process exit code."""
    try:
        return asyncio.run(_serve(settings))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("stopped")
        return 0


async def _serve(settings: Settings) -> int:
    token = settings.discord_token
    if not token:
        raise SplitshotError("DISCORD_TOKEN is not set.")
    main = asyncio.current_task()
    if main is not None:
        with suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    async with open_resources(settings, for_discord=True) as resources:
        try:
            async with make_bot(resources, settings) as bot:
                await bot.start(token)
        except discord.LoginFailure:
            log.error(
                "Discord rejected DISCORD_TOKEN: copy the bot token again from the Developer Portal."
            )
            return 2
        except discord.PrivilegedIntentsRequired:
            log.error("This bot needs an intent that is not enabled in the Developer Portal.")
            return 2
    return 0


async def publish_commands_once(settings: Settings, *, guild_id: int | None) -> int:
    """Log in with DISCORD_TOKEN, sync the commands (globally, or to one server), log out.

    What ``splitshot sync`` runs; returns how many commands were synced. The gateway is never
    joined, and the command tree comes from the code and the catalog, so a scratch database
    stands in for the real one (which this never creates, migrates or sweeps).
    """
    token = settings.discord_token
    if not token:
        raise SplitshotError("DISCORD_TOKEN is not set.")
    with tempfile.TemporaryDirectory(prefix="splitshot-sync-") as scratch:
        async with (
            open_resources(
                settings, for_discord=True, db_path=Path(scratch) / "commands.db"
            ) as resources,
            SplitshotBot(resources, sync_commands="none") as bot,
        ):
            try:
                await bot.login(token)
                return await bot.publish_commands(guild_id)
            except discord.LoginFailure:
                raise SplitshotError(
                    "Discord rejected DISCORD_TOKEN: copy the bot token again from the "
                    "Developer Portal."
                ) from None
            except discord.Forbidden:
                raise SplitshotError(
                    "Discord refused the sync: with --guild, the bot must be in that server, "
                    "invited with the applications.commands scope."
                ) from None
            except discord.HTTPException as exc:
                raise SplitshotError(
                    f"Discord refused the sync (HTTP {exc.status}): {exc.text or 'no details'}."
                ) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise SplitshotError(f"Could not reach Discord ({exc}).") from None
