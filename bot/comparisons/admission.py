"""Admission: how many comparisons a member may have running, and how soon they may start another.

Checked and claimed in one synchronous step (no await in between), so two requests sent
together cannot both pass; safe to call before acknowledging a Discord interaction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.errors import SplitshotError

Key = tuple[int, int]  # (guild id, member id)


class TooManyRunning(SplitshotError):
    """The member already has as many comparisons running as the server allows."""

    def __init__(self, running: int) -> None:
        plural = "comparison" if running == 1 else "comparisons"
        super().__init__(
            f"You already have {running} {plural} running; this one would be #{running + 1}. "
            "Wait for one to finish, then try again."
        )


class CoolingDown(SplitshotError):
    """The member started a comparison too recently."""

    def __init__(self, retry_after: float, command: str = "/compare") -> None:
        self.retry_after = retry_after
        super().__init__(f"Slow down — you can use {command} again in {math.ceil(retry_after)} s.")


@dataclass(slots=True)
class Ticket:
    """A member's claimed slot (and cooldown) for one comparison."""

    admission: Admission
    key: Key
    started: float | None
    previous: float | None
    kept: bool = False
    released: bool = False

    def keep_cooldown(self) -> None:
        """The comparison got going: the cooldown stands even if it later fails."""
        self.kept = True

    def release(self) -> None:
        """Give the slot back (and the cooldown, unless it was kept); idempotent."""
        if self.released:
            return
        self.released = True
        self.admission._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(slots=True)
class Admission:
    """Per-member running slots and cooldowns for one process."""

    clock: Callable[[], float]
    _running: dict[Key, int] = field(default_factory=dict)
    _started: dict[Key, float] = field(default_factory=dict)

    def running(self, key: Key) -> int:
        """How many comparisons this member has running."""
        return self._running.get(key, 0)

    def admit(self, key: Key, *, max_running: int, cooldown_s: float) -> Ticket:
        """Claim a slot and the cooldown now, or raise TooManyRunning / CoolingDown."""
        running = self._running.get(key, 0)
        if running >= max_running:
            raise TooManyRunning(running)
        now = self.clock()
        last = self._started.get(key)
        started = None
        if cooldown_s > 0:
            if last is not None and last + cooldown_s - now > 0:
                raise CoolingDown(last + cooldown_s - now)
            self._started[key] = started = now
        self._running[key] = running + 1
        return Ticket(self, key, started, last)

    def _release(self, ticket: Ticket) -> None:
        left = self._running.get(ticket.key, 1) - 1
        if left > 0:
            self._running[ticket.key] = left
        else:
            self._running.pop(ticket.key, None)
        # Only our own claim is given back, never a later one.
        if ticket.started is None or ticket.kept:
            return
        if self._started.get(ticket.key) == ticket.started:
            if ticket.previous is None:
                del self._started[ticket.key]
            else:
                self._started[ticket.key] = ticket.previous
