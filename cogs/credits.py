"""/credits: balance, history, top, daily, and the moderators' grant and revoke."""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import acknowledge, answer, moderator_only
from bot.credits.ledger import MAX_AMOUNT, HistoryPage, LedgerEntry
from bot.credits.rules import MAX_REASON_LENGTH
from bot.errors import SplitshotError
from bot.render.embed import COLOUR_INFO, escaped, fit_embed

if TYPE_CHECKING:
    from bot.client import SplitshotBot

log = logging.getLogger(__name__)

PER_PAGE = 10
TOP_COUNT = 10
HISTORY_TIMEOUT = 180.0
KIND_LABELS = {
    "starter": "starter grant",
    "daily": "daily allowance",
    "grant": "moderator grant",
    "revoke": "moderator revoke",
    "spend": "comparison",
    "refund": "refund",
    "recovery": "refund after restart",
}

Amount = app_commands.Range[int, 1, MAX_AMOUNT]
Reason = app_commands.Range[str, 1, MAX_REASON_LENGTH]


class NotForBots(SplitshotError):
    """Bots do not hold credits."""

    def __init__(self) -> None:
        super().__init__("Bots don't have credits; pick a member.")


def credits_text(amount: int) -> str:
    """ "1 credit" / "1,500 credits"."""
    return f"{amount:,} credit" if amount == 1 else f"{amount:,} credits"


def entry_line(entry: LedgerEntry) -> str:
    """One ledger row, e.g. "`  -30` comparison — GPT-Image 2 8 + … · 2 hours ago · balance 30"."""
    label = KIND_LABELS.get(entry.kind, entry.kind)
    reason = f" — {escaped(entry.reason)}" if entry.reason and entry.reason != label else ""
    when = discord.utils.format_dt(entry.created_at, "R")
    return f"`{entry.delta:>+7,}` {label}{reason} · {when} · balance {entry.balance_after:,}"


def history_embed(page: HistoryPage, member: discord.abc.User) -> discord.Embed:
    """One page of a member's ledger, newest first."""
    embed = discord.Embed(
        title=f"Credit history · page {page.page + 1} of {page.pages}",
        description="\n".join(entry_line(e) for e in page.entries) or "Nothing yet.",
        colour=COLOUR_INFO,
    )
    entries = "entry" if page.total == 1 else "entries"
    embed.set_footer(text=f"{member.display_name} · {page.total} {entries} · newest first")
    return fit_embed(embed)


