"""The discord.py bot: the Bot subclass, its one app-command error boundary, and ``run_bot``.

The startup code opens the shared resources (HTTP client, database, catalog, providers) and hands
them to :class:`SplitshotBot`; the bot never opens or closes them itself, so they close in reverse
order around it. Cogs are glue over the engine and reach it through the bot's properties.

Longer than the ~400-line guide on purpose: the architecture lets only this module (besides the
playground and the renderers) speak discord.py for the engine, so the moderator checks, the
option choices and the one error boundary that every command and button shares live beside the
bot that installs them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.comparisons.admission import Admission
from bot.comparisons.admission_store import admission_store
from bot.comparisons.job import recover_undelivered
from bot.comparisons.policy import Policy
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


# ------------------------------------------------------------------- moderators
class NotModerator(app_commands.CheckFailure):
    """The member is neither a Manage Server holder nor in the server's moderator role."""

    def __init__(self, role_id: int | None) -> None:
        who = "members with the Manage Server permission"
        if role_id is not None:
            who += f" or the <@&{role_id}> role"
        super().__init__(f"Only moderators — {who} — can do that.")


class NeedsManageServer(SplitshotError):
    """A moderator without Manage Server tried to change who moderates or what credits are worth."""

    def __init__(self, settings: Sequence[str]) -> None:
        super().__init__(
            f"Only members with the Manage Server permission can change: {', '.join(settings)}. "
            "Moderators can change the other settings."
        )


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


