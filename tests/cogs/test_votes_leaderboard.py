"""/leaderboard (table and chart) and the server's results cited by /versus and /compare."""

from __future__ import annotations

import io
import math
import os

import discord
import simcord
from PIL import Image

from bot.guild_settings import update_guild_settings
from bot.voting.chart import (
    CHART_FILENAME,
    FOOTER,
    HEADER,
    PALETTE,
    PROGRESS_FOOTER,
    PROGRESS_ROW,
    PROGRESS_TOP,
    ROW,
    WIDTH,
)
from bot.voting.store import BOOTSTRAP_ROUNDS, VoteStore
from cogs.votes import VotesCog
from tests.bot.voting.test_boards import CountingFit
from tests.cogs.conftest import World

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"
BACKGROUND = (43, 45, 49)
SAVE_TO = os.environ.get("SPLITSHOT_SAVE_CHART")  # to look at the chart by hand
#: a ranked row's own colour fills its rank badge (r 16) and its dot (r 10) at most
BADGE_AND_DOT = math.pi * (16**2 + 10**2)


def field(embed: discord.Embed, name_start: str) -> str:
    for f in embed.fields:
        if (f.name or "").startswith(name_start):
            return f.value or ""
    raise AssertionError(f"no field {name_start!r} in {[f.name for f in embed.fields]}")


def table_rows(value: str) -> list[str]:
    """The lines of a monospace field, without the fences and the header."""
    lines = value.strip("`").strip("\n").splitlines()
    return lines[1:]


async def chart(message: simcord.ResponseMessage) -> Image.Image:
    (attachment,) = message.attachments
    assert attachment.filename == CHART_FILENAME
    image = Image.open(io.BytesIO(await attachment.read()))
    image.load()
    return image.convert("RGB")


def share(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 12) -> float:
    """The share of pixels within ``tolerance`` of ``colour`` (edges are anti-aliased)."""
    counts = image.getcolors(maxcolors=image.width * image.height) or []
    near = sum(
        n for n, c in counts if max(abs(a - b) for a, b in zip(c, colour, strict=True)) <= tolerance
    )
    return near / (image.width * image.height)


async def vote_on_two_results(w: World) -> None:
    """Two portrait results, eight counted votes: GPT-Image 2 wins five, Nano Banana Pro two."""
    await update_guild_settings(
        w.bot.db, w.guild.id, compare_cooldown_seconds=0, min_votes_to_rank=3
    )
    carol = w.guild.add_member(w.env.create_user("carol"))
    dave = w.guild.add_member(w.env.create_user("dave"))
    ballots = [
        {w.other: "🇦", w.moderator: "🇦", carol: "🇦", dave: "🇧"},
        {w.other: "🇦", w.moderator: "🤝", carol: "🇧", dave: "🇦"},
    ]
    for ballot in ballots:
        res = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="portrait")
        for voter, emoji in ballot.items():
            await voter.react(res.response, emoji)


async def test_not_enough_votes_is_one_clear_sentence(world: World) -> None:
    w = world
    res = await w.other.slash(w.channel, "leaderboard", use_case="portrait")

    message = res.response
    assert not message.ephemeral
    (embed,) = message.embeds
    assert embed.title == "Portrait leaderboard"
    assert (embed.description or "").startswith(
        "Not enough votes yet: nobody has voted here, and a model needs 5 votes to be ranked."
    )
    assert "🇦 🇧 🇨 🇩 for the better image" in (embed.description or "")
    assert embed.image.url == f"attachment://{CHART_FILENAME}"
    assert "not editorial ratings" in (embed.footer.text or "")
    image = await chart(message)
    # Title, subtitle, "Not enough votes yet" and one card holding the how-to-vote hint.
    assert image.size == (WIDTH, HEADER + PROGRESS_TOP + PROGRESS_ROW + PROGRESS_FOOTER)
    assert share(image, BACKGROUND) > 0.5


async def test_votes_rank_the_models_in_a_table_and_a_chart(world: World) -> None:
    w = world
    await vote_on_two_results(w)
    res = await w.other.slash(w.channel, "leaderboard", use_case="portrait")

    (embed,) = res.response.embeds
    assert embed.title == "Portrait leaderboard"
    assert (embed.description or "").startswith(
        "Bradley–Terry ratings from 8 votes on 2 comparisons, with 95% intervals"
    )
    first, second = table_rows(field(embed, "Ratings"))
    assert first.startswith("1  GPT-Image 2") and first.endswith("8  62%")
    assert second.startswith("2  Nano Banana Pro") and second.endswith("8  25%")
    assert " ± " in first and " ± " in second
    gpt, nano = table_rows(field(embed, "Cost, speed and refusals"))
    assert gpt.split()[-4:] == ["3.2", "0.0", "s", "0%"], "16 credits for 5 wins"
    assert nano.split()[-4:] == ["22.0", "0.0", "s", "0%"]

    image = await chart(res.response)
    if SAVE_TO:
        image.save(SAVE_TO)
    assert image.size == (WIDTH, HEADER + 2 * ROW + FOOTER), "two rated rows, one card each"
    for colour in PALETTE[:2]:
        assert share(image, colour) * image.width * image.height > BADGE_AND_DOT, "and a bar"
    assert share(image, PALETTE[2]) == 0, "no third model drawn"