class HistoryPager(discord.ui.View):
    """Previous/next buttons over a member's ledger, usable by that member only."""

    def __init__(
        self, bot: SplitshotBot, origin: discord.Interaction[SplitshotBot], page: HistoryPage
    ) -> None:
        super().__init__(timeout=HISTORY_TIMEOUT)
        self.bot = bot
        self.origin = origin
        self.page = page
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.page.page <= 0
        self.next.disabled = self.page.page >= self.page.pages - 1

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.origin.user.id:
            return True
        await answer(interaction, "These buttons page someone else's history.", ephemeral=True)
        return False

    async def _show(self, interaction: discord.Interaction[SplitshotBot], number: int) -> None:
        assert interaction.guild_id is not None
        self.page = await self.bot.ledger.history(
            interaction.guild_id, interaction.user.id, page=number, per_page=PER_PAGE
        )
        self._sync_buttons()
        await interaction.response.edit_message(
            embed=history_embed(self.page, interaction.user), view=self
        )

    @discord.ui.button(label="Newer", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def previous(
        self, interaction: discord.Interaction[SplitshotBot], button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, max(0, self.page.page - 1))

    @discord.ui.button(label="Older", emoji="▶️", style=discord.ButtonStyle.secondary)
    async def next(
        self, interaction: discord.Interaction[SplitshotBot], button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, self.page.page + 1)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        with suppress(discord.HTTPException):
            await self.origin.edit_original_response(view=self)

    async def on_error(
        self,
        interaction: discord.Interaction[Any],
        error: Exception,
        item: discord.ui.Item[Any],
    ) -> None:
        from bot.client import report_error

        await report_error(interaction, error)


# Discord applies default member permissions per top-level command, so /credits grant and
# /credits revoke cannot be hidden without hiding /credits balance: they are refused in code.
@app_commands.guild_only()
class CreditsCog(
    commands.GroupCog,
    group_name="credits",
    group_description="Credits for comparisons in this server",
):
    """Balances, history and allowances; grants and revokes for moderators."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Acknowledge every command before its checks or body read the database."""
        command = interaction.command
        await acknowledge(
            interaction, ephemeral=not (command is not None and command.name == "top")
        )
        return True

    @app_commands.command(name="balance", description="Your credits, or another member's")
    @app_commands.describe(member="Whose balance to show (default: yours)")
    async def balance(
        self, interaction: discord.Interaction[SplitshotBot], member: discord.Member | None = None
    ) -> None:
        assert interaction.guild_id is not None
        target = member or interaction.user
        if target.bot:
            raise NotForBots()
        ledger = self.bot.ledger
        if target.id == interaction.user.id:
            amount = await ledger.ensure_account(interaction.guild_id, target.id)
            text = f"You have **{credits_text(amount)}**."
        else:
            amount = await ledger.balance(interaction.guild_id, target.id)
            text = f"{target.mention} has **{credits_text(amount)}**."
        text += " Claim more every day with `/credits daily`."
        await answer(interaction, text, ephemeral=True)

    @app_commands.command(name="history", description="Your own credit history, newest first")
    async def history(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        await self.bot.ledger.ensure_account(interaction.guild_id, interaction.user.id)
        page = await self.bot.ledger.history(
            interaction.guild_id, interaction.user.id, page=0, per_page=PER_PAGE
        )
        pager = HistoryPager(self.bot, interaction, page)
        await answer(
            interaction, embed=history_embed(page, interaction.user), view=pager, ephemeral=True
        )

    @app_commands.command(name="top", description="The members with the most credits here")
    async def top(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        rows = await self.bot.ledger.top(interaction.guild_id, TOP_COUNT)
        medals = ["🥇", "🥈", "🥉"]
        lines = [
            f"{medals[i] if i < len(medals) else f'`{i + 1}.`'} <@{user_id}> — {credits_text(amount)}"
            for i, (user_id, amount) in enumerate(rows)
        ]
        embed = discord.Embed(
            title="Most credits",
            description="\n".join(lines) or "Nobody has credits yet.",
            colour=COLOUR_INFO,
        )
        await answer(
            interaction, embed=fit_embed(embed), allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="daily", description="Claim your daily credits")
    async def daily(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        claim = await self.bot.ledger.claim_daily(interaction.guild_id, interaction.user.id)
        await answer(
            interaction,
            f"You claimed **{credits_text(claim.amount)}** — balance {claim.balance:,}. "
            f"Next claim {discord.utils.format_dt(claim.next_due, 'R')}.",
            ephemeral=True,
        )

    @app_commands.command(name="grant", description="Moderators: give a member credits")
    @app_commands.describe(
        member="Who receives them", amount="How many credits", reason="Why (kept in the ledger)"
    )
    @moderator_only()
    async def grant(
        self,
        interaction: discord.Interaction[SplitshotBot],
        member: discord.Member,
        amount: Amount,
        reason: Reason,
    ) -> None:
        if member.bot:
            raise NotForBots()
        assert interaction.guild_id is not None
        balance = await self.bot.ledger.grant(
            interaction.guild_id, member.id, amount, reason, actor_id=interaction.user.id
        )
        text = (
            f"Granted **{credits_text(amount)}** to {member.mention} ({escaped(reason)}); "
            f"their balance is {balance:,}."
        )
        await self._answer_and_audit(interaction, text, "Credits granted", discord.Colour.green())

    @app_commands.command(name="revoke", description="Moderators: take credits from a member")
    @app_commands.describe(
        member="Who loses them", amount="How many credits", reason="Why (kept in the ledger)"
    )
    @moderator_only()
    async def revoke(
        self,
        interaction: discord.Interaction[SplitshotBot],
        member: discord.Member,
        amount: Amount,
        reason: Reason,
    ) -> None:
        if member.bot:
            raise NotForBots()
        assert interaction.guild_id is not None
        balance = await self.bot.ledger.revoke(
            interaction.guild_id, member.id, amount, reason, actor_id=interaction.user.id
        )
        text = (
            f"Revoked **{credits_text(amount)}** from {member.mention} ({escaped(reason)}); "
            f"their balance is {balance:,}."
        )
        await self._answer_and_audit(interaction, text, "Credits revoked", discord.Colour.orange())

    async def _answer_and_audit(
        self,
        interaction: discord.Interaction[SplitshotBot],
        text: str,
        title: str,
        colour: discord.Colour,
    ) -> None:
        """Tell the moderator, then post the same line to the audit channel when one is set.

        The credits have moved by now, so the moderator hears it first: a slow or failing audit
        post must not cost the reply, and nothing may raise after it — the error boundary's
        "please try again" would have them grant twice.
        """
        assert interaction.guild_id is not None
        await answer(
            interaction, text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
        where = "the audit channel"
        try:
            settings = await self.bot.guild_settings(interaction.guild_id)
            channel_id = settings.audit_channel_id
            if channel_id is None:
                return
            where = f"<#{channel_id}>"
            channel = self.bot.get_channel(channel_id)
            if isinstance(channel, discord.abc.Messageable):
                embed = discord.Embed(
                    title=title,
                    description=f"{text}\nBy {interaction.user.mention}.",
                    colour=colour,
                )
                await channel.send(
                    embed=fit_embed(embed), allowed_mentions=discord.AllowedMentions.none()
                )
                return
            log.warning("audit channel %s in guild %s is gone", channel_id, interaction.guild_id)
        except discord.HTTPException as exc:
            log.warning("audit post in guild %s failed: %s", interaction.guild_id, exc)
        except Exception:
            log.exception("audit post in guild %s failed", interaction.guild_id)
        with suppress(discord.HTTPException):
            await interaction.followup.send(
                f"(I couldn't post this to {where}; check my permissions there.)",
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(CreditsCog(bot))
