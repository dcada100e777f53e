"""/compare: check the options, acknowledge, then hand the comparison to its job.

Only synchronous checks (the member's slot and cooldown as this process knows them, the options
against the server's cached settings) run before ``defer``: Discord wants an answer within 3
seconds, and the database's claim of the slot, the reference download, its check and the
reserve can each take longer. A refusal after the public "thinking" message deletes it and
answers privately.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import (
    aspect_choices,
    model_choices,
    use_case_choices,
)
from bot.comparisons.plan import CompareRequest, Plan
from bot.comparisons.policy import MAX_PROMPT, Policy
from bot.comparisons.service import user_hash
from bot.errors import BadInput
from bot.references import MAX_REFERENCE_BYTES, reference_image
from bot.voting.rules import seed_emojis
from bot.workers import Offload
from cogs.compare.flow import run_comparison
from cogs.compare.views import DeleteButton, DetailsButton
from providers.base import QUALITIES, Quality, ReferenceImage

if TYPE_CHECKING:
    from bot.client import SplitshotBot

log = logging.getLogger(__name__)

#: seconds to download a reference image before giving up (after the acknowledgement)
READ_TIMEOUT = 20.0
QUALITY_CHOICES = [app_commands.Choice(name=q.title(), value=q) for q in QUALITIES]


@dataclass(frozen=True, slots=True)
class CompareOptions:
    """The /compare options as the member gave them (None where left out)."""

    prompt: str
    use_case: str | None = None
    model_a: str | None = None
    model_b: str | None = None
    model_c: str | None = None
    model_d: str | None = None
    aspect: str | None = None
    quality: Quality | None = None
    reference: discord.Attachment | None = None
    blind: bool | None = None


async def read_reference(
    attachment: discord.Attachment, *, offload: Offload = asyncio.to_thread
) -> ReferenceImage:
    """Download and check a reference image; BadInput for anything but a PNG, JPEG or WebP.

    ``offload`` runs the check: the bot's reference-check pool, so a burst of composes never
    delays it.
    """
    limit_mb = MAX_REFERENCE_BYTES // (1024 * 1024)
    if attachment.size > MAX_REFERENCE_BYTES:
        raise BadInput(
            f"The reference image is {attachment.size / 1024 / 1024:.1f} MB; the limit is {limit_mb} MB."
        )
    content_type = (attachment.content_type or "").partition(";")[0]
    if content_type and not content_type.startswith("image/"):
        raise BadInput(
            f"The reference must be a PNG, JPEG or WebP image; {attachment.filename} is not."
        )
    try:
        data = await asyncio.wait_for(attachment.read(), READ_TIMEOUT)
    except TimeoutError:
        raise BadInput(
            "The reference image took too long to download; try a smaller file."
        ) from None
    checked: ReferenceImage = await offload(reference_image, data, attachment.filename)
    return checked


def build_compare_command(cog: CompareCog) -> app_commands.Command[Any, ..., None]:
    """/compare with its choices taken from the catalog the bot was started with."""
    catalog = cog.bot.catalog
    models = model_choices(catalog)
    defaults = ", ".join(catalog.models[m].name for m in catalog.default_models)

    @app_commands.command(
        name="compare",
        description="Run one prompt through 2–4 image models and get one labelled split image",
    )
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw (up to 4,000 characters)",
        use_case="What the image is for; sets the default aspect and what the verdict weighs",
        model_a=f"First model (default: {defaults.split(', ')[0]})",
        model_b=f"Second model (default: {defaults.split(', ')[-1]})",
        model_c="Optional third model",
        model_d="Optional fourth model",
        aspect="Aspect ratio (default: the use case's)",
        quality="Draft, standard or high; the price follows it",
        reference="A reference image for image-to-image (PNG, JPEG or WebP)",
        blind="Label the panels A/B/C/D until voting closes",
    )
    @app_commands.choices(
        use_case=use_case_choices(catalog),
        model_a=models,
        model_b=models,
        model_c=models,
        model_d=models,
        aspect=aspect_choices(catalog),
        quality=QUALITY_CHOICES,
    )
    async def compare(
        interaction: discord.Interaction[SplitshotBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT],
        use_case: str | None = None,
        model_a: str | None = None,
        model_b: str | None = None,
        model_c: str | None = None,
        model_d: str | None = None,
        aspect: str | None = None,
        quality: str | None = None,
        reference: discord.Attachment | None = None,
        blind: bool | None = None,
    ) -> None:
        options = CompareOptions(
            prompt=prompt,
            use_case=use_case,
            model_a=model_a,
            model_b=model_b,
            model_c=model_c,
            model_d=model_d,
            aspect=aspect,
            quality=quality if quality in QUALITIES else None,
            reference=reference,
            blind=blind,
        )
        await cog.compare(interaction, options)

    return compare


class CompareCog(commands.Cog):
    """Glue between /compare and the comparison job."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        self.command = build_compare_command(self)
        #: seams: how a reference attachment is read and which vote reactions are seeded
        self.read_reference: Callable[[discord.Attachment], Awaitable[ReferenceImage]] = partial(
            read_reference, offload=bot.service.workers.checks.run
        )
        self.seed_emojis: Callable[..., list[str]] = seed_emojis

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)
        self.bot.add_dynamic_items(DetailsButton, DeleteButton)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)
        self.bot.remove_dynamic_items(DetailsButton, DeleteButton)

    def _request(
        self,
        policy: Policy,
        options: CompareOptions,
        reference: ReferenceImage | None,
        key: tuple[int, int],
    ) -> CompareRequest:
        return CompareRequest(
            prompt=options.prompt,
            use_case=options.use_case,
            models=policy.pick_models(
                options.model_a, options.model_b, (options.model_c, options.model_d)
            ),
            aspect=options.aspect,
            quality=options.quality or "standard",
            reference=reference,
            blind=policy.blind(options.blind),
            user_hash=user_hash(self.bot.settings.user_hash_salt, *key),
        )

    async def compare(
        self, interaction: discord.Interaction[SplitshotBot], options: CompareOptions
    ) -> None:
        """Check what can be checked at once, acknowledge, then plan, reserve and run the job."""
        assert interaction.guild_id is not None
        key = (interaction.guild_id, interaction.user.id)

        def check_first(policy: Policy) -> None:
            policy.plan(self._request(policy, options, None, key))

        async def plan_it(policy: Policy) -> Plan:
            reference = await self.read_reference(options.reference) if options.reference else None
            return policy.plan(self._request(policy, options, reference, key))

        await run_comparison(
            self.bot, interaction, plan_it, check_first=check_first, seed=self.seed_emojis
        )
