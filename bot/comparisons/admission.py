"""Admission: how many comparisons a member may have running, and how soon they may start another.

The database decides, for every process sharing it; this process only answers first when it
already knows the answer. Two steps:

* ``Admission.admit`` checks and claims, synchronously (no await in between), what this process
  knows: its own running comparisons and the cooldowns it started. Two requests sent together
  to one process cannot both pass, and it is safe to call before acknowledging a Discord
  interaction, so the common refusal is still an immediate private answer.
* ``Ticket.claim`` then claims the slot and the cooldown in the database in one transaction
  (see :mod:`bot.comparisons.admission_store`), counting the member's comparisons in every
  process. It is a database call, so it runs after the acknowledgement.

A ticket in the database carries a lease (the time after which a comparison is given up for
dead): one left behind by a process that died stops counting when the lease ends, and is
cleared at once when that process starts again. Releasing is idempotent; the cooldown is given
back with the slot unless the comparison got going (``keep_cooldown``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.errors import SplitshotError
from bot.guild_settings import GuildSettings

log = logging.getLogger(__name__)

Key = tuple[int, int]  # (guild id, member id)

#: the longest cooldown a server may set: a member's start older than this can be forgotten
LONGEST_COOLDOWN = timedelta(
    seconds=next(
        spec.metadata["maximum"]
        for spec in dataclasses.fields(GuildSettings)
        if spec.name == "compare_cooldown_seconds"
    )
)


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


# --------------------------------------------------------------------------- the database's part
@dataclass(frozen=True, slots=True)
class Claim:
    """One ticket to add for a member, and the limits it must fit in."""

    ticket_id: str
    guild_id: int
    user_id: int
    #: the process claiming it (its restart clears what it left behind)
    owner: str
    now: datetime
    expires_at: datetime
    max_running: int
    #: zero: this comparison neither checks nor starts the cooldown
    cooldown: timedelta


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a claim was refused: the member's running count, or how long until the cooldown ends."""

    running: int
    retry_after: float = 0.0

    def error(self, command: str) -> SplitshotError:
        """The refusal as the member reads it."""
        if self.retry_after > 0:
            return CoolingDown(self.retry_after, command)
        return TooManyRunning(self.running)


def refusal(running: int, last_start: datetime | None, claim: Claim) -> Refusal | None:
    """The one rule both backends apply to what they read under the member's lock."""
    if running >= claim.max_running:
        return Refusal(running)
    if claim.cooldown > timedelta(0) and last_start is not None:
        wait = (last_start + claim.cooldown - claim.now).total_seconds()
        if wait > 0:
            return Refusal(running, wait)
    return None


class AdmissionStore(Protocol):
    """One backend's admission operations; each is one transaction."""

    async def claim(self, claim: Claim) -> Refusal | None:
        """Count the member's live tickets and check the cooldown; add the ticket if they fit."""
        ...

    async def release(self, ticket_id: str, *, keep_cooldown: bool) -> bool:
        """Remove the ticket (and give back the cooldown it set, unless kept); False if gone."""
        ...

    async def running(self, guild_id: int, user_id: int, now: datetime) -> int:
        """How many unexpired tickets the member holds, in every process."""
        ...

    async def clear_owner(self, owner: str) -> int:
        """Remove every ticket this owner holds (it restarted: none of them is running)."""
        ...

    async def sweep(self, now: datetime, idle_since: datetime) -> int:
        """Remove expired tickets, and members idle since ``idle_since`` with none; how many tickets."""
        ...


