"""Embed rendering: Discord's limits hold for any input, and the result card reads right."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import discord
import pytest

from bot.catalog import load_catalog
from bot.comparisons.records import ComparisonRecord, PanelRecord
from bot.comparisons.view import view_from_record
from bot.render.embed import (
    DESCRIPTION_LIMIT,
    FIELD_COUNT_LIMIT,
    FIELD_VALUE_LIMIT,
    TOTAL_LIMIT,
    ProgressLine,
    attachment_name,
    attachment_url,
    code_block,
    cost_line,
    cut,
    field_chunks,
    fit_embed,
    fit_embeds,
    progress_embed,
    result_embed,
)
from bot.render.pages import (
    details_embeds,
    model_embed,
    models_embed,
    versus_embed,
    versus_more_embeds,
)
from bot.verdict import build_verdict

CATALOG = load_catalog()


def assert_within_limits(embed: discord.Embed, budget: int = TOTAL_LIMIT) -> None:
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= FIELD_COUNT_LIMIT
    for f in embed.fields:
        assert 1 <= len(f.name) <= 256 and 1 <= len(f.value) <= FIELD_VALUE_LIMIT
        assert f.value.count("```") % 2 == 0, "a cut code block still closes"
    assert len(embed.footer.text or "") <= 2048
    assert len(embed.author.name or "") <= 256
    assert len(embed) <= budget


def test_cut_adds_an_ellipsis_only_when_needed() -> None:
    assert cut("short", 10) == "short"
    assert cut("a" * 20, 10) == "a" * 9 + "…"
    assert len(cut("x" * 5000, 1024)) == 1024
    assert cut(None, 5) == "" and cut("abc", 0) == ""


def test_fit_embed_survives_absurd_input() -> None:
    embed = discord.Embed(title="T" * 1000, description="D" * 10_000)
    embed.set_author(name="A" * 1000)
    embed.set_footer(text="F" * 5000)
    for i in range(40):
        embed.add_field(name=f"N{i}" * 200, value="V" * 5000, inline=True)
    embed.add_field(name="", value="")
    fitted = fit_embed(embed)
    assert_within_limits(fitted)
    assert fitted.title.endswith("…") and fitted.description and fitted.description.endswith("…")
    assert fitted.image.url is None


def test_fit_embed_keeps_small_embeds_unchanged() -> None:
    embed = discord.Embed(title="Hi", description="there", colour=discord.Colour.red())
    embed.add_field(name="a", value="b")
    assert fit_embed(embed).to_dict() == embed.to_dict()


def test_fit_embed_replaces_empty_field_text() -> None:
    embed = discord.Embed(title="x")
    embed.add_field(name="", value="")
    (field,) = fit_embed(embed).fields
    assert field.name and field.value


def test_code_blocks_are_cut_by_whole_lines() -> None:
    text = "\n".join(f"line {i:04d} " + "●" * 30 for i in range(200))
    block = code_block(text)
    assert len(block) <= FIELD_VALUE_LIMIT
    assert block.startswith("```\n") and block.endswith("\n…\n```")
    assert all(line.startswith("line") for line in block.splitlines()[1:-2])
    long_field = discord.Embed().add_field(name="t", value="```\n" + text + "\n```")
    assert_within_limits(fit_embed(long_field))


def test_many_embeds_share_one_budget() -> None:
    embeds = [discord.Embed(title=f"{i}", description="x" * 4000) for i in range(12)]
    fitted = fit_embeds(embeds)
    assert len(fitted) <= 10 and sum(len(e) for e in fitted) <= TOTAL_LIMIT


def test_field_chunks_split_long_lists() -> None:
    lines = [f"item {i} " + "y" * 90 for i in range(40)]
    chunks = field_chunks("Items", lines)
    assert chunks[0][0] == "Items" and all(name == "\u200b" for name, _ in chunks[1:])
    assert all(len(value) <= FIELD_VALUE_LIMIT for _, value in chunks)
    assert sum(value.count("item ") for _, value in chunks) == 40


def test_attachment_name_and_url_agree() -> None:
    name = attachment_name("abc123", "png")
    assert (
        name == "splitshot-abc123.png"
        and attachment_url(name) == "attachment://splitshot-abc123.png"
    )


def test_cost_line() -> None:
    assert cost_line(30, 0, 30) == "charged 30 · balance 30"
    assert cost_line(8, 22, 52) == "charged 8 · refunded 22 · balance 52"
    assert cost_line(8, 0, None) == "charged 8"


def record(*, blind: bool = False, state: str = "open", demo: bool = False) -> ComparisonRecord:
    suffix = " · demo" if demo else ""
    panels = (
        PanelRecord(0, "A", "gpt-image-2", f"GPT-Image 2{suffix}", "openai", "ok", None, 3.2, 8, 1024, 1536),
        PanelRecord(1, "B", "nano-banana-pro", f"Nano Banana Pro{suffix}", "gemini", "refused", "safety",
                    1.0, 0, None, None),
    )  # fmt: skip
    return ComparisonRecord(
        id="0123456789ab",
        guild_id=1,
        channel_id=2,
        message_id=3,
        user_id=4,
        prompt="A lighthouse keeper " * 40,
        use_case="portrait",
        aspect="3:4",
        quality="standard",
        blind=blind,
        demo=demo,
        charged=8,
        state=state,
        vote_deadline=datetime(2026, 1, 2, tzinfo=UTC),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        panels=panels,
    )


def test_result_card_from_a_stored_record() -> None:
    card = view_from_record(record(demo=True), CATALOG, image_url="attachment://x.png")
    assert card.charged == 8 and card.refunded == 22, (
        "a refused panel's price comes from the catalog"
    )
    embed = result_embed(card)
    assert_within_limits(embed)
    assert embed.title == "GPT-Image 2 vs Nano Banana Pro — Portrait · demo"
    assert embed.description.startswith("⚠️ **Demo stand-ins — not real model output.**")
    assert embed.image.url == "attachment://x.png"
    fields = {f.name: f.value for f in embed.fields}
    assert (
        "🇧 **Nano Banana Pro · demo** — 🚫 declined this prompt (safety); 22 credits refunded"
        in fields["Panels"]
    )
    assert fields["Cost"] == "charged 8 · refunded 22"
    assert "🇦 for the better image" in fields["Vote"] and "<t:" in fields["Vote"]
    assert embed.colour == discord.Colour(0xFAA61A)


def test_blind_cards_never_name_a_model_until_revealed() -> None:
    community = ["In this server GPT-Image 2 won 14 of 22 portrait duels."]
    hidden = result_embed(view_from_record(record(blind=True), CATALOG, community=community))
    text = str(hidden.to_dict())
    assert "GPT-Image 2" not in text and "Nano Banana Pro" not in text
    assert hidden.title == "Blind comparison: A vs B — Portrait"
    revealed = result_embed(
        view_from_record(
            record(blind=True, state="closed"),
            CATALOG,
            vote_headline="GPT-Image 2 wins with 3 of 4 votes.",
            vote_lines=("🇦 GPT-Image 2 — 3", "🤝 Tie — 1"),
        )
    )
    assert revealed.title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert "Voting closed:** GPT-Image 2 wins" in revealed.description
    assert {f.name for f in revealed.fields} >= {"Votes"} and "Vote" not in {
        f.name for f in revealed.fields
    }


@pytest.mark.parametrize("count", [2, 3, 4])
def test_versus_page_fits_for_every_model_count(count: int) -> None:
    models = list(CATALOG.models.values())[:count]
    verdict = build_verdict(CATALOG, models, CATALOG.use_case("social-ad"))
    page = versus_embed(verdict, models, community=["in this server X won " * 20] * 10)
    assert_within_limits(page)
    more = versus_more_embeds(verdict, models)
    assert sum(len(e) for e in more) <= TOTAL_LIMIT
    for embed in more:
        assert_within_limits(embed)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_versus_first_screen_is_short(count: int) -> None:
    # One screen: the short answer, the pick and the criteria; the prose waits behind "More".
    models = list(CATALOG.models.values())[:count]
    verdict = build_verdict(CATALOG, models, CATALOG.use_case("portrait"))
    page = versus_embed(verdict, models)
    assert [f.name for f in page.fields] == [
        "Criterion by criterion · editorial dots, cost from price"
    ]
    lines = (page.description or "").count("\n") + 1 + len(page.fields[0].value.splitlines())
    assert len(page) < 1800 and lines < 20, (len(page), lines)


def test_progress_lines() -> None:
    lines = [
        ProgressLine("GPT-Image 2", "generating", 4.4),
        ProgressLine("Nano Banana Pro", "done", 12.34),
        ProgressLine("C", "refused", 1.0, "safety"),
        ProgressLine("D", "failed", 2.0, "timeout"),
        ProgressLine("E", "queued"),
    ]
    assert [line.text() for line in lines] == [
        "🎨 **GPT-Image 2** — generating 4 s",
        "✅ **Nano Banana Pro** — done in 12.3 s",
        "🚫 **C** — declined (safety)",
        "⚠️ **D** — failed (timeout)",
        "⏳ **E** — queued",
    ]
    embed = progress_embed(
        "Comparing", "prompt " * 1000, lines, reserved="30 credits", composing=True
    )
    assert_within_limits(embed)
    assert "🧩 Composing" in embed.description


def texts(embeds: list[discord.Embed]) -> str:
    parts: list[str] = []
    for embed in embeds:
        parts += [embed.title or "", embed.description or "", embed.footer.text or ""]
        parts += [f"{f.name}\n{f.value}" for f in embed.fields]
    return "\n".join(parts)


def test_a_hidden_blind_card_shows_no_price_dots_size_or_pick() -> None:
    card = view_from_record(record(blind=True), CATALOG)
    embed = result_embed(card)
    assert_within_limits(embed)
    text = texts([embed])
    assert "●" not in text and "○" not in text and "1024×1536" not in text
    assert "8 cr" not in text and "22 credits" not in text and "first test" not in text
    assert card.verdict.pick_sentence not in text
    assert "Verdict, prices and model names are revealed when voting closes." in text
    fields = {f.name: f.value for f in embed.fields}
    assert "Criteria · editorial dots, cost from price" not in fields
    assert fields["Panels"].splitlines() == [
        "🇦 **Model A**",
        "🇧 **Model B** — 🚫 declined this prompt (safety); refunded",
    ]
    assert "Measured · this run" not in fields, "time and sizes are in Details"
    assert fields["Cost"] == "charged 8 · refunded 22", "totals only"

    revealed = texts([result_embed(view_from_record(record(blind=True, state="closed"), CATALOG))])
    assert "●" in revealed, "revealed: the criteria table is back"
    assert "22 credits refunded" in revealed


def test_hidden_details_keep_only_what_names_no_model() -> None:
    hidden = details_embeds(record(blind=True), CATALOG)
    assert len(hidden) == 1, "no feature table while hidden"
    text = texts(hidden)
    for tell in ("GPT-Image 2", "gpt-image-2", "openai", "gemini", "Adapter", "Resolution",
                 "Credits:", "1024×1536"):  # fmt: skip
        assert tell not in text
    fields = {f.name: f.value for f in hidden[0].fields}
    assert fields["Quality"] == "standard" and fields["Aspect"] == "3:4"
    assert fields["Charged"] == "8 credits (refunded 22)"
    assert "Status: delivered" in fields["🇦 Model A"] and "Time: 3.20 s" in fields["🇦 Model A"]
    assert "Status: declined — safety" in fields["🇧 Model B"]

    shown = texts(details_embeds(record(blind=True), CATALOG, reveal=True))
    assert "Adapter: `openai`" in shown and "Resolution: 1024×1536" in shown
    assert "Credits: 22 (refunded)" in shown


def test_details_name_the_price_row_after_the_quality_used() -> None:
    _, features = details_embeds(replace(record(), quality="high"), CATALOG)
    text = texts([features])
    assert "**Credits per image (high):**" in text and "(standard)" not in text


def test_catalog_pages_show_the_prices_they_are_given() -> None:
    gpt = CATALOG.model("gpt-image-2")
    prices = {"gpt-image-2": {"draft": 10, "standard": 10, "high": 30}}
    table = models_embed(CATALOG, {}, prices).description or ""
    assert "GPT-Image 2" in table and "10/10/30" in table and "22/22/32" in table
    assert "8/11/52" in (models_embed(CATALOG, {}).description or "")
    info = model_embed(gpt, CATALOG, "fake", prices["gpt-image-2"])  # type: ignore[arg-type]
    assert {f.name: f.value for f in info.fields}["Credits per image"] == (
        "draft 10 · standard 10 · high 30"
    )
