"""/config show|set|reset: a server's settings, for moderators only."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import moderator_only
from bot.errors import BadInput
from bot.guild_settings import (
    DEFAULTS,
    GuildSettings,
    parse_setting,
    reset_guild_settings,
    update_guild_settings,
)
from bot.render.embed import COLOUR_INFO, fit_embed

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.client import SplitshotBot

log = logging.getLogger(__name__)

_FIELDS = {f.name: f for f in dataclasses.fields(GuildSettings)}
CLEAR_WORDS = frozenset({"", "none", "off", "clear", "-"})
DEMO_CHOICES = [
    app_commands.Choice(name="On: demo stand-ins for models without a key", value="on"),
    app_commands.Choice(name="Off: only real models", value="off"),
    app_commands.Choice(name="Default: follow the bot's setting", value="default"),
]
#: option name -> setting name, where they differ
OPTION_SETTING = {"moderator_role": "moderator_role_id", "audit_channel": "audit_channel_id"}
LABELS = {
    "starter_grant": "Starter grant",
    "daily_allowance": "Daily allowance",
    "daily_period_hours": "Daily period (hours)",
    "max_grant": "Largest single grant",
    "mod_daily_cap": "Per-moderator 24 h grant cap",
    "moderator_role_id": "Moderator role",
    "audit_channel_id": "Audit channel",
    "vote_window_hours": "Vote window (hours)",
    "blind_default": "Blind by default",
    "enabled_models": "Enabled models",
    "banned_words": "Banned words",
    "demo_mode": "Demo stand-ins",
    "exclude_requester_votes": "Ignore the requester's vote",
    "min_member_age_hours": "Minimum member age to vote (hours)",
    "blind_only_ranking": "Rank blind comparisons only",
    "min_votes_to_rank": "Votes needed to rank a model",
    "price_overrides": "Price overrides",
    "max_running_per_member": "Comparisons running per member",
    "compare_cooldown_seconds": "Cooldown between comparisons (s)",
}
RESET_CHOICES = [app_commands.Choice(name=label, value=name) for name, label in LABELS.items()][:25]


def _bounded(name: str) -> Any:
    """An integer option carrying the setting's own bounds, so Discord checks them as you type."""
    meta = _FIELDS[name].metadata
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


def parse_models(text: str, catalog: Catalog) -> tuple[str, ...]:
    """'all' or a comma list of model ids or names → the enabled_models value."""
    if text.strip().lower() in CLEAR_WORDS | {"all", "*"}:
        return ()
    lookup = {m.id.lower(): m.id for m in catalog.models.values()}
    lookup |= {m.name.lower(): m.id for m in catalog.models.values()}
    ids = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.lower() not in lookup:
            raise BadInput(f"Unknown model '{part}'. Known models: {', '.join(catalog.models)}.")
        ids.append(lookup[part.lower()])
    chosen = tuple(dict.fromkeys(ids))
    if len(chosen) < 2:
        raise BadInput("Enable at least two models (a comparison needs two), or 'all'.")
    return chosen


def parse_prices(text: str, catalog: Catalog) -> Mapping[str, int]:
    """'none' or 'gpt-image-2=8, nano-banana-pro=20' → the price_overrides value."""
    if text.strip().lower() in CLEAR_WORDS:
        return {}
    prices = parse_setting("price_overrides", text)
    assert isinstance(prices, Mapping)
    unknown = [m for m in prices if m not in catalog.models]
    if unknown:
        raise BadInput(f"Unknown model '{unknown[0]}'. Known models: {', '.join(catalog.models)}.")
    return prices


