"""/versus (the comparison page, free) and /models list|info (the catalog)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot.catalog import LIST_ASPECT
from bot.client import model_choices, report_error, use_case_choices
from bot.errors import BadInput
from bot.render.pages import model_embed, models_embed, versus_embed, versus_more_embeds
from bot.verdict import Verdict, build_verdict
from providers.base import QUALITIES, Quality
from providers.registry import ModelUnavailable

if TYPE_CHECKING:
    from bot.catalog import Catalog, Model
    from bot.client import SplitshotBot
    from bot.guild_settings import GuildSettings

log = logging.getLogger(__name__)

MORE_PREFIX = "versus-more:"
#: Discord's limit on a component's custom id
CUSTOM_ID_LIMIT = 100


def server_prices(
    catalog: Catalog, model: Model, overrides: Mapping[str, int], aspect: str = LIST_ASPECT
) -> dict[Quality, int]:
    """This server's credits per tier for a model at ``aspect``, priced as /compare prices it."""
    route = model.adapters[0][0] if model.adapters else ""
    override = overrides.get(model.id)
    return {
        quality: catalog.price(model.id, quality, aspect, route, standard_override=override)
        for quality in QUALITIES
    }


def priced(catalog: Catalog, model: Model, overrides: Mapping[str, int], aspect: str) -> Model:
    """The model with this server's prices (at the use case's aspect) in place of the list's."""
    return replace(model, credits=server_prices(catalog, model, overrides, aspect))


class MoreButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.escape(MORE_PREFIX) + r"(?P<use_case>[\w-]+):(?P<models>[\w.,-]+)",
):
    """/versus's "More": the rest of the page, privately; the id carries models and use case,
    so it answers after a restart too."""

    def __init__(self, use_case_id: str, model_ids: Sequence[str]) -> None:
        super().__init__(
            discord.ui.Button(
                label="More",
                emoji="📖",
                style=discord.ButtonStyle.secondary,
                custom_id=more_custom_id(use_case_id, model_ids),
            )
        )
        self.use_case_id = use_case_id
        self.model_ids = tuple(model_ids)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        """Rebuild the button from a clicked custom id."""
        return cls(match["use_case"], match["models"].split(","))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Send the rest of the page to whoever clicked, privately."""
        try:
            cog = interaction.client.get_cog(VersusCog.__cog_name__)
            if not isinstance(cog, VersusCog):
                raise BadInput("The comparison page is not available right now.")
            verdict, models = await cog.page(interaction, list(self.model_ids), self.use_case_id)
            await interaction.response.send_message(
                embeds=versus_more_embeds(verdict, models), ephemeral=True
            )
        except Exception as exc:
            await report_error(interaction, exc)


def more_custom_id(use_case_id: str, model_ids: Sequence[str]) -> str:
    """The More button's custom id: the use case and the models it describes."""
    return f"{MORE_PREFIX}{use_case_id}:{','.join(model_ids)}"


def build_versus_command(cog: VersusCog) -> app_commands.Command[Any, ..., None]:
    """/versus with the catalog's models and use cases as choices."""
    catalog = cog.bot.catalog
    models = model_choices(catalog)

    @app_commands.command(
        name="versus",
        description="The full comparison page for 2–4 models (free, nothing is generated)",
    )
    @app_commands.guild_only()
    @app_commands.describe(
        model_a="First model",
        model_b="Second model",
        model_c="Optional third model",
        model_d="Optional fourth model",
        use_case="Which use case to judge them for (default: Portrait)",
    )
    @app_commands.choices(
        model_a=models,
        model_b=models,
        model_c=models,
        model_d=models,
        use_case=use_case_choices(catalog),
    )
    async def versus(
        interaction: discord.Interaction[SplitshotBot],
        model_a: str,
        model_b: str,
        model_c: str | None = None,
        model_d: str | None = None,
        use_case: str | None = None,
    ) -> None:
        ids = [m for m in (model_a, model_b, model_c, model_d) if m]
        await cog.versus(interaction, ids, use_case)

    return versus


