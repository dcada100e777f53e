"""The one Discord path every comparison takes: /compare, its follow-ups and /edit.

Admission is checked synchronously against what this process knows, the interaction is
acknowledged publicly, then the database claims the member's slot and cooldown for every
process sharing it and the slow part (reading attachments, planning, reserving) runs; a refusal
after the acknowledgement deletes the "thinking" message and answers privately. The job and its
presenter do the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.client import refuse_after_public_defer, reply_privately
from bot.comparisons.job import ComparisonJob, Requester
from bot.compose import MAX_UPLOAD_BYTES
from bot.errors import SplitshotError
from bot.guild_settings import DEFAULTS
from bot.voting.rules import seed_emojis
from cogs.compare.run import DiscordPresenter

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.comparisons.plan import Plan
    from bot.comparisons.policy import Policy


def max_bytes(interaction: discord.Interaction[Any]) -> int:
    """The upload limit Discord gives this interaction (10 MiB for bots by default)."""
    limit = getattr(interaction, "filesize_limit", None)
    return limit if isinstance(limit, int) and limit > 0 else MAX_UPLOAD_BYTES


async def run_comparison(
    bot: SplitshotBot,
    interaction: discord.Interaction[SplitshotBot],
    plan_it: Callable[[Policy], Awaitable[Plan]],
    *,
    cooldown: bool = True,
    check_first: Callable[[Policy], None] | None = None,
    seed: Callable[..., list[str]] = seed_emojis,
) -> None:
    """Admit, acknowledge, plan (``plan_it`` may read attachments), reserve, run, present."""
    assert interaction.guild_id is not None
    key = (interaction.guild_id, interaction.user.id)
    cached = await bot.settings_for_checks(interaction.guild_id)
    try:
        if cached is not None and check_first is not None:
            # Bad options are answered privately at once, before anything public shows.
            check_first(bot.policy(cached))
        limits = cached or DEFAULTS
        command = interaction.command
        ticket = bot.admission.admit(
            key,
            max_running=limits.max_running_per_member,
            cooldown_s=limits.compare_cooldown_seconds if cooldown else 0,
            command=f"/{command.qualified_name}" if command is not None else "/compare",
        )
    except SplitshotError as exc:
        await reply_privately(interaction, str(exc))
        return
    task = asyncio.current_task()
    if task is not None:
        bot.comparisons.add(task)
    try:
        async with ticket:
            await interaction.response.defer(thinking=True)
            try:
                settings = await bot.guild_settings(key[0])
                # The database decides for every process: another may run this member's
                # comparisons, or have started their cooldown.
                await ticket.claim(
                    max_running=settings.max_running_per_member,
                    cooldown_s=settings.compare_cooldown_seconds if cooldown else 0,
                )
                plan = await plan_it(bot.policy(settings))
                job = ComparisonJob(
                    plan,
                    service=bot.service,
                    catalog=bot.catalog,
                    ledger=bot.ledger,
                    db=bot.db,
                    requester=Requester(key[0], key[1], interaction.channel_id),
                    max_bytes=max_bytes(interaction),
                    community=_community(bot, key[0], plan),
                )
                presenter = DiscordPresenter(bot, interaction, job, settings, seed_emojis=seed)
                await job.reserve()
            except SplitshotError as exc:
                await refuse_after_public_defer(interaction, str(exc))
                return
            ticket.keep_cooldown()
            await presenter.run()
    finally:
        if task is not None:
            bot.forget_comparison(task)


def _community(
    bot: SplitshotBot, guild_id: int, plan: Plan
) -> Callable[[], Awaitable[list[str]]] | None:
    if plan.kind == "variants":
        return None  # one model against itself: the server's duels say nothing here
    models = list(dict.fromkeys(p.model.id for p in plan.panels))

    async def lines() -> list[str]:
        return await bot.community_lines(guild_id, plan.use_case.id, models)

    return lines
