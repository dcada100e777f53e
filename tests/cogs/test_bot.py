"""The bot itself: its commands fit Discord's limits, its cogs load, its error boundary answers."""

from __future__ import annotations

import importlib.util
import logging
import re
from typing import Any

import pytest
import simcord

from bot.client import COGS, SplitshotBot
from tests.cogs.conftest import PROGRESS_INTERVAL, World

NAME = re.compile(r"^[-_\w]{1,32}$")
SUBCOMMAND_TYPES = (1, 2)


def _check_option_list(path: str, options: list[dict[str, Any]], problems: list[str]) -> int:
    """Check one level of options; return the characters they count towards the 4,000 total."""
    if len(options) > 25:
        problems.append(f"{path}: {len(options)} options (max 25)")
    required_seen_optional = False
    chars = 0
    for option in options:
        where = f"{path} {option['name']}"
        chars += _check_named(where, option, problems)
        if option["type"] in SUBCOMMAND_TYPES:
            chars += _check_option_list(where, option.get("options", []), problems)
            continue
        if option.get("required") and required_seen_optional:
            problems.append(f"{where}: a required option after an optional one")
        required_seen_optional |= not option.get("required")
        choices = option.get("choices") or []
        if len(choices) > 25:
            problems.append(f"{where}: {len(choices)} choices (max 25)")
        for choice in choices:
            if not 1 <= len(choice["name"]) <= 100:
                problems.append(f"{where}: choice name {choice['name']!r}")
            if isinstance(choice["value"], str) and not 1 <= len(choice["value"]) <= 100:
                problems.append(f"{where}: choice value {choice['value']!r}")
            chars += len(choice["name"]) + len(str(choice["value"]))
    return chars


def _check_named(where: str, item: dict[str, Any], problems: list[str]) -> int:
    name, description = item["name"], item.get("description", "")
    if not NAME.match(name) or name != name.lower():
        problems.append(f"{where}: bad name {name!r}")
    if not 1 <= len(description) <= 100:
        problems.append(f"{where}: description is {len(description)} characters (1-100)")
    return len(name) + len(description)


async def test_every_command_fits_discords_limits(world: World) -> None:
    tree = world.bot.tree
    commands = tree.get_commands()
    assert {c.name for c in commands} >= {"compare", "versus", "models", "credits", "config"}
    assert len(commands) <= 100
    problems: list[str] = []
    for command in commands:
        payload = command.to_dict(tree)
        chars = _check_named(f"/{command.name}", payload, problems)
        chars += _check_option_list(f"/{command.name}", payload.get("options", []), problems)
        if chars > 4000:
            problems.append(f"/{command.name}: {chars} characters in total (max 4000)")
    assert problems == []


def test_cogs_include_votes_only_when_it_exists() -> None:
    assert COGS[:5] == (
        "cogs.compare",
        "cogs.followups",
        "cogs.versus",
        "cogs.credits",
        "cogs.config",
    )
    assert ("cogs.votes" in COGS) == (importlib.util.find_spec("cogs.votes") is not None)


async def test_unexpected_errors_are_logged_with_a_reference(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = world

    async def broken(*args: object, **kwargs: object) -> list[tuple[int, int]]:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(w.bot.ledger, "top", broken)
    with caplog.at_level(logging.ERROR, logger="bot.client"):
        res = await w.member.slash(w.channel, "credits top")
    simcord.assert_error(w.env, RuntimeError)
    # /credits top answers in the channel, so it was acknowledged publicly: the error replaces
    # that "thinking" message with a private answer instead of a public one.
    assert res.response is None
    (reply,) = res.followups
    assert reply.ephemeral and "something went wrong on our side" in reply.content
    reference = re.search(r"reference `([0-9a-f]{8})`", reply.content)
    assert reference is not None
    assert any(reference.group(1) in r.getMessage() and r.exc_info for r in caplog.records)
    assert "database on fire" not in reply.content


async def test_the_bot_needs_its_database(world: World) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="needs the database"):
        SplitshotBot(replace(world.bot.resources, db=None, ledger=None))


def command_syncs(w: World, since: int = 0) -> list[str]:
    """The paths of the command syncs (PUT .../commands) the bot made since request ``since``."""
    app = w.env.backend.application_id
    return [
        r.path
        for r in w.env.http_requests[since:]
        if r.method == "PUT"
        and r.path.startswith(f"/applications/{app}/")
        and r.path.endswith("/commands")
    ]


def restarted(w: World, **options: Any) -> SplitshotBot:
    return SplitshotBot(
        w.bot.resources, clock=w.bot.clock, progress_interval=PROGRESS_INTERVAL, **options
    )


async def test_a_start_without_a_dev_server_syncs_nothing(world: World) -> None:
    w = world
    # The test bot asked for a global sync (a simulated Discord answers only synced commands);
    # that stands in for the `splitshot sync` an operator runs once per release.
    assert command_syncs(w) == [f"/applications/{w.env.backend.application_id}/commands"]
    before = len(w.env.http_requests)

    await w.env.restart_bot(restarted(w))

    assert command_syncs(w, before) == [], "no global sync on start, nor any other"
    res = await w.member.slash(w.channel, "credits balance")
    simcord.assert_responded(res, ephemeral=True)


async def test_a_start_with_a_dev_server_syncs_to_that_server_only(world: World) -> None:
    w = world
    before = len(w.env.http_requests)

    await w.env.restart_bot(restarted(w, dev_guild_id=w.guild.id))

    app = w.env.backend.application_id
    assert command_syncs(w, before) == [f"/applications/{app}/guilds/{w.guild.id}/commands"]
    res = await w.member.slash(w.channel, "credits balance")
    simcord.assert_responded(res, ephemeral=True)


async def test_a_bot_told_not_to_sync_ignores_its_dev_server(world: World) -> None:
    w = world
    before = len(w.env.http_requests)

    await w.env.restart_bot(restarted(w, dev_guild_id=w.guild.id, sync_commands="none"))

    assert command_syncs(w, before) == []
