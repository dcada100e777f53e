"""Follow-up buttons under every result (Variants, Reroll, Swap model) and their pickers.

The buttons are ``DynamicItem``s whose custom ids carry the comparison id, so a click on a
result weeks old, after any number of restarts, still works: everything they need is in the
database. A click answers privately with a picker that shows each choice's price before
anything runs; the picker is limited to the member who clicked.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.comparisons.followups import VARIANTS, FollowUpBlocked, Parent
from bot.errors import SplitshotError
from cogs._buttons import COMPARISON_ID, ComparisonButton

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.comparisons.policy import Policy

VARIANTS_PREFIX = "splitshot:variants:"
REROLL_PREFIX = "splitshot:reroll:"
SWAP_PREFIX = "splitshot:swap:"
COG_NAME = "FollowUps"
PICKER_TIMEOUT = 300.0

#: what a picker does with the choice: (interaction, letter, model id or None)
Choose = Callable[[discord.Interaction[Any], str, str | None], Awaitable[None]]


class FollowUpsUnavailable(SplitshotError):
    """The follow-up feature is not loaded."""

    def __init__(self) -> None:
        super().__init__("Follow-ups are not available right now; try again in a minute.")


class Runner(Protocol):
    """What the buttons need from the follow-ups cog."""

    async def prepare(
        self, interaction: discord.Interaction[SplitshotBot], comparison_id: str
    ) -> tuple[Parent, Policy]: ...

    async def run(
        self,
        interaction: discord.Interaction[SplitshotBot],
        comparison_id: str,
        kind: str,
        letter: str,
        model_id: str | None,
    ) -> None: ...


def _runner(interaction: discord.Interaction[Any]) -> Runner:
    cog: Runner | None = interaction.client.get_cog(COG_NAME)
    if cog is None:
        raise FollowUpsUnavailable()
    return cog


class PanelPicker(discord.ui.View):
    """A select of panels (or models), answered only for the member who clicked."""

    def __init__(
        self,
        owner_id: int,
        placeholder: str,
        options: list[discord.SelectOption],
        choose: Callable[[discord.Interaction[Any], str], Awaitable[None]],
    ) -> None:
        super().__init__(timeout=PICKER_TIMEOUT)
        self.owner_id = owner_id
        self.choose = choose
        self.select: discord.ui.Select[PanelPicker] = discord.ui.Select(
            placeholder=placeholder, options=options, min_values=1, max_values=1
        )
        self.select.callback = self._picked  # type: ignore[method-assign]
        self.add_item(self.select)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            "This picker belongs to the member who clicked the button.", ephemeral=True
        )
        return False

    async def _picked(self, interaction: discord.Interaction[Any]) -> None:
        from bot.client import report_error

        self.stop()
        try:
            await self.choose(interaction, self.select.values[0])
        except Exception as exc:
            await report_error(interaction, exc)


def panel_options(
    parent: Parent, policy: Policy, verb: str, *, copies: int = 1
) -> list[discord.SelectOption]:
    """One option per panel with an image, with what the follow-up costs."""
    options = []
    for panel in parent.usable():
        model = policy.catalog.model(panel.model_id)
        price = 0
        if verb != "Swap":
            price = copies * policy.price(model, parent.quality, parent.record.aspect)
        label = f"{verb} {parent.shown(panel)}"
        description = "pick the model next" if verb == "Swap" else f"{price} credits"
        if parent.hidden and verb != "Swap":
            description = "price shown once you pick"
        options.append(
            discord.SelectOption(label=label[:100], value=panel.letter, description=description)
        )
    return options


class FollowUpButton(ComparisonButton, template=r"(?!)"):
    """A follow-up button: answers privately with a picker of the panels to build on."""

    kind: str = ""
    verb: str = ""
    copies: int = 1
    button_row = 0

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        runner = _runner(interaction)
        parent, policy = await runner.prepare(interaction, self.comparison_id)
        options = panel_options(parent, policy, self.verb, copies=self.copies)
        if not options:
            raise FollowUpBlocked("No model delivered an image in this comparison.")
        comparison_id, kind = self.comparison_id, self.kind

        async def choose(picked: discord.Interaction[Any], letter: str) -> None:
            await self.chosen(picked, runner, parent, policy, comparison_id, kind, letter)

        await interaction.followup.send(
            self.prompt(parent),
            view=PanelPicker(interaction.user.id, "Pick a panel", options, choose),
            ephemeral=True,
        )

    def prompt(self, parent: Parent) -> str:
        return f"{self.verb}: pick the panel."

    async def chosen(
        self,
        interaction: discord.Interaction[Any],
        runner: Runner,
        parent: Parent,
        policy: Policy,
        comparison_id: str,
        kind: str,
        letter: str,
    ) -> None:
        await runner.run(interaction, comparison_id, kind, letter, None)


class VariantsButton(FollowUpButton, template=re.escape(VARIANTS_PREFIX) + COMPARISON_ID):
    """Two new images by one panel's model, drawn from that panel."""

    prefix = VARIANTS_PREFIX
    button_label = "Variants"
    button_emoji = "🧬"
    kind, verb, copies = "variants", "Variants of", VARIANTS

    def prompt(self, parent: Parent) -> str:
        return (
            f"**Variants**: the same model draws {VARIANTS} new images from the panel you pick "
            "(the price is per image; refunded for any that fail)."
        )


class RerollButton(FollowUpButton, template=re.escape(REROLL_PREFIX) + COMPARISON_ID):
    """One panel's model again with a new seed, next to the other panels as they were."""

    prefix = REROLL_PREFIX
    button_label = "Reroll"
    button_emoji = "🎲"
    kind, verb = "reroll", "Reroll"

    def prompt(self, parent: Parent) -> str:
        return (
            "**Reroll**: the panel you pick runs again with a new seed; the other panels are "
            "shown again as they were, not paid again."
        )


class SwapButton(FollowUpButton, template=re.escape(SWAP_PREFIX) + COMPARISON_ID):
    """Another model in place of one panel; only the new model is paid for."""

    prefix = SWAP_PREFIX
    button_label = "Swap model"
    button_emoji = "🔁"
    kind, verb = "swap", "Swap"

    def prompt(self, parent: Parent) -> str:
        return "**Swap model**: pick the panel to replace, then the model to put in its place."

    async def chosen(
        self,
        interaction: discord.Interaction[Any],
        runner: Runner,
        parent: Parent,
        policy: Policy,
        comparison_id: str,
        kind: str,
        letter: str,
    ) -> None:
        present = {p.model_id for p in parent.record.panels}
        options = [
            discord.SelectOption(
                label=model.name[:100],
                value=model.id,
                description=(
                    f"{policy.price(model, parent.quality, parent.record.aspect)} credits"
                ),
            )
            for model in policy.catalog.models.values()
            if model.id not in present
            and model.id in policy.enabled_models
            and parent.record.aspect in model.aspects
        ][:25]
        if not options:
            raise FollowUpBlocked(
                "Every other model is already here, turned off on this server, or cannot draw "
                f"{parent.record.aspect}."
            )

        async def choose(picked: discord.Interaction[Any], model_id: str) -> None:
            await runner.run(picked, comparison_id, kind, letter, model_id)

        await interaction.response.edit_message(
            content=f"**Swap model**: which model replaces panel {letter}?",
            view=PanelPicker(interaction.user.id, "Pick a model", options, choose),
        )


FOLLOW_UP_BUTTONS: tuple[type[FollowUpButton], ...] = (VariantsButton, RerollButton, SwapButton)
