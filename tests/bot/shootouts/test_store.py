"""The shoot-out store on both backends: rows round-trip, every state change happens once, and
restart recovery finds what a run left unfinished."""

from __future__ import annotations

from datetime import timedelta

from bot.db import AnyDatabase
from bot.shootouts.store import ShootoutStore
from tests.bot.shootouts.helpers import (
    CHANNEL,
    DEADLINE,
    GUILD,
    MODERATOR,
    START,
    STARTER,
    create,
    plan,
    post_round,
)


async def test_a_shootout_and_its_rounds_read_back_as_stored(store: ShootoutStore) -> None:
    shootout = plan("a fair poster", "a jazz poster", team_role_id=555, blind=False)
    await create(store, shootout, payer=0)
    row = await store.get("s1")
    assert row is not None
    assert (row.id, row.guild_id, row.channel_id, row.user_id, row.payer_id) == (
        "s1", GUILD, CHANNEL, STARTER, 0
    )  # fmt: skip
    assert (row.name, row.use_case, row.models) == (
        "Event posters", "poster", ("gpt-image-2", "nano-banana-pro")
    )  # fmt: skip
    assert (row.team_role_id, row.team_role_gone, row.blind, row.state) == (
        555, False, False, "running"
    )  # fmt: skip
    assert (row.deadline, row.created_at) == (DEADLINE, START)
    assert (row.thread_id, row.status_message_id, row.report_message_id) == (None, None, None)
    assert (row.closed_at, row.closed_by, row.reported_at) == (None, None, None)
    assert row.where_id == CHANNEL
    assert [
        (r.idx, r.prompt, r.comparison_id, r.price, r.state, r.hold_id) for r in row.rounds
    ] == [(n, p.prompt, p.id, p.total, "planned", None) for n, p in enumerate(shootout.rounds)]
    assert await store.get("nope") is None


async def test_rounds_move_on_once_and_keep_their_note(store: ShootoutStore) -> None:
    await create(store, plan("a fair poster", "a jazz poster"))
    await store.set_hold("s1", 0, 41)
    await store.set_hold("s1", 1, 42)
    assert await store.set_round("s1", 0, "running")
    assert await store.set_round("s1", 0, "posted", "Nano Banana Pro declined")
    assert not await store.set_round("s1", 0, "refunded", "too late"), "a posted round is done"
    assert await store.set_round("s1", 1, "refunded", "the bot restarted")
    row = await store.get("s1")
    assert row is not None
    assert [(r.state, r.note, r.hold_id) for r in row.rounds] == [
        ("posted", "Nano Banana Pro declined", 41),
        ("refunded", "the bot restarted", 42),
    ]


async def test_voting_opens_closes_and_reports_once(store: ShootoutStore) -> None:
    await create(store, plan())
    assert await store.due(DEADLINE + timedelta(hours=1)) == [], "still running: not due"
    assert not await store.close("s1", by=None, now=DEADLINE), "a running shoot-out stays open"
    assert await store.next_deadline() is None
    assert await store.open_voting("s1")
    assert not await store.open_voting("s1")
    assert await store.next_deadline() == DEADLINE
    assert await store.due(DEADLINE - timedelta(seconds=1)) == []
    assert await store.due(DEADLINE) == ["s1"]

    closed_at = DEADLINE + timedelta(seconds=3)
    assert await store.close("s1", by=MODERATOR, now=closed_at)
    assert not await store.close("s1", by=None, now=closed_at), "of two closes, one wins"
    assert await store.due(DEADLINE + timedelta(hours=1)) == []
    assert await store.next_deadline() is None
    assert await store.unreported() == ["s1"]
    assert await store.mark_reported("s1", 777, now=closed_at)
    assert not await store.mark_reported("s1", 888, now=closed_at)
    assert await store.unreported() == []
    row = await store.get("s1")
    assert row is not None
    assert (row.state, row.closed_at, row.closed_by) == ("closed", closed_at, MODERATOR)
    assert (row.reported_at, row.report_message_id) == (closed_at, 777)


async def test_lists_and_lookups(db: AnyDatabase, store: ShootoutStore) -> None:
    first, second, third = plan(shootout_id="s1"), plan(shootout_id="s2"), plan(shootout_id="s3")
    await create(store, first, now=START)
    await create(store, second, now=START + timedelta(minutes=1), channel=CHANNEL + 1)
    await create(store, third, now=START + timedelta(minutes=2))
    for shootout_id in ("s1", "s2", "s3"):
        assert await store.open_voting(shootout_id)
    assert await store.close("s3", by=None, now=DEADLINE)
    await store.set_where("s1", thread_id=99, status_message_id=500)
    await store.set_where("s1", thread_id=None)

    assert [row.id for row in await store.recent(GUILD)] == ["s2", "s1", "s3"], "open first"
    assert [row.id for row in await store.recent(GUILD, limit=1)] == ["s2"]
    assert await store.recent(GUILD + 1) == []
    latest = await store.latest_open(GUILD, CHANNEL)
    assert latest is not None and latest.id == "s1", "s3 is closed"
    assert (latest.thread_id, latest.status_message_id) == (None, 500), "the status stays"
    await store.set_where("s2", thread_id=98)
    found = await store.latest_open(GUILD, 98)
    assert found is not None and found.id == "s2" and found.where_id == 98
    assert await store.latest_open(GUILD, 12345) is None

    cid = await post_round(db, first, 0, message=4242, hold_id=41)
    assert await store.round_messages("s1") == {cid: (CHANNEL, 4242)}
    assert await store.round_messages("s2") == {}
    assert await store.team_for_message(4242) == ("s1", None, False)
    assert await store.team_for_message(1) is None
    assert await store.mark_team_role_gone("s1")
    assert not await store.mark_team_role_gone("s1")
    assert await store.team_for_message(4242) == ("s1", None, True)
    assert await store.round_comparison(cid) == ("posted", 41)
    assert await store.round_comparison(second.rounds[0].id) is None


async def test_recovery_finds_unfinished_rounds_and_sends_their_shootouts_to_voting(
    store: ShootoutStore,
) -> None:
    await create(store, plan("a", "b", "c", shootout_id="s1"))
    await create(store, plan("d", shootout_id="s2"))
    await create(store, plan("e", shootout_id="s3"))
    assert await store.set_round("s1", 0, "posted")
    assert await store.set_round("s1", 1, "running")
    assert await store.set_round("s2", 0, "refunded")
    assert await store.open_voting("s3")
    unfinished = await store.unfinished_rounds()
    assert [(r.shootout_id, r.idx, r.state) for r in unfinished] == [
        ("s1", 1, "running"), ("s1", 2, "planned"), ("s3", 0, "planned")
    ]  # fmt: skip
    assert await store.orphaned_to_voting() == 2
    assert await store.orphaned_to_voting() == 0
    states = {row.id: row.state for row in await store.recent(GUILD)}
    assert states == {"s1": "open", "s2": "open", "s3": "open"}


async def test_a_claim_on_one_shootout_leaves_the_others_free(store: ShootoutStore) -> None:
    async with store.claim("s1", wait=True) as first:
        assert first
        async with store.claim("s2") as other:
            assert other