async def test_models_below_the_threshold_are_listed_without_a_rank(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    await w.other.react(res.response, "🇦")
    await w.moderator.react(res.response, "🇧")

    board = await w.other.slash(w.channel, "leaderboard")
    (embed,) = board.response.embeds
    assert embed.title == "Leaderboard — all use cases"
    assert "the most any model has is 2" in (embed.description or "")
    rows = table_rows(field(embed, "Ratings"))
    assert [row.split("  ")[0] for row in rows] == ["—", "—"]
    assert all("not ranked" in row and "2/5" in row for row in rows)


async def test_one_comparison_ranks_with_an_unknown_margin(world: World) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, compare_cooldown_seconds=0, min_votes_to_rank=3
    )
    carol = w.guild.add_member(w.env.create_user("carol"))
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="portrait")
    for voter, emoji in {w.other: "🇦", w.moderator: "🇦", carol: "🇧"}.items():
        await voter.react(res.response, emoji)

    board = await w.other.slash(w.channel, "leaderboard", use_case="portrait")
    (embed,) = board.response.embeds
    first, second = table_rows(field(embed, "Ratings"))
    assert first.startswith("1  GPT-Image 2") and "needs 1 more vote" in first, "no false ± 0"
    assert second.startswith("2  Nano Banana Pro") and "needs 1 more vote" in second
    assert "?" not in field(embed, "Ratings")
    assert "A rating without a ± margin needs votes on more comparisons" in (
        embed.description or ""
    )
    image = await chart(board.response)
    assert image.size == (WIDTH, HEADER + 2 * ROW + FOOTER)
    for colour in PALETTE[:2]:
        pixels = share(image, colour) * image.width * image.height
        assert 0 < pixels < BADGE_AND_DOT, "a rank badge and a dot, but no interval bar"


async def test_versus_and_later_verdicts_cite_the_servers_results(world: World) -> None:
    w = world
    await vote_on_two_results(w)

    page = await w.other.slash(
        w.channel, "versus", model_a="gpt-image-2", model_b="nano-banana-pro", use_case="portrait"
    )
    cited = field(page.response.embeds[0], "This server's votes")
    assert "In this server, GPT-Image 2 won 5 of 8 portrait votes (rating " in cited
    assert "In this server, Nano Banana Pro won 2 of 8 portrait votes (rating " in cited

    later = await w.other.slash(w.channel, "compare", prompt=PROMPT, use_case="portrait")
    verdict = field(later.response.embeds[0], "This server's votes")
    assert "GPT-Image 2 won 5 of 8 portrait votes" in verdict

    landscape = await w.other.slash(
        w.channel, "versus", model_a="gpt-image-2", model_b="nano-banana-pro", use_case="landscape"
    )
    names = [f.name for f in landscape.response.embeds[0].fields]
    assert "This server's votes" not in names, "portrait votes say nothing about landscapes"


async def test_a_blind_result_cites_no_model_by_name(world: World) -> None:
    w = world
    await vote_on_two_results(w)
    blind = await w.other.slash(
        w.channel, "compare", prompt=PROMPT, use_case="portrait", blind=True
    )
    text = str(blind.response.embeds[0].to_dict())
    assert "GPT-Image 2" not in text and "Nano Banana Pro" not in text


async def test_versus_reuses_one_fit_until_a_vote_and_only_leaderboard_bootstraps(
    world: World,
) -> None:
    w = world
    fit = CountingFit()
    await w.bot.remove_cog("Votes")
    await w.bot.add_cog(
        VotesCog(w.bot, store=VoteStore(w.bot.db, clock=discord.utils.utcnow, fit=fit))
    )
    await vote_on_two_results(w)
    await w.bot.ledger.grant(w.guild.id, w.member.id, 30, "one more", actor_id=w.moderator.id)
    result = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="portrait")
    erin = w.guild.add_member(w.env.create_user("erin"))
    fit.calls.clear()

    async def versus() -> str:
        page = await w.other.slash(
            w.channel,
            "versus",
            model_a="gpt-image-2",
            model_b="nano-banana-pro",
            use_case="portrait",
        )
        return field(page.response.embeds[0], "This server's votes")

    first, second = await versus(), await versus()
    assert first == second and "GPT-Image 2 won 5 of 8 portrait votes" in first
    assert fit.rounds == [0], "the second /versus reads the cached fit"

    await erin.react(result.response, "🇦")
    assert "GPT-Image 2 won 6 of 9 portrait votes" in await versus()
    assert fit.rounds == [0, 0], "the vote made the next lookup refit, without a bootstrap"

    await w.other.slash(w.channel, "leaderboard", use_case="portrait")
    await w.other.slash(w.channel, "leaderboard", use_case="portrait")
    await versus()
    assert fit.rounds == [0, 0, BOOTSTRAP_ROUNDS], "one bootstrap, reused by both"
