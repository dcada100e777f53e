"""The /config commands: show, set, reset and history, for moderators only."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import (
    NeedsManageServer,
    acknowledge,
    answer,
    is_server_manager,
    moderator_only,
)
from bot.credits.budget import limit_refusal
from bot.errors import BadInput
from bot.guild_settings import (
    GuildSettings,
    reset_guild_settings,
    settings_history,
    update_guild_settings,
)
from bot.render.embed import COLOUR_INFO, cut, fit_embed
from cogs.config.values import (
    DEMO_CHOICES,
    FIELDS,
    HISTORY_COUNT,
    LABELS,
    MANAGER_ONLY,
    OPTION_SETTING,
    RESET_CHOICES,
    VALUE_PREVIEW,
    change_line,
    check_moderator_role,
    describe,
    fit_message,
    history_line,
    setting_value,
    settings_embed,
)

if TYPE_CHECKING:
    from bot.client import SplitshotBot


log = logging.getLogger(__name__)


def _bounded(name: str) -> Any:
    """An integer option carrying the setting's own bounds, so Discord checks them as you type."""
    meta = FIELDS[name].metadata
    return app_commands.Range[int, meta["minimum"], meta["maximum"]]


if TYPE_CHECKING:
    StarterGrant = int
    DailyAllowance = int
    DailyPeriod = int
    MaxGrant = int
    ModDailyCap = int
    VoteWindow = int
    MemberAge = int
    MinVotes = int
    MaxRunning = int
    Cooldown = int
