"""Shared test helpers: real images, fake adapters, a temp-file database, a PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from providers.base import ImageRequest, ImageResult, ProviderError, Target
from tests.pg import BACKENDS, PostgresCluster, create_template, find_pg_bin, fresh_database


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


# --- PostgreSQL: one throwaway cluster per test session, a fresh database per test ----------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the whole session (skipped without the binaries)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        message = (
            "PostgreSQL server binaries not found (apt-get install postgresql); "
            "the PostgreSQL backend is not tested"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must run these tests (.ci/run installs postgresql)")
        pytest.skip(message)
    cluster = PostgresCluster.start(bin_dir)
    try:
        asyncio.run(create_template(cluster))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster) -> str:
    """The URL of a fresh, migrated PostgreSQL database of its own."""
    return asyncio.run(fresh_database(pg_cluster))


@pytest.fixture(params=BACKENDS)
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ``--db`` value for each backend: a temp SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "test.db")
    return str(request.getfixturevalue("pg_url"))
