"""One comparison's text measurements: each panel starts as soon as its image lands."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from bot.measure.ocr import TextAccuracy, TextMeter
from bot.measure.quotes import Requested, requested_text

log = logging.getLogger(__name__)

#: how long the result waits, after the last panel, for the text measurements to finish
MEASURE_TIMEOUT_S = 30.0


class _Image(Protocol):
    @property
    def image(self) -> bytes: ...


class _Panel(Protocol):
    @property
    def index(self) -> int: ...


class _Outcome(Protocol):
    """The part of a comparison's panel outcome this needs (its index and image, if any)."""

    @property
    def panel(self) -> _Panel: ...

    @property
    def result(self) -> _Image | None: ...


class TextReading:
    """Measures each delivered panel's quoted text in the meter's workers, off the event loop."""

    def __init__(
        self, meter: TextMeter | None, prompt: str, *, timeout_s: float = MEASURE_TIMEOUT_S
    ) -> None:
        self._meter = meter
        self.timeout_s = timeout_s
        self.requested: Requested | None = requested_text(prompt) if meter is not None else None
        self._tasks: dict[int, asyncio.Future[TextAccuracy]] = {}

    def start(self, index: int, image: bytes) -> None:
        """Start measuring panel ``index`` (a no-op when the prompt quotes no text)."""
        if self._meter is None or self.requested is None or index in self._tasks:
            return
        self._tasks[index] = asyncio.ensure_future(self._meter.measure(image, self.requested))

    def start_outcome(self, outcome: _Outcome) -> None:
        """``start`` for a finished panel; panels without an image are skipped."""
        if outcome.result is not None:
            self.start(outcome.panel.index, outcome.result.image)

    async def results(self, delivered: Sequence[bool]) -> tuple[TextAccuracy | None, ...]:
        """One measurement per panel (None where no image reached the member); () without text."""
        if self.requested is None:
            return ()
        for i, task in self._tasks.items():
            if not delivered[i]:
                task.cancel()
        wanted = {i: task for i, task in self._tasks.items() if delivered[i]}
        if wanted:
            # A stuck OCR must not hold the member's result hostage.
            await asyncio.wait(wanted.values(), timeout=self.timeout_s)
        found = {i: self._outcome(task) for i, task in wanted.items()}
        return tuple(found.get(i) for i in range(len(delivered)))

    def _outcome(self, task: asyncio.Future[TextAccuracy]) -> TextAccuracy:
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        task.cancel()
        assert self.requested is not None
        log.warning("text measurement failed or took over %.0f s", self.timeout_s)
        return TextAccuracy(
            self.requested.texts, truncated=self.requested.truncated, status="failed"
        )

    def cancel(self) -> None:
        """Stop waiting for measurements nobody will read."""
        for task in self._tasks.values():
            task.cancel()
