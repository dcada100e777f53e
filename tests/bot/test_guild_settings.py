"""Per-guild settings: defaults, validated updates, storage, and parsing typed values."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database
from bot.errors import SplitshotError
from bot.guild_settings import (
    DEFAULTS,
    GuildSettings,
    SettingsError,
    get_guild_settings,
    parse_setting,
    reset_guild_settings,
    update_guild_settings,
    validate_setting,
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "settings.db")
    yield database
    await database.close()


def test_defaults_match_the_product() -> None:
    settings = GuildSettings()
    assert (settings.starter_grant, settings.daily_allowance, settings.daily_period_hours) == (
        60,
        20,
        24,
    )
    assert (settings.max_grant, settings.mod_daily_cap) == (10_000, 50_000)
    assert settings.moderator_role_id is None and settings.audit_channel_id is None
    assert settings.enabled_models == () and settings.demo_mode is None
    assert dict(settings.price_overrides) == {}
    assert (settings.min_votes_to_rank, settings.compare_cooldown_seconds) == (5, 10)


async def test_a_guild_without_a_row_gets_the_defaults(db: Database) -> None:
    assert await get_guild_settings(db, 123) == DEFAULTS


async def test_updates_are_validated_saved_and_per_guild(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "settings.db")
    updated = await update_guild_settings(
        db, 1, starter_grant=100, moderator_role_id=42, banned_words=["spam", " spam", "eggs"],
        price_overrides={"gpt-image-2": 5}, demo_mode=True,
    )  # fmt: skip
    assert updated.starter_grant == 100 and updated.moderator_role_id == 42
    assert updated.banned_words == ("spam", "eggs")
    assert dict(updated.price_overrides) == {"gpt-image-2": 5}
    second = await update_guild_settings(db, 1, daily_allowance=0)
    assert (second.starter_grant, second.daily_allowance) == (100, 0)  # earlier change kept
    await db.close()

    db = await Database.open(tmp_path / "settings.db")
    try:
        assert await get_guild_settings(db, 1) == second
        assert await get_guild_settings(db, 2) == DEFAULTS
    finally:
        await db.close()


async def test_only_changed_keys_are_stored(db: Database) -> None:
    await update_guild_settings(db, 1, blind_default=True)
    row = await db.fetchone("SELECT data FROM guild_settings WHERE guild_id = 1")
    assert row is not None and json.loads(row[0]) == {"blind_default": True}


async def test_unknown_settings_are_refused_with_a_suggestion(db: Database) -> None:
    with pytest.raises(SettingsError) as caught:
        await update_guild_settings(db, 1, startr_grant=5)
    assert isinstance(caught.value, SplitshotError)
    assert "There is no server setting called 'startr_grant'. Did you mean 'starter_grant'?" in str(
        caught.value
    )
    assert await get_guild_settings(db, 1) == DEFAULTS


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("starter_grant", "60", "must be a whole number between 0 and 1,000,000,000"),
        ("starter_grant", True, "must be a whole number"),
        ("starter_grant", -1, "must be between 0 and 1,000,000,000 (got -1)"),
        ("max_grant", 0, "must be between 1 and 1,000,000,000"),
        ("blind_default", 1, "must be true or false"),
        ("moderator_role_id", 0, "must be between 1 and"),
        ("enabled_models", "gpt-image-2", "must be a list of words"),
        ("banned_words", ["ok", ""], "must be non-empty text"),
        ("price_overrides", {"gpt-image-2": -3}, "must be between 0 and"),
        ("price_overrides", [("gpt-image-2", 3)], "must map model ids to credits"),
    ],
)
async def test_wrong_values_are_refused_with_a_sentence(
    db: Database, name: str, value: object, message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await update_guild_settings(db, 1, **{name: value})


async def test_optional_settings_accept_none_and_reset_restores_defaults(db: Database) -> None:
    await update_guild_settings(db, 1, audit_channel_id=77, starter_grant=5)
    cleared = await update_guild_settings(db, 1, audit_channel_id=None)
    assert cleared.audit_channel_id is None and cleared.starter_grant == 5
    assert await reset_guild_settings(db, 1, "starter_grant") == DEFAULTS
    with pytest.raises(SettingsError, match="no server setting"):
        await reset_guild_settings(db, 1, "nope")


async def test_bad_stored_values_fall_back_to_defaults(db: Database) -> None:
    stored = json.dumps({"starter_grant": -5, "daily_allowance": 7, "removed_setting": 1})
    await db.execute(
        "INSERT INTO guild_settings (guild_id, data, updated_at) VALUES (1, ?, 'x')", (stored,)
    )
    await db.execute("INSERT INTO guild_settings (guild_id, data, updated_at) VALUES (2, '{', 'x')")
    assert await get_guild_settings(db, 1) == dataclasses.replace(DEFAULTS, daily_allowance=7)
    assert await get_guild_settings(db, 2) == DEFAULTS


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("starter_grant", "1,500", 1500),
        ("blind_default", "Yes", True),
        ("demo_mode", "none", None),
        ("demo_mode", "off", None),
        ("exclude_requester_votes", "off", False),
        ("audit_channel_id", "1234567890123", 1234567890123),
        ("enabled_models", "gpt-image-2, nano-banana-pro", ("gpt-image-2", "nano-banana-pro")),
    ],
)
def test_parse_setting_reads_typed_text(name: str, text: str, expected: object) -> None:
    assert parse_setting(name, text) == expected


def test_parse_setting_reads_prices_and_refuses_nonsense() -> None:
    prices = parse_setting("price_overrides", "gpt-image-2=8, nano-banana-pro = 20")
    assert prices == {"gpt-image-2": 8, "nano-banana-pro": 20}
    for name, text in [
        ("price_overrides", "gpt-image-2:8"),
        ("starter_grant", "lots"),
        ("blind_default", "maybe"),
        ("nope", "1"),
    ]:
        with pytest.raises(SettingsError):
            parse_setting(name, text)


def test_every_field_is_storable() -> None:
    # validate_setting must accept every default as-is, so adding a field needs nothing else.
    for field in dataclasses.fields(GuildSettings):
        assert validate_setting(field.name, getattr(DEFAULTS, field.name)) == getattr(
            DEFAULTS, field.name
        )
