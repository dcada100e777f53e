"""A fake OCR engine: reads a chosen text from each image, keyed by its top-left pixel."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from PIL import Image

from bot.measure.textmatch import Box


@dataclass
class FakeOcr:
    """Returns ``texts[red channel of pixel (0, 0)]``; records when each read started."""

    texts: Mapping[int, str] = field(default_factory=dict)
    default: str = ""
    fail: bool = False
    started: list[float] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def read(self, image: bytes) -> list[Box]:
        self.started.append(time.monotonic())
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("model file is corrupt")
        with Image.open(io.BytesIO(image)) as decoded:
            red = decoded.convert("RGB").getpixel((0, 0))
        assert isinstance(red, tuple)
        text = self.texts.get(red[0], self.default)
        return [Box(text, 0, 0, 100, 20)] if text else []
