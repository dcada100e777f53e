"""``splitshot export`` on either backend: a SQLite file or a postgresql:// URL as ``--db``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.db import open_database
from bot.settings import Settings


def export(*argv: str) -> int:
    return main(["export", *argv], settings=Settings())


def test_an_unknown_shootout_is_refused_on_either_backend(
    db_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def create() -> None:
        await (await open_database(db_target)).close()

    asyncio.run(create())
    out = tmp_path / "report.html"
    assert export("--db", db_target, "--shootout", "abc123", "--out", str(out)) == 1
    assert "There is no shoot-out `abc123` in this server." in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_file_or_an_unreachable_url_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "report.html")
    assert export("--db", str(tmp_path / "missing.db"), "--comparison", "ab", "--out", out) == 2
    url = "postgresql://splitshot:hunter2@127.0.0.1:9/nowhere"
    assert export("--db", url, "--shootout", "ab", "--out", out) == 2
    err = capsys.readouterr().err
    assert "no database at" in err and "missing.db" in err
    assert "cannot use postgresql://splitshot:***@127.0.0.1:9/nowhere" in err
    assert "hunter2" not in err
