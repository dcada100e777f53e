"""The team pool and a stored shoot-out's report and export, on both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.credits.ledger import Ledger, LineItem
from bot.credits.rules import InsufficientCredits
from bot.db import AnyDatabase
from bot.guild_settings import update_guild_settings
from bot.shootouts.export import ExportBlocked, export_comparison, export_shootout
from bot.shootouts.pool import POOL_USER_ID, open_pool
from bot.shootouts.report import build_report, load, load_comparison
from bot.shootouts.store import ShootoutStore
from bot.voting.store import VoteStore
from tests.bot.shootouts.helpers import (
    DEADLINE,
    GUILD,
    MODERATOR,
    START,
    create,
    plan,
    post_round,
)
from tests.pg import fetch

ROUND = (LineItem("gpt-image-2", "GPT-Image 2", 8), LineItem("nano-banana-pro", "NBP", 22))


async def test_the_pool_opens_empty_and_never_gets_a_starter_grant(db: AnyDatabase) -> None:
    await update_guild_settings(db, GUILD, starter_grant=50)
    ledger = Ledger(db)
    await open_pool(db, GUILD, now=START)
    await open_pool(db, GUILD, now=START + timedelta(hours=1))
    assert await ledger.balance(GUILD, POOL_USER_ID) == 0
    assert await fetch(db, "SELECT COUNT(*) FROM ledger") == [(0,)]
    assert await ledger.grant(GUILD, POOL_USER_ID, 100, "posters", actor_id=MODERATOR) == 100
    await open_pool(db, GUILD)
    assert await ledger.balance(GUILD, POOL_USER_ID) == 100, "opening again changes nothing"
    assert await ledger.audit() == []


async def test_racing_spends_never_overdraw_the_pool_and_each_refund_happens_once(
    db: AnyDatabase,
) -> None:
    ledger = Ledger(db)
    await open_pool(db, GUILD)
    await ledger.grant(GUILD, POOL_USER_ID, 100, "posters", actor_id=MODERATOR)

    async def spend(n: int) -> int | None:
        try:
            hold = await ledger.reserve(GUILD, POOL_USER_ID, ROUND, comparison_id=f"round-{n}")
        except InsufficientCredits:
            return None
        return hold.id

    holds = [h for h in await asyncio.gather(*(spend(n) for n in range(10))) if h is not None]
    assert len(holds) == 3, "100 credits pay for three rounds of 30"
    assert await ledger.balance(GUILD, POOL_USER_ID) == 10
    first, second = await asyncio.gather(
        ledger.release(holds[0], "not started"), ledger.release(holds[0], "not started")
    )
    assert sorted([first.already_closed, second.already_closed]) == [False, True]
    assert await ledger.balance(GUILD, POOL_USER_ID) == 40
    kinds = await fetch(
        db, "SELECT kind, COUNT(*) FROM ledger WHERE user_id = ? GROUP BY kind ORDER BY kind",
        POOL_USER_ID,
    )  # fmt: skip
    assert kinds == [("grant", 1), ("refund", 1), ("spend", 3)], "the release refunded once"
    assert await ledger.audit() == []


async def test_the_report_and_the_export_read_every_stored_round(
    db: AnyDatabase, store: ShootoutStore
) -> None:
    shootout = plan("a fair poster", "a jazz poster")
    await create(store, shootout, payer=POOL_USER_ID)
    first = await post_round(db, shootout, 0, message=4242, votes=("A", "A", "B", "tie"))
    assert await store.set_round("s1", 0, "posted")
    assert await store.set_round("s1", 1, "refunded", "no model could draw it")
    assert await store.open_voting("s1")

    with pytest.raises(ExportBlocked, match="blind and still open"):
        await export_shootout(db, "s1", "Poster")
    assert await store.close("s1", by=None, now=DEADLINE)
    assert await VoteStore(db).close(first, by=None, now=DEADLINE) is not None

    data = await load(db, "s1")
    assert data is not None and data.shootout.state == "closed"
    posted, refunded = data.rounds
    assert posted.record is not None and posted.record.id == first and posted.posted
    assert [(v.user_id, v.choice) for v in posted.votes] == [
        (100, "A"), (101, "A"), (102, "B"), (103, "tie")
    ]  # fmt: skip
    assert posted.counts == {"A": 2, "B": 1, "tie": 1, "bad": 0}
    assert refunded.record is None and refunded.round.note == "no model could draw it"
    assert await load(db, "nope") is None

    report = build_report(data, "Poster", rounds=20)
    assert [line.winner for line in report.rounds] == [
        "GPT-Image 2", "Not run — no model could draw it"
    ]  # fmt: skip
    assert report.votes == 4 and report.total_credits == 8 + 22
    assert "Round(s) 2 did not run and were refunded." in report.notes

    _, document = await export_shootout(db, "s1", "Poster", guild_id=GUILD)
    assert (document["paid_by"], document["state"], document["blind"]) == (
        "team pool", "closed", True
    )  # fmt: skip
    assert document["deadline"] == DEADLINE.isoformat()
    comparison = document["rounds"][0]["comparison"]
    assert comparison["id"] == first and comparison["charged"] == 30
    # Vote times read the same on both backends: SQLite's stored text, PostgreSQL's timestamptz.
    assert comparison["votes"][0] == {
        "user_id": 100, "choice": "A", "created_at": "2026-05-10T12:00:00.000000+00:00"
    }  # fmt: skip
    assert document["rounds"][1]["comparison"] is None
    with pytest.raises(ExportBlocked, match="no shoot-out"):
        await export_shootout(db, "s1", "Poster", guild_id=GUILD + 1)

    alone = await load_comparison(db, first)
    assert alone is not None and alone.votes == posted.votes
    _, single = await export_comparison(db, first, guild_id=GUILD)
    assert single["type"] == "comparison" and single["parent_id"] == "s1"
    assert single["votes"] == comparison["votes"]
