"""The vote store tests run on both backends: a temp SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.db import AnyDatabase, open_database


@pytest.fixture
async def db(db_target: str) -> AsyncIterator[AnyDatabase]:
    database = await open_database(db_target)
    yield database
    await database.close()
