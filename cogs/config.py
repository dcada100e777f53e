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

from bot.client import NeedsManageServer, is_server_manager, moderator_only
from bot.credits.budget import limit_refusal
from bot.errors import BadInput
from bot.guild_settings import (
    DEFAULTS,
    GuildSettings,
    SettingChange,
    parse_setting,
    reset_guild_settings,
    settings_history,
    update_guild_settings,
)
from bot.render.embed import COLOUR_INFO, cut, escaped, fit_embed

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
#: settings that decide who moderates and what credits are worth: Manage Server only, so a
#: moderator role cannot lift its own caps or pay itself
MANAGER_ONLY = frozenset(
    {
        "starter_grant",
        "daily_allowance",
        "daily_period_hours",
        "max_grant",
        "mod_daily_cap",
        "price_overrides",
        "moderator_role_id",
        "audit_channel_id",
    }
)
#: Discord's limit on a message's text
MESSAGE_LIMIT = 2000
#: how much of one value a confirmation or history line shows
VALUE_PREVIEW = 200
HISTORY_COUNT = 15
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
        return ", ".join(f"||{escaped(word)}||" for word in value) or "none"
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


def check_moderator_role(role: discord.Role) -> None:
    """Refuse roles that would make moderators of everyone, or of a bot or integration."""
    if role.is_default():
        raise BadInput("@everyone can't be the moderator role: that would make every member one.")
    if role.managed:
        raise BadInput(
            f"{role.name} is managed by a bot or an integration, so it can't be the moderator "
            "role; pick a role that you assign."
        )


def change_line(name: str, old: object, new: object, catalog: Catalog) -> str:
    """ "**Starter grant:** 60 → 100", each value cut to a readable preview."""
    before = cut(describe(name, old, catalog), VALUE_PREVIEW)
    after = cut(describe(name, new, catalog), VALUE_PREVIEW)
    return f"**{LABELS.get(name, name)}:** {before} → {after}"


def fit_message(lines: list[str], limit: int = MESSAGE_LIMIT) -> str:
    """Join lines into one message within Discord's limit, dropping whole lines at the end."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    for line in lines:
        if len("\n".join([*kept, line])) > limit - 2:
            break
        kept.append(line)
    return cut("\n".join(kept), limit - 2) + "\n…"


def history_line(change: SettingChange, catalog: Catalog) -> str:
    """One settings change: when, who, what from → to."""
    when = discord.utils.format_dt(change.created_at, "R")
    who = f"<@{change.actor_id}>" if change.actor_id is not None else "the operator"
    verb = "reset" if change.action == "reset" else "set"
    return f"{when} {who} {verb} {change_line(change.setting, change.old, change.new, catalog)}"


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
        await interaction.response.send_message(
            embed=fit_embed(embed), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
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
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
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


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(ConfigCog(bot))
