"""Demo stand-ins: counted (and labelled) where the process runs on them, as in the playground."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from bot.catalog import load_catalog
from bot.comparisons.service import ComparisonService
from bot.credits.ledger import Ledger
from bot.db import Database
from bot.guild_settings import update_guild_settings
from bot.resources import Resources
from bot.settings import Settings
from providers.demo import DemoAdapter
from providers.registry import Registry
from tests.cogs.conftest import MODEL_TIMEOUT, World

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"


@pytest_asyncio.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    """No provider keys: every model is the offline demo stand-in, as in the playground."""
    settings = Settings(db_path=tmp_path / "splitshot.db")
    catalog = load_catalog()
    registry = Registry({}, demo=DemoAdapter(latency=(0.0, 0.0)))
    service = ComparisonService(catalog, registry, model_timeout_s=MODEL_TIMEOUT, allow_demo=True)
    db = await Database.open(settings.db_path)

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected HTTP call to {request.url}")

    http = httpx.AsyncClient(transport=httpx.MockTransport(no_network))
    try:
        yield Resources(settings, catalog, http, registry, service, db, Ledger(db))
    finally:
        await http.aclose()
        await db.close()


async def test_the_playground_rates_demo_stand_ins_and_says_so(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, min_votes_to_rank=1, vote_window_hours=1)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="portrait")
    assert res.response.embeds[0].title.endswith("· demo")
    await w.other.react(res.response, "🇦")
    await w.other.react(res.response, "🇧")  # changed their mind
    await w.env.advance_time(3600 + 60)
    assert "Nano Banana Pro · demo wins with 1 of 1 vote." in (
        res.response.embeds[0].description or ""
    )

    board = await w.other.slash(w.channel, "leaderboard", use_case="portrait")
    (embed,) = board.response.embeds
    assert embed.title == "Portrait leaderboard · demo stand-ins"
    assert "demo stand-ins" in (embed.description or "")
    assert (embed.footer.text or "").endswith("includes demo stand-ins · * demo stand-in")
    ratings = field_value(embed, "Ratings")
    assert "1  Nano Banana Pro*" in ratings and "2  GPT-Image 2*" in ratings

    # A server that switches demo stand-ins off keeps them out of its ratings.
    await update_guild_settings(w.bot.db, w.guild.id, demo_mode=False)
    board = await w.moderator.slash(w.channel, "leaderboard", use_case="portrait")
    (embed,) = board.response.embeds
    assert embed.title == "Portrait leaderboard"
    assert (embed.description or "").startswith("Not enough votes yet: nobody has voted here")


def field_value(embed: object, name: str) -> str:
    return next(f.value for f in embed.fields if f.name == name)  # type: ignore[attr-defined]
