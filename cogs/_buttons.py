"""The shape of every persistent button under a result: its custom id carries the comparison id.

Being ``DynamicItem``s, a restarted bot answers clicks on old results without remembering
anything; each button only says what it looks like and what a click does.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

import discord

from bot.client import report_error

#: the part of a custom id after a button's prefix
COMPARISON_ID = r"(?P<comparison_id>[0-9a-f]{1,32})"
#: DynamicItem wants a template on every subclass; the base itself must never match a click
_NEVER = r"(?!)"


class ComparisonButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_NEVER):
    """A secondary button for one comparison; subclasses set the look and ``handle``."""

    prefix: ClassVar[str]
    button_label: ClassVar[str]
    button_emoji: ClassVar[str]
    #: the action row: follow-ups on the first, Details / Close vote / Delete on the second
    button_row: ClassVar[int] = 1

    def __init__(self, comparison_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.button_label,
                emoji=self.button_emoji,
                style=discord.ButtonStyle.secondary,
                custom_id=self.prefix + comparison_id,
                row=self.button_row,
            )
        )
        self.comparison_id = comparison_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Self:
        """Rebuild the button from a clicked custom id (after a restart too)."""
        return cls(match["comparison_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Run the click; typed errors become private sentences, others are logged."""
        try:
            await self.handle(interaction)
        except Exception as exc:
            await report_error(interaction, exc)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        """What a click does."""
        raise NotImplementedError
