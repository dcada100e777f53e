"""Shared test helpers: real images, fake adapters and a temp-file database."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from providers.base import ImageRequest, ImageResult, ProviderError, Target


def png_bytes(
    size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    """A small real PNG."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class FakeAdapter:
    """An adapter that returns a real PNG, or raises the error set for a model, after a delay."""

    name: str = "fake"
    delay: float = 0.0
    errors: dict[str, ProviderError] = field(default_factory=dict)
    crash: set[str] = field(default_factory=set)
    calls: list[tuple[str, float, float]] = field(default_factory=list)

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.calls.append((target.model_id, started, loop.time()))
        if target.model_id in self.crash:
            raise RuntimeError("adapter bug")
        if target.model_id in self.errors:
            raise self.errors[target.model_id]
        colour = (40 + 50 * len(self.calls), 120, 200)
        return ImageResult(
            png_bytes((96, 128), colour),
            "image/png",
            96,
            128,
            self.delay,
            self.name,
            target.upstream_id,
        )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[object]:
    """A real SQLite database on a temp file, migrated."""
    from bot.db import Database

    database = await Database.open(tmp_path / "test.db")
    try:
        yield database
    finally:
        await database.close()
