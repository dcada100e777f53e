"""Load admission: refuse up front, before anything is charged, what could not start in time.

Per member limits live in :mod:`bot.comparisons.admission`; this is the process's own limit:
how many comparisons run at once in all and per server, and whether each model's request line
is short enough for a new request to start within the wait a comparison is allowed. Checked
and claimed in one synchronous step, so two requests cannot both take the last place.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from bot.comparisons.plan import Plan
from bot.errors import SplitshotError
from providers.limits import RequestSlots

#: comparisons running at once in the whole process, and in one server, by default
DEFAULT_MAX_RUNNING = 400
DEFAULT_MAX_RUNNING_PER_SERVER = 200
#: how long a model's request may wait for its slot before the comparison is refused up front
DEFAULT_MAX_WAIT_S = 300.0


class Overloaded(SplitshotError):
    """The bot cannot start this comparison in time; nothing was charged."""


@dataclass(slots=True)
class LoadTicket:
    """One admitted comparison's place; give it back when the comparison ends."""

    capacity: Capacity
    guild_id: int | None
    released: bool = False

    def release(self) -> None:
        """Give the place back; idempotent."""
        if not self.released:
            self.released = True
            self.capacity._release(self)


@dataclass(slots=True)
class Capacity:
    """How much this process takes on at once, and the request lines it checks."""

    slots: RequestSlots
    max_running: int = DEFAULT_MAX_RUNNING
    max_running_per_server: int = DEFAULT_MAX_RUNNING_PER_SERVER
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    running: int = 0
    _per_server: Counter[int] = field(default_factory=Counter)

    def admit(self, plan: Plan, guild_id: int | None) -> LoadTicket:
        """Claim a place for ``plan`` now, or raise Overloaded saying why and that nothing was charged."""
        if self.running >= self.max_running:
            raise Overloaded(
                f"Splitshot is already running {_count(self.running)}, as many as it takes "
                "at once. Nothing was charged; please try again in a minute."
            )
        if guild_id is not None and self._per_server[guild_id] >= self.max_running_per_server:
            raise Overloaded(
                f"This server already has {_count(self._per_server[guild_id])} running, as "
                "many as one server may have at once. Nothing was charged; please try again "
                "when one has finished."
            )
        for panel in plan.charged_panels:
            lane = self.slots.lane(panel.route.adapter.name)
            wait = lane.expected_wait(panel.model.id)
            if wait > self.max_wait_s:
                raise Overloaded(
                    f"{panel.public_label} is busy: about {_minutes(wait)} of requests are "
                    f"queued ahead of yours, longer than the {_minutes(self.max_wait_s)} a "
                    "comparison may wait to start. Nothing was charged; please try again later "
                    "or pick another model."
                )
        self.running += 1
        if guild_id is not None:
            self._per_server[guild_id] += 1
        return LoadTicket(self, guild_id)

    def _release(self, ticket: LoadTicket) -> None:
        self.running -= 1
        if ticket.guild_id is not None:
            self._per_server[ticket.guild_id] -= 1
            if self._per_server[ticket.guild_id] <= 0:
                del self._per_server[ticket.guild_id]


def _count(running: int) -> str:
    return f"{running} comparison" if running == 1 else f"{running} comparisons"


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