def is_server_manager(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server (or Administrator): may change who moderates and what credits are worth."""
    if not isinstance(interaction.user, discord.Member):
        return False
    perms = interaction.permissions
    return perms.administrator or perms.manage_guild


def moderator_only() -> Callable[[T], T]:
    """App-command check: refuse members who are not moderators, saying who may."""

    async def predicate(interaction: discord.Interaction[SplitshotBot]) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        bot = interaction.client
        # Acknowledged already (the cog defers first): read fresh; else only what is quick.
        settings = None
        if not interaction.response.is_done():
            settings = await bot.settings_for_checks(interaction.guild_id)
        if settings is None:
            settings = await bot.guild_settings(interaction.guild_id)
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
    """Answer with an ephemeral message however far the interaction already got.

    A thinking message (from a private defer) becomes the answer; commands that defer publicly
    refuse with :func:`refuse_after_public_defer` instead.
    """
    response = interaction.response
    try:
        if not response.is_done():
            await response.send_message(content, ephemeral=True)
        elif response.type is discord.InteractionResponseType.deferred_channel_message:
            if interaction.extras.get("private_defer") is False:
                # A public "thinking" message must not become a public error.
                await refuse_after_public_defer(interaction, content)
                return
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


async def acknowledge(interaction: discord.Interaction[Any], *, ephemeral: bool = True) -> None:
    """Defer before touching the database: Discord wants an answer within 3 seconds."""
    if interaction.response.is_done():
        return
    interaction.extras["private_defer"] = ephemeral
    await interaction.response.defer(ephemeral=ephemeral, thinking=True)


async def answer(
    interaction: discord.Interaction[Any], content: str | None = None, **kwargs: Any
) -> None:
    """The command's reply, whether or not it was acknowledged first."""
    if interaction.response.is_done():
        await interaction.followup.send(content or discord.utils.MISSING, **kwargs)
    else:
        await interaction.response.send_message(content, **kwargs)


async def refuse_after_public_defer(interaction: discord.Interaction[Any], content: str) -> None:
    """An expected refusal after a public "thinking" message: delete it, answer privately.

    While "thinking", Discord turns the first follow-up into an edit of the public original
    (whose flags cannot change), so the original is completed with a neutral placeholder and
    deleted first; only then can the answer follow as a message of its own, privately.
    """
    try:
        await interaction.edit_original_response(content="…", embeds=[], attachments=[], view=None)
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.debug("the thinking message of interaction %s was already gone", interaction.id)
    try:
        await interaction.followup.send(content, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not deliver a refusal to user %s", interaction.user.id, exc_info=True)


async def report_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """The error boundary for commands and buttons alike."""
    await reply_privately(interaction, error_message(interaction, error))


def is_refusal(error: BaseException) -> bool:
    """An answer the member should read, not a fault: typed refusals, cooldowns, failed checks."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return isinstance(
        error, SplitshotError | app_commands.CheckFailure | app_commands.TransformerError
    )


def _answer_refusals(command: app_commands.Command[Any, ..., Any]) -> None:
    """Answer the command's refusals itself instead of raising them to the tree's ``on_error``.

    A refusal ("not enough credits", a cooldown, a moderator-only command) is an ordinary
    private reply, not a fault; raised, it reaches ``on_error``, where error trackers (and
    SimCord's playground, which then reports "outcome uncertain") count it as a failure.
    discord.py runs checks, option transforms and the callback in ``_invoke_with_namespace``
    and catches what it raises before any public hook, so that is the one place to wrap.
    """
    invoke = command._invoke_with_namespace
    if getattr(invoke, "answers_refusals", False):
        return

    async def invoke_answering_refusals(
        interaction: discord.Interaction[Any], namespace: Any
    ) -> Any:
        try:
            return await invoke(interaction, namespace)
        except app_commands.AppCommandError as error:
            if not is_refusal(error):
                raise
            interaction.command_failed = True
            await report_error(interaction, error)
            return None

    invoke_answering_refusals.answers_refusals = True  # type: ignore[attr-defined]
    command._invoke_with_namespace = invoke_answering_refusals  # type: ignore[method-assign]


class SplitshotTree(app_commands.CommandTree["SplitshotBot"]):
    """The command tree and the bot's one app-command error boundary, :func:`report_error`:
    each command answers its own refusals with it, ``on_error`` everything unexpected."""

    def add_command(
        self,
        command: app_commands.Command[Any, ..., Any]
        | app_commands.ContextMenu
        | app_commands.Group,
        /,
        **kwargs: Any,
    ) -> None:
        """Add a command whose refusals are answered as ordinary private replies."""
        leaves = command.walk_commands() if isinstance(command, app_commands.Group) else [command]
        for leaf in leaves:
            if isinstance(leaf, app_commands.Command):
                _answer_refusals(leaf)
        super().add_command(command, **kwargs)

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
        #: monotonic seconds for progress (injectable so tests can use virtual time)
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
        #: per-member running slots and cooldowns for /compare, in the database for every
        #: process; discord.utils.utcnow is the clock tests can move
        self.admission = Admission(
            admission_store(resources.db),
            discord.utils.utcnow,
            lease=timedelta(minutes=resources.settings.stale_hold_minutes),
            owner=self._process_name(),
        )
        #: each server's settings as last read, for the checks that run before acknowledging
        self._settings_cache: dict[int, GuildSettings] = {}

    def _process_name(self) -> str:
        """Which process of a deployment this is: the same name again after a restart.

        Each process runs its own shard range, so the range names it; what an earlier run under
        this name left in the database is no longer running.
        """
        shard_ids = getattr(self, "shard_ids", None)
        if shard_ids is None and self.shard_count is None:
            return "unsharded"
        shards = ",".join(str(shard) for shard in sorted(shard_ids)) if shard_ids else "all"
        return f"shards {shards} of {self.shard_count or 'auto'}"

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
        """Refund holds a previous run left open, clear its admission tickets, load the cogs,
        sync commands if asked to.

        A production start never syncs globally: every start (and every shard) would rewrite
        the global commands and spend the application's sync rate limit for nothing. Global
        commands change with a release, through ``splitshot sync``.
        """
        await self.admission.recover()
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
        """Refund credits held by comparisons that can no longer finish (crash, restart), and
        forget their admission tickets."""
        try:
            older_than = timedelta(minutes=self.settings.stale_hold_minutes)
            await self.ledger.recover_stale_holds(older_than)
            await recover_undelivered(self.ledger, self.db, older_than)
        except Exception:
            log.exception("could not recover stale holds")
        try:
            await self.admission.sweep()
        except Exception:
            log.exception("could not sweep expired admission tickets")

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
