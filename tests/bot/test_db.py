"""The database layer: pragmas, numbered migrations, and the transaction helpers."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database, DatabaseUnavailable, MigrationError
from bot.db.migrate import bundled_migrations, discover, split_statements

# Other features add their own numbered migrations; extras in these tests go after them.
BUNDLED = len(discover(bundled_migrations()))


def numbered(offset: int, name: str) -> str:
    return f"{BUNDLED + offset:04d}_{name}.sql"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "test.db")
    yield database
    await database.close()


def migrations_dir(tmp_path: Path, extra: dict[str, str]) -> Path:
    """A copy of the bundled migrations plus ``extra`` files."""
    directory = tmp_path / "migrations"
    directory.mkdir(exist_ok=True)
    for migration in discover(bundled_migrations()):
        (directory / migration.name).write_text(migration.sql)
    for name, sql in extra.items():
        (directory / name).write_text(sql)
    return directory


async def pragma(db: Database, name: str) -> object:
    row = await db.fetchone(f"PRAGMA {name}")
    assert row is not None
    return row[0]


async def test_open_sets_wal_foreign_keys_busy_timeout_and_normal_sync(db: Database) -> None:
    assert await pragma(db, "journal_mode") == "wal"
    assert await pragma(db, "foreign_keys") == 1
    assert await pragma(db, "busy_timeout") == 5000
    assert await pragma(db, "synchronous") == 1  # NORMAL
    assert await pragma(db, "user_version") == db.schema_version == BUNDLED >= 1


async def test_reopening_does_not_reapply_migrations(tmp_path: Path) -> None:
    first = await Database.open(tmp_path / "test.db")
    await first.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
    await first.close()
    again = await Database.open(tmp_path / "test.db")
    try:
        assert again.schema_version == BUNDLED
        assert await again.fetchall("SELECT guild_id FROM guild_settings") != []
    finally:
        await again.close()


async def test_later_migrations_apply_in_order_on_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "test.db"
    await (await Database.open(path)).close()
    directory = migrations_dir(
        tmp_path,
        {
            numbered(2, "more"): "ALTER TABLE extra ADD COLUMN note TEXT DEFAULT 'three';",
            numbered(
                1, "extra"
            ): "-- a comment; with a semicolon\nCREATE TABLE extra (id INTEGER);\n"
            "INSERT INTO extra VALUES (2);",
            "README.txt": "not a migration",
        },
    )
    db = await Database.open(path, migrations=directory)
    try:
        assert db.schema_version == BUNDLED + 2
        row = await db.fetchone("SELECT id, note FROM extra")
        assert row is not None and tuple(row) == (2, "three")
    finally:
        await db.close()


async def test_a_failing_migration_rolls_back_whole(tmp_path: Path) -> None:
    directory = migrations_dir(
        tmp_path,
        {numbered(1, "bad"): "CREATE TABLE half (id INTEGER);\nINSERT INTO nowhere VALUES (1);"},
    )
    with pytest.raises(DatabaseUnavailable, match="nowhere") as caught:
        await Database.open(tmp_path / "test.db", migrations=directory)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    db = await Database.open(tmp_path / "test.db")  # the bundled ones alone still work
    try:
        assert db.schema_version == BUNDLED
        assert await db.fetchone("SELECT name FROM sqlite_master WHERE name = 'half'") is None
    finally:
        await db.close()


async def test_migration_numbering_and_versions_are_checked(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="without gaps"):
        await Database.open(
            tmp_path / "a.db", migrations=migrations_dir(tmp_path, {numbered(2, "gap"): ""})
        )
    (tmp_path / "migrations" / numbered(2, "gap")).unlink()
    (tmp_path / "migrations" / "2_badly_named.sql").write_text("")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        await Database.open(tmp_path / "b.db", migrations=tmp_path / "migrations")
    shutil.rmtree(tmp_path / "migrations")
    newer = migrations_dir(tmp_path, {numbered(1, "future"): "CREATE TABLE future (id INTEGER);"})
    await (await Database.open(tmp_path / "c.db", migrations=newer)).close()
    with pytest.raises(DatabaseUnavailable, match="newer than this program"):
        await Database.open(tmp_path / "c.db")


def test_split_statements_keeps_triggers_and_quoted_semicolons_whole() -> None:
    script = """
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    -- a comment; with a semicolon
    CREATE TRIGGER t_guard BEFORE DELETE ON t BEGIN SELECT RAISE(ABORT, 'no; never'); END;
    INSERT INTO t VALUES ('c;d');
    -- trailing comment
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].endswith("END;")
    with pytest.raises(MigrationError, match="incomplete"):
        split_statements("CREATE TABLE t (x TEXT);\nINSERT INTO t VALUES (1)")


async def test_transaction_commits_and_rolls_back_on_any_exception(db: Database) -> None:
    insert = "INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, 'x')"
    async with db.transaction() as conn:
        await conn.execute(insert, (1,))
    with pytest.raises(KeyError):
        async with db.transaction() as conn:
            await conn.execute(insert, (2,))
            raise KeyError("boom")

    def fails(conn: sqlite3.Connection) -> None:
        conn.execute(insert, (3,))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.run_in_transaction(fails)
    rows = await db.fetchall("SELECT guild_id FROM guild_settings ORDER BY guild_id")
    assert [row[0] for row in rows] == [1]
    assert not db.conn.in_transaction


async def test_a_cancelled_transaction_rolls_back_and_the_next_one_works(db: Database) -> None:
    entered = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
            entered.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(slow_writer())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        await db.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (2, 'x')") == 1
    )
    rows = await db.fetchall("SELECT guild_id FROM guild_settings")
    assert [row[0] for row in rows] == [2]


async def test_other_tasks_never_see_an_open_transaction(db: Database) -> None:
    inside = asyncio.Event()
    finish = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (1, 'x')")
            inside.set()
            await finish.wait()
            # The owner reads its own uncommitted row without deadlocking on its own lock.
            assert await db.fetchone("SELECT 1 FROM guild_settings") is not None

    writing = asyncio.create_task(writer())
    await inside.wait()
    reader = asyncio.create_task(db.fetchall("SELECT guild_id FROM guild_settings"))
    job = asyncio.create_task(
        db.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (2, 'x')")
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reader.done() and not job.done()  # both wait for the writer's COMMIT
    finish.set()
    await writing
    assert [row[0] for row in await reader] == [1]
    assert await job == 1


async def test_transactions_do_not_nest(db: Database) -> None:
    async with db.transaction():
        with pytest.raises(RuntimeError, match="do not nest"):
            async with db.transaction():
                pass
        with pytest.raises(RuntimeError, match="do not nest"):
            await db.run_in_transaction(lambda conn: None)


async def test_run_read_sees_one_snapshot(db: Database) -> None:
    def read(conn: sqlite3.Connection) -> tuple[bool, int]:
        return conn.in_transaction, conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]

    assert await db.run_read(read) == (True, 0)
    assert not db.conn.in_transaction


async def test_many_single_job_transactions_interleave_safely(db: Database) -> None:
    insert = "INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, 'x')"

    async def through_context(n: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(insert, (n,))
            await conn.execute("SELECT 1")

    calls = [db.execute(insert, (n,)) for n in range(0, 200, 2)]
    calls += [through_context(n) for n in range(1, 200, 2)]
    await asyncio.gather(*calls)
    row = await db.fetchone("SELECT COUNT(*) FROM guild_settings")
    assert row is not None and row[0] == 200


async def test_close_then_use_fails_clearly(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "closed.db")
    await db.close()
    await db.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        await db.fetchone("SELECT 1")
