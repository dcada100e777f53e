"""Request slots: how many requests each adapter, and each model on it, may have in flight.

A request waits for its slot first come, first served and can tell its place in the line, so a
member sees "queued — position 3" instead of a clock running down. A request's deadline starts
when it gets its slot, never while it waits (the caller takes the slot, then starts the clock).

Pure asyncio: no environment, no bot; the limits come from settings through the caller.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

#: Simultaneous requests per adapter when settings do not say, from each provider's documented
#: entry tier: OpenAI Tier 1 allows 5 images a minute and an image takes about a minute (p50
#: ≈ 59 s), so 5 in flight; Google publishes no static table for Gemini image models and fal
#: queues past its own concurrency, so 10 for each.
DEFAULT_REQUESTS = {"openai": 5, "gemini": 10, "fal": 10, "demo": 64}
FALLBACK_REQUESTS = 4
#: What a request usually takes before anything was measured (providers.md §1.7, §2.6);
#: only the admission estimate uses it.
TYPICAL_SECONDS = {"openai": 60.0, "gemini": 25.0, "fal": 30.0, "demo": 2.0}
FALLBACK_SECONDS = 30.0
#: weight of the newest measured request in the running latency estimate
_EWMA = 0.2

OnPosition = Callable[[int], Awaitable[None]]

#: Awaited, when set, before an adapter reads a large answer body: the caller's memory budget
#: for provider output. A comparison sets it for its models; until the budget has room, the
#: answer waits unread in the socket, and the wait counts against the model's deadline.
before_large_body: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "before_large_body", default=None
)


@dataclass(frozen=True, slots=True)
class SlotLimits:
    """Simultaneous requests per adapter name, and optionally per model id (both apply)."""

    adapters: Mapping[str, int] = field(default_factory=dict)
    models: Mapping[str, int] = field(default_factory=dict)

    def for_adapter(self, name: str) -> int:
        """Slots for ``name``: configured, else its documented tier's default."""
        return max(1, self.adapters.get(name, DEFAULT_REQUESTS.get(name, FALLBACK_REQUESTS)))

    def for_model(self, model_id: str) -> int | None:
        """A model's own cap (None: only its adapter's applies)."""
        value = self.models.get(model_id)
        return None if value is None else max(1, value)


@dataclass(slots=True, eq=False)
class _Waiter:
    model: str
    granted: asyncio.Future[None]
    moved: asyncio.Future[None]


class Lane:
    """One adapter's slots: FIFO, except that a model at its own cap lets others pass."""

    def __init__(self, name: str, size: int, model_caps: Mapping[str, int]) -> None:
        self.name = name
        self.size = size
        self._caps = dict(model_caps)
        self.running = 0
        self._by_model: Counter[str] = Counter()
        self._waiters: list[_Waiter] = []
        self._seconds: dict[str, float] = {}

    # -------------------------------------------------------------- queries
    @property
    def waiting(self) -> int:
        """Requests waiting for a slot on this adapter."""
        return len(self._waiters)

    def capacity(self, model: str) -> int:
        """How many requests for ``model`` may run at once here."""
        cap = self._caps.get(model)
        return self.size if cap is None else min(self.size, cap)

    def typical_seconds(self, model: str) -> float:
        """What a request for ``model`` has been taking (a running average)."""
        return self._seconds.get(model, TYPICAL_SECONDS.get(self.name, FALLBACK_SECONDS))

    def expected_wait(self, model: str) -> float:
        """Roughly how long a new request for ``model`` would wait for its slot (seconds)."""
        if not self._waiters and self._free(model):
            return 0.0
        if model in self._caps:
            ahead = self._by_model[model] + sum(1 for w in self._waiters if w.model == model)
        else:
            ahead = self.running + len(self._waiters)
        rounds = math.floor(ahead / self.capacity(model))
        return rounds * self.typical_seconds(model)

    def observe(self, model: str, seconds: float) -> None:
        """Fold one finished request's duration into the estimate."""
        old = self._seconds.get(model)
        self._seconds[model] = seconds if old is None else old + _EWMA * (seconds - old)

    # ------------------------------------------------------------ acquiring
    def _free(self, model: str) -> bool:
        cap = self._caps.get(model)
        return self.running < self.size and (cap is None or self._by_model[model] < cap)

    def _take(self, model: str) -> None:
        self.running += 1
        self._by_model[model] += 1

    def _release(self, model: str) -> None:
        self.running -= 1
        self._by_model[model] -= 1
        self._pump()

    def _pump(self) -> None:
        """Grant every waiter that can start now, in order; tell those behind them they moved."""
        first_granted: int | None = None
        kept: list[_Waiter] = []
        for index, waiter in enumerate(self._waiters):
            if self.running < self.size and self._free(waiter.model):
                self._take(waiter.model)
                waiter.granted.set_result(None)
                if first_granted is None:
                    first_granted = index
            else:
                kept.append(waiter)
        if first_granted is None:
            return
        self._waiters = kept
        for waiter in kept[first_granted:]:
            if not waiter.moved.done():
                waiter.moved.set_result(None)

    async def acquire(self, model: str, on_position: OnPosition | None = None) -> None:
        """Wait for a slot for ``model``, calling ``on_position`` with each new place in line."""
        # Waiters are only ever blocked (the pump grants whoever can start), so one that can
        # start now passes nobody who could have.
        if self._free(model):
            self._take(model)
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(model, loop.create_future(), loop.create_future())
        self._waiters.append(waiter)
        try:
            shown = 0
            while not waiter.granted.done():
                position = self._waiters.index(waiter) + 1
                if on_position is not None and position != shown:
                    shown = position
                    await on_position(position)
                if waiter.granted.done():
                    break
                await asyncio.wait({waiter.granted, waiter.moved}, return_when="FIRST_COMPLETED")
                if waiter.moved.done():
                    waiter.moved = loop.create_future()
        except BaseException:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._release(model)  # granted while being cancelled: pass it on
            else:
                waiter.granted.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    # Those behind moved up one; tell them so.
                    for other in self._waiters:
                        if not other.moved.done():
                            other.moved.set_result(None)
            raise

    @asynccontextmanager
    async def slot(self, model: str, on_position: OnPosition | None = None) -> AsyncIterator[None]:
        """Hold one slot for ``model`` while the block runs."""
        await self.acquire(model, on_position)
        try:
            yield
        finally:
            self._release(model)


class RequestSlots:
    """Every adapter's lane, built once per process from the configured limits."""

    def __init__(self, limits: SlotLimits | None = None) -> None:
        self.limits = limits or SlotLimits()
        self._lanes: dict[str, Lane] = {}

    def lane(self, adapter: str) -> Lane:
        """The lane for ``adapter`` (created on first use)."""
        lane = self._lanes.get(adapter)
        if lane is None:
            lane = Lane(adapter, self.limits.for_adapter(adapter), self.limits.models)
            self._lanes[adapter] = lane
        return lane