# --------------------------------------------------------------------------- one process's part
@dataclass(slots=True, eq=False)
class Ticket:
    """A member's slot (and cooldown) for one comparison: this process's claim, then the database's."""

    admission: Admission
    key: Key
    command: str
    started: datetime | None
    previous: datetime | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kept: bool = False
    released: bool = False
    _claiming: asyncio.Task[Refusal | None] | None = None

    async def claim(self, *, max_running: int, cooldown_s: float) -> None:
        """Claim the slot in the database, the authority for every process sharing it.

        Raises TooManyRunning / CoolingDown, counting comparisons in every process. Call it
        once, after acknowledging the interaction; the limits are the server's settings as read
        then.
        """
        if self._claiming is not None or self.released:
            raise RuntimeError("a ticket is claimed once, before it is released")
        admission = self.admission
        now = admission.clock()
        claim = Claim(
            self.id,
            self.key[0],
            self.key[1],
            admission.owner,
            now,
            now + admission.lease,
            max_running,
            timedelta(seconds=cooldown_s),
        )
        # A task of its own: cancelling the caller must not leave a ticket that release()
        # could miss because its insert was still on the way.
        self._claiming = asyncio.ensure_future(admission.store.claim(claim))
        refused = await asyncio.shield(self._claiming)
        if refused is not None:
            log.info(
                "member %d of guild %d refused by the database: %s running, %.1f s to wait",
                self.key[1],
                self.key[0],
                refused.running,
                refused.retry_after,
            )
            raise refused.error(self.command)

    def keep_cooldown(self) -> None:
        """The comparison got going: the cooldown stands even if it later fails."""
        self.kept = True

    async def release(self) -> None:
        """Give the slot back (and the cooldown, unless it was kept); idempotent, never raises.

        A database that cannot be reached leaves the ticket to its lease.
        """
        if self.released:
            return
        self.released = True
        self.admission._release_local(self)
        if self._claiming is None:
            return
        try:
            await asyncio.shield(self._release_claimed(self._claiming))
        except Exception:
            log.exception(
                "could not release admission ticket %s; it counts until its lease ends", self.id
            )

    async def _release_claimed(self, claiming: asyncio.Task[Refusal | None]) -> None:
        await asyncio.wait([claiming])
        refused = (
            not claiming.cancelled()
            and claiming.exception() is None
            and claiming.result() is not None
        )
        if refused:
            return  # nothing was written
        await self.admission.store.release(self.id, keep_cooldown=self.kept)

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


@dataclass(slots=True)
class Admission:
    """Per-member running slots and cooldowns: this process's view, and the database's."""

    store: AdmissionStore
    #: UTC wall-clock time: the database compares it with what other processes wrote
    clock: Callable[[], datetime]
    #: how long a ticket counts without being released (a comparison's longest life)
    lease: timedelta
    #: this process among those sharing the database: what its restart may clear
    owner: str
    _running: dict[Key, int] = field(default_factory=dict)
    _started: dict[Key, datetime] = field(default_factory=dict)

    def running(self, key: Key) -> int:
        """How many comparisons this member has running in this process."""
        return self._running.get(key, 0)

    def admit(
        self, key: Key, *, max_running: int, cooldown_s: float, command: str = "/compare"
    ) -> Ticket:
        """Claim a slot and the cooldown in this process now, or raise TooManyRunning /
        CoolingDown; ``Ticket.claim`` then asks the database."""
        running = self._running.get(key, 0)
        if running >= max_running:
            raise TooManyRunning(running)
        now = self.clock()
        last = self._started.get(key)
        started = None
        if cooldown_s > 0:
            if last is not None:
                wait = (last - now).total_seconds() + cooldown_s
                if wait > 0:
                    raise CoolingDown(wait, command)
            self._started[key] = started = now
        self._running[key] = running + 1
        return Ticket(self, key, command, started, last)

    def _release_local(self, ticket: Ticket) -> None:
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

    async def recover(self) -> int:
        """Clear the tickets an earlier run of this process left (none of them is running)."""
        cleared = await self.store.clear_owner(self.owner)
        if cleared:
            log.warning("cleared %d admission ticket(s) left by an earlier run", cleared)
        return cleared

    async def sweep(self) -> int:
        """Drop expired tickets, and members whose cooldown ended whatever a server sets."""
        now = self.clock()
        idle_since = now - LONGEST_COOLDOWN
        for key in [key for key, started in self._started.items() if started <= idle_since]:
            del self._started[key]
        return await self.store.sweep(now, idle_since)
