"""``splitshot credits ...`` driven through argparse, against a real database file."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from bot.cli.credits import register
from bot.credits.budget import DEFAULT_RUNNING_WINDOW, SpendItem, admit, finish
from bot.credits.ledger import Ledger, OperatorLimits
from bot.db import Database

T = TypeVar("T")


def parser(default_db: Path | None = None) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="splitshot")
    register(root.add_subparsers(dest="command"), default_db)
    return root


def run(*argv: str, default_db: Path | None = None) -> int:
    args = parser(default_db).parse_args(list(argv))
    code = args.func(args)
    assert isinstance(code, int)
    return code


def with_ledger(path: Path, action: Callable[[Ledger, Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = await Database.open(path)
        try:
            return await action(Ledger(db), db)
        finally:
            await db.close()

    return asyncio.run(main())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db_path = tmp_path / "splitshot.db"
    with_ledger(db_path, lambda ledger, db: ledger.ensure_account(5, 42))
    return db_path


def test_audit_is_clean_on_a_healthy_database(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("credits", "audit", "--db", str(path)) == 0
    assert capsys.readouterr().out.startswith("Audit clean: 1 accounts, 1 ledger rows")


def test_audit_exits_non_zero_and_prints_each_discrepancy(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_ledger(path, lambda ledger, db: db.execute("UPDATE accounts SET balance = balance + 1"))
    assert run("credits", "audit", "--db", str(path)) == 1
    out = capsys.readouterr().out
    assert "DISCREPANCY [balance] Guild 5, member 42: balance 61 but the ledger sums to 60." in out
    assert "Audit FAILED: 1 discrepancies" in out


def test_grant_balance_revoke_history(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(path)
    common = ("--db", db, "--guild", "5", "--user", "42")
    assert (
        run("credits", "grant", *common, "--amount", "1,000", "--reason", "prize", "--actor", "7")
        == 0
    )
    assert "Granted 1,000 credits to member 42; balance now 1,060." in capsys.readouterr().out
    assert run("credits", "revoke", *common, "--amount", "60", "--reason", "oops") == 0
    assert run("credits", "balance", *common) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Guild 5, member 42: 1,000 credits"
    assert run("credits", "history", *common, "--per-page", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Guild 5, member 42: page 1 of 2 (3 entries, newest first)"
    assert "revoke" in lines[1] and "oops" in lines[1] and "-60" in lines[1]
    assert "grant" in lines[2] and "prize" in lines[2]
    assert run("credits", "history", *common, "--per-page", "2", "--page", "2") == 0
    assert "starter" in capsys.readouterr().out
    assert run("credits", "top", "--db", db, "--guild", "5") == 0
    assert capsys.readouterr().out.strip() == "1. 42  1,000"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1.5", "must be a whole number of credits, not '1.5'"),
        ("0", "must be at least 1 credit"),
        ("10001", "A single grant is limited to 10,000 credits"),
        ("5000000000", "is too large"),
    ],
)
def test_refused_grants_exit_1_with_the_ledger_sentence(
    path: Path, capsys: pytest.CaptureFixture[str], amount: str, message: str
) -> None:
    code = run("credits", "grant", "--db", str(path), "--guild", "5", "--user", "42",
               "--amount", amount, "--reason", "r")  # fmt: skip
    assert code == 1
    assert message in capsys.readouterr().err


def test_revoke_beyond_balance_and_missing_reason(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--db", str(path), "--guild", "5", "--user", "42")
    assert run("credits", "revoke", *common, "--amount", "61", "--reason", "r") == 1
    assert "only 60 credits" in capsys.readouterr().err
    assert run("credits", "grant", *common, "--amount", "5", "--reason", "  ") == 1
    assert "give a reason" in capsys.readouterr().err


def test_a_missing_database_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    assert run("credits", "audit", "--db", str(missing)) == 2
    assert "no database at" in capsys.readouterr().err
    assert not missing.exists()


def test_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("hello, I am not SQLite " * 100)
    assert run("credits", "balance", "--db", str(junk), "--user", "1") == 2
    assert "cannot use" in capsys.readouterr().err


def test_db_defaults_to_the_passed_in_path(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("credits", "balance", "--guild", "5", "--user", "42", default_db=path) == 0
    assert "60 credits" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser().parse_args(["credits", "balance", "--user", "42"])  # --db required without one
    with pytest.raises(SystemExit):
        parser().parse_args(["credits", "history", "--db", "x", "--user", "1", "--per-page", "51"])


def test_every_credits_command_takes_a_postgresql_url(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--db", pg_url, "--guild", "5", "--user", "42")
    assert run("credits", "grant", *common, "--amount", "1,000", "--reason", "prize") == 0
    assert run("credits", "revoke", *common, "--amount", "60", "--reason", "spam") == 0
    assert run("credits", "balance", *common) == 0
    assert run("credits", "history", *common) == 0
    assert run("credits", "top", "--db", pg_url, "--guild", "5") == 0
    assert run("credits", "audit", "--db", pg_url) == 0
    assert run("credits", "spend", "--db", pg_url) == 0
    out = capsys.readouterr().out
    assert "Provider spend for every server" in out and "nothing yet" in out
    assert "Guild 5, member 42: 1,000 credits" in out
    assert "Audit clean: 1 accounts, 3 ledger rows, 0 reservations (0 open)." in out


def test_an_unreachable_postgresql_url_is_a_usage_error_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://splitshot:hunter2@127.0.0.1:9/nowhere"
    assert run("credits", "audit", "--db", url) == 2
    err = capsys.readouterr().err
    assert "cannot use postgresql://splitshot:***@127.0.0.1:9/nowhere" in err
    assert "hunter2" not in err


def test_spend_reports_per_day_server_and_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spend.db"
    now = datetime.now(UTC)
    limits = OperatorLimits.unlimited()
    items = [SpendItem("gpt-image-2", 8), SpendItem("nano-banana-pro", 22)]
    runs = {"c1": (5, ["gpt-image-2", "nano-banana-pro"]), "c2": (5, ["gpt-image-2"])}
    runs["c3"] = (6, ["gpt-image-2", "nano-banana-pro"])

    def spend(conn: sqlite3.Connection) -> None:
        for comparison, (guild, delivered) in runs.items():
            admit(conn, guild, comparison, items, limits, now, DEFAULT_RUNNING_WINDOW)
            finish(conn, comparison, delivered, now.isoformat())

    async def record(ledger: Ledger, db: Database) -> None:
        await db.run_in_transaction(spend)

    with_ledger(path, record)
    assert run("credits", "spend", "--db", str(path)) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    day = now.date().isoformat()
    assert [day, "5", "gpt-image-2", "2", "16"] in rows
    assert [day, "5", "nano-banana-pro", "1", "22"] in rows
    assert [day, "6", "nano-banana-pro", "1", "22"] in rows
    assert [day, "total:", "68"] in rows  # the 22 of the one that failed came back
    assert run("credits", "spend", "--db", str(path), "--guild", "6", "--days", "1") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [day, "total:", "30"] in rows and not any(row[1:2] == ["5"] for row in rows)
