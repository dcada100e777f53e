"""The "Close vote" button: persistent, and answered only for the requester or a moderator.

It is a ``DynamicItem`` whose custom id carries the comparison id, so a restarted bot answers
clicks on old results without remembering anything. The result message gets it from the
compare feature's ``result_view``; this module only registers its handler.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.client import report_error
from bot.errors import SplitshotError

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


class CloseVoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.escape(CLOSE_PREFIX) + r"(?P<comparison_id>[0-9a-f]{1,32})",
):
    """Closes voting on its result now; the requester or a moderator only."""

    def __init__(self, comparison_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Close vote",
                emoji="🏁",
                style=discord.ButtonStyle.secondary,
                custom_id=CLOSE_PREFIX + comparison_id,
            )
        )
        self.comparison_id = comparison_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> CloseVoteButton:
        return cls(match["comparison_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            cog: Closer | None = interaction.client.get_cog(COG_NAME)
            if cog is None:
                raise VotingUnavailable()
            await cog.close_by_button(interaction, self.comparison_id)
        except Exception as exc:
            await report_error(interaction, exc)