def build_models_group(cog: VersusCog) -> app_commands.Group:
    """/models list and /models info."""
    group = app_commands.Group(
        name="models", description="The image models Splitshot can compare", guild_only=True
    )

    @group.command(
        name="list",
        description="Every model with its price, safety filter and how it is served here",
    )
    async def list_models(interaction: discord.Interaction[SplitshotBot]) -> None:
        await cog.list_models(interaction)

    @group.command(
        name="info", description="One model's catalog entry: prices, capabilities, ratings"
    )
    @app_commands.describe(model="The model to describe")
    @app_commands.choices(model=model_choices(cog.bot.catalog))
    async def info(interaction: discord.Interaction[SplitshotBot], model: str) -> None:
        await cog.model_info(interaction, model)

    return group


class VersusCog(commands.Cog):
    """Catalog pages: no credits, no generation."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        self.versus_command = build_versus_command(self)
        self.models_group = build_models_group(self)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.versus_command)
        self.bot.tree.add_command(self.models_group)
        self.bot.add_dynamic_items(MoreButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(MoreButton)
        self.bot.tree.remove_command(self.versus_command.name)
        self.bot.tree.remove_command(self.models_group.name)

    async def versus(
        self,
        interaction: discord.Interaction[SplitshotBot],
        model_ids: list[str],
        use_case_id: str | None,
    ) -> None:
        """Render the comparison page of PRODUCT §4 for the chosen models: one screen, and More."""
        if len(set(model_ids)) != len(model_ids):
            raise BadInput("Each model can appear only once in a comparison.")
        catalog = self.bot.catalog
        for model_id in model_ids:
            catalog.model(model_id)  # an unknown model is refused before acknowledging
        use_case = catalog.use_case(use_case_id or next(iter(catalog.use_cases)))
        assert interaction.guild_id is not None
        # The server's voting results can take a while to gather: acknowledge first.
        await interaction.response.defer()
        verdict, models = await self.page(interaction, model_ids, use_case.id)
        community = await self.bot.community_lines(interaction.guild_id, use_case.id, model_ids)
        view = discord.ui.View(timeout=None)
        if len(more_custom_id(use_case.id, model_ids)) <= CUSTOM_ID_LIMIT:
            view.add_item(MoreButton(use_case.id, model_ids))
        await interaction.followup.send(
            embed=versus_embed(verdict, models, community=community), view=view
        )

    async def page(
        self, interaction: discord.Interaction[Any], model_ids: list[str], use_case_id: str
    ) -> tuple[Verdict, list[Model]]:
        """The verdict for these models at this server's prices."""
        catalog = self.bot.catalog
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        use_case = catalog.use_case(use_case_id)
        models = [
            priced(catalog, catalog.model(m), settings.price_overrides, use_case.default_aspect)
            for m in model_ids
        ]
        return build_verdict(catalog, models, use_case), models

    async def list_models(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        """The catalog as a compact table, with how each model is served in this server."""
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        models = self.bot.catalog.models.values()
        status = {m.id: self._status(m, settings) for m in models}
        prices = {
            m.id: server_prices(self.bot.catalog, m, settings.price_overrides) for m in models
        }
        await interaction.response.send_message(
            embed=models_embed(self.bot.catalog, status, prices), ephemeral=True
        )

    async def model_info(
        self, interaction: discord.Interaction[SplitshotBot], model_id: str
    ) -> None:
        """One model's catalog entry."""
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        model = self.bot.catalog.model(model_id)
        embed = model_embed(
            model,
            self.bot.catalog,
            self._status(model, settings),
            server_prices(self.bot.catalog, model, settings.price_overrides),
            formula=self.bot.catalog.formula(model.id),
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    def _status(self, model: Model, settings: GuildSettings) -> str:
        """ "demo", an adapter name, "off" (disabled here) or "no key"."""
        if settings.enabled_models and model.id not in settings.enabled_models:
            return "off"
        allow_demo = (
            self.bot.service.allow_demo if settings.demo_mode is None else settings.demo_mode
        )
        try:
            route = self.bot.resources.registry.route(
                model.id, model.name, model.adapters, allow_demo=allow_demo
            )
        except ModelUnavailable:
            return "no key"
        return "demo" if route.is_demo else route.adapter.name


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(VersusCog(bot))
