"""The command line and the bot charge the same account the same for the same server.

Regression: with ``--db --guild`` the CLI used to ignore the server's price overrides, enabled
models, banned words and defaults, so the same request cost different amounts by door.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.catalog import load_catalog
from bot.cli.main import main
from bot.comparisons.plan import CompareRequest
from bot.comparisons.policy import Policy
from bot.comparisons.records import get_comparison
from bot.credits.ledger import Ledger
from bot.db import Database
from bot.guild_settings import get_guild_settings, update_guild_settings
from bot.settings import Settings
from providers.demo import DemoAdapter
from providers.registry import Registry

GUILD, USER = 7, 8


async def configure(path: Path) -> None:
    db = await Database.open(path)
    try:
        await update_guild_settings(
            db,
            GUILD,
            price_overrides={"gpt-image-2": 12},  # above the operator's floor
            enabled_models=("gpt-image-2", "nano-banana-pro"),
            banned_words=("moat",),
        )
    finally:
        await db.close()


async def bot_price(path: Path, request: CompareRequest) -> int:
    """What the bot's policy charges for this request on this server."""
    db = await Database.open(path)
    try:
        settings = await get_guild_settings(db, GUILD)
    finally:
        await db.close()
    registry = Registry({}, demo=DemoAdapter(latency=(0, 0)))
    policy = Policy.for_server(load_catalog(), registry, allow_demo=True, settings=settings)
    return policy.plan(request).total


def test_the_cli_charges_what_the_bot_charges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "server.db"
    asyncio.run(configure(path))
    settings = Settings.from_env({"SPLITSHOT_DEMO_LATENCY": "0", "SPLITSHOT_DB": str(path)})
    base = ["compare", "a fox", "--db", str(path), "--guild", str(GUILD), "--user", str(USER)]

    code = main([*base, "--out", str(tmp_path / "a"), "--json"], settings=settings)
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    expected = asyncio.run(bot_price(path, CompareRequest("a fox")))
    assert data["price"]["total"] == data["charged"] == expected == 12 + 22
    assert data["balance_after"] == 60 - expected

    async def stored() -> tuple[object, int]:
        db = await Database.open(path)
        try:
            record = await get_comparison(db, data["id"])
            return record, await Ledger(db).balance(GUILD, USER)
        finally:
            await db.close()

    record, balance = asyncio.run(stored())
    assert record is not None and record.charged == expected  # type: ignore[attr-defined]
    assert record.delivery == "posted" and balance == 60 - expected  # type: ignore[attr-defined]

    code = main([*base, "--model", "nano-banana-2", "--model", "gpt-image-2"], settings=settings)
    assert code == 2 and "Nano Banana 2 is turned off on this server" in capsys.readouterr().err
    code = main([*base[:1], "a moat", *base[2:]], settings=settings)
    assert code == 2 and "does not allow" in capsys.readouterr().err
