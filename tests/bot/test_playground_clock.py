"""The playground's clock: follows the wall clock between actions, skips on /wait, never mid-action."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.playground import PlaygroundClock, start_clock_at, welcome_text

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeBackend:
    elapsed: float = 0.0

    def advance_clock(self, seconds: float) -> None:
        self.elapsed += seconds


@dataclass
class FakeEnv:
    """The part of simcord.Env the clock uses; an advance that 'closes a vote' makes a request."""

    backend: FakeBackend = field(default_factory=FakeBackend)
    http_requests: list[str] = field(default_factory=list)
    advances: list[float] = field(default_factory=list)
    busy_during_advance: list[bool] = field(default_factory=list)
    lock: asyncio.Lock | None = None
    timer_at: float | None = None

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.backend.elapsed)

    async def advance_time(self, seconds: float) -> None:
        self.busy_during_advance.append(self.lock is not None and self.lock.locked())
        self.advances.append(seconds)
        before = self.backend.elapsed
        self.backend.elapsed += seconds
        if self.timer_at is not None and before < self.timer_at <= self.backend.elapsed:
            self.http_requests.append("PATCH /channels/1/messages/2")


class Wall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_starts_today_not_on_simcords_epoch() -> None:
    env = FakeEnv()
    start_clock_at(env, EPOCH + timedelta(days=338))  # type: ignore[arg-type]
    assert env.now() == EPOCH + timedelta(days=338)
    start_clock_at(env, EPOCH)  # type: ignore[arg-type]
    assert env.now() == EPOCH + timedelta(days=338), "never backwards"


async def test_it_follows_the_wall_clock_and_skips_on_request() -> None:
    env, wall, moved = FakeEnv(), Wall(), []
    clock = PlaygroundClock(env, wall=wall, tick=0.01)  # type: ignore[arg-type]
    env.lock = clock.lock
    running = asyncio.create_task(clock.run(lambda: moved.append(env.now())))
    try:
        wall.now += 30
        await asyncio.sleep(0.05)
        assert sum(env.advances) == 30, "caught up with the 30 wall seconds, no more"
        # A comparison moved simulated time itself (SimCord fired its timers): not counted twice.
        env.backend.elapsed += 5
        wall.now += 10
        await asyncio.sleep(0.05)
        assert (env.now() - EPOCH).total_seconds() == 40
        assert moved == [], "nothing happened on the way, so the page is not redrawn"

        env.timer_at = 40 + 1800  # the vote closer's deadline, half an hour ahead
        clock.skip(3600)
        await asyncio.sleep(0.05)
        assert (env.now() - EPOCH).total_seconds() == 40 + 3600
        assert len(moved) == 1, "a vote closed on the way: the page is redrawn"
        assert all(env.busy_during_advance), "every move holds the lock page actions take"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_the_clock_never_moves_during_an_action() -> None:
    env, wall = FakeEnv(), Wall()
    clock = PlaygroundClock(env, wall=wall, tick=0.01)  # type: ignore[arg-type]
    release = asyncio.Event()

    async def action() -> str:
        wall.now += 600  # the action takes ten minutes of wall time
        await release.wait()
        assert env.advances == [], "no move while an action runs"
        return "done"

    running = asyncio.create_task(clock.run(lambda: None))
    try:
        act = asyncio.create_task(clock.serialise(action)())
        await asyncio.sleep(0.05)
        release.set()
        assert await act == "done"
        await asyncio.sleep(0.05)
        assert sum(env.advances) == 600, "it catches up once the action is over"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_the_welcome_is_three_short_steps() -> None:
    from bot.catalog import load_catalog

    class Stub:
        catalog = load_catalog()

        class service:
            allow_demo = True

        class registry:
            configured = ()

    text = welcome_text(Stub())  # type: ignore[arg-type]
    assert [line[:6] for line in text.splitlines() if line.startswith("**")] == [
        "**1.**",
        "**2.**",
        "**3.**",
    ]
    prompt = Stub.catalog.examples["boardwalk"][1]
    assert f"```\n{prompt}\n```" in text, "the prompt sits alone in a copyable block"
    assert "demo stand-ins" in text
