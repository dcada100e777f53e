"""The discord.py bot: the Bot subclass, its one app-command error boundary, and ``run_bot``.

The startup code opens the shared resources (HTTP client, database, catalog, providers) and hands
them to :class:`SplitshotBot`; the bot never opens or closes them itself, so they close in reverse
order around it. Cogs are glue over the engine and reach it through the bot's properties.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.errors import SplitshotError
from bot.guild_settings import GuildSettings, get_guild_settings
from bot.resources import Resources, open_resources
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.comparisons.service import ComparisonService
    from bot.credits.ledger import Ledger
    from bot.db import AnyDatabase

log = logging.getLogger(__name__)

T = TypeVar("T")
#: (guild id, use case id, model ids) -> lines such as "in this server GPT-Image 2 won 14 of 22"
CommunitySource = Callable[[int, str, Sequence[str]], Awaitable[Sequence[str]]]

BASE_COGS = ("cogs.compare", "cogs.versus", "cogs.credits", "cogs.config")
# Loaded when present, so the voting feature lands by adding its file.
OPTIONAL_COGS = ("cogs.votes",)
COGS = BASE_COGS + tuple(name for name in OPTIONAL_COGS if importlib.util.find_spec(name))

#: the fastest a progress message is edited (Discord allows ~5 edits per 5 s per message)
PROGRESS_INTERVAL = 2.0
#: how often holds left open by a crash or restart are looked for
HOLD_SWEEP_MINUTES = 10.0
#: how long shutdown waits for running comparisons to refund themselves
SHUTDOWN_GRACE = 15.0


# ------------------------------------------------------------------- moderators
class NotModerator(app_commands.CheckFailure):
    """The member is neither a Manage Server holder nor in the server's moderator role."""

    def __init__(self, role_id: int | None) -> None:
        who = "members with the Manage Server permission"
        if role_id is not None:
            who += f" or the <@&{role_id}> role"
        super().__init__(f"Only moderators — {who} — can do that.")


def is_moderator(interaction: discord.Interaction[Any], settings: GuildSettings) -> bool:
    """Manage Server (or Administrator) in this server, or the configured moderator role."""
    member = interaction.user
    if not isinstance(member, discord.Member):
        return False
    perms = interaction.permissions
    if perms.administrator or perms.manage_guild:
        return True
    role_id = settings.moderator_role_id
    return role_id is not None and any(role.id == role_id for role in member.roles)


def moderator_only() -> Callable[[T], T]:
    """App-command check: refuse members who are not moderators, saying who may."""

    async def predicate(interaction: discord.Interaction[SplitshotBot]) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        settings = await interaction.client.guild_settings(interaction.guild_id)
        if is_moderator(interaction, settings):
            return True
        raise NotModerator(settings.moderator_role_id)

    return app_commands.check(predicate)


# --------------------------------------------------------------------- choices
def model_choices(catalog: Catalog) -> list[app_commands.Choice[str]]:
    """The catalog's models as option choices (Discord allows 25)."""
    return [app_commands.Choice(name=m.name, value=m.id) for m in catalog.models.values()][:25]


def use_case_choices(catalog: Catalog) -> list[app_commands.Choice[str]]:
    """The catalog's use cases as option choices."""
    return [app_commands.Choice(name=u.name, value=u.id) for u in catalog.use_cases.values()][:25]


def aspect_choices(catalog: Catalog) -> list[app_commands.Choice[str]]:
    """Every aspect ratio some model supports, tallest first."""
    aspects = {a for m in catalog.models.values() for a in m.aspects}

    def ratio(aspect: str) -> float:
        width, _, height = aspect.partition(":")
        return int(width) / int(height)

    ordered = sorted(aspects, key=ratio)[:25]
    return [app_commands.Choice(name=a, value=a) for a in ordered]


# -------------------------------------------------------------- error boundary
def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return f"/{command.qualified_name}" if command is not None else "that"


