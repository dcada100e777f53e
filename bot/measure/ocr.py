"""Reads the requested text back from delivered images with an offline OCR engine.

RapidOCR (optional extra ``splitshot[ocr]``) with the default models that ship inside its
wheel: any other model choice downloads at run time and fails offline. The engine is built
once, lazily, in a worker thread — never on the event loop — and shared by the workers
(onnxruntime sessions are safe to run from several threads and release the GIL while they
compute). Panels are measured in parallel up to the core count, each as soon as it arrives.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from PIL import Image

from bot.measure.quotes import Requested
from bot.measure.textmatch import Box, Match, match

log = logging.getLogger(__name__)

#: detector input capped on its long side: 2K images are ~5x slower to detect otherwise
DET_LIMIT_SIDE = 960
Status = Literal["measured", "not_installed", "failed"]
#: the cell of an image that was not read; the note under the table says why, once, so four
#: "not measured" cells do not push a four-model table past a phone's width
NOT_MEASURED = "—"
#: why a panel was not measured, by status
REASONS = {"not_installed": "OCR not installed", "failed": "OCR failed"}


class OcrEngine(Protocol):
    """Anything that reads text boxes from encoded image bytes (blocking; called in a worker)."""

    def read(self, image: bytes) -> Sequence[Box]:
        """The text boxes found in the image."""
        ...


def ocr_installed() -> bool:
    """Whether the optional OCR extra (rapidocr + onnxruntime) is importable."""
    return all(importlib.util.find_spec(name) is not None for name in ("rapidocr", "onnxruntime"))


class RapidOcr:
    """RapidOCR with the shipped default models, built on first use in whichever worker asks."""

    def __init__(self, *, threads_per_image: int = -1) -> None:
        self._threads = threads_per_image
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                # Imported here: the extra is optional, and importing onnxruntime costs ~0.5 s.
                from rapidocr import RapidOCR

                self._engine = RapidOCR(
                    params={
                        "Det.limit_type": "max",
                        "Det.limit_side_len": DET_LIMIT_SIDE,
                        # INFO by default, and WARNING for every image without text.
                        "Global.log_level": "error",
                        "EngineConfig.onnxruntime.intra_op_num_threads": self._threads,
                    }
                )
                logging.getLogger("RapidOCR").setLevel(logging.ERROR)
                log.info("OCR engine ready (RapidOCR, default models)")
            return self._engine

    def read(self, image: bytes) -> list[Box]:
        """Decode the image and return what RapidOCR read, box by box."""
        engine = self._load()
        with Image.open(io.BytesIO(image)) as decoded:
            rgb = decoded.convert("RGB")
        result = engine(rgb)
        texts = getattr(result, "txts", None)
        quads = getattr(result, "boxes", None)
        if not texts or quads is None:
            return []
        boxes = []
        for text, quad in zip(texts, quads, strict=False):
            xs = [float(p[0]) for p in quad]
            ys = [float(p[1]) for p in quad]
            boxes.append(Box(str(text), min(xs), min(ys), max(xs), max(ys)))
        return boxes


@dataclass(frozen=True, slots=True)
class TextAccuracy:
    """How much of the requested text one image shows."""

    requested: tuple[str, ...]
    read: tuple[str, ...] = ()
    #: 0–1, None when not measured
    score: float | None = None
    exact: bool = False
    truncated: bool = False
    status: Status = "measured"
    #: score of each requested string, in order
    parts: tuple[float, ...] = ()

    @property
    def measured(self) -> bool:
        """True when the OCR actually read this image."""
        return self.status == "measured" and self.score is not None

    @property
    def percent(self) -> int | None:
        """The score as a whole percentage; 99 at most unless exact, so 100% always means exact."""
        if self.score is None:
            return None
        pct = round(self.score * 100)
        return pct if self.exact else min(pct, 99)

    def cell(self) -> str:
        """The table cell: '100% ✓', '86%' or '—' when not measured (``reason`` says why)."""
        if not self.measured:
            return NOT_MEASURED
        return f"{self.percent}% ✓" if self.exact else f"{self.percent}%"

    @property
    def reason(self) -> str | None:
        """Why this image was not measured ('OCR not installed'), None when it was."""
        return None if self.measured else REASONS.get(self.status, "OCR failed")

    def as_json(self) -> dict[str, Any]:
        """The documented ``text_accuracy`` object of a panel in ``--json``."""
        return {
            "requested": list(self.requested),
            "read": list(self.read),
            "score": None if self.score is None else round(self.score, 3),
            "exact": self.exact,
            "truncated": self.truncated,
            "status": self.status,
        }


def score_boxes(boxes: Sequence[Box], requested: Requested) -> TextAccuracy:
    """Match every requested string against what was read; the score weighs them by length."""
    matches: list[Match] = [match(text, boxes) for text in requested.texts]
    length = sum(m.length for m in matches)
    edits = sum(m.edits for m in matches)
    score = 1.0 if length == 0 else max(0.0, 1.0 - edits / length)
    return TextAccuracy(
        requested=requested.texts,
        read=tuple(m.read for m in matches),
        score=score,
        exact=edits == 0,
        truncated=requested.truncated,
        parts=tuple(m.score for m in matches),
    )


def default_workers() -> int:
    """One OCR worker per core (at most four: a comparison has at most four panels)."""
    return max(1, min(4, os.cpu_count() or 1))


class TextMeter:
    """Measures text accuracy off the event loop; ``measure`` may be called as each panel lands."""

    def __init__(
        self,
        engine: OcrEngine | None = None,
        *,
        workers: int | None = None,
        installed: bool | None = None,
    ) -> None:
        """``engine`` defaults to RapidOCR when ``installed`` (default: when it can be imported)."""
        self._workers = workers or default_workers()
        if installed is None:
            installed = ocr_installed()
        if engine is None and installed:
            # Each image may use every core: models rarely finish together, so what the member
            # waits for is usually one lone panel, read about twice as fast on two cores.
            engine = RapidOcr()
        self._engine = engine
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def available(self) -> bool:
        """False when the OCR extra is not installed (the row then says so)."""
        return self._engine is not None

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="ocr")
            return self._pool

    def measure_sync(self, image: bytes, requested: Requested) -> TextAccuracy:
        """Blocking measurement of one image (for workers, benches and tests)."""
        if self._engine is None:
            return TextAccuracy(
                requested.texts, truncated=requested.truncated, status="not_installed"
            )
        try:
            boxes = self._engine.read(image)
        except Exception:
            # A measurement decorates the verdict; it never sinks a comparison.
            log.exception("OCR failed on an image of %d bytes", len(image))
            return TextAccuracy(requested.texts, truncated=requested.truncated, status="failed")
        return score_boxes(boxes, requested)

    async def measure(self, image: bytes, requested: Requested) -> TextAccuracy:
        """Measure one image in a worker thread; never raises for a bad image."""
        if self._engine is None:
            return self.measure_sync(image, requested)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self.measure_sync, image, requested)

    async def warm(self) -> None:
        """Build the engine ahead of the first comparison (in a worker, not on the loop)."""
        if isinstance(self._engine, RapidOcr):
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor(), self._engine._load)

    def close(self) -> None:
        """Stop the workers (measurements still running finish in the background)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
