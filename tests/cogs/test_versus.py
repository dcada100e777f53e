"""/versus and /models: the catalog's pages, free of charge."""

from __future__ import annotations

from collections.abc import Sequence

import simcord

from bot.guild_settings import update_guild_settings
from bot.verdict import build_verdict, dots
from cogs.versus import priced
from tests.cogs.conftest import World, assert_refused_quietly


async def test_versus_renders_the_comparison_page_from_the_catalog(world: World) -> None:
    w = world
    catalog = w.bot.catalog
    res = await w.member.slash(
        w.channel, "versus", model_a="gpt-image-2", model_b="nano-banana-pro", use_case="portrait"
    )
    portrait = catalog.use_case("portrait")
    models = [
        priced(catalog, catalog.model(m), {}, portrait.default_aspect)
        for m in ("gpt-image-2", "nano-banana-pro")
    ]
    verdict = build_verdict(catalog, models, portrait)

    # One screen: the short answer, the pick and the criterion table.
    (page,) = res.response.embeds
    assert not res.response.ephemeral
    assert page.title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert page.description == verdict.quick_verdict
    table = next(f.value for f in page.fields if f.name.startswith("Criterion"))
    for row in verdict.rows:
        line = next(line for line in table.splitlines() if line.startswith(row.name))
        assert all(dots(s) in line for s in row.scores)
        winner = {"GPT-Image 2": "A", "Nano Banana Pro": "B"}.get(row.winner, row.winner)
        assert line.rstrip().endswith(winner)
    assert "A = GPT-Image 2 · B = Nano Banana Pro" in table
    assert "December 5, 2026" in page.footer.text and "no credits used" in page.footer.text

    # The rest is behind "More", for whoever clicks, privately.
    more = await w.other.click(res.response, label="More")
    simcord.assert_responded(more, ephemeral=True)
    needs_embed, features = more.response.embeds
    needs = "\n".join(f.value for f in needs_embed.fields)
    for need in verdict.needs:
        assert need.need in needs and need.choose in needs
    avoid = next(f.value for f in needs_embed.fields if f.name == "Avoid if")
    assert avoid == verdict.avoid[0][1]
    assert "Avoid GPT-Image 2" not in avoid, "the cheaper model is never avoided for price"
    assert verdict.closing[:60] in next(f.value for f in needs_embed.fields if f.name == "Verdict")
    by_name = {f.name: f.value for f in features.fields}
    for model, price in ((models[0], 8), (models[1], 22)):
        assert model.provider in by_name[model.name] and f"{price} credits" in by_name[model.name]
        assert all(s in by_name[model.name] for s in model.strengths)
    assert await w.ledger_rows(w.member) == [], "free: no account touched"


async def test_versus_takes_up_to_four_models_and_refuses_duplicates(world: World) -> None:
    w = world
    res = await w.member.slash(
        w.channel,
        "versus",
        model_a="gpt-image-2",
        model_b="nano-banana-pro",
        model_c="nano-banana-2",
        model_d="gpt-image-1.5",
        use_case="poster",
    )
    (page,) = res.response.embeds
    assert (
        page.title
        == "GPT-Image 2 vs Nano Banana Pro vs Nano Banana 2 vs GPT-Image 1.5 — Poster / typography"
    )
    more = await w.member.click(res.response, label="More")
    needs_embed, features = more.response.embeds
    assert len(needs_embed) + len(features) <= 6000
    assert len([f for f in features.fields if "**Strengths**" in f.value]) == 4

    dup = await w.member.slash(w.channel, "versus", model_a="gpt-image-2", model_b="gpt-image-2")
    assert_refused_quietly(w.env)
    simcord.assert_responded(dup, ephemeral=True, contains="only once")


async def test_models_list_and_info(world: World) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, enabled_models=("gpt-image-2", "nano-banana-pro")
    )
    res = await w.member.slash(w.channel, "models list")
    simcord.assert_responded(res, ephemeral=True)
    (embed,) = res.response.embeds
    table = embed.description
    for model in w.bot.catalog.models.values():
        assert model.name in table
    assert "8/11/52" in table and "22/22/32" in table  # list prices: 1:1, first route
    line = next(line for line in table.splitlines() if line.startswith("Nano Banana 2"))
    assert line.endswith("off"), "disabled in this server"
    line = next(line for line in table.splitlines() if line.startswith("GPT-Image 2"))
    assert line.endswith("fake"), "served by the configured adapter"

    info = await w.member.slash(w.channel, "models info", model="nano-banana-pro")
    (embed,) = info.response.embeds
    assert embed.title == "Nano Banana Pro — Google (Gemini 3 Pro)"
    values = {f.name: f.value for f in embed.fields}
    assert values["Credits per image"] == "draft 22 · standard 22 · high 32"
    how = values["How the price is worked out"]
    assert "**gemini**: per image: 1K $0.134, 2K $0.134, 4K $0.24" in how
    assert "**fal**: per image: 1K $0.15, 2K $0.15, 4K $0.3" in how
    assert "Gemini API pricing page (updated 2026-10-01)" in how
    assert "× 130⌉, at least 22" in how
    assert "4K: yes" in values["Capabilities"] and "Realism" in values["Editorial ratings"]
    assert values["Safety filter"] == "Medium"


async def test_versus_acknowledges_before_gathering_the_servers_votes(world: World) -> None:
    w = world
    fetched_at: list[int] = []

    async def community(guild_id: int, use_case_id: str, model_ids: Sequence[str]) -> list[str]:
        fetched_at.append(len(w.env.http_requests))
        return ["In this server GPT-Image 2 won 3 of 4 portrait duels."]

    w.bot.community_source = community
    res = await w.member.slash(
        w.channel, "versus", model_a="gpt-image-2", model_b="nano-banana-pro"
    )
    (callback,) = w.requests("POST", "/callback")
    assert callback.json["type"] == 5, "deferred, publicly"
    assert fetched_at and fetched_at[0] > w.env.http_requests.index(callback)
    (page,) = res.response.embeds
    assert not res.response.ephemeral and res.followups == []
    assert page.title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert "GPT-Image 2 won 3 of 4" in next(
        f.value for f in page.fields if f.name == "This server's votes"
    )


async def test_versus_and_models_use_the_servers_prices(world: World) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, price_overrides={"gpt-image-2": 10})

    res = await w.member.slash(
        w.channel, "versus", model_a="gpt-image-2", model_b="nano-banana-pro"
    )
    more = await w.member.click(res.response, label="More")
    _, features = more.response.embeds
    by_name = {f.name: f.value for f in features.fields}
    assert "**Credits per image (standard):** 10 credits" in by_name["GPT-Image 2"]
    assert "**Starting price:** 10 credits" in by_name["GPT-Image 2"]
    assert "**Credits per image (standard):** 22 credits" in by_name["Nano Banana Pro"]

    listed = await w.member.slash(w.channel, "models list")
    table = listed.response.embeds[0].description
    line = next(line for line in table.splitlines() if line.startswith("GPT-Image 2"))
    # The override is the standard price; the other tiers keep the formula's ratio (8/11/52).
    assert "7/10/47" in line, "the override is the standard price; the other tiers scale"
    assert "22/22/32" in table

    info = await w.member.slash(w.channel, "models info", model="gpt-image-2")
    values = {f.name: f.value for f in info.response.embeds[0].fields}
    assert values["Credits per image"] == "draft 7 · standard 10 · high 47"
