"""What a comparison job tells its presenters: one event per step, in order.

The Discord cog and the terminal subscribe to a job's events; the engine never calls up into
either. A listener that fails is logged and skipped: presenting is cosmetic, the money is not.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.comparisons.plan import Plan, State

if TYPE_CHECKING:
    from bot.comparisons.service import AllModelsFailed, ComparisonResult
    from bot.comparisons.view import ComparisonView

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Admitted:
    """The member has a running slot; nothing is spent yet."""

    plan: Plan


@dataclass(frozen=True, slots=True)
class Reserved:
    """The price is held (``balance_after`` is what the member has left while it runs)."""

    plan: Plan
    amount: int
    balance_after: int | None


@dataclass(frozen=True, slots=True)
class PanelChanged:
    """One model changed state (queued, generating, done, refused, failed)."""

    plan: Plan
    index: int
    state: State
    elapsed: float
    reason: str | None = None
    #: while QUEUED: this model's place in line for a request slot (1 = next), when known
    position: int | None = None


@dataclass(frozen=True, slots=True)
class Composing:
    """Every model has answered; the split image is waiting for (or using) a compose slot."""

    plan: Plan
    #: composes waiting in front of this one (0: it is being composed now)
    ahead: int


@dataclass(frozen=True, slots=True)
class ResultReady:
    """Composed, judged, settled and recorded: ready to be shown to the member."""

    plan: Plan
    result: ComparisonResult
    view: ComparisonView


@dataclass(frozen=True, slots=True)
class Failed:
    """Nothing reached the member; every credit held for it is back."""

    plan: Plan
    reason: str
    refunded: int
    error: AllModelsFailed | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """The member has the result (a posted message, or a file on disk)."""

    plan: Plan
    message_id: int | None


Event = Admitted | Reserved | PanelChanged | Composing | ResultReady | Failed | Delivered
Listener = Callable[[Event], Awaitable[None] | None]


class EventBus:
    """Delivers each event to every subscriber in turn."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every later event."""
        self._listeners.append(listener)

    async def publish(self, event: Event) -> None:
        """Tell every subscriber; one that raises is logged, never propagated."""
        for listener in list(self._listeners):
            try:
                maybe = listener(event)
                if inspect.isawaitable(maybe):
                    await maybe
            except Exception:
                log.warning(
                    "a listener failed on %s for comparison %s",
                    type(event).__name__,
                    event.plan.id,
                    exc_info=True,
                )
