"""Bad databases, ids, output paths, endless references and terminal escapes: one clean line
and a documented exit code, never a traceback, and nothing charged."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.__main__ import configure_logging
from bot.cli.main import main
from bot.credits.ledger import Ledger
from bot.db import Database, DatabaseUnavailable
from bot.db.connection import explain
from bot.db.migrate import bundled_migrations
from bot.render.terminal import terminal_safe
from bot.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"SPLITSHOT_DEMO_LATENCY": "0"})


def run(argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv, settings=settings)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    return lines[-1]


def make_db(path: Path) -> None:
    async def create() -> None:
        db = await Database.open(path)
        await db.close()

    asyncio.run(create())


def corrupt(tmp: Path) -> Path:
    path = tmp / "corrupt.db"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    return path


def directory(tmp: Path) -> Path:
    path = tmp / "a-folder.db"
    path.mkdir()
    return path


def newer(tmp: Path) -> Path:
    path = tmp / "newer.db"
    make_db(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    conn.execute("PRAGMA journal_mode = DELETE")  # all of it in the file compared below
    conn.close()
    return path


def foreign(tmp: Path) -> Path:
    path = tmp / "other-app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (corrupt, "not a SQLite database"),
        (directory, "it is a directory"),
        (newer, "newer than this program knows"),
        (foreign, "not a Splitshot database"),
    ],
)
def test_a_bad_database_is_one_line_and_exit_2(
    make: Callable[[Path], Path],
    reason: str,
    tmp_path: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = make(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    out = tmp_path / "out"
    code, err = run(["compare", "a fox", "--db", str(path), "--out", str(out)], settings, capsys)
    assert code == 2
    line = one_line(err)
    assert (
        line.startswith(f"splitshot: cannot use {path} as the Splitshot database")
        and reason in line
    )
    assert not list(tmp_path.glob("out*")), "refused before anything ran"
    if before is not None:
        assert path.read_bytes() == before, "the file was left as it was"
    code, err = run(["credits", "audit", "--db", str(path)], settings, capsys)
    assert code == 2 and reason in one_line(err)


def test_the_bot_refuses_a_bad_database_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {"DISCORD_TOKEN": "x" * 59, "SPLITSHOT_DB": str(directory(tmp_path))}
    )
    code, err = run(["run"], settings, capsys)
    assert code == 2 and "it is a directory" in one_line(err)


async def test_a_full_disk_is_named(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for entry in bundled_migrations().iterdir():
        if entry.name.endswith(".sql"):
            (migrations / entry.name).write_text(entry.read_text("utf-8"))
    count = len(list(migrations.iterdir()))
    # max_page_count holds the file at its size: the next page SQLite needs is "disk full".
    (migrations / f"{count + 1:04d}_fill.sql").write_text(
        "PRAGMA max_page_count = 1;\nCREATE TABLE filler (blob BLOB);\n"
        "INSERT INTO filler VALUES (randomblob(1000000));\n"
    )
    with pytest.raises(DatabaseUnavailable, match="the disk is full"):
        await Database.open(tmp_path / "full.db", migrations=migrations)
    assert explain(sqlite3.OperationalError("database or disk is full")) == "the disk is full"


def test_a_write_failing_mid_comparison_is_one_line_and_charges_nothing(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "credits.db"
    make_db(path)
    with sqlite3.connect(path) as conn:
        # The first write of a comparison fails the way a full disk does.
        conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON provider_spend "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    code, err = run(
        ["compare", "a fox", "--db", str(path), "--user", "5", "--out", str(tmp_path / "o")],
        settings,
        capsys,
    )
    assert code == 2 and one_line(err) == "splitshot: the database failed: the disk is full."
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM holds").fetchone()[0] == 0


def as_unprivileged(action: Callable[[], int]) -> int:
    """Run ``action`` where file permissions apply: in a child dropped to "nobody" when root."""
    if os.geteuid() != 0:
        return action()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 99
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = action()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def read_only_db() -> Iterator[Path]:
    """A database with one account, in a folder nobody may write, itself read-only.

    Made in a folder of its own under the system temp directory, so a child process dropped
    to "nobody" can reach it without loosening any shared folder.
    """
    base = Path(tempfile.mkdtemp(prefix="splitshot-ro-"))
    base.chmod(0o755)
    folder = base / "ro"
    folder.mkdir()
    path = folder / "credits.db"

    async def fill() -> None:
        db = await Database.open(path)
        await Ledger(db).ensure_account(5, 42)
        await db.close()

    asyncio.run(fill())
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield path
    finally:
        folder.chmod(0o755)
        shutil.rmtree(base)


def test_credits_reports_read_a_read_only_database(
    read_only_db: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything the child needs is imported (and every lazy import done) by a first run here.
    warm = read_only_db.parent.parent / "warm.db"
    make_db(warm)
    assert main(["credits", "audit", "--db", str(warm)], settings=settings) == 0
    capsys.readouterr()
    audit = ["credits", "audit", "--db", str(read_only_db)]
    balance = ["credits", "balance", "--db", str(read_only_db), "--guild", "5", "--user", "42"]
    assert as_unprivileged(lambda: main(audit, settings=settings)) == 0
    assert as_unprivileged(lambda: main(balance, settings=settings)) == 0
    grant = [*balance, "--amount", "5", "--reason", "x"]
    grant[1] = "grant"
    assert as_unprivileged(lambda: main(grant, settings=settings)) == 2
    assert sorted(p.name for p in read_only_db.parent.iterdir()) == ["credits.db"]


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "a fox", "--guild", "-1"],
        ["compare", "a fox", "--user", "99999999999999999999"],
        ["credits", "balance", "--db", "x.db", "--guild", "-1", "--user", "1"],
    ],
)
def test_bad_ids_are_one_line(
    argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(argv, settings, capsys)
    assert code == 2 and "is not an id" in one_line(err)


def test_an_unwritable_out_is_one_line_and_charges_nothing(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "credits.db"
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    out = blocker / "split"  # a folder inside a file: unwritable for root too
    code, err = run(
        ["compare", "a fox", "--db", str(db), "--user", "7", "--out", str(out)], settings, capsys
    )
    assert code == 2
    line = one_line(err)
    assert "Cannot write the split image" in line and "nothing was charged" in line
    code, err = run(["credits", "balance", "--db", str(db), "--user", "7"], settings, capsys)
    assert code == 0


def test_an_endless_reference_is_refused_after_its_limit(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["compare", "a fox", "--reference", "/dev/zero"], settings, capsys)
    assert code == 2 and "the limit is 20 MB" in one_line(err)


def test_terminal_escapes_from_outside_are_removed() -> None:
    hostile = "declined \x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\rover\x9b\x08 ok\n\tnext"
    assert terminal_safe(hostile) == "declined redover ok\n\tnext"


def test_discord_debug_logs_need_their_own_switch() -> None:
    discord_logger = logging.getLogger("discord")
    saved = discord_logger.level
    try:
        configure_logging("DEBUG")
        assert discord_logger.level == logging.INFO
        configure_logging("WARNING")
        assert discord_logger.level == logging.WARNING
        configure_logging("DEBUG", "DEBUG")
        assert discord_logger.level == logging.DEBUG
    finally:
        discord_logger.setLevel(saved)
    settings = Settings.from_env({"SPLITSHOT_DISCORD_LOG_LEVEL": "debug"})
    assert settings.discord_log_level == "DEBUG"
