"""The buttons under a result: Details and Delete, persistent across restarts.

They are ``DynamicItem``s whose custom ids carry the comparison id, so a restarted bot answers
clicks on old results without remembering anything in memory.
"""

from __future__ import annotations

import logging
import re
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import discord

from bot.client import is_moderator, report_error
from bot.comparisons.records import ComparisonRecord, get_comparison, mark_deleted
from bot.errors import SplitshotError
from bot.render.pages import details_content, details_embeds
from cogs._buttons import COMPARISON_ID, ComparisonButton
from cogs.followups.views import FOLLOW_UP_BUTTONS
from cogs.votes.views import CloseVoteButton

if TYPE_CHECKING:
    from bot.client import SplitshotBot

log = logging.getLogger(__name__)

DETAILS_PREFIX = "splitshot:details:"
DELETE_PREFIX = "splitshot:delete:"
CONFIRM_TIMEOUT = 60.0


class ComparisonGone(SplitshotError):
    """The comparison behind a button was deleted or never stored."""

    def __init__(self) -> None:
        super().__init__("This comparison is no longer stored.")


class NotYours(SplitshotError):
    """Someone other than the requester or a moderator tried to delete a result."""

    def __init__(self) -> None:
        super().__init__("Only the member who ran this comparison or a moderator can delete it.")


async def _stored(
    interaction: discord.Interaction[SplitshotBot], comparison_id: str
) -> ComparisonRecord:
    record = await get_comparison(interaction.client.db, comparison_id)
    if record is None or record.state == "deleted":
        raise ComparisonGone()
    return record


class DetailsButton(ComparisonButton, template=re.escape(DETAILS_PREFIX) + COMPARISON_ID):
    """Shows every parameter, each panel's run and the feature table, privately."""

    prefix = DETAILS_PREFIX
    button_label = "Details"
    button_emoji = "🔎"

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        """Answer privately with the stored comparison's details."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        record = await _stored(interaction, self.comparison_id)
        parent = None
        if record.parent_id is not None:
            parent = await get_comparison(interaction.client.db, record.parent_id)
        embeds = details_embeds(record, interaction.client.catalog, parent=parent)
        await interaction.followup.send(
            details_content(record),
            embeds=embeds,
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )


class DeleteButton(ComparisonButton, template=re.escape(DELETE_PREFIX) + COMPARISON_ID):
    """Deletes the result after a private confirmation; the requester or a moderator only."""

    prefix = DELETE_PREFIX
    button_label = "Delete"
    button_emoji = "🗑️"

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        """Ask the requester or a moderator to confirm."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        record = await _stored(interaction, self.comparison_id)
        assert interaction.guild_id is not None
        settings = await interaction.client.guild_settings(interaction.guild_id)
        if interaction.user.id != record.user_id and not is_moderator(interaction, settings):
            raise NotYours()
        await interaction.followup.send(
            "Delete this comparison for everyone? Delivered images are not refunded.",
            view=ConfirmDelete(interaction, record),
            ephemeral=True,
        )


class ConfirmDelete(discord.ui.View):
    """Yes/cancel, limited to the member who clicked Delete."""

    def __init__(self, origin: discord.Interaction[SplitshotBot], record: ComparisonRecord) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT)
        self.origin = origin
        self.record = record

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.origin.user.id:
            return True
        await interaction.response.send_message("This confirmation is not yours.", ephemeral=True)
        return False

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        with suppress(discord.HTTPException):
            await self.origin.edit_original_response(
                content="Kept — the confirmation timed out.", view=self
            )

    @discord.ui.button(label="Delete", style=discord.ButtonStyle.danger)
    async def confirm(
        self,
        interaction: discord.Interaction[SplitshotBot],
        button: discord.ui.Button[ConfirmDelete],
    ) -> None:
        record = self.record
        self.stop()
        if record.channel_id is not None and record.message_id is not None:
            channel = interaction.client.get_partial_messageable(
                record.channel_id, guild_id=record.guild_id
            )
            with suppress(discord.NotFound):  # already gone: still mark it deleted
                await channel.get_partial_message(record.message_id).delete()
        await mark_deleted(interaction.client.db, record.id)
        log.info("comparison %s deleted by %s", record.id, interaction.user.id)
        await interaction.response.edit_message(content="Deleted.", view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(
        self,
        interaction: discord.Interaction[SplitshotBot],
        button: discord.ui.Button[ConfirmDelete],
    ) -> None:
        self.stop()
        await interaction.response.edit_message(content="Kept.", view=None)

    async def on_error(
        self,
        interaction: discord.Interaction[Any],
        error: Exception,
        item: discord.ui.Item[Any],
    ) -> None:
        await report_error(interaction, error)


def result_view(comparison_id: str) -> discord.ui.View:
    """The persistent buttons under a result message."""
    view = discord.ui.View(timeout=None)
    for button in FOLLOW_UP_BUTTONS:
        view.add_item(button(comparison_id))
    view.add_item(DetailsButton(comparison_id))
    view.add_item(CloseVoteButton(comparison_id))
    view.add_item(DeleteButton(comparison_id))
    return view
