"""CPU work off the event loop, in separate pools, and the budget that keeps composing bounded.

Three kinds of CPU work get a pool each, so a burst of one never delays the others: composing
split images, checking members' reference images, and fitting leaderboards (and their charts).
Provider answers are parsed on the loop's default executor, a fourth, by the adapters.

Composing is also gated: one compose per core by default, the rest wait in line and can say
how many are ahead of them; and the provider output a comparison will hold is claimed against a
memory budget when its first answer arrives (the rest of the answers wait unread in their
sockets until it fits, and the claim shrinks to what is really held once all are in), so a
burst of comparisons waits its turn instead of holding gigabytes of images at once. Both only
ever queue; neither refuses.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: provider output (as encoded image bytes) all comparisons together may hold at once
DEFAULT_OUTPUT_BUDGET = 256 * 1024 * 1024

OnAhead = Callable[[int], Awaitable[None]]
#: runs blocking work off the loop: ``asyncio.to_thread``, or one of the pools' ``run``
Offload = Callable[..., Awaitable[Any]]


#: glibc mallopt() parameters
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: buffers from this size up are mapped on their own and handed back to the OS when freed
MMAP_THRESHOLD = 1024 * 1024


#: how long a thread may hold the GIL while another wants it (CPython's default is 5 ms)
SWITCH_INTERVAL = 0.001


def favour_the_loop() -> None:
    """Let the event loop's thread take the GIL back sooner from the worker threads.

    Composes, parses and checks run in threads, each handing the GIL over only every switch
    interval; the loop answers Discord and must not wait 5 ms at every hand-over. Measured
    with 20 comparisons at once on a loaded 2-core VM: worst loop stall 1.08 → 0.44 s, p99
    0.28 → 0.17 s.
    """
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))


def return_large_buffers() -> bool:
    """Make glibc hand multi-megabyte buffers back to the OS as soon as they are freed.

    Provider answers and decoded panels are 10-60 MB each. By default glibc raises its mmap
    threshold after the first such buffer is freed, so later ones come from per-thread heaps
    that keep their pages: peak RSS grew with every thread that had ever parsed or decoded an
    image (measured: 269 → 90 MiB before a burst, 1,014 → 777 MiB during 20 at once). A fixed
    threshold and a few arenas keep it to what is live. Call before starting threads; a no-op
    (False) off glibc.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    global _malloc_trim
    _malloc_trim = getattr(libc, "malloc_trim", None)
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    ok = bool(mallopt(_M_ARENA_MAX, 2 * usable_cores())) and ok
    log.debug("mallopt: large buffers mapped on their own: %s", ok)
    return ok


_malloc_trim: Callable[[int], int] | None = None