else:
    StarterGrant = _bounded("starter_grant")
    DailyAllowance = _bounded("daily_allowance")
    DailyPeriod = _bounded("daily_period_hours")
    MaxGrant = _bounded("max_grant")
    ModDailyCap = _bounded("mod_daily_cap")
    VoteWindow = _bounded("vote_window_hours")
    MemberAge = _bounded("min_member_age_hours")
    MinVotes = _bounded("min_votes_to_rank")
    MaxRunning = _bounded("max_running_per_member")
    Cooldown = _bounded("compare_cooldown_seconds")


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ConfigCog(
    commands.GroupCog,
    group_name="config",
    group_description="Moderators: this server's Splitshot settings",
):
    """Per-server settings; hidden from members and checked in code."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Acknowledge every command before its checks or body read the database."""
        await acknowledge(interaction, ephemeral=True)
        return True

    @app_commands.command(name="show", description="Show every setting for this server")
    @moderator_only()
    async def show(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        await answer(
            interaction,
            embed=settings_embed(
                settings, self.bot.catalog, demo_default=self.bot.service.allow_demo
            ),
            ephemeral=True,
        )

    @app_commands.command(name="set", description="Change one or more settings")
    @app_commands.describe(
        enabled_models="'all' or model ids/names separated by commas",
        starter_grant="Credits a member gets on first use",
        daily_allowance="Credits /credits daily gives (0 turns it off)",
        daily_period_hours="Hours between daily claims",
        max_grant="Largest single /credits grant",
        mod_daily_cap="Credits one moderator may grant per 24 h (0 = no cap)",
        vote_window_hours="How long voting stays open on a result",
        blind_default="Label panels A/B/C/D unless the member says otherwise",
        moderator_role="A role whose members count as moderators",
        audit_channel="Where grants and revokes are posted",
        banned_words="Words refused in prompts, separated by commas ('none' clears)",
        demo_mode="Offline demo stand-ins for models without a provider key",
        compare_cooldown_seconds="Seconds a member waits between comparisons",
        max_running_per_member="Comparisons one member may run at once",
        price_overrides="model=credits pairs, e.g. gpt-image-2=8 ('none' clears)",
        exclude_requester_votes="Ignore votes from the member who ran the comparison",
        min_member_age_hours="How long someone must have been a member to vote",
        blind_only_ranking="Only blind comparisons count on the leaderboard",
        min_votes_to_rank="Votes a model needs before it is ranked",
    )
    @app_commands.choices(demo_mode=DEMO_CHOICES)
    @moderator_only()
    async def set_(
        self,
        interaction: discord.Interaction[SplitshotBot],
        enabled_models: str | None = None,
        starter_grant: StarterGrant | None = None,
        daily_allowance: DailyAllowance | None = None,
        daily_period_hours: DailyPeriod | None = None,
        max_grant: MaxGrant | None = None,
        mod_daily_cap: ModDailyCap | None = None,
        vote_window_hours: VoteWindow | None = None,
        blind_default: bool | None = None,
        moderator_role: discord.Role | None = None,
        audit_channel: discord.TextChannel | None = None,
        banned_words: str | None = None,
        demo_mode: str | None = None,
        compare_cooldown_seconds: Cooldown | None = None,
        max_running_per_member: MaxRunning | None = None,
        price_overrides: str | None = None,
        exclude_requester_votes: bool | None = None,
        min_member_age_hours: MemberAge | None = None,
        blind_only_ranking: bool | None = None,
        min_votes_to_rank: MinVotes | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        options: dict[str, object] = {
            "enabled_models": enabled_models,
            "starter_grant": starter_grant,
            "daily_allowance": daily_allowance,
            "daily_period_hours": daily_period_hours,
            "max_grant": max_grant,
            "mod_daily_cap": mod_daily_cap,
            "vote_window_hours": vote_window_hours,
            "blind_default": blind_default,
            "moderator_role": moderator_role,
            "audit_channel": audit_channel,
            "banned_words": banned_words,
            "demo_mode": demo_mode,
            "compare_cooldown_seconds": compare_cooldown_seconds,
            "max_running_per_member": max_running_per_member,
            "price_overrides": price_overrides,
            "exclude_requester_votes": exclude_requester_votes,
            "min_member_age_hours": min_member_age_hours,
            "blind_only_ranking": blind_only_ranking,
            "min_votes_to_rank": min_votes_to_rank,
        }
        given = {name: value for name, value in options.items() if value is not None}
        if not given:
            raise BadInput("Pick at least one setting to change.")
        if moderator_role is not None:
            check_moderator_role(moderator_role)
        catalog = self.bot.catalog
        changes = {
            OPTION_SETTING.get(option, option): setting_value(option, value, catalog)
            for option, value in given.items()
        }
        self._check_allowed(interaction, list(changes))
        limits = self.bot.settings.limits
        for name, value in changes.items():
            refusal = limit_refusal(name, value, limits, catalog)
            if refusal is not None:
                raise BadInput(refusal)
        guild_id = interaction.guild_id
        async with self._locks[guild_id]:
            before = await self.bot.guild_settings(guild_id)
            after = await update_guild_settings(
                self.bot.db, guild_id, actor_id=interaction.user.id, **changes
            )
            self.bot.remember_guild_settings(guild_id, after)
        lines = [
            change_line(name, getattr(before, name), getattr(after, name), catalog)
            for name in changes
        ]
        warnings = []
        if audit_channel is not None and interaction.guild is not None:
            me = interaction.guild.me
            if me is not None and not audit_channel.permissions_for(me).send_messages:
                warnings.append(
                    f"⚠️ I can't send messages in {audit_channel.mention} yet; grant me that permission."
                )
        # Saved: from here on nothing may raise, or the moderator would read "something went
        # wrong" about a change that was made.
        await self._confirm(interaction, fit_message(["Saved.", *warnings, *lines]))
        await self._audit(interaction, before, after, lines, "Settings changed")

    @app_commands.command(name="reset", description="Put one setting back to its default")
    @app_commands.describe(setting="The setting to reset")
    @app_commands.choices(setting=RESET_CHOICES)
    @moderator_only()
    async def reset(self, interaction: discord.Interaction[SplitshotBot], setting: str) -> None:
        assert interaction.guild_id is not None
        self._check_allowed(interaction, [setting])
        async with self._locks[interaction.guild_id]:
            before = await self.bot.guild_settings(interaction.guild_id)
            after = await reset_guild_settings(
                self.bot.db, interaction.guild_id, setting, actor_id=interaction.user.id
            )
            self.bot.remember_guild_settings(interaction.guild_id, after)
        catalog = self.bot.catalog
        value = cut(describe(setting, getattr(after, setting), catalog), VALUE_PREVIEW)
        await self._confirm(
            interaction, f"**{LABELS.get(setting, setting)}** is back to its default: {value}."
        )
        line = change_line(setting, getattr(before, setting), getattr(after, setting), catalog)
        await self._audit(interaction, before, after, [line], "Setting reset")

    @app_commands.command(name="history", description="Who changed which setting, and when")
    @moderator_only()
    async def history(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        changes = await settings_history(self.bot.db, interaction.guild_id, HISTORY_COUNT)
        lines = [history_line(change, self.bot.catalog) for change in changes]
        embed = discord.Embed(
            title="Settings history · newest first",
            description="\n".join(lines) or "No setting has been changed yet.",
            colour=COLOUR_INFO,
        )
        embed.set_footer(text=f"The last {HISTORY_COUNT} changes; the history is append-only.")
        await answer(
            interaction,
            embed=fit_embed(embed),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    # ------------------------------------------------------------------ helpers
    def _check_allowed(
        self, interaction: discord.Interaction[SplitshotBot], names: list[str]
    ) -> None:
        """Moderators by role may change the rest; these need Manage Server."""
        restricted = [name for name in names if name in MANAGER_ONLY]
        if restricted and not is_server_manager(interaction):
            raise NeedsManageServer([LABELS.get(name, name) for name in sorted(restricted)])

    async def _confirm(self, interaction: discord.Interaction[SplitshotBot], text: str) -> None:
        try:
            await answer(
                interaction, text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException:
            log.warning("could not confirm a saved settings change", exc_info=True)

    async def _audit(
        self,
        interaction: discord.Interaction[SplitshotBot],
        before: GuildSettings,
        after: GuildSettings,
        lines: list[str],
        title: str,
    ) -> None:
        """Post the change to the audit channel; a moved or cleared one hears it too."""
        channel_ids = [after.audit_channel_id, before.audit_channel_id]
        targets = list(dict.fromkeys(cid for cid in channel_ids if cid is not None))
        if not targets:
            return
        embed = discord.Embed(
            title=title,
            description=fit_message([*lines, f"By {interaction.user.mention}."], 4000),
            colour=COLOUR_INFO,
        )
        for channel_id in targets:
            channel = self.bot.get_channel(channel_id)
            try:
                if not isinstance(channel, discord.abc.Messageable):
                    log.warning(
                        "audit channel %s of guild %s is gone", channel_id, interaction.guild_id
                    )
                    continue
                await channel.send(
                    embed=fit_embed(embed), allowed_mentions=discord.AllowedMentions.none()
                )
            except Exception:
                log.warning(
                    "settings audit post to %s in guild %s failed",
                    channel_id,
                    interaction.guild_id,
                    exc_info=True,
                )
