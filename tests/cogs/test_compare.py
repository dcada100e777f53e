"""/compare end to end: acknowledgement, progress, the posted split image, money, failures."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

import discord
import pytest
import simcord
from PIL import Image

from bot.comparisons.records import get_comparison, get_comparison_by_message
from bot.guild_settings import update_guild_settings
from tests.cogs.conftest import PANEL_COLOURS, Behaviour, FakeAdapter, World, assert_refused_quietly

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"
DEFER = 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE


def field(embed, name_start: str) -> str:
    """The value of the field whose name starts with ``name_start``."""
    for f in embed.fields:
        if f.name.startswith(name_start):
            return f.value
    raise AssertionError(f"no field {name_start!r} in {[f.name for f in embed.fields]}")


def reactions(message) -> list[str]:
    return [str(r.emoji) for r in message.reactions]


async def image_of(response) -> Image.Image:
    (attachment,) = response.attachments
    return Image.open(io.BytesIO(await attachment.read()))


def count_colour(image: Image.Image, colour: tuple[int, int, int]) -> int:
    counts = image.convert("RGB").getcolors(maxcolors=image.width * image.height) or []
    return next((n for n, c in counts if c == colour), 0)


def progress_edits(w: World) -> list[dict]:
    """The embeds of every progress frame sent so far, oldest first."""
    frames = []
    for request in w.requests("PATCH", "/messages/@original"):
        embeds = (request.json or {}).get("embeds") or []
        if embeds and embeds[0].get("title", "").startswith("Comparing"):
            frames.append(embeds[0])
    return frames


async def test_compare_posts_one_labelled_split_image(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, use_case="portrait")

    callbacks = w.requests("POST", "/callback")
    assert [c.json["type"] for c in callbacks] == [DEFER], "acknowledged with a (thinking) defer"
    first_edit = w.env.http_requests.index(w.requests("PATCH", "/messages/@original")[0])
    assert w.env.http_requests.index(callbacks[0]) < first_edit, "deferred before any other reply"
    assert len(progress_edits(w)) == 1, "the progress message was shown before the result"

    message = res.response
    assert message is not None and not message.ephemeral
    public = [f for f in res.followups if not f.ephemeral]
    assert public == [], "one message: the progress message became the result"
    # The balance is the member's own business: it follows privately.
    (private,) = res.followups
    assert private.ephemeral and private.content == "Charged 30 credits · your balance is 30."
    assert "balance" not in " ".join(f.value for f in message.embeds[0].fields)
    history = [m for m in w.channel.history() if m.author.bot]
    assert [m.id for m in history] == [message.id]

    image = await image_of(message)
    assert image.format == "PNG"
    assert message.attachments[0].filename.endswith(".png")
    for model, colour in PANEL_COLOURS.items():
        assert count_colour(image, colour) > 1000, f"{model}'s panel is in the image"
    from bot.compose import _BADGE_RGB  # the letter badges A and B, one per panel

    assert count_colour(image, _BADGE_RGB[0]) > 100 and count_colour(image, _BADGE_RGB[1]) > 100
    assert count_colour(image, _BADGE_RGB[2]) == 0

    (embed,) = message.embeds
    assert embed.title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    # The split image leads: it is the message's own attachment, shown above the card.
    assert embed.image.url is None and message.attachments
    assert "Short answer:" in embed.description and PROMPT[:40] in embed.description
    table = field(embed, "Criteria")
    assert table.startswith("```") and table.endswith("```")
    for row in ("Realism", "Text", "Cost", "First pick"):
        assert row in table
    # Short enough for a phone: the widest line of the table fits about 40 characters.
    assert max(len(line) for line in table.strip("`").splitlines()) <= 40
    assert "Measured" not in str([f.name for f in embed.fields]), "time and sizes are in Details"
    assert field(embed, "Cost") == "charged 30"
    details = await w.other.click(message, label="Details")
    assert "generate variants" in str(details.response.embeds[0].to_dict())
    assert "🇦 **GPT-Image 2**" in field(embed, "Panels")

    assert reactions(message.message) == ["🇦", "🇧", "🤝", "👎"]
    assert await w.balance(w.member) == 30
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert await w.bot.ledger.audit() == []

    record = await get_comparison_by_message(w.bot.db, message.id)
    assert record is not None and record.user_id == w.member.id and record.charged == 30
    assert record.vote_deadline == w.env.now() + timedelta(hours=24)


async def test_progress_is_edited_at_most_once_per_interval(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    fake.behaviour["gpt-image-2"] = Behaviour(delay=4)
    fake.behaviour["nano-banana-pro"] = Behaviour(delay=25)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    frames = progress_edits(w)
    assert len(frames) == 1
    assert "⏳ **GPT-Image 2** — queued" in frames[0]["description"]
    assert "30 credits reserved" in frames[0]["footer"]["text"]
    assert res.response.embeds[0].title.startswith("Comparing GPT-Image 2 vs Nano Banana Pro")

    await w.env.advance_time(5)  # GPT-Image 2 finished, but the next frame is not due yet
    assert len(progress_edits(w)) == 1
    await w.env.advance_time(5)
    frames = progress_edits(w)
    assert len(frames) == 2
    assert "✅ **GPT-Image 2** — done in 4.0 s" in frames[1]["description"]
    assert "🎨 **Nano Banana Pro** — generating 10 s" in frames[1]["description"]

    await w.env.advance_time(16)  # a frame at 20 s, then the result at 25 s
    assert len(progress_edits(w)) == 3
    assert res.response.embeds[0].title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert await w.balance(w.member) == 30


async def test_insufficient_credits_is_a_private_answer(world: World) -> None:
    w = world
    res = await w.member.slash(
        w.channel,
        "compare",
        prompt=PROMPT,
        model_a="gpt-image-2",
        model_b="nano-banana-pro",
        quality="high",
    )
    text = w.private_answer(res)
    assert "You have 60 credits" in text and "costs 71" in text
    assert "GPT-Image 2 39 + Nano Banana Pro 32" in text and "/credits daily" in text
    # The reserve is a database write: it runs after the acknowledgement, never before.
    assert [c.json["type"] for c in w.requests("POST", "/callback")] == [5]
    assert await w.ledger_rows(w.member) == [("starter", 60)]


async def test_a_refused_model_is_refunded_and_named(world: World, fake: FakeAdapter) -> None:
    w = world
    fake.behaviour["nano-banana-pro"] = Behaviour(refuse="safety filter")
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    (embed,) = res.response.embeds
    panels = field(embed, "Panels")
    assert (
        "🇧 **Nano Banana Pro** — 🚫 declined this prompt (safety filter); 22 credits refunded"
        in panels
    )
    assert field(embed, "Cost") == "charged 8 · refunded 22"
    image = await image_of(res.response)
    assert count_colour(image, PANEL_COLOURS["gpt-image-2"]) > 1000
    assert count_colour(image, PANEL_COLOURS["nano-banana-pro"]) == 0, "a placeholder, not an image"
    assert reactions(res.response.message) == ["🇦", "🤝", "👎"], (
        "no vote for a panel without an image"
    )
    assert await w.balance(w.member) == 52
    rows = await w.ledger_rows(w.member)
    assert rows == [("starter", 60), ("spend", -30), ("refund", 22)]


async def test_every_model_failing_refunds_everything(world: World, fake: FakeAdapter) -> None:
    w = world
    fake.behaviour["gpt-image-2"] = Behaviour(fail="the provider is overloaded")
    fake.behaviour["nano-banana-pro"] = Behaviour(refuse="safety")
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    (embed,) = res.response.embeds
    assert embed.title == "No model produced an image"
    assert "**GPT-Image 2** ⚠️ failed (the provider is overloaded)." in embed.description
    assert "**Nano Banana Pro** 🚫 declined this prompt (safety)." in embed.description
    assert "all 30 credits are back." in embed.description
    assert res.response.attachments == [] and res.response.message.reactions == []
    assert await w.balance(w.member) == 60
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30), ("refund", 30)]


async def test_a_failed_upload_refunds_and_says_so(world: World, fake: FakeAdapter) -> None:
    w = world
    fake.behaviour["gpt-image-2"] = Behaviour(delay=6)
    fake.behaviour["nano-banana-pro"] = Behaviour(delay=6)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert len(progress_edits(w)) == 1

    w.env.inject_error("PATCH", "/webhooks/*/*/messages/@original", status=500, times=1)
    await w.env.advance_time(7)

    (embed,) = res.response.embeds
    assert embed.title == "No result this time"
    assert "Discord did not accept the upload (HTTP 500)" in embed.description
    assert "all 30 credits are back." in embed.description
    assert res.response.attachments == [] and res.response.message.reactions == []
    assert await w.balance(w.member) == 60
    # Settled and recorded before the post, then refunded model by model when it failed.
    assert await w.ledger_rows(w.member) == [
        ("starter", 60),
        ("spend", -30),
        ("refund", 8),
        ("refund", 22),
    ]
    row = await w.bot.db.fetchone("SELECT delivery, charged, message_id FROM comparisons")
    assert row is not None and tuple(row) == ("failed", 0, None)
    assert await w.bot.ledger.audit() == []


async def test_after_15_minutes_the_result_goes_to_the_channel(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    fake.behaviour["gpt-image-2"] = Behaviour(delay=16 * 60)
    fake.behaviour["nano-banana-pro"] = Behaviour(delay=16 * 60)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    original = res.response.id

    await w.env.advance_time(16 * 60 + 1)

    posted = [m for m in w.channel.history() if m.author.bot]
    assert len(posted) == 1 and posted[0].id != original, "the stale progress message is gone"
    (message,) = posted
    assert w.member.mention in message.content and "15-minute" in message.content
    assert message.embeds[0].title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert message.attachments and reactions(message) == ["🇦", "🇧", "🤝", "👎"]
    assert await w.balance(w.member) == 30
    assert await get_comparison_by_message(w.bot.db, message.id) is not None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"model_a": "gpt-image-2", "model_b": "gpt-image-2"}, "Each model can appear only once"),
        ({"prompt": "    "}, "The prompt is empty"),
        ({"reference": ("notes.txt", b"just some words")}, "must be a PNG, JPEG or WebP image"),
        ({"reference": ("fake.png", b"not really a png")}, "must be a PNG, JPEG or WebP image"),
        ({"reference": ("huge.png", b"\0" * (21 * 1024 * 1024))}, "the limit is 20 MB"),
        ({"model_a": "gpt-image-1.5", "aspect": "16:9"}, "cannot draw 16:9"),
    ],
)
async def test_bad_input_is_a_private_answer_and_spends_nothing(
    world: World, fake: FakeAdapter, options: dict, expected: str
) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", **({"prompt": PROMPT} | options))
    assert expected in w.private_answer(res)
    assert await w.ledger_rows(w.member) == [] and fake.calls == []


async def test_a_banned_word_is_refused_before_anything_is_spent(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, banned_words=("lighthouse",))
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert "does not allow one of the words" in w.private_answer(res)
    assert await w.ledger_rows(w.member) == [] and fake.calls == []


async def test_discord_refuses_an_overlong_prompt_before_the_bot_sees_it(world: World) -> None:
    w = world
    with pytest.raises(simcord.OptionError):
        await w.member.slash(w.channel, "compare", prompt="x" * 4001)
    assert w.requests("POST", "/callback") == []
    assert await w.ledger_rows(w.member) == []


async def test_a_reference_image_is_sent_to_the_models(world: World, fake: FakeAdapter) -> None:
    w = world
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(picture, "PNG")
    await w.member.slash(
        w.channel, "compare", prompt=PROMPT, reference=("me.png", picture.getvalue())
    )
    assert len(fake.calls) == 2
    for _, request in fake.calls:
        (reference,) = request.references
        assert reference.mime_type == "image/png" and reference.data == picture.getvalue()


async def test_extra_requests_are_told_their_place_and_cooldowns_say_when(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, max_running_per_member=1, compare_cooldown_seconds=30
    )
    fake.behaviour["gpt-image-2"] = Behaviour(delay=20)
    first = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    second = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    simcord.assert_responded(second, ephemeral=True)
    assert "You already have 1 comparison running; this one would be #2" in second.response.content
    assert await w.balance(w.member) == 30, "only the first one was charged"

    await w.env.advance_time(21)
    assert first.response.embeds[0].title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    third = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    simcord.assert_responded(third, ephemeral=True, contains="you can use /compare again in 9 s")

    await w.env.advance_time(10)
    fake.behaviour.clear()
    fourth = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert fourth.response.attachments and await w.balance(w.member) == 0
    assert w.env.errors == [], "refusals are ordinary private answers, not errors"


async def test_blind_results_name_no_model(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, blind=True)
    (embed,) = res.response.embeds
    assert embed.title == "Blind comparison: A vs B — Portrait"
    text = str(embed.to_dict())
    for name in ("GPT-Image 2", "Nano Banana Pro"):
        assert name not in text
    assert not [f for f in embed.fields if f.name.startswith("Criteria")], (
        "the editorial dots per letter would name the models (see the test below)"
    )
    details = await w.other.click(res.response, label="Details")
    assert "GPT-Image 2" not in str([e.to_dict() for e in details.response.embeds])


async def test_details_and_delete_buttons(world: World) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    result = res.response

    details = await w.other.click(result, label="Details")
    simcord.assert_responded(details, ephemeral=True)
    # Who asked is a mention in the text (embeds may show it raw), and pings nobody.
    assert details.response.content.endswith(f"requested by <@{w.member.id}>")
    # Details acknowledges first (it reads the database); its answer is the follow-up.
    (sent,) = [
        r
        for r in w.env.http_requests
        if r.method == "POST" and "/webhooks/" in r.path and "requested by" in str(r.json)
    ]
    assert sent.json["allowed_mentions"]["parse"] == []
    params, features = details.response.embeds
    assert "<@" not in str(params.to_dict())
    assert PROMPT in field(params, "Prompt")
    assert "Adapter: `fake`" in field(params, "🇦 GPT-Image 2") and "Resolution: 240×320" in field(
        params, "🇦"
    )
    assert "OpenAI" in field(features, "GPT-Image 2")

    refused = await w.other.click(result, label="Delete")
    simcord.assert_responded(
        refused, ephemeral=True, contains="Only the member who ran this comparison"
    )

    confirm = await w.member.click(result, label="Delete")
    simcord.assert_responded(
        confirm, ephemeral=True, contains="Delete this comparison for everyone?"
    )
    done = await w.member.click(confirm.response, label="Delete")
    assert done.response.content == "Deleted."
    assert [m for m in w.channel.history() if m.author.bot] == []
    record = await get_comparison(w.bot.db, result.embeds[0].footer.text.split()[1])
    assert record is not None and record.state == "deleted"
    assert await w.balance(w.member) == 30, "deleting a delivered result refunds nothing"


async def test_result_buttons_survive_a_restart(world: World) -> None:
    from bot.client import SplitshotBot

    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    await w.env.restart_bot(SplitshotBot(w.bot.resources, clock=w.bot.clock, progress_interval=10))
    details = await w.other.click(res.response, label="Details")
    simcord.assert_responded(details, ephemeral=True)
    assert details.response.embeds[0].title.startswith("Details · comparison")


# ------------------------------------------------------------------ blind mode
def embed_text(embed: discord.Embed) -> str:
    """Every text a member can read in an embed: title, description, fields, footer."""
    parts = [embed.title or "", embed.description or "", embed.footer.text or ""]
    for f in embed.fields:
        parts += [f.name or "", f.value or ""]
    return "\n".join(parts)


def assert_gives_nothing_away(text: str) -> None:
    for name in ("GPT-Image 2", "Nano Banana Pro", "OpenAI", "Google", "fake", "gpt-image"):
        assert name not in text, f"{name!r} names a model"
    assert "●" not in text and "○" not in text, "editorial dots come from the catalog"
    assert "×" not in text, "each provider's output size is its own"
    numbers = re.sub(r"updated \w+ \d+, \d+", "", text)  # the catalog's date
    assert not re.search(r"\b(8|22)\b", numbers), "a panel's own price"


async def test_a_blind_result_hides_prices_dots_and_sizes_until_voting_closes(
    world: World,
) -> None:
    w = world
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, blind=True)
    message = res.response
    (embed,) = message.embeds
    assert_gives_nothing_away(embed_text(embed))
    assert PROMPT[:40] in embed.description
    assert "Verdict, prices and model names are revealed when voting closes." in embed.description
    assert "first test" not in embed.description and "first pick" not in embed.description
    assert "🇦 **Model A**" in field(embed, "Panels") and "🇧 **Model B**" in field(embed, "Panels")
    assert field(embed, "Cost") == "charged 30", "the total is not a tell"

    details = await w.other.click(message, label="Details")
    (params,) = details.response.embeds
    text = embed_text(params)
    assert_gives_nothing_away(text.replace(f"<@{w.member.id}>", ""))
    assert "Adapter" not in text and "Resolution" not in text and "Credits:" not in text
    assert PROMPT in field(params, "Prompt") and field(params, "Quality") == "standard"
    assert field(params, "Use case") == "Portrait" and field(params, "Aspect") == "3:4"
    assert field(params, "Charged") == "30 credits"
    for letter in "AB":
        panel = field(params, f"{'🇦' if letter == 'A' else '🇧'} Model {letter}")
        # The fake draws in real time, so only the shape of the time is fixed.
        assert "Status: delivered" in panel and re.search(r"Time: \d+\.\d\d s", panel)

    await w.member.slash(w.channel, "vote close")

    record = await get_comparison_by_message(w.bot.db, message.id)
    assert record is not None
    (embed,) = message.embeds
    text = embed_text(embed)
    for panel in record.panels:  # the letters were shuffled: read who drew which
        assert f"**{panel.label}**" in field(embed, "Panels")
    table = field(embed, "Criteria")
    assert "Realism" in table and "●" in table
    assert "Blind comparison" not in text
    details = await w.other.click(message, label="Details")
    params, features = details.response.embeds
    assert "Adapter: `fake`" in embed_text(params) and "Credits: 22" in embed_text(params)
    assert "OpenAI" in embed_text(features)


async def test_a_blind_refusal_names_no_price(world: World, fake: FakeAdapter) -> None:
    w = world
    fake.behaviour["nano-banana-pro"] = Behaviour(refuse="safety filter")
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, blind=True)
    (embed,) = res.response.embeds
    panels = field(embed, "Panels")
    assert "🚫 declined this prompt (safety filter); refunded" in panels
    assert "credits refunded" not in panels
    assert field(embed, "Cost") == "charged 8 · refunded 22"


# ------------------------------------------------------- work before the defer
async def test_community_results_are_fetched_after_the_acknowledgement(world: World) -> None:
    w = world
    fetched_at: list[int] = []

    async def community(guild_id: int, use_case_id: str, model_ids: Sequence[str]) -> list[str]:
        fetched_at.append(len(w.env.http_requests))
        return ["In this server GPT-Image 2 won 3 of 4 portrait duels."]

    w.bot.community_source = community
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    (callback,) = w.requests("POST", "/callback")
    assert callback.json["type"] == DEFER
    assert fetched_at and fetched_at[0] > w.env.http_requests.index(callback), (
        "the leaderboard is rebuilt after Discord has its answer"
    )
    assert "GPT-Image 2 won 3 of 4" in field(res.response.embeds[0], "This server's votes")


async def test_failing_community_results_cost_nothing(world: World) -> None:
    w = world

    async def broken(guild_id: int, use_case_id: str, model_ids: Sequence[str]) -> list[str]:
        raise RuntimeError("leaderboard on fire")

    w.bot.community_source = broken
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert res.response.attachments and await w.balance(w.member) == 30


# --------------------------------------------------------- after the delivery
async def test_failing_vote_reactions_keep_the_result_and_the_charge(world: World) -> None:
    w = world
    w.env.inject_error("PUT", "/channels/*/messages/*/reactions/*", status=500, times=None)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    (embed,) = res.response.embeds
    assert embed.title == "GPT-Image 2 vs Nano Banana Pro — Portrait" and res.response.attachments
    assert [f.content for f in res.followups] == ["Charged 30 credits · your balance is 30."]
    assert reactions(res.response.message) == []
    assert await w.balance(w.member) == 30
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert await get_comparison_by_message(w.bot.db, res.response.id) is not None


async def test_an_unexpected_error_after_the_post_refunds_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = world

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("emoji table on fire")

    w.bot.get_cog("CompareCog").seed_emojis = broken  # type: ignore[union-attr]
    with caplog.at_level(logging.ERROR, logger="cogs.compare.run"):
        res = await w.member.slash(w.channel, "compare", prompt=PROMPT)

    assert res.response.embeds[0].title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert res.response.attachments and all(f.ephemeral for f in res.followups)
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert await get_comparison_by_message(w.bot.db, res.response.id) is not None
    assert any("emoji table on fire" in str(r.exc_info) for r in caplog.records)


async def test_shutdown_lets_a_delivered_comparison_settle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    release = asyncio.Event()
    execute = w.bot.db.execute

    async def slow_execute(*args: object, **kwargs: object) -> int:
        # Attaching the posted message is the first write after the post.
        await w.env.external_wait(release.wait(), reason="a slow database")
        return await execute(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(w.bot.db, "execute", slow_execute)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert res.response.attachments, "posted; its message is still being attached"
    (task,) = w.bot.comparisons

    # Bot.close() unloads the extensions, which drops their modules from sys.modules; later
    # tests must keep the classes they imported (simcord.assert_error matches by class).
    for name, module in list(sys.modules.items()):
        if name.startswith("cogs."):
            monkeypatch.setitem(sys.modules, name, module)
    closing = asyncio.create_task(w.bot.close())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.cancelled() and not task.done(), "a delivered comparison is not cancelled"
    release.set()
    await closing

    assert task.done() and not task.cancelled()
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert await get_comparison_by_message(w.bot.db, res.response.id) is not None


# ------------------------------------------------------------------ cooldowns
async def test_two_requests_sent_together_share_one_cooldown(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, max_running_per_member=2, compare_cooldown_seconds=30
    )
    release = asyncio.Event()
    reserve = w.bot.ledger.reserve

    async def slow_reserve(*args: object, **kwargs: object) -> object:
        if not release.is_set():
            await w.env.external_wait(release.wait(), reason="a busy database")
        return await reserve(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(w.bot.ledger, "reserve", slow_reserve)
    first = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert first.acknowledged and not first.response.embeds, "acknowledged, still reserving"

    second = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert_refused_quietly(w.env)
    simcord.assert_responded(second, ephemeral=True, contains="you can use /compare again in 30 s")

    release.set()
    await w.env.settle()
    assert first.response.attachments
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]


async def test_requests_refused_before_the_answer_do_not_start_the_cooldown(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    await update_guild_settings(w.bot.db, w.guild.id, compare_cooldown_seconds=30)
    broke = await w.member.slash(w.channel, "compare", prompt=PROMPT, quality="high")
    assert "You have 60 credits" in w.private_answer(broke)
    bad = await w.member.slash(
        w.channel, "compare", prompt=PROMPT, model_a="gpt-image-2", model_b="gpt-image-2"
    )
    assert "only once" in w.private_answer(bad)

    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert res.response.attachments, "neither refusal started the cooldown"

    downloads: list[object] = []

    async def read_reference(attachment: object) -> object:
        downloads.append(attachment)
        raise AssertionError("downloaded while on cooldown")

    w.bot.get_cog("CompareCog").read_reference = read_reference  # type: ignore[union-attr]
    again = await w.member.slash(
        w.channel, "compare", prompt=PROMPT, reference=("me.png", b"\x89PNG")
    )
    assert_refused_quietly(w.env)
    simcord.assert_responded(again, ephemeral=True, contains="you can use /compare again in 30 s")
    assert downloads == [], "the limits are checked before the reference is downloaded"


# ----------------------------------------------------- a deleted progress reply
async def test_a_deleted_progress_message_falls_back_to_the_channel(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    fake.behaviour["gpt-image-2"] = Behaviour(delay=6)
    fake.behaviour["nano-banana-pro"] = Behaviour(delay=6)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    original = res.response.id

    w.env.inject_error(
        "PATCH",
        "/webhooks/*/*/messages/@original",
        status=404,
        code=10008,
        message="Unknown Message",
        times=None,
    )
    await w.env.advance_time(7)

    posted = [m for m in w.channel.history() if m.author.bot and m.id != original]
    (message,) = posted
    assert w.member.mention in message.content and "gone" in message.content
    assert message.embeds[0].title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert message.attachments and reactions(message) == ["🇦", "🇧", "🤝", "👎"]
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert await get_comparison_by_message(w.bot.db, message.id) is not None


# ------------------------------------------------------------ server prices
async def test_details_label_the_price_row_with_the_quality_used(world: World) -> None:
    w = world
    await w.moderator.slash(w.channel, "credits grant", member=w.member, amount=40, reason="x")
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, quality="high")
    details = await w.other.click(res.response, label="Details")
    _, features = details.response.embeds
    assert "**Credits per image (high):** 39 credits" in field(features, "GPT-Image 2")
    assert "(standard)" not in embed_text(features)