def trim_heap() -> None:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``); a no-op elsewhere.

    A compose frees tens of megabytes of pieces below the mmap threshold (PNG chunks, rows,
    the encoder's buffers) across several threads' arenas; glibc keeps those pages, and under
    a long burst on a busy machine the process grew to 0.8-1.3 GiB while the live data stayed
    under 0.5. Trimming after each compose (it runs on the compose thread, without the GIL,
    in well under a millisecond) kept the same burst at 0.42 GiB.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_compose_slots() -> int:
    """Composes at once when settings do not say: one per core.

    A compose decodes its panels on one thread each, but its chrome, encode and bookkeeping
    run on one: with a single compose on two cores the second core idled through those parts.
    200 × 2 × 2K at once on a 2-core VM: 1.53× the ideal wall with one compose (the process
    used 1.35 cores), 1.13× with two (1.73 cores), loop p99 30 → 16 ms. (Before provider
    answers stopped holding the GIL, a second compose mostly added contention.)
    """
    return usable_cores()


class Pool:
    """A named thread pool that async code awaits; ``after`` runs on the thread after each job."""

    def __init__(self, name: str, threads: int, *, after: Callable[[], None] | None = None) -> None:
        self.name = name
        self.threads = max(1, threads)
        self.after = after
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on this pool and wait for its result."""
        loop = asyncio.get_running_loop()
        job = functools.partial(fn, *args, **kwargs)
        if self.after is not None:
            job = functools.partial(_then, job, self.after)
        return await loop.run_in_executor(self._executor, job)

    def close(self) -> None:
        """Stop taking work; what is running finishes on its own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(slots=True, eq=False)
class _Turn:
    cost: int
    ready: asyncio.Future[None]
    #: set when the line moves; only turns that show their place listen
    moved: asyncio.Future[None] | None


class Line:
    """A FIFO line for a resource with a capacity (slots, or bytes); it queues, never refuses.

    A turn bigger than the whole capacity still runs, alone, once nothing else holds any.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.used = 0
        self._turns: list[_Turn] = []

    @property
    def waiting(self) -> int:
        """Turns waiting."""
        return len(self._turns)

    def _fits(self, cost: int) -> bool:
        return self.used == 0 or self.used + cost <= self.capacity

    def _pump(self) -> None:
        # Strict FIFO: a big turn at the head is not overtaken (it would starve otherwise).
        granted = 0
        while self._turns and self._fits(self._turns[0].cost):
            turn = self._turns.pop(0)
            self.used += turn.cost
            turn.ready.set_result(None)
            granted += 1
        if granted:
            self._tell_moved()

    def _tell_moved(self) -> None:
        for turn in self._turns:
            if turn.moved is not None and not turn.moved.done():
                turn.moved.set_result(None)

    def release(self, cost: int) -> None:
        """Give back what a turn took."""
        self.used -= cost
        self._pump()

    async def acquire(self, cost: int, on_ahead: OnAhead | None = None) -> None:
        """Wait until ``cost`` fits, calling ``on_ahead`` with how many wait in front."""
        if not self._turns and self._fits(cost):
            self.used += cost
            return
        loop = asyncio.get_running_loop()
        # A turn that shows no place only waits for its grant: with hundreds in line, waking
        # every one of them at each move cost the loop O(n²) wake-ups.
        moved = loop.create_future() if on_ahead is not None else None
        turn = _Turn(cost, loop.create_future(), moved)
        self._turns.append(turn)
        try:
            if on_ahead is None:
                # wait() leaves the future alone when this task is cancelled: cancelled here,
                # a release before the handler below runs would grant it and raise.
                await asyncio.wait({turn.ready})
            else:
                await self._show_place(turn, on_ahead)
        except BaseException:
            if turn.ready.done() and not turn.ready.cancelled():
                self.release(cost)  # granted while being cancelled: pass it on
            else:
                turn.ready.cancel()
                if turn in self._turns:
                    self._turns.remove(turn)
                    self._pump()  # it may have been the head that held the others back
                    self._tell_moved()
            raise

    async def _show_place(self, turn: _Turn, on_ahead: OnAhead) -> None:
        loop = asyncio.get_running_loop()
        shown = -1
        while not turn.ready.done():
            ahead = self._turns.index(turn)
            if ahead != shown:
                shown = ahead
                await on_ahead(ahead)
            if turn.ready.done():
                break
            moved = turn.moved
            assert moved is not None, "a turn that shows its place listens for moves"
            await asyncio.wait({turn.ready, moved}, return_when="FIRST_COMPLETED")
            if moved.done():
                turn.moved = loop.create_future()

    @asynccontextmanager
    async def hold(self, cost: int, on_ahead: OnAhead | None = None) -> AsyncIterator[None]:
        """Hold ``cost`` of the capacity while the block runs."""
        await self.acquire(cost, on_ahead)
        try:
            yield
        finally:
            self.release(cost)


class OutputClaim:
    """One comparison's share of the output budget: taken whole, once, given back when composed.

    It is taken when the comparison's first large answer is about to be read, not before its
    requests are sent: a comparison waiting on its provider holds no output, so reserving then
    kept the budget full of answers that had not arrived (200 × 2 × 2K at once with a 20 s
    provider took 405 s, 7× the ideal, while the process idled on a quarter of a core). Taken
    whole, never panel by panel, so two comparisons each holding half of what they need can
    never wait on each other. And only once every one of the comparison's requests has its
    provider slot: a comparison holding budget never waits for a slot, so a slot held by an
    answer waiting for budget can never be the one it needs (one OpenAI slot, two
    comparisons: each would wait on the other until the deadlines ran out). Adapters that
    read nothing over the network (the demo) are claimed for once their models are done.
    """

    def __init__(self, line: Line, cost: int, requests: int = 0) -> None:
        self.line = line
        self.cost = cost
        self.held = 0
        self._taken = False
        self._lock = asyncio.Lock()
        self._unstarted = requests
        self._all_started = asyncio.Event()
        if requests <= 0:
            self._all_started.set()

    def started(self) -> None:
        """One of the comparison's requests has its slot (or will never need one)."""
        self._unstarted -= 1
        if self._unstarted <= 0:
            self._all_started.set()

    async def take(self) -> None:
        """Wait until every request has started and the whole share fits, and hold it; a
        no-op once held."""
        if self._taken:
            return
        async with self._lock:
            if self._taken:
                return
            await self._all_started.wait()
            await self.line.acquire(self.cost)
            self.held, self._taken = self.cost, True

    def shrink_to(self, actual: int) -> None:
        """Hold only ``actual`` bytes from now on (the answers are in; the estimate was high)."""
        if actual < self.held:
            self.line.release(self.held - actual)
            self.held = actual

    def release(self) -> None:
        """Give back whatever is held."""
        if self.held:
            self.line.release(self.held)
        self.held = 0


def _then(job: Callable[[], T], after: Callable[[], None]) -> T:
    try:
        return job()
    finally:
        after()


class Workers:
    """The process's CPU pools and compose budget; built once, closed at shutdown."""

    def __init__(
        self,
        *,
        compose_slots: int | None = None,
        output_budget: int = DEFAULT_OUTPUT_BUDGET,
        check_threads: int = 2,
        board_threads: int = 1,
    ) -> None:
        slots = compose_slots or default_compose_slots()
        #: at most this many composes at once; the rest wait in line
        self.composes = Line(slots)
        #: bytes of provider output the running comparisons may hold together
        self.output = Line(output_budget)
        self.compose = Pool("compose", slots, after=trim_heap)
        self.checks = Pool("checks", check_threads)
        self.boards = Pool("boards", board_threads)

    def close(self) -> None:
        """Shut every pool down."""
        for pool in (self.compose, self.checks, self.boards):
            pool.close()