def describe(
    name: str, value: object, catalog: Catalog, *, demo_default: bool | None = None
) -> str:
    """A setting's value as a moderator reads it (``demo_default``: what "default" means here)."""
    if name == "moderator_role_id":
        return f"<@&{value}>" if value else "none (Manage Server only)"
    if name == "audit_channel_id":
        return f"<#{value}>" if value else "none"
    if name == "demo_mode":
        if value is None:
            return (
                "default"
                if demo_default is None
                else f"default ({'on' if demo_default else 'off'})"
            )
        return "on" if value else "off"
    if isinstance(value, tuple):
        if name == "enabled_models":
            return ", ".join(catalog.models[m].name for m in value if m in catalog.models) or "all"
        return ", ".join(f"||{word}||" for word in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{model} = {n}" for model, n in value.items()) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def setting_value(option: str, value: object, catalog: Catalog) -> object:
    """An option as given on /config set → the value stored for its setting."""
    if option == "enabled_models":
        return parse_models(str(value), catalog)
    if option == "price_overrides":
        return parse_prices(str(value), catalog)
    if option == "banned_words":
        text = str(value)
        return (
            () if text.strip().lower() in CLEAR_WORDS else [w for w in text.split(",") if w.strip()]
        )
    if option == "demo_mode":
        return {"on": True, "off": False}.get(str(value))
    if isinstance(value, discord.Role | discord.abc.GuildChannel):
        return value.id
    return value


def settings_embed(
    settings: GuildSettings, catalog: Catalog, *, demo_default: bool
) -> discord.Embed:
    """Every setting, grouped, marking the ones changed from the default."""
    groups = {
        "Credits": (
            "starter_grant",
            "daily_allowance",
            "daily_period_hours",
            "max_grant",
            "mod_daily_cap",
        ),
        "Comparisons": (
            "enabled_models",
            "blind_default",
            "demo_mode",
            "compare_cooldown_seconds",
            "max_running_per_member",
            "price_overrides",
            "banned_words",
        ),
        "Voting": (
            "vote_window_hours",
            "exclude_requester_votes",
            "min_member_age_hours",
            "blind_only_ranking",
            "min_votes_to_rank",
        ),
        "Moderation": ("moderator_role_id", "audit_channel_id"),
    }
    embed = discord.Embed(title="Splitshot settings for this server", colour=COLOUR_INFO)
    for group, names in groups.items():
        lines = []
        for name in names:
            value = getattr(settings, name)
            changed = "" if value == getattr(DEFAULTS, name) else " ✎"
            shown = describe(name, value, catalog, demo_default=demo_default)
            lines.append(f"**{LABELS[name]}:** {shown}{changed}")
        embed.add_field(name=group, value="\n".join(lines), inline=False)
    embed.set_footer(
        text="✎ changed from the default · /config set to change · /config reset to restore. "
        "A moderator role also needs /config allowed under Server Settings → Integrations."
    )
    return fit_embed(embed)


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

    @app_commands.command(name="show", description="Show every setting for this server")
    @moderator_only()
    async def show(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        await interaction.response.send_message(
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
        catalog = self.bot.catalog
        changes = {
            OPTION_SETTING.get(option, option): setting_value(option, value, catalog)
            for option, value in given.items()
        }
        async with self._locks[interaction.guild_id]:
            before = await self.bot.guild_settings(interaction.guild_id)
            after = await update_guild_settings(self.bot.db, interaction.guild_id, **changes)
            self.bot.remember_guild_settings(interaction.guild_id, after)
        lines = [
            f"**{LABELS.get(name, name)}:** {describe(name, getattr(before, name), catalog)} → "
            f"{describe(name, getattr(after, name), catalog)}"
            for name in changes
        ]
        if audit_channel is not None and interaction.guild is not None:
            me = interaction.guild.me
            if me is not None and not audit_channel.permissions_for(me).send_messages:
                lines.append(
                    f"⚠️ I can't send messages in {audit_channel.mention} yet; grant me that permission."
                )
        await interaction.response.send_message("Saved.\n" + "\n".join(lines), ephemeral=True)

    @app_commands.command(name="reset", description="Put one setting back to its default")
    @app_commands.describe(setting="The setting to reset")
    @app_commands.choices(setting=RESET_CHOICES)
    @moderator_only()
    async def reset(self, interaction: discord.Interaction[SplitshotBot], setting: str) -> None:
        assert interaction.guild_id is not None
        async with self._locks[interaction.guild_id]:
            after = await reset_guild_settings(self.bot.db, interaction.guild_id, setting)
            self.bot.remember_guild_settings(interaction.guild_id, after)
        value = describe(setting, getattr(after, setting), self.bot.catalog)
        await interaction.response.send_message(
            f"**{LABELS.get(setting, setting)}** is back to its default: {value}.", ephemeral=True
        )


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(ConfigCog(bot))
