"""/compare: check the options, keep each member within their limits, and hand over to the run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import aspect_choices, model_choices, use_case_choices
from bot.comparisons.service import MAX_PROMPT, CompareRequest, user_hash
from bot.credits.budget import floored_prices
from bot.errors import BadInput, SplitshotError
from bot.references import MAX_REFERENCE_BYTES, reference_image
from cogs.compare.run import ComparisonRun
from cogs.compare.views import DeleteButton, DetailsButton
from providers.base import QUALITIES, Quality, ReferenceImage

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.guild_settings import GuildSettings

log = logging.getLogger(__name__)

#: seconds to download a reference image before giving up (the whole answer has 3 s)
READ_TIMEOUT = 2.0
QUALITY_CHOICES = [app_commands.Choice(name=q.title(), value=q) for q in QUALITIES]

Key = tuple[int, int]  # (guild id, member id)


class TooManyRunning(SplitshotError):
    """The member already has as many comparisons running as the server allows."""

    def __init__(self, running: int) -> None:
        plural = "comparison" if running == 1 else "comparisons"
        super().__init__(
            f"You already have {running} {plural} running; this one would be #{running + 1}. "
            "Wait for one to finish, then try again."
        )


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


def pick_models(
    options: CompareOptions, defaults: Sequence[str], known: Sequence[str]
) -> list[str]:
    """Model A and B fall back to defaults the member did not already pick; C and D only if given."""
    explicit = [
        m for m in (options.model_a, options.model_b, options.model_c, options.model_d) if m
    ]
    spares = iter([m for m in dict.fromkeys([*defaults, *known]) if m not in explicit])
    first = options.model_a or next(spares)
    second = options.model_b or next(spares)
    return [first, second, *(m for m in (options.model_c, options.model_d) if m)]


async def read_reference(attachment: discord.Attachment) -> ReferenceImage:
    """Download and check a reference image; BadInput for anything but a PNG, JPEG or WebP."""
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
        # Discord wants an answer within 3 s and the reserve still has to happen after this.
        data = await asyncio.wait_for(attachment.read(), READ_TIMEOUT)
    except TimeoutError:
        raise BadInput(
            "The reference image took too long to download; try a smaller file."
        ) from None
    return await asyncio.to_thread(reference_image, data, attachment.filename)


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
    """Glue between /compare and the comparison service."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        self.command = build_compare_command(self)
        self._running: dict[Key, int] = {}
        self._started: dict[Key, float] = {}

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)
        self.bot.add_dynamic_items(DetailsButton, DeleteButton)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)
        self.bot.remove_dynamic_items(DetailsButton, DeleteButton)

    async def compare(
        self, interaction: discord.Interaction[SplitshotBot], options: CompareOptions
    ) -> None:
        """Check the member's limits, validate and price everything, then run it.

        Nothing is spent before the checks pass, and nothing slow (the reference download, the
        server's voting results) happens before the member's slot and cooldown are claimed.
        """
        assert interaction.guild_id is not None
        key: Key = (interaction.guild_id, interaction.user.id)
        settings = await self.bot.guild_settings(interaction.guild_id)
        with self._running_slot(key, settings), self._cooldown(key, settings) as keep_cooldown:
            catalog = self.bot.catalog
            reference = await read_reference(options.reference) if options.reference else None
            request = CompareRequest(
                prompt=options.prompt,
                use_case=options.use_case or next(iter(catalog.use_cases)),
                models=pick_models(options, catalog.default_models, list(catalog.models)),
                aspect=options.aspect,
                quality=options.quality or "standard",
                reference=reference,
                blind=settings.blind_default if options.blind is None else options.blind,
                user_hash=user_hash(self.bot.settings.user_hash_salt, *key),
            )
            plan = self.bot.service.plan(
                request,
                enabled_models=settings.enabled_models,
                # Saved before the operator's floor existed or rose: never below it.
                price_overrides=floored_prices(
                    settings.price_overrides, catalog, self.bot.settings.limits
                ),
                banned_words=settings.banned_words,
                allow_demo=settings.demo_mode,
            )
            # Fetched by the engine after the acknowledgement, while the models run: a busy
            # server's results take longer than Discord's three seconds allow.
            community = partial(
                self.bot.community_lines,
                key[0],
                plan.use_case.id,
                [p.model.id for p in plan.panels],
            )
            run = ComparisonRun(
                self.bot, interaction, plan, settings, on_started=keep_cooldown, community=community
            )
            await run.run()

    @contextmanager
    def _cooldown(self, key: Key, settings: GuildSettings) -> Iterator[Callable[[], None]]:
        """Claim the member's cooldown now; it is given back unless the run gets acknowledged.

        Claimed in the same step as the check (no await between them), so two /compare sent
        together cannot both pass; a request refused before the acknowledgement (bad input,
        too few credits) does not keep the member waiting.
        """
        per = settings.compare_cooldown_seconds
        now = self.bot.clock()
        last = self._started.get(key)
        if per > 0 and last is not None:
            retry_after = last + per - now
            if retry_after > 0:
                raise app_commands.CommandOnCooldown(app_commands.Cooldown(1, per), retry_after)
        self._started[key] = now
        kept = False

        def keep() -> None:
            nonlocal kept
            kept = True

        try:
            yield keep
        finally:
            # Only our own claim is given back, never a later one.
            if not kept and self._started.get(key) == now:
                if last is None:
                    del self._started[key]
                else:
                    self._started[key] = last

    @contextmanager
    def _running_slot(self, key: Key, settings: GuildSettings) -> Iterator[None]:
        # No await between the check and the increment, so two requests cannot both pass.
        running = self._running.get(key, 0)
        if running >= settings.max_running_per_member:
            raise TooManyRunning(running)
        self._running[key] = running + 1
        task = asyncio.current_task()
        if task is not None:
            self.bot.comparisons.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.bot.forget_comparison(task)
            left = self._running[key] - 1
            if left:
                self._running[key] = left
            else:
                del self._running[key]
