"""The shoot-out store tests run on both backends: a temp SQLite file and a fresh PostgreSQL
database (the report and export rules themselves are pure and need neither)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.db import AnyDatabase, open_database
from bot.shootouts.store import ShootoutStore, shootout_store


@pytest.fixture
async def db(db_target: str) -> AsyncIterator[AnyDatabase]:
    database = await open_database(db_target)
    yield database
    await database.close()


@pytest.fixture
def store(db: AnyDatabase) -> ShootoutStore:
    return shootout_store(db)
