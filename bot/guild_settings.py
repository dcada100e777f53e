"""Per-guild settings: one typed, frozen dataclass with defaults, stored as changed keys in JSON.

Adding a setting means adding one field to ``GuildSettings`` (with ``setting(...)`` bounds when
it is a number); storage, validation and parsing follow from the field's type.

Longer than the ~400-line guide on purpose: one typed settings object with its validation, parsing, storage and append-only history on both backends; split, each part would import the others.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import sqlite3
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.credits.rules import MAX_AMOUNT, MAX_BALANCE
from bot.errors import SplitshotError

if TYPE_CHECKING:
    from bot.db import AnyDatabase
    from bot.db.postgres import PgConnection
    from bot.db.storage import Row

log = logging.getLogger(__name__)

_SNOWFLAKE_MAX = 2**63 - 1


def setting(default: Any, *, minimum: int | None = None, maximum: int | None = None) -> Any:
    """Declare a setting's default and, for whole numbers, its inclusive bounds."""
    metadata = {"minimum": minimum, "maximum": maximum}
    if isinstance(default, Mapping):
        frozen = types.MappingProxyType(dict(default))
        return field(default_factory=lambda: frozen, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class GuildSettings:
    """One guild's settings; a guild that never changed anything gets these defaults."""

    starter_grant: int = setting(60, minimum=0, maximum=MAX_AMOUNT)
    daily_allowance: int = setting(20, minimum=0, maximum=MAX_AMOUNT)
    daily_period_hours: int = setting(24, minimum=1, maximum=24 * 366)
    max_grant: int = setting(10_000, minimum=1, maximum=MAX_AMOUNT)
    # 0 switches the per-moderator cap off.
    mod_daily_cap: int = setting(50_000, minimum=0, maximum=MAX_BALANCE)
    moderator_role_id: int | None = setting(None, minimum=1, maximum=_SNOWFLAKE_MAX)
    audit_channel_id: int | None = setting(None, minimum=1, maximum=_SNOWFLAKE_MAX)
    vote_window_hours: int = setting(24, minimum=1, maximum=24 * 30)
    blind_default: bool = False
    # Empty means every model in the catalog.
    enabled_models: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    # None follows the process-wide default.
    demo_mode: bool | None = None
    exclude_requester_votes: bool = True
    min_member_age_hours: int = setting(0, minimum=0, maximum=24 * 366)
    blind_only_ranking: bool = False
    min_votes_to_rank: int = setting(5, minimum=1, maximum=1_000_000)
    # model id -> credits per image at the standard tier.
    price_overrides: Mapping[str, int] = setting({}, minimum=0, maximum=MAX_AMOUNT)
    max_running_per_member: int = setting(2, minimum=1, maximum=100)
    compare_cooldown_seconds: int = setting(10, minimum=0, maximum=86_400)


DEFAULTS = GuildSettings()
_FIELDS = {f.name: f for f in dataclasses.fields(GuildSettings)}
_HINTS = typing.get_type_hints(GuildSettings)


class SettingsError(SplitshotError):
    """A settings change names an unknown setting or gives it a value of the wrong kind."""


def _kind(hint: Any) -> str:
    """Name the shape of a field type; anything unsupported fails at import, not at runtime."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (int, bool, str):
        return str(hint.__name__)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        return "optional " + _kind(next(a for a in args if a is not type(None)))
    if origin is tuple and args == (str, Ellipsis):
        return "words"
    if origin in (Mapping, dict) and args == (str, int):
        return "prices"
    raise TypeError(f"GuildSettings uses a type the settings code cannot store: {hint!r}")


_KINDS = {name: _kind(hint) for name, hint in _HINTS.items()}


def _bounds_text(name: str) -> str:
    meta = _FIELDS[name].metadata
    low, high = meta.get("minimum"), meta.get("maximum")
    return f" between {low:,} and {high:,}" if low is not None and high is not None else ""


def _check_int(name: str, value: object) -> int:
    meta = _FIELDS[name].metadata
    low, high = meta.get("minimum"), meta.get("maximum")
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name} must be a whole number{_bounds_text(name)}, not {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{name} must be{_bounds_text(name)} (got {value:,}).")
    return value


def validate_setting(name: str, value: object) -> object:
    """Return ``value`` in its field's canonical form, or raise SettingsError saying why not."""
    kind = _KINDS.get(name)
    if kind is None:
        close = difflib.get_close_matches(name, _KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SettingsError(
            f"There is no server setting called {name!r}.{hint} "
            f"Known settings: {', '.join(sorted(_KINDS))}."
        )
    if kind.startswith("optional "):
        if value is None:
            return None
        kind = kind.removeprefix("optional ")
    if kind == "int":
        return _check_int(name, value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{name} must be true or false, not {value!r}.")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise SettingsError(f"{name} must be text, not {value!r}.")
        return value
    if kind == "words":
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise SettingsError(f"{name} must be a list of words, not {value!r}.")
        words = tuple(value)
        if not all(isinstance(word, str) and word.strip() for word in words):
            raise SettingsError(f"Every entry of {name} must be non-empty text.")
        return tuple(dict.fromkeys(word.strip() for word in words))
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise SettingsError(f"{name} must map model ids to credits, not {value!r}.")
    return types.MappingProxyType({key: _check_int(name, value[key]) for key in value})


def parse_setting(name: str, text: str) -> object:
    """Parse a typed value ("true", "none", "a, b", "gpt-image-2=8, nano-banana-pro=20")."""
    kind = _KINDS.get(name)
    if kind is None:
        return validate_setting(name, text)  # raises the "no such setting" sentence
    raw = text.strip()
    if kind.startswith("optional "):
        if raw.lower() in ("", "none", "default", "off"):
            return None
        kind = kind.removeprefix("optional ")
    value: object = raw
    if kind == "int":
        try:
            value = int(raw.replace(",", "").replace("_", ""))
        except ValueError:
            raise SettingsError(f"{name} must be a whole number{_bounds_text(name)}.") from None
    elif kind == "bool":
        truth = {"true": True, "yes": True, "on": True, "1": True}
        truth |= {"false": False, "no": False, "off": False, "0": False}
        if raw.lower() not in truth:
            raise SettingsError(f"{name} must be true or false, not {raw!r}.")
        value = truth[raw.lower()]
    elif kind == "words":
        value = [word for word in raw.split(",") if word.strip()]
    elif kind == "prices":
        pairs: dict[str, object] = {}
        for part in filter(str.strip, raw.split(",")):
            key, sep, number = part.partition("=")
            if not sep or not number.strip().isdecimal():
                raise SettingsError(f"{name} takes model=credits pairs, e.g. gpt-image-2=8.")
            pairs[key.strip()] = int(number.strip())
        value = pairs
    return validate_setting(name, value)


def _to_json(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _from_stored(guild_id: int, data: str) -> GuildSettings:
    try:
        stored = json.loads(data)
    except json.JSONDecodeError:
        log.warning("guild %d has unreadable settings; using defaults", guild_id)
        return DEFAULTS
    values: dict[str, Any] = {}
    for name, value in stored.items() if isinstance(stored, dict) else ():
        try:
            values[name] = validate_setting(name, value)
        except SettingsError as error:
            # A removed setting or a bound tightened since it was saved: keep the default.
            log.warning("guild %d: ignoring stored setting %s: %s", guild_id, name, error)
    return dataclasses.replace(DEFAULTS, **values)


SQL_SELECT_SETTINGS = "SELECT data FROM guild_settings WHERE guild_id = ?"
SQL_UPSERT_SETTINGS = """
INSERT INTO guild_settings (guild_id, data, updated_at) VALUES (:guild_id, :data, :now)
ON CONFLICT (guild_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at
"""
PG_SELECT_SETTINGS = "SELECT data FROM guild_settings WHERE guild_id = $1"
# FOR UPDATE: two moderators changing different settings at once must not lose either change.
PG_SELECT_SETTINGS_FOR_UPDATE = PG_SELECT_SETTINGS + " FOR UPDATE"
PG_UPSERT_SETTINGS = """
INSERT INTO guild_settings (guild_id, data, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (guild_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at
"""
# Serialises the first write of a guild's settings, when there is no row to lock yet.
PG_LOCK_GUILD_SETTINGS = (
    "SELECT pg_advisory_xact_lock(hashtextextended('guild-settings:' || $1, 0))"
)


def load_guild_settings(conn: sqlite3.Connection, guild_id: int) -> GuildSettings:
    """Read a guild's settings on the database thread (inside a ledger transaction)."""
    row = conn.execute(SQL_SELECT_SETTINGS, (guild_id,)).fetchone()
    return DEFAULTS if row is None else _from_stored(guild_id, row[0])


async def load_guild_settings_pg(conn: PgConnection, guild_id: int) -> GuildSettings:
    """Read a guild's settings on a PostgreSQL connection (inside a ledger transaction)."""
    data = await conn.fetchval(PG_SELECT_SETTINGS, guild_id)
    return DEFAULTS if data is None else _from_stored(guild_id, str(data))


def _stored_changes(data: str | None) -> dict[str, object]:
    stored = json.loads(data) if data is not None else {}
    return {key: value for key, value in stored.items() if key in _KINDS}


async def get_guild_settings(db: AnyDatabase, guild_id: int) -> GuildSettings:
    """Return a guild's settings; defaults when it never changed any."""
    from bot.db import PostgresDatabase

    if isinstance(db, PostgresDatabase):
        async with db.transaction(readonly=True) as conn:
            return await load_guild_settings_pg(conn, guild_id)
    return await db.run_read(lambda conn: load_guild_settings(conn, guild_id))


SQL_INSERT_HISTORY = """
INSERT INTO settings_history (guild_id, actor_id, action, setting, old_value, new_value, created_at)
VALUES (:guild_id, :actor_id, :action, :setting, :old, :new, :now)
"""
SQL_HISTORY = """
SELECT id, actor_id, action, setting, old_value, new_value, created_at
FROM settings_history WHERE guild_id = ? ORDER BY id DESC LIMIT ?
"""
PG_INSERT_HISTORY = """
INSERT INTO settings_history (guild_id, actor_id, action, setting, old_value, new_value, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
PG_HISTORY = """
SELECT id, actor_id, action, setting, old_value, new_value, created_at
FROM settings_history WHERE guild_id = $1 ORDER BY id DESC LIMIT $2
"""


@dataclass(frozen=True)
class SettingChange:
    """One row of a server's settings history: who changed what, when, from what to what."""

    id: int
    actor_id: int | None
    action: str  # "set" or "reset"
    setting: str
    old: object  # the setting's value before (its default when it had not been changed)
    new: object
    created_at: datetime


def _value_of(name: str, stored: str | None) -> object:
    """A history value back in its field's form (the default when none was stored)."""
    if stored is None:
        return getattr(DEFAULTS, name, None)
    try:
        raw = json.loads(stored)
    except json.JSONDecodeError:
        return stored
    try:
        return validate_setting(name, raw)
    except SettingsError:  # a setting removed or re-bounded since: show what was stored
        return raw


def _write(
    conn: sqlite3.Connection,
    guild_id: int,
    changes: dict[str, object],
    reset: tuple[str, ...],
    actor_id: int | None = None,
) -> GuildSettings:
    row = conn.execute(SQL_SELECT_SETTINGS, (guild_id,)).fetchone()
    now = datetime.now(UTC)
    data, history = _apply(None if row is None else row[0], changes, reset)
    stamp = now.isoformat(timespec="microseconds")
    conn.execute(SQL_UPSERT_SETTINGS, {"guild_id": guild_id, "data": data, "now": stamp})
    # Same transaction as the change: a setting never changes without its history row.
    for action, name, old, new in history:
        conn.execute(
            SQL_INSERT_HISTORY,
            {
                "guild_id": guild_id,
                "actor_id": actor_id,
                "action": action,
                "setting": name,
                "old": old,
                "new": new,
                "now": stamp,
            },
        )
    return _from_stored(guild_id, data)


def _apply(
    data: str | None, changes: dict[str, object], reset: tuple[str, ...]
) -> tuple[str, list[tuple[str, str, str | None, str | None]]]:
    """The stored JSON after a change, and its history rows (action, setting, old, new)."""
    stored = _stored_changes(data)
    before = dict(stored)
    stored.update({name: _to_json(value) for name, value in changes.items()})
    for name in reset:
        stored.pop(name, None)
    history = [
        (
            action,
            name,
            json.dumps(before[name]) if name in before else None,
            json.dumps(stored[name]) if name in stored else None,
        )
        for action, names in (("set", tuple(changes)), ("reset", reset))
        for name in names
    ]
    return json.dumps(stored), history


async def _save(
    db: AnyDatabase,
    guild_id: int,
    changes: dict[str, object],
    reset: tuple[str, ...],
    actor_id: int | None,
) -> GuildSettings:
    from bot.db import PostgresDatabase

    if not isinstance(db, PostgresDatabase):
        return await db.run_in_transaction(
            lambda conn: _write(conn, guild_id, changes, reset, actor_id)
        )
    async with db.transaction() as conn:
        await conn.execute(PG_LOCK_GUILD_SETTINGS, str(guild_id))
        current = await conn.fetchval(PG_SELECT_SETTINGS_FOR_UPDATE, guild_id)
        data, history = _apply(None if current is None else str(current), changes, reset)
        now = datetime.now(UTC)
        await conn.execute(PG_UPSERT_SETTINGS, guild_id, data, now)
        await conn.executemany(
            PG_INSERT_HISTORY,
            [
                (guild_id, actor_id, action, name, old, new, now)
                for action, name, old, new in history
            ],
        )
    return _from_stored(guild_id, data)


async def update_guild_settings(
    db: AnyDatabase, guild_id: int, *, actor_id: int | None = None, **changes: object
) -> GuildSettings:
    """Validate and save the given settings for a guild; return the guild's new settings.

    Every change is also appended to the server's settings history, as done by ``actor_id``.
    """
    checked = {name: validate_setting(name, value) for name, value in changes.items()}
    settings = await _save(db, guild_id, checked, (), actor_id)
    log.info("guild %d: %s changed settings: %s", guild_id, actor_id, ", ".join(sorted(checked)))
    return settings


async def reset_guild_settings(
    db: AnyDatabase, guild_id: int, *names: str, actor_id: int | None = None
) -> GuildSettings:
    """Return the named settings of a guild to their defaults (recorded in its history)."""
    for name in names:
        if name not in _KINDS:
            validate_setting(name, None)  # raises the "no such setting" sentence
    return await _save(db, guild_id, {}, names, actor_id)


def _change(row: Row, created_at: datetime) -> SettingChange:
    return SettingChange(
        row["id"],
        row["actor_id"],
        row["action"],
        row["setting"],
        _value_of(row["setting"], row["old_value"]),
        _value_of(row["setting"], row["new_value"]),
        created_at,
    )


def _history(conn: sqlite3.Connection, guild_id: int, limit: int) -> list[SettingChange]:
    return [
        _change(row, datetime.fromisoformat(row["created_at"]))
        for row in conn.execute(SQL_HISTORY, (guild_id, limit))
    ]


async def settings_history(db: AnyDatabase, guild_id: int, limit: int = 20) -> list[SettingChange]:
    """The server's most recent settings changes, newest first."""
    from bot.db import PostgresDatabase

    if isinstance(db, PostgresDatabase):
        rows = await db.fetch(PG_HISTORY, guild_id, limit)
        return [_change(row, row["created_at"]) for row in rows]
    return await db.run_read(lambda conn: _history(conn, guild_id, limit))
