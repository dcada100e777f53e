"""Follow-ups on Discord: the buttons' runs, /edit, and /history.

Each follow-up is planned by the engine (:mod:`bot.comparisons.followups`) and then takes the
same path as /compare (:func:`cogs.compare.flow.run_comparison`): the same acknowledgement,
job, presenter, charges, refunds, record and vote reactions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import reply_privately
from bot.comparisons.followups import (
    FollowUpBlocked,
    Parent,
    check_mask,
    image_aspect,
    load_parent,
    nearest_aspect,
    plan_edit,
    plan_reroll,
    plan_swap,
    plan_variants,
)
from bot.comparisons.history import HistoryEntry, history_page
from bot.comparisons.policy import MAX_PROMPT, Policy
from bot.comparisons.service import user_hash
from bot.errors import BadInput
from bot.render.embed import COLOUR_INFO, cut, fit_embed
from cogs.compare.cog import QUALITY_CHOICES, read_reference
from cogs.compare.flow import run_comparison
from cogs.followups.views import COG_NAME, FOLLOW_UP_BUTTONS
from providers.base import QUALITIES, Quality

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.comparisons.plan import Plan

log = logging.getLogger(__name__)

HISTORY_PER_PAGE = 8
HISTORY_TIMEOUT = 300.0
KIND_ICONS = {"compare": "🆚", "variants": "🧬", "reroll": "🎲", "swap": "🔁", "edit": "✏️"}


class AlreadyRunning(FollowUpBlocked):
    """The same follow-up was clicked again while the first is still running."""

    def __init__(self) -> None:
        super().__init__("That follow-up is already running; its result will appear shortly.")


class FollowUpsCog(commands.Cog, name=COG_NAME):
    """Variants, reroll, swap model, /edit and /history."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        #: follow-ups in flight: (comparison, kind, panel, model, member) — double clicks
        self._in_flight: set[tuple[str, str, str, str | None, int]] = set()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*FOLLOW_UP_BUTTONS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*FOLLOW_UP_BUTTONS)

    # ------------------------------------------------------------- buttons
    async def prepare(
        self, interaction: discord.Interaction[SplitshotBot], comparison_id: str
    ) -> tuple[Parent, Policy]:
        """The parent comparison and this server's policy, for a picker."""
        assert interaction.guild_id is not None
        parent = await load_parent(self.bot.db, comparison_id)
        if parent.record.guild_id != interaction.guild_id:
            raise FollowUpBlocked("That comparison belongs to another server.")
        settings = await self.bot.guild_settings(interaction.guild_id)
        return parent, self.bot.policy(settings)

    async def run(
        self,
        interaction: discord.Interaction[SplitshotBot],
        comparison_id: str,
        kind: str,
        letter: str,
        model_id: str | None,
    ) -> None:
        """Run one follow-up like any comparison; a second click while it runs is refused."""
        assert interaction.guild_id is not None
        flight = (comparison_id, kind, letter, model_id, interaction.user.id)
        if flight in self._in_flight:
            await reply_privately(interaction, str(AlreadyRunning()))
            return
        self._in_flight.add(flight)
        salt_hash = user_hash(
            self.bot.settings.user_hash_salt, interaction.guild_id, interaction.user.id
        )

        async def plan_it(policy: Policy) -> Plan:
            parent = await load_parent(self.bot.db, comparison_id)
            if kind == "variants":
                return plan_variants(policy, parent, letter, user_hash=salt_hash)
            if kind == "reroll":
                return plan_reroll(policy, parent, letter, user_hash=salt_hash)
            if kind == "swap" and model_id is not None:
                return plan_swap(policy, parent, letter, model_id, user_hash=salt_hash)
            raise FollowUpBlocked("That follow-up is not known.")

        try:
            await run_comparison(self.bot, interaction, plan_it, cooldown=False)
        finally:
            self._in_flight.discard(flight)

    # ---------------------------------------------------------------- /edit
    @app_commands.command(
        name="edit", description="Edit one image with 2–4 models side by side (optional mask)"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        image="The image to edit (PNG, JPEG or WebP)",
        prompt="What to change (up to 4,000 characters)",
        mask="Optional PNG, same size, transparent where the image may change",
        model_a="First model (default: the first edit-capable model)",
        model_b="Second model (default: the next edit-capable model)",
        model_c="Optional third model",
        model_d="Optional fourth model",
        quality="Draft, standard or high; the price follows it",
        blind="Label the panels A/B/C/D until voting closes",
    )
    @app_commands.choices(quality=QUALITY_CHOICES)
    async def edit(
        self,
        interaction: discord.Interaction[SplitshotBot],
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, MAX_PROMPT],
        mask: discord.Attachment | None = None,
        model_a: str | None = None,
        model_b: str | None = None,
        model_c: str | None = None,
        model_d: str | None = None,
        quality: str | None = None,
        blind: bool | None = None,
    ) -> None:
        """Read the image and mask after acknowledging, then compare the edits."""
        assert interaction.guild_id is not None
        tier: Quality = quality if quality in QUALITIES else "standard"
        salt_hash = user_hash(
            self.bot.settings.user_hash_salt, interaction.guild_id, interaction.user.id
        )

        def chosen(policy: Policy) -> list[str]:
            need = "mask" if mask is not None else "image_to_image"
            able = [
                m.id
                for m in policy.catalog.models.values()
                if m.id in policy.enabled_models and getattr(m.capabilities, need)
            ]
            explicit = [m for m in (model_a, model_b, model_c, model_d) if m]
            spares = iter([m for m in able if m not in explicit])
            first = model_a or next(spares, None)
            second = model_b or next(spares, None)
            return [m for m in (first, second, model_c, model_d) if m]

        async def plan_it(policy: Policy) -> Plan:
            checks = self.bot.service.workers.checks
            source = await read_reference(image, offload=checks.run)
            size = await checks.run(image_aspect, source)
            mask_bytes = None
            if mask is not None:
                mask_bytes = await checks.run(check_mask, await mask.read(), source)
            models = chosen(policy)
            common = (
                [
                    a
                    for a in policy.catalog.model(models[0]).aspects
                    if all(a in policy.catalog.model(m).aspects for m in models)
                ]
                if models
                else []
            )
            if not common:
                raise BadInput("Those models share no aspect ratio; pick others.")
            return plan_edit(
                policy,
                source,
                prompt,
                models,
                aspect=nearest_aspect(size, common),
                mask=mask_bytes,
                quality=tier,
                blind=policy.blind(blind),
                user_hash=salt_hash,
            )

        await run_comparison(self.bot, interaction, plan_it)

    @edit.autocomplete("model_a")
    @edit.autocomplete("model_b")
    @edit.autocomplete("model_c")
    @edit.autocomplete("model_d")
    async def _edit_models(
        self, interaction: discord.Interaction[SplitshotBot], current: str
    ) -> list[app_commands.Choice[str]]:
        choices = [
            app_commands.Choice(name=m.name, value=m.id)
            for m in self.bot.catalog.models.values()
            if m.capabilities.image_to_image
        ]
        return [c for c in choices if current.lower() in c.name.lower()][:25]

    # -------------------------------------------------------------- /history
    @app_commands.command(
        name="history", description="Comparisons run by you or a member, newest first"
    )
    @app_commands.guild_only()
    @app_commands.describe(member="Whose comparisons (default: yours)")
    async def history(
        self,
        interaction: discord.Interaction[SplitshotBot],
        member: discord.Member | None = None,
    ) -> None:
        """A private, paged list: kind, models, cost, winner and a link to each."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        who = member or interaction.user
        pager = HistoryView(self.bot, interaction, who, interaction.guild_id)
        await pager.load(0)
        await interaction.followup.send(embed=pager.embed(), view=pager, ephemeral=True)


def _link(guild_id: int, entry: HistoryEntry) -> str:
    if entry.channel_id is None or entry.message_id is None:
        return ""
    return f"https://discord.com/channels/{guild_id}/{entry.channel_id}/{entry.message_id}"


def history_line(guild_id: int, entry: HistoryEntry, names: Sequence[str]) -> str:
    """One comparison in /history."""
    icon = KIND_ICONS.get(entry.kind, "•")
    when = discord.utils.format_dt(entry.created_at, "R")
    link = _link(guild_id, entry)
    head = f"{icon} **{entry.kind}** · {' vs '.join(names)}"
    head = f"[{head}]({link})" if link else head
    tail = [when, f"{entry.charged} credits"]
    if entry.winner:
        tail.append(f"winner: {entry.winner}")
    elif entry.state == "open":
        tail.append("voting open")
    return f"{head}\n{' · '.join(tail)}"


class HistoryView(discord.ui.View):
    """Newer/older over a member's comparisons, for the member who asked."""

    def __init__(
        self,
        bot: SplitshotBot,
        origin: discord.Interaction[SplitshotBot],
        who: discord.abc.User,
        guild_id: int,
    ) -> None:
        super().__init__(timeout=HISTORY_TIMEOUT)
        self.bot, self.origin, self.who, self.guild_id = bot, origin, who, guild_id
        self.page = 0
        self.total = 0
        self.entries: list[HistoryEntry] = []

    async def load(self, page: int) -> None:
        self.entries, self.total = await history_page(
            self.bot.db,
            self.guild_id,
            self.who.id,
            page=page,
            per_page=HISTORY_PER_PAGE,
            viewer_id=self.origin.user.id,
        )
        self.page = page
        self.newer.disabled = page <= 0
        self.older.disabled = page >= self.pages - 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / HISTORY_PER_PAGE))

    def embed(self) -> discord.Embed:
        lines = [history_line(self.guild_id, e, e.names) for e in self.entries]
        embed = discord.Embed(
            title=f"{self.who.display_name}'s comparisons · page {self.page + 1} of {self.pages}",
            description="\n\n".join(lines) or "No comparisons yet — try /compare.",
            colour=COLOUR_INFO,
        )
        embed.set_footer(text=cut(f"{self.total} in all · newest first", 200))
        return fit_embed(embed)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.origin.user.id:
            return True
        await interaction.response.send_message(
            "These buttons page someone else's list.", ephemeral=True
        )
        return False

    async def _show(self, interaction: discord.Interaction[Any], page: int) -> None:
        await self.load(page)
        await interaction.response.edit_message(embed=self.embed(), view=self)

    @discord.ui.button(label="Newer", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def newer(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, max(0, self.page - 1))

    @discord.ui.button(label="Older", emoji="▶️", style=discord.ButtonStyle.secondary)
    async def older(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, self.page + 1)
