"""The ledger tests run on both backends: a temp SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.credits.ledger import Ledger
from bot.db import AnyDatabase, open_database
from tests.bot.credits.ledger_fakes import FakeClock


@pytest.fixture
async def db(db_target: str) -> AsyncIterator[AnyDatabase]:
    database = await open_database(db_target)
    yield database
    await database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(db: AnyDatabase, clock: FakeClock) -> Ledger:
    return Ledger(db, clock=clock)
