"""The shoot-out's modal (1–5 prompts), its Start / Cancel confirmation and the Export button."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

import discord

from bot.client import report_error
from bot.comparisons.policy import MAX_PROMPT
from bot.shootouts.plan import MAX_PROMPTS
from cogs._buttons import COMPARISON_ID, ComparisonButton

if TYPE_CHECKING:
    from bot.client import SplitshotBot

#: how long the Start / Cancel buttons wait
CONFIRM_TIMEOUT = 300.0
EXPORT_PREFIX = "splitshot:export:shootout:"
PROMPT_IDS = tuple(f"prompt{n}" for n in range(1, MAX_PROMPTS + 1))

Submitted = Callable[[discord.Interaction["SplitshotBot"], list[str]], Awaitable[None]]
Confirmed = Callable[[discord.Interaction["SplitshotBot"]], Awaitable[None]]


class PromptsModal(discord.ui.Modal):
    """One field per prompt; empty fields are skipped, at least one is needed."""

    def __init__(self, name: str, on_submit: Submitted) -> None:
        super().__init__(title=f"Shoot-out: {name}"[:45], timeout=CONFIRM_TIMEOUT)
        self._on_submit = on_submit
        self.prompt_inputs: list[discord.ui.TextInput[PromptsModal]] = []
        for number, custom_id in enumerate(PROMPT_IDS, start=1):
            field: discord.ui.TextInput[PromptsModal] = discord.ui.TextInput(
                label=f"Prompt {number}",
                custom_id=custom_id,
                style=discord.TextStyle.paragraph,
                required=False,
                max_length=MAX_PROMPT,
                placeholder="Describe one image" if number == 1 else "Optional",
            )
            self.prompt_inputs.append(field)
            self.add_item(field)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._on_submit(interaction, [f.value or "" for f in self.prompt_inputs])

    async def on_error(
        self,
        interaction: discord.Interaction[Any],
        error: Exception,
        item: discord.ui.Item[Any] | None = None,
        /,
    ) -> None:
        await report_error(interaction, error)


class ConfirmView(discord.ui.View):
    """Start or Cancel a priced shoot-out; only its starter may press either."""

    def __init__(self, starter_id: int, on_start: Confirmed) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT)
        self.starter_id = starter_id
        self._on_start = on_start
        self.message: discord.InteractionMessage | None = None

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.starter_id:
            return True
        await interaction.response.send_message(
            "Only the member who set up this shoot-out can start it.", ephemeral=True
        )
        return False

    @discord.ui.button(label="Start", style=discord.ButtonStyle.success, emoji="🏁")
    async def start(
        self, interaction: discord.Interaction[SplitshotBot], button: discord.ui.Button[Any]
    ) -> None:
        self.stop()
        await self._on_start(interaction)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(
        self, interaction: discord.Interaction[SplitshotBot], button: discord.ui.Button[Any]
    ) -> None:
        self.stop()
        await interaction.response.edit_message(
            content="Shoot-out cancelled; nothing was spent.", embed=None, view=None
        )

    async def on_timeout(self) -> None:
        if self.message is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(
                    content="The shoot-out was not started in time; nothing was spent.",
                    embed=None,
                    view=None,
                )

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error)


Exporter = Callable[[discord.Interaction["SplitshotBot"], str], Awaitable[None]]


class ExportButton(ComparisonButton, template=re.escape(EXPORT_PREFIX) + COMPARISON_ID):
    """Under a shoot-out's report: the HTML and JSON files, privately, to whoever clicks."""

    prefix = EXPORT_PREFIX
    button_label = "Export"
    button_emoji = "📦"
    button_row = 0
    #: set by the cog on load (a DynamicItem is rebuilt from its custom id alone)
    exporter: ClassVar[Exporter | None] = None

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Self:
        """Rebuild the button from a clicked custom id (after a restart too)."""
        return cls(match["comparison_id"])

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        """Send the export files privately."""
        exporter = type(self).exporter
        if exporter is None:
            await interaction.response.send_message("Export is not available.", ephemeral=True)
            return
        await exporter(interaction, self.comparison_id)


def export_view(shootout_id: str) -> discord.ui.View:
    """The persistent Export button under a report."""
    view = discord.ui.View(timeout=None)
    view.add_item(ExportButton(shootout_id))
    return view
