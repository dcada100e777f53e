"""Follow-ups from a result: variants, reroll, swap model, /edit and /history (SimCord).

Each follow-up is a comparison of its own with a parent, charged and refunded through the same
job as /compare; the buttons survive a restart because everything they need is stored.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import simcord
from PIL import Image

from bot.comparisons.records import get_comparison, get_comparison_by_message
from bot.voting.store import VoteStore
from tests.cogs.conftest import Behaviour, FakeAdapter, World

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"


def png(size: tuple[int, int] = (96, 128), mode: str = "RGB", colour: Any = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


async def compare(w: World, **options: Any) -> simcord.InteractionResult:
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT, **options)
    assert res.response is not None and res.response.attachments, "the parent was posted"
    return res


async def pick(
    w: World, actor: simcord.MemberActor, message: Any, button: str
) -> simcord.InteractionResult:
    """Click a follow-up button; return the private picker it answered with."""
    clicked = await actor.click(message, label=button)
    assert w.env.errors == []
    (picker,) = clicked.followups or [clicked.response]
    assert picker.ephemeral
    return clicked


def picker_message(res: simcord.InteractionResult) -> Any:
    return (res.followups or [res.response])[0]


def options_of(message: Any) -> list[dict[str, Any]]:
    return [
        option
        for row in message.components
        for item in row["components"]
        for option in item.get("options", [])
    ]


async def test_variants_of_a_panel_are_two_new_images_charged_per_image(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    parent = await compare(w)
    assert await w.balance(w.member) == 30
    clicked = await pick(w, w.member, parent.response, "Variants")
    menu = picker_message(clicked)
    options = options_of(menu)
    assert [o["label"] for o in options] == [
        "Variants of A · GPT-Image 2",
        "Variants of B · Nano Banana Pro",
    ]
    assert [o["description"] for o in options] == ["16 credits", "44 credits"]

    fake.calls.clear()
    result = await w.member.select(menu, ["A"])
    assert result.response is not None and result.response.attachments
    (embed,) = result.response.embeds
    assert "GPT-Image 2 · variant 1" in str(embed.to_dict())
    # Image-to-image from the parent's panel A, a different seed per image.
    assert [model for model, _ in fake.calls] == ["gpt-image-2", "gpt-image-2"]
    requests = [request for _, request in fake.calls]
    assert all(len(r.references) == 1 for r in requests)
    assert requests[0].seed != requests[1].seed
    assert await w.balance(w.member) == 30 - 16
    child = await get_comparison_by_message(w.bot.db, result.response.id)
    parent_record = await get_comparison_by_message(w.bot.db, parent.response.id)
    assert child is not None and parent_record is not None
    assert (child.kind, child.parent_id, child.charged) == ("variants", parent_record.id, 16)
    assert await w.bot.ledger.audit() == []


async def test_a_failed_variant_is_refunded(world: World, fake: FakeAdapter) -> None:
    w = world
    parent = await compare(w)
    fake.behaviour["gpt-image-2"] = Behaviour(fail="upstream down")
    menu = picker_message(await pick(w, w.member, parent.response, "Variants"))
    result = await w.member.select(menu, ["A"])
    (embed,) = result.response.embeds
    assert embed.title == "No model produced an image"
    assert await w.balance(w.member) == 30, "both images failed: everything back"


async def test_reroll_runs_one_model_and_reuses_the_others_unpaid(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    parent = await compare(w)
    menu = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    assert [o["description"] for o in options_of(menu)] == ["8 credits", "22 credits"]
    fake.calls.clear()
    result = await w.member.select(menu, ["B"])
    assert result.response.attachments
    assert [model for model, _ in fake.calls] == ["nano-banana-pro"], "only B ran again"
    assert fake.calls[0][1].seed is not None
    assert await w.balance(w.member) == 30 - 22
    child = await get_comparison_by_message(w.bot.db, result.response.id)
    assert child is not None and child.kind == "reroll" and child.charged == 22
    assert [(p.letter, p.model_id, p.credits) for p in child.panels] == [
        ("A", "gpt-image-2", 0),
        ("B", "nano-banana-pro", 22),
    ]
    # A reroll is a match like any other: voting works on it.
    await w.other.react(result.response, "🇦")
    assert (
        await w.bot.db.fetchone("SELECT choice FROM votes WHERE comparison_id = ?", (child.id,))
        is not None
    )


async def test_swap_model_pays_only_the_new_model(world: World, fake: FakeAdapter) -> None:
    w = world
    parent = await compare(w)
    clicked = await pick(w, w.member, parent.response, "Swap model")
    menu = picker_message(clicked)
    models = await w.member.select(menu, ["B"])
    menu = picker_message(models)
    names = [o["label"] for o in options_of(menu)]
    assert (
        "Nano Banana 2" in names and "GPT-Image 2" not in names and "Nano Banana Pro" not in names
    )
    fake.calls.clear()
    result = await w.member.select(menu, ["nano-banana-2"])
    assert result.response is not None and result.response.attachments
    assert [model for model, _ in fake.calls] == ["nano-banana-2"]
    child = await get_comparison_by_message(w.bot.db, result.response.id)
    assert child is not None and child.kind == "swap"
    assert [p.model_id for p in child.panels] == ["gpt-image-2", "nano-banana-2"]
    price = child.charged
    assert price > 0 and await w.balance(w.member) == 30 - price


async def test_follow_ups_are_blocked_with_a_reason_and_charge_nothing(
    world: World, fake: FakeAdapter
) -> None:
    w = world
    fake.behaviour["nano-banana-pro"] = Behaviour(refuse="safety filter")
    parent = await compare(w)
    assert await w.balance(w.member) == 60 - 8
    menu = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    assert [o["value"] for o in options_of(menu)] == ["A"], "a refused panel offers nothing"

    # The model was turned off on the server since.
    await w.moderator.slash(
        w.channel, "config set", enabled_models="nano-banana-pro, nano-banana-2"
    )
    result = await w.member.select(menu, ["A"])
    assert "GPT-Image 2 is turned off on this server" in w.private_answer(result)

    # Not enough credits for variants of A after a big spend.
    await w.moderator.slash(w.channel, "config reset", setting="enabled_models")
    await w.bot.ledger.revoke(w.guild.id, w.member.id, 50, actor_id=w.moderator.id, reason="x")
    menu = picker_message(await pick(w, w.member, parent.response, "Variants"))
    result = await w.member.select(menu, ["A"])
    assert "You have 2 credits" in w.private_answer(result)
    assert await w.balance(w.member) == 2


async def test_a_deleted_parent_blocks_its_follow_ups(world: World) -> None:
    w = world
    parent = await compare(w)
    record = await get_comparison_by_message(w.bot.db, parent.response.id)
    assert record is not None
    await w.bot.db.execute("UPDATE comparisons SET state = 'deleted' WHERE id = ?", (record.id,))
    clicked = await w.member.click(parent.response, label="Variants")
    assert "was deleted" in w.private_answer(clicked)


async def test_blind_parents_keep_their_letters(world: World, fake: FakeAdapter) -> None:
    w = world
    parent = await compare(w, blind=True)
    menu = picker_message(await pick(w, w.other, parent.response, "Reroll"))
    labels = [o["label"] for o in options_of(menu)]
    assert labels == ["Reroll Model A", "Reroll Model B"]
    result = await w.other.select(menu, ["A"])
    (embed,) = result.response.embeds
    text = str(embed.to_dict())
    assert embed.title.startswith("Blind comparison")
    for name in ("GPT-Image 2", "Nano Banana Pro"):
        assert name not in text
    assert await w.balance(w.other) < 60, "anyone may branch; the brancher pays"


async def test_a_double_click_runs_once(world: World, fake: FakeAdapter) -> None:
    w = world
    parent = await compare(w)
    fake.behaviour["gpt-image-2"] = Behaviour(delay=20)
    menu = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    first = await w.member.select(menu, ["A"])
    assert first.acknowledged
    menu2 = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    second = await w.member.select(menu2, ["A"])
    assert "already running" in w.private_answer(second)
    await w.env.advance_time(21)
    assert first.response.attachments
    assert await w.balance(w.member) == 30 - 8, "charged once"


async def test_buttons_work_in_a_new_bot_process_on_the_same_database(
    world: World, fake: FakeAdapter
) -> None:
    """Everything a follow-up needs is in the database: a restart loses nothing."""
    w = world
    parent = await compare(w)
    cog = w.bot.get_cog("FollowUps")
    assert cog is not None
    # A restart: the cog (and any memory it had) is thrown away and loaded afresh.
    await w.bot.reload_extension("cogs.followups")
    await w.bot.reload_extension("cogs.compare")
    assert w.bot.get_cog("FollowUps") is not cog
    menu = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    result = await w.member.select(menu, ["A"])
    assert result.response.attachments


async def test_details_show_the_lineage_and_history_lists_it(world: World) -> None:
    w = world
    parent = await compare(w)
    menu = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    child = await w.member.select(menu, ["A"])
    details = await w.other.click(child.response, label="Details")
    text = str([e.to_dict() for e in (details.followups or [details.response])[0].embeds])
    parent_record = await get_comparison_by_message(w.bot.db, parent.response.id)
    assert parent_record is not None
    assert f"from comparison {parent_record.id}" in text
    assert f"/{parent.response.channel_id}/{parent.response.id}" in text, "a jump link"

    history = await w.member.slash(w.channel, "history")
    (page,) = history.followups or [history.response]
    assert page.ephemeral
    body = page.embeds[0].description
    assert body.index("reroll") < body.index("compare"), "newest first"
    assert "GPT-Image 2 vs Nano Banana Pro" in body and "8 credits" in body and "30 credits" in body


async def test_edit_compares_edits_of_one_image(world: World, fake: FakeAdapter) -> None:
    w = world
    res = await w.member.slash(
        w.channel, "edit", image=("cat.png", png((96, 128))), prompt="give the cat a red hat"
    )
    assert res.response is not None and res.response.attachments, w.env.errors
    record = await get_comparison_by_message(w.bot.db, res.response.id)
    assert record is not None and record.kind == "edit"
    assert all(len(request.references) == 1 for _, request in fake.calls)
    assert fake.calls[0][1].mask is None


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (("m.png", png((96, 128))), "has no transparency"),
        (("m.png", png((50, 50), "RGBA", (0, 0, 0, 0))), "must be the same size"),
        (("m.jpg", b"\xff\xd8\xff\xe0 not a png"), "must be a PNG"),
    ],
)
async def test_edit_explains_a_bad_mask_and_spends_nothing(
    world: World, fake: FakeAdapter, mask: tuple[str, bytes], expected: str
) -> None:
    w = world
    res = await w.member.slash(
        w.channel,
        "edit",
        image=("cat.png", png((96, 128))),
        prompt="a hat",
        mask=mask,
        model_a="gpt-image-2",
        model_b="gpt-image-1.5",
    )
    assert expected in w.private_answer(res)
    assert fake.calls == [] and await w.ledger_rows(w.member) == []


async def test_edit_refuses_models_that_cannot_use_a_mask(world: World, fake: FakeAdapter) -> None:
    w = world
    res = await w.member.slash(
        w.channel,
        "edit",
        image=("cat.png", png((96, 128))),
        prompt="a hat",
        mask=("m.png", png((96, 128), "RGBA", (0, 0, 0, 0))),
        model_a="gpt-image-2",
        model_b="nano-banana-pro",
    )
    text = w.private_answer(res)
    assert "Nano Banana Pro cannot edit inside a mask" in text and "GPT-Image 2" in text
    assert fake.calls == []


async def test_a_stored_parent_has_its_panel_images(world: World) -> None:
    w = world
    parent = await compare(w)
    record = await get_comparison_by_message(w.bot.db, parent.response.id)
    assert record is not None
    rows = await w.bot.db.fetchall(
        "SELECT idx, length(data) AS n FROM panel_images WHERE comparison_id = ?", (record.id,)
    )
    assert sorted(r["idx"] for r in rows) == [0, 1] and all(r["n"] > 0 for r in rows)
    assert await get_comparison(w.bot.db, record.id) is not None


async def test_variants_keep_preferences_but_carry_no_rating_votes(world: World) -> None:
    w = world
    parent = await compare(w)
    menu = picker_message(await pick(w, w.member, parent.response, "Variants"))
    variants = await w.member.select(menu, ["A"])
    reroll_menu = picker_message(await pick(w, w.member, parent.response, "Reroll"))
    reroll = await w.member.select(reroll_menu, ["A"])  # 60 - 30 - 16 - 8 credits
    for message in (variants.response, reroll.response):
        await w.other.react(message, "🇦")
    child = await get_comparison_by_message(w.bot.db, variants.response.id)
    assert child is not None
    preference = await w.bot.db.fetchone(
        "SELECT choice FROM votes WHERE comparison_id = ?", (child.id,)
    )
    assert preference is not None and preference["choice"] == "A", "the preference is kept"
    store = VoteStore(w.bot.db)
    rated = {c.id for c in await store.rated_comparisons(w.guild.id)}
    rerolled = await get_comparison_by_message(w.bot.db, reroll.response.id)
    assert rerolled is not None and rerolled.id in rated, "a reroll is a new match"
    assert child.id not in rated, "variants of one model have no opponent to rate"
