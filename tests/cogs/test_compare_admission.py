"""/compare when another bot process on the same database runs the member's comparisons.

The other process is an ``Admission`` on a connection of its own to the bot's database, on
SimCord's clock. Its comparisons count against the member's running cap and its starts against
their cooldown; the bot learns that from the database after acknowledging, so each refusal is
the private answer that follows a deleted "thinking" message, with nothing charged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio

from bot.comparisons.admission import Admission, Ticket
from bot.comparisons.admission_store import admission_store
from bot.db import PostgresDatabase, open_database
from bot.guild_settings import update_guild_settings
from tests.cogs.conftest import FakeAdapter, World

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"
LEASE = timedelta(minutes=30)


@pytest_asyncio.fixture
async def other_process(world: World) -> AsyncIterator[Admission]:
    """Another bot process: its own connection to the same database, its own shards."""
    db = world.bot.db
    target = db.url if isinstance(db, PostgresDatabase) else db.path
    connection = await open_database(target)
    try:
        yield Admission(
            admission_store(connection), world.env.now, lease=LEASE, owner="shards 1 of 2"
        )
    finally:
        await connection.close()


async def run_there(other: Admission, w: World, *, cooldown_s: float) -> Ticket:
    """A comparison of the member's, started in the other process."""
    ticket = other.admit((w.guild.id, w.member.id), max_running=1, cooldown_s=cooldown_s)
    await ticket.claim(max_running=1, cooldown_s=cooldown_s)
    return ticket


async def refused_quietly(w: World, fake: FakeAdapter, expected: str) -> None:
    """/compare is refused privately, after acknowledging, with nothing left public or spent."""
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert [c.json["type"] for c in w.requests("POST", "/callback")][-1] == 5, "acknowledged first"
    assert w.private_answer(res) == expected
    assert [m for m in w.channel.history() if m.author.bot] == [], "no public message is left"
    assert fake.calls == [] and await w.ledger_rows(w.member) == [], "nothing ran, nothing charged"


async def test_the_cap_and_the_cooldown_hold_across_processes(
    world: World, fake: FakeAdapter, other_process: Admission
) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, max_running_per_member=1, compare_cooldown_seconds=30
    )
    there = await run_there(other_process, w, cooldown_s=30)
    await refused_quietly(
        w,
        fake,
        "You already have 1 comparison running; this one would be #2. "
        "Wait for one to finish, then try again.",
    )

    there.keep_cooldown()
    await there.release()
    await w.env.advance_time(12)
    await refused_quietly(w, fake, "Slow down — you can use /compare again in 18 s.")

    await w.env.advance_time(18)
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert res.response.attachments, "the cooldown is over in both processes"
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert w.bot.admission.running((w.guild.id, w.member.id)) == 0
    assert await other_process.store.running(w.guild.id, w.member.id, w.env.now()) == 0


async def test_a_comparison_left_by_a_dead_process_stops_counting_when_its_lease_ends(
    world: World, fake: FakeAdapter, other_process: Admission
) -> None:
    w = world
    await update_guild_settings(
        w.bot.db, w.guild.id, max_running_per_member=1, compare_cooldown_seconds=0
    )
    await run_there(other_process, w, cooldown_s=0)  # never released: that process died
    await refused_quietly(
        w,
        fake,
        "You already have 1 comparison running; this one would be #2. "
        "Wait for one to finish, then try again.",
    )

    await w.env.advance_time(LEASE.total_seconds())
    res = await w.member.slash(w.channel, "compare", prompt=PROMPT)
    assert res.response.attachments
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
