"""Per-member admission on both backends: slots, cooldowns, release, leases, several processes.

Each ``Admission`` below stands for one bot process: its own view of what it runs, and its own
connection (an SQLite connection to the same file, or a PostgreSQL pool) to the shared database.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.comparisons.admission import (
    Admission,
    CoolingDown,
    Ticket,
    TooManyRunning,
)
from bot.comparisons.admission_store import admission_store
from bot.db import AnyDatabase, open_database
from tests.bot.credits.ledger_fakes import FakeClock
from tests.pg import fetch

MEMBER = (1, 2)
LEASE = timedelta(minutes=30)
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Processes:
    """Makes ``Admission`` instances, one per process, on two connections to one database."""

    connections: list[AnyDatabase]
    clock: FakeClock
    made: int = 0

    def __call__(self, owner: str = "shards 0 of 2", *, lease: timedelta = LEASE) -> Admission:
        db = self.connections[self.made % len(self.connections)]
        self.made += 1
        return Admission(admission_store(db), self.clock, lease=lease, owner=owner)

    async def count(self, table: str) -> int:
        ((rows,),) = await fetch(self.connections[0], f"SELECT COUNT(*) FROM {table}")
        return int(rows)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def processes(db_target: str, clock: FakeClock) -> AsyncIterator[Processes]:
    made = Processes([await open_database(db_target), await open_database(db_target)], clock)
    yield made
    for db in made.connections:
        await db.close()


async def start(
    admission: Admission, *, max_running: int = 2, cooldown_s: float = 0, command: str = "/compare"
) -> Ticket:
    """Admit in the process, then claim in the database, as the comparison flow does."""
    ticket = admission.admit(
        MEMBER, max_running=max_running, cooldown_s=cooldown_s, command=command
    )
    try:
        await ticket.claim(max_running=max_running, cooldown_s=cooldown_s)
    except BaseException:
        await ticket.release()
        raise
    return ticket


async def running(admission: Admission) -> int:
    return await admission.store.running(*MEMBER, admission.clock())


# ------------------------------------------------------------------ one process
async def test_a_member_runs_as_many_as_the_server_allows(processes: Processes) -> None:
    bot = processes()
    first, second = await start(bot), await start(bot)
    # This process knows: refused at once, without asking the database.
    with pytest.raises(
        TooManyRunning, match=r"You already have 2 comparisons running; this one would be #3\."
    ):
        bot.admit(MEMBER, max_running=2, cooldown_s=0)
    assert bot.running(MEMBER) == 2 and await running(bot) == 2

    await first.release()
    await first.release()  # idempotent: the other comparison keeps its slot
    assert bot.running(MEMBER) == 1 and await running(bot) == 1
    third = await start(bot)
    assert await running(bot) == 2
    for ticket in (second, third):
        await ticket.release()
    assert bot.running(MEMBER) == 0 and await running(bot) == 0


async def test_the_cooldown_says_when_and_names_the_command(
    processes: Processes, clock: FakeClock
) -> None:
    bot = processes()
    ticket = await start(bot, cooldown_s=30)
    ticket.keep_cooldown()
    await ticket.release()
    clock.advance(seconds=21)
    with pytest.raises(CoolingDown, match=r"^Slow down — you can use /edit again in 9 s\.$"):
        bot.admit(MEMBER, max_running=2, cooldown_s=30, command="/edit")
    clock.advance(seconds=9)
    await (await start(bot, cooldown_s=30)).release()


async def test_a_comparison_that_never_got_going_gives_the_cooldown_back(
    processes: Processes, clock: FakeClock
) -> None:
    bot = processes()
    kept = await start(bot, cooldown_s=30)
    kept.keep_cooldown()
    await kept.release()
    clock.advance(seconds=40)
    refused = await start(bot, cooldown_s=30)  # e.g. not enough credits: nothing ran
    await refused.release()
    # The start before it counts again (40 s ago: over), not the refused one's.
    again = await start(bot, cooldown_s=30)
    await again.release()
    assert await processes.count("admission_tickets") == 0


async def test_giving_back_never_undoes_a_later_start(
    processes: Processes, clock: FakeClock
) -> None:
    bot = processes()
    # The first still runs when the second starts, its cooldown over.
    first = await start(bot, cooldown_s=30)
    clock.advance(seconds=31)
    second = await start(bot, cooldown_s=30)
    second.keep_cooldown()
    await first.release()  # gives back only its own start, which is no longer the latest
    await second.release()
    clock.advance(seconds=1)
    for asking in (bot, processes("shards 1 of 2")):  # this process's view, the database's
        with pytest.raises(CoolingDown, match="in 29 s"):
            await start(asking, cooldown_s=30)


async def test_follow_ups_take_a_slot_but_leave_the_cooldown_alone(
    processes: Processes, clock: FakeClock
) -> None:
    bot = processes()
    compare = await start(bot, cooldown_s=30)
    compare.keep_cooldown()
    follow_up = await start(bot, cooldown_s=0)
    assert await running(bot) == 2
    await follow_up.release()
    await compare.release()
    clock.advance(seconds=5)
    for asking in (bot, processes("shards 1 of 2")):
        with pytest.raises(CoolingDown, match="in 25 s"):
            await start(asking, cooldown_s=30)


# ------------------------------------------------------------------ several processes
async def test_a_slot_taken_in_one_process_is_taken_in_the_other(processes: Processes) -> None:
    one, other = processes("shards 0 of 2"), processes("shards 1 of 2")
    ticket = await start(one, max_running=1)
    # The other process knows nothing of it: its own check passes, the database refuses.
    local = other.admit(MEMBER, max_running=1, cooldown_s=0)
    with pytest.raises(
        TooManyRunning, match="You already have 1 comparison running; this one would be #2"
    ):
        await local.claim(max_running=1, cooldown_s=0)
    await local.release()
    assert other.running(MEMBER) == 0 and await running(other) == 1

    await ticket.release()
    await (await start(other, max_running=1)).release()


async def test_the_cooldown_holds_across_processes(processes: Processes, clock: FakeClock) -> None:
    one, other = processes("shards 0 of 2"), processes("shards 1 of 2")
    ticket = await start(one, cooldown_s=30)
    ticket.keep_cooldown()
    await ticket.release()
    clock.advance(seconds=12)
    with pytest.raises(CoolingDown, match=r"^Slow down — you can use /compare again in 18 s\.$"):
        await start(other, cooldown_s=30)
    # Refused, it gave back nothing it did not take: the first start still counts.
    clock.advance(seconds=17)
    with pytest.raises(CoolingDown, match="in 1 s"):
        await start(processes("shards 2 of 3"), cooldown_s=30)
    clock.advance(seconds=1)
    await (await start(other, cooldown_s=30)).release()


async def test_requests_racing_from_two_processes_fill_the_slots_exactly(
    processes: Processes,
) -> None:
    one, other = processes("shards 0 of 2"), processes("shards 1 of 2")
    tickets = [
        bot.admit(MEMBER, max_running=10, cooldown_s=0) for bot in (one, other) for _ in range(4)
    ]
    # Each process would let 4 through; the database lets 3 through in all.
    outcomes = await asyncio.gather(
        *(ticket.claim(max_running=3, cooldown_s=0) for ticket in tickets), return_exceptions=True
    )
    refused = [outcome for outcome in outcomes if isinstance(outcome, TooManyRunning)]
    assert len(refused) == 5 and outcomes.count(None) == 3
    assert await running(one) == 3
    for ticket in tickets:
        await ticket.release()
    assert await running(one) == 0


async def test_an_expired_lease_frees_the_slot(processes: Processes, clock: FakeClock) -> None:
    crashed = processes("shards 0 of 2", lease=timedelta(minutes=30))
    await start(crashed, max_running=1)  # never released: the process died
    other = processes("shards 1 of 2")
    clock.advance(minutes=29)
    with pytest.raises(TooManyRunning):
        await start(other, max_running=1)
    clock.advance(minutes=1)
    ticket = await start(other, max_running=1)
    assert await running(other) == 1, "the expired ticket no longer counts"
    await ticket.release()
    assert await processes.count("admission_tickets") == 0, "its finder deleted it"


async def test_a_restarted_process_clears_only_its_own_tickets(processes: Processes) -> None:
    died = processes("shards 0 of 2")
    await start(died, max_running=2)
    alive = processes("shards 1 of 2")
    kept = await start(alive, max_running=2)
    with pytest.raises(TooManyRunning):
        await start(alive, max_running=2)

    restarted = processes("shards 0 of 2")
    assert await restarted.recover() == 1
    assert await running(alive) == 1
    await (await start(restarted, max_running=2)).release()
    await kept.release()


async def test_the_sweep_forgets_expired_tickets_and_idle_members(
    processes: Processes, clock: FakeClock
) -> None:
    bot = processes(lease=timedelta(minutes=30))
    await start(bot, cooldown_s=30)  # its process died
    clock.advance(minutes=31)
    assert await bot.sweep() == 1
    assert await running(bot) == 0
    assert await processes.count("admission_members") == 1, (
        "a start within the longest cooldown a server may set is kept"
    )
    clock.advance(days=1)
    assert await bot.sweep() == 0
    assert await processes.count("admission_members") == 0


async def test_a_cancelled_claim_leaves_no_ticket_behind(processes: Processes) -> None:
    bot = processes()
    ticket = bot.admit(MEMBER, max_running=1, cooldown_s=30)
    claiming = asyncio.create_task(ticket.claim(max_running=1, cooldown_s=30))
    await asyncio.sleep(0)  # the claim is on its way to the database
    claiming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await claiming
    await ticket.release()  # waits for the claim to land, then removes it
    assert await running(bot) == 0
    await (await start(bot, max_running=1, cooldown_s=30)).release()


# ------------------------------------------------------------------ an OS process that dies
HOLD_AND_DIE = """
import asyncio, sys
from datetime import datetime, timedelta
from bot.comparisons.admission import Admission
from bot.comparisons.admission_store import admission_store
from bot.db import open_database

async def main(target, now):
    db = await open_database(target)
    bot = Admission(admission_store(db), lambda: now, lease=timedelta(minutes=30), owner="died")
    ticket = bot.admit((1, 2), max_running=1, cooldown_s=60)
    await ticket.claim(max_running=1, cooldown_s=60)
    print("claimed", flush=True)
    await asyncio.sleep(3600)  # killed before it releases anything

asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
"""


@pytest.mark.slow
async def test_a_killed_process_blocks_the_member_only_until_its_lease_ends(
    db_target: str, clock: FakeClock, processes: Processes
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_AND_DIE, db_target, clock().isoformat(),
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    assert child.stdout is not None
    assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"claimed"
    child.kill()
    await child.wait()

    survivor = processes("shards 1 of 2")
    with pytest.raises(TooManyRunning, match="You already have 1 comparison running"):
        await start(survivor, max_running=1)
    with pytest.raises(CoolingDown, match="in 60 s"):
        await start(survivor, max_running=2, cooldown_s=60)
    clock.advance(minutes=30)
    await (await start(survivor, max_running=1, cooldown_s=60)).release()