def _permission_names(names: Sequence[str]) -> str:
    pretty = [name.replace("_", " ").replace("guild", "server").title() for name in names]
    return " and ".join(pretty) if len(pretty) <= 2 else ", ".join(pretty)


def error_message(interaction: discord.Interaction[Any], error: BaseException) -> str:
    """The one sentence a member reads about an error; unexpected ones are logged with a reference."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, SplitshotError):
        return str(error)
    name = _command_name(interaction)
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down — you can use {name} again in {math.ceil(error.retry_after)} s."
    if isinstance(error, NotModerator):
        return str(error)
    if isinstance(error, app_commands.MissingPermissions):
        return (
            f"Only members with the {_permission_names(error.missing_permissions)} permission "
            f"can use {name}."
        )
    if isinstance(error, app_commands.BotMissingPermissions):
        return (
            f"I need the {_permission_names(error.missing_permissions)} permission in this channel "
            "for that; ask a moderator to grant it."
        )
    if isinstance(error, app_commands.NoPrivateMessage):
        return f"{name} only works in a server."
    if isinstance(error, app_commands.CheckFailure):
        return f"You can't use {name} here."
    if isinstance(error, app_commands.TransformerError):
        return f"I couldn't understand {error.value!r} for that option."
    reference = uuid.uuid4().hex[:8]
    log.error(
        "unexpected error (ref %s) in %s: guild=%s channel=%s user=%s",
        reference,
        name,
        interaction.guild_id,
        interaction.channel_id,
        interaction.user.id,
        exc_info=error,
    )
    return (
        f"Sorry — something went wrong on our side (reference `{reference}`). Please try again; "
        "if it keeps happening, give a moderator that reference."
    )


async def reply_privately(interaction: discord.Interaction[Any], content: str) -> None:
    """Answer with an ephemeral message however far the interaction already got."""
    response = interaction.response
    try:
        if not response.is_done():
            await response.send_message(content, ephemeral=True)
        elif response.type is discord.InteractionResponseType.deferred_channel_message:
            # A thinking message would otherwise spin forever; it becomes the answer.
            await interaction.edit_original_response(
                content=content, embeds=[], attachments=[], view=None
            )
        else:
            await interaction.followup.send(content, ephemeral=True)
    except discord.HTTPException:
        log.warning(
            "could not deliver an error message to user %s", interaction.user.id, exc_info=True
        )


async def report_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """The error boundary for commands and buttons alike."""
    await reply_privately(interaction, error_message(interaction, error))


class SplitshotTree(app_commands.CommandTree["SplitshotBot"]):
    """The command tree, whose ``on_error`` is the bot's one app-command error boundary."""

    async def on_error(
        self, interaction: discord.Interaction[SplitshotBot], error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)


# -------------------------------------------------------------------------- bot
class SplitshotBot(commands.Bot):
    """The Discord client; resources are handed in and owned by whoever opened them."""

    def __init__(
        self,
        resources: Resources,
        *,
        dev_guild_id: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        progress_interval: float = PROGRESS_INTERVAL,
        cogs: Sequence[str] = COGS,
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
        )
        self.resources = resources
        self.dev_guild_id = dev_guild_id
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
        """This server's settings (defaults until a moderator changes one)."""
        return await get_guild_settings(self.db, guild_id)

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
        """Refund holds a previous run left open, load the cogs, sync the commands."""
        self.sweep_holds.start()
        for name in self.cog_names:
            await self.load_extension(name)
        if self.dev_guild_id is not None:
            guild = discord.Object(id=self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to the dev server %d", len(synced), self.dev_guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands (they can take a while to appear)", len(synced))

    @tasks.loop(minutes=HOLD_SWEEP_MINUTES)
    async def sweep_holds(self) -> None:
        """Refund credits held by comparisons that can no longer finish (crash, restart)."""
        try:
            await self.ledger.recover_stale_holds(
                timedelta(minutes=self.settings.stale_hold_minutes)
            )
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
            async with SplitshotBot(resources, dev_guild_id=settings.dev_guild_id) as bot:
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
