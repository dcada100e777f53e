"""Shared helpers for the ledger tests: a settable clock and a typical two-model price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.credits.ledger import LineItem

GPT = LineItem("gpt-image-2", "GPT-Image 2", 8)
NANO = LineItem("nano-banana-pro", "Nano Banana Pro", 22)
PAIR = (GPT, NANO)  # 30 credits
START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
