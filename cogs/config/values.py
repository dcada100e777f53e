"""What /config shows and accepts: labels, parsing, descriptions and the settings embed."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import BadInput
from bot.guild_settings import (
    DEFAULTS,
    GuildSettings,
    SettingChange,
    parse_setting,
)
from bot.render.embed import COLOUR_INFO, cut, escaped, fit_embed

if TYPE_CHECKING:
    from bot.catalog import Catalog


FIELDS = {f.name: f for f in dataclasses.fields(GuildSettings)}
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
