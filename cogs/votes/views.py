"""The "Close vote" button: persistent, and answered only for the requester or a moderator.

It is a ``DynamicItem`` whose custom id carries the comparison id, so a restarted bot answers
clicks on old results without remembering anything. The result message gets it from the
compare feature's ``result_view``; this module only registers its handler.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.errors import SplitshotError
from cogs._buttons import COMPARISON_ID, ComparisonButton

if TYPE_CHECKING:
    from bot.client import SplitshotBot

CLOSE_PREFIX = "splitshot:close:"
COG_NAME = "Votes"


class VotingUnavailable(SplitshotError):
    """The voting feature is not loaded (it is being reloaded, or was switched off)."""

    def __init__(self) -> None:
        super().__init__("Voting is not available right now; try again in a minute.")


class Closer(Protocol):
    """What the button needs from the votes cog."""

    async def close_by_button(
        self, interaction: discord.Interaction[SplitshotBot], comparison_id: str
    ) -> None: ...


class CloseVoteButton(ComparisonButton, template=re.escape(CLOSE_PREFIX) + COMPARISON_ID):
    """Closes voting on its result now; the requester or a moderator only."""

    prefix = CLOSE_PREFIX
    button_label = "Close vote"
    button_emoji = "🏁"

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the click to the votes feature, which checks who may close."""
        cog: Closer | None = interaction.client.get_cog(COG_NAME)
        if cog is None:
            raise VotingUnavailable()
        await cog.close_by_button(interaction, self.comparison_id)
