"""The text meter: off the event loop, never raising, honest when OCR is missing."""

from __future__ import annotations

import threading

import pytest

from bot.measure.ocr import TextAccuracy, TextMeter, score_boxes
from bot.measure.quotes import Requested, requested_text
from bot.measure.reading import TextReading
from bot.measure.textmatch import Box
from tests.bot.measure.fakes import FakeOcr
from tests.conftest import png_bytes

OPEN = Requested(("OPEN 24/7",))


async def test_measure_runs_in_a_worker_thread_not_on_the_loop() -> None:
    engine = FakeOcr(default="OPEN 24/7")
    meter = TextMeter(engine, workers=2)
    try:
        result = await meter.measure(png_bytes(), OPEN)
    finally:
        meter.close()
    assert result.exact and result.score == 1.0 and result.read == ("OPEN 24/7",)
    assert engine.threads and threading.current_thread().name not in engine.threads
    assert all(name.startswith("ocr") for name in engine.threads)


async def test_without_the_ocr_extra_the_row_says_so() -> None:
    meter = TextMeter(installed=False)
    assert not meter.available
    result = await meter.measure(png_bytes(), OPEN)
    assert not result.measured and result.score is None
    assert result.cell() == "—" and result.reason == "OCR not installed"


async def test_an_ocr_crash_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    meter = TextMeter(FakeOcr(fail=True), workers=1)
    try:
        result = await meter.measure(png_bytes(), OPEN)
    finally:
        meter.close()
    assert result.status == "failed" and result.reason == "OCR failed"
    assert "OCR failed" in caplog.text


def test_an_image_without_text_scores_zero() -> None:
    result = TextMeter(FakeOcr(), workers=1).measure_sync(png_bytes(), OPEN)
    assert result.measured and result.score == 0.0 and not result.exact
    assert result.cell() == "0%"


def test_several_strings_weigh_by_length_and_exact_needs_all() -> None:
    requested = requested_text('a poster "MIDNIGHT RIDE" and "TOUR 2026"')
    assert requested is not None
    result = score_boxes([Box("MIDNIGHT RIDE"), Box("TOUR 2O27")], requested)
    # 1 edit ("7" for "6"; O reads as 0) over 12 + 8 normalised characters
    assert result.score == pytest.approx(1 - 1 / 20)
    assert not result.exact and result.parts == (1.0, pytest.approx(1 - 1 / 8))
    assert result.read == ("MIDNIGHT RIDE", "TOUR 2O27")


def test_only_exact_shows_100_percent_and_a_tick() -> None:
    nearly = TextAccuracy(("x" * 300,), ("x" * 299,), score=0.997, exact=False)
    assert nearly.percent == 99 and nearly.cell() == "99%"
    exact = TextAccuracy(("OPEN",), ("OPEN",), score=1.0, exact=True)
    assert exact.cell() == "100% ✓"


def test_json_shape() -> None:
    result = TextAccuracy(("OPEN 24/7",), ("OPEN 2A/7",), score=6 / 7, exact=False, parts=(6 / 7,))
    assert result.as_json() == {
        "requested": ["OPEN 24/7"],
        "read": ["OPEN 2A/7"],
        "score": 0.857,
        "exact": False,
        "truncated": False,
        "status": "measured",
    }


async def test_a_stuck_ocr_does_not_hold_the_result() -> None:
    release = threading.Event()

    class Stuck:
        def read(self, image: bytes) -> list[Box]:
            release.wait(5)
            return []

    meter = TextMeter(Stuck(), workers=1)
    reading = TextReading(meter, 'a sign "OPEN"', timeout_s=0.05)
    reading.start(0, png_bytes())
    try:
        (result,) = await reading.results([True])
    finally:
        release.set()
        meter.close()
    assert result is not None and result.status == "failed" and result.cell() == "—"
