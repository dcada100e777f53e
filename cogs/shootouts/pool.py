"""/credits pool grant|balance: the moderators fund the server's team pool.

The pool is the server's ledger account (user id 0, see :mod:`bot.shootouts.pool`), so a grant
to it goes through the same ledger call as a grant to a member — the same per-grant maximum,
moderator cap, history and audit. The group is attached under /credits when that group exists.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.client import moderator_only
from bot.credits.ledger import MAX_AMOUNT
from bot.credits.rules import MAX_REASON_LENGTH
from bot.render.embed import fit_embed
from bot.shootouts.pool import POOL_USER_ID, open_pool

if TYPE_CHECKING:
    from bot.client import SplitshotBot

log = logging.getLogger(__name__)

HISTORY_LINES = 5


def build_pool_group(bot: SplitshotBot) -> app_commands.Group:
    """/credits pool grant and balance."""
    group = app_commands.Group(name="pool", description="The server's team pool for shoot-outs")

    @group.command(name="balance", description="The team pool's credits and latest entries")
    async def balance(interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        await open_pool(bot.db, interaction.guild_id)
        amount = await bot.ledger.balance(interaction.guild_id, POOL_USER_ID)
        page = await bot.ledger.history(
            interaction.guild_id, POOL_USER_ID, page=0, per_page=HISTORY_LINES
        )
        lines = [
            f"`{e.delta:>+7,}` {e.kind}{f' — {e.reason}' if e.reason else ''}"
            f" · {discord.utils.format_dt(e.created_at, 'R')}"
            for e in page.entries
        ]
        text = f"The team pool has **{amount:,} credits**."
        if lines:
            text += "\n" + "\n".join(lines)
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @group.command(name="grant", description="Moderators: fund the team pool")
    @app_commands.describe(amount="How many credits", reason="Why (kept in the ledger)")
    @moderator_only()
    async def grant(
        interaction: discord.Interaction[SplitshotBot],
        amount: app_commands.Range[int, 1, MAX_AMOUNT],
        reason: app_commands.Range[str, 1, MAX_REASON_LENGTH],
    ) -> None:
        assert interaction.guild_id is not None
        await open_pool(bot.db, interaction.guild_id)
        balance = await bot.ledger.grant(
            interaction.guild_id, POOL_USER_ID, amount, reason, actor_id=interaction.user.id
        )
        text = f"Granted **{amount:,} credits** to the team pool ({reason}); it has {balance:,}."
        await interaction.response.send_message(text, ephemeral=True)
        await _audit(bot, interaction, text)

    return group


async def _audit(
    bot: SplitshotBot, interaction: discord.Interaction[SplitshotBot], text: str
) -> None:
    """Post the grant to the audit channel when one is set (never raises: the grant is done)."""
    assert interaction.guild_id is not None
    try:
        settings = await bot.guild_settings(interaction.guild_id)
        channel_id = settings.audit_channel_id
        if channel_id is None:
            return
        channel = bot.get_channel(channel_id)
        if isinstance(channel, discord.abc.Messageable):
            embed = discord.Embed(
                title="Team pool funded",
                description=f"{text}\nBy {interaction.user.mention}.",
                colour=discord.Colour.green(),
            )
            await channel.send(
                embed=fit_embed(embed), allowed_mentions=discord.AllowedMentions.none()
            )
    except Exception:
        log.exception("audit post of a pool grant in guild %s failed", interaction.guild_id)


def attach_pool_group(bot: SplitshotBot) -> None:
    """Add /credits pool under the /credits group (a warning if /credits is not loaded)."""
    credits_group = bot.tree.get_command("credits")
    if not isinstance(credits_group, app_commands.Group):
        log.warning("/credits is not loaded: the team pool has no commands")
        return
    if "pool" not in {c.name for c in credits_group.commands}:
        credits_group.add_command(build_pool_group(bot))
