"""Answering interactions: who moderates, option choices, and the one error boundary.

Everything a command or a button needs to answer Discord well, apart from the bot itself
(:mod:`bot.client`): acknowledge before touching the database, refuse privately (never as a
public error), and turn unexpected errors into one sentence with a reference in the log.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands

from bot.errors import SplitshotError
from bot.guild_settings import GuildSettings

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.client import SplitshotBot

log = logging.getLogger(__name__)

T = TypeVar("T")


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
