"""``splitshot credits ...``: audit, inspect and adjust the credits database without Discord."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from bot.credits.budget import Budget
from bot.credits.ledger import MAX_PER_PAGE, MAX_TOP, Ledger, parse_amount
from bot.db import (
    AnyDatabase,
    DatabaseUnavailable,
    MigrationError,
    describe_target,
    is_postgres_url,
    open_database,
)
from bot.db.connection import explain
from bot.errors import SplitshotError

MAX_ID = 2**63 - 1
EXIT_OK = 0
EXIT_REFUSED = 1  # a discrepancy, or the ledger refused the operation
EXIT_USAGE = 2  # like argparse: the command cannot run as given

Handler = Callable[[Ledger, AnyDatabase, argparse.Namespace], Awaitable[int]]


def _fail(message: str, code: int) -> int:
    print(f"splitshot credits: {message}", file=sys.stderr)
    return code


def _runner(handler: Handler, *, read_only: bool = False) -> Callable[[argparse.Namespace], int]:
    """Wrap an async handler: open the database, run it, close it, map errors to exit codes.

    Reports open the database read-only, so they work on a read-only file or a copy.
    """

    def run(args: argparse.Namespace) -> int:
        target = os.fspath(args.db)
        # Never create a fresh, empty ledger because of a typo in --db (a PostgreSQL database
        # must exist already; its tables are created on first use, as the bot does).
        if not is_postgres_url(target) and not Path(target).exists():
            return _fail(
                f"no database at {target} (check --db; the bot creates it on start)", EXIT_USAGE
            )

        async def main() -> int:
            db = await open_database(target, pool_size=2, read_only=read_only)
            try:
                return await handler(Ledger(db), db, args)
            finally:
                await db.close()

        try:
            return asyncio.run(main())
        except DatabaseUnavailable as error:
            return _fail(str(error), EXIT_USAGE)
        except SplitshotError as error:
            return _fail(str(error), EXIT_REFUSED)
        except (sqlite3.Error, MigrationError) as error:
            label = describe_target(target)
            return _fail(
                f"cannot use {label} as the Splitshot database: {explain(error)}.", EXIT_USAGE
            )
        except (asyncpg.PostgresError, OSError) as error:
            label = describe_target(target)
            return _fail(f"cannot use {label} as the Splitshot database: {error}", EXIT_USAGE)

    return run


async def _audit(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    found = await ledger.audit()
    counts = await ledger.counts()
    summary = (
        f"{counts.accounts:,} accounts, {counts.rows:,} ledger rows, "
        f"{counts.holds:,} reservations ({counts.open_holds:,} open)"
    )
    if not found:
        print(f"Audit clean: {summary}.")
        return EXIT_OK
    for discrepancy in found:
        print(f"DISCREPANCY [{discrepancy.kind}] {discrepancy}")
    print(f"Audit FAILED: {len(found):,} discrepancies in {summary}.")
    return EXIT_REFUSED


async def _balance(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    balance = await ledger.balance(args.guild, args.user)
    print(f"Guild {args.guild}, member {args.user}: {balance:,} credits")
    return EXIT_OK


async def _grant(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    amount = parse_amount(args.amount)
    balance = await ledger.grant(args.guild, args.user, amount, args.reason, actor_id=args.actor)
    print(f"Granted {amount:,} credits to member {args.user}; balance now {balance:,}.")
    return EXIT_OK


async def _revoke(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    amount = parse_amount(args.amount)
    balance = await ledger.revoke(args.guild, args.user, amount, args.reason, actor_id=args.actor)
    print(f"Revoked {amount:,} credits from member {args.user}; balance now {balance:,}.")
    return EXIT_OK


async def _history(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    page = await ledger.history(args.guild, args.user, page=args.page - 1, per_page=args.per_page)
    print(
        f"Guild {args.guild}, member {args.user}: page {args.page} of {page.pages} "
        f"({page.total:,} entries, newest first)"
    )
    for entry in page.entries:
        when = f"{entry.created_at:%Y-%m-%d %H:%M:%S}"
        print(
            f"#{entry.id:<7} {when}  {entry.delta:>+10,}  = {entry.balance_after:>10,}  "
            f"{entry.kind:<8}  {entry.reason}"
        )
    return EXIT_OK


async def _spend(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    budget = Budget(db, ledger.limits)
    rows = await budget.report(days=args.days, guild_id=args.guild)
    where = "every server" if args.guild is None else f"server {args.guild}"
    print(
        f"Provider spend for {where}, last {args.days} UTC day(s), in catalog credits "
        "(what the images cost the operator):"
    )
    if not rows:
        print("  nothing yet")
        return EXIT_OK
    print(f"  {'day':<10}  {'server':>20}  {'model':<24}  {'images':>6}  {'cost':>8}")
    for row in rows:
        running = f"  ({row.running} running)" if row.running else ""
        print(
            f"  {row.day.isoformat():<10}  {row.guild_id:>20}  {row.model_id:<24}  "
            f"{row.images:>6,}  {row.cost:>8,}{running}"
        )
    by_day: dict[str, int] = {}
    for row in rows:
        by_day[row.day.isoformat()] = by_day.get(row.day.isoformat(), 0) + row.cost
    for day, cost in by_day.items():
        print(f"  {day} total: {cost:,}")
    return EXIT_OK


async def _top(ledger: Ledger, db: AnyDatabase, args: argparse.Namespace) -> int:
    for rank, (user_id, balance) in enumerate(await ledger.top(args.guild, args.limit), start=1):
        print(f"{rank:>3}. {user_id}  {balance:,}")
    return EXIT_OK


def discord_id(text: str) -> int:
    """An argparse type for server and member ids: a whole number from 0 to 2^63 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (a whole number)") from None
    if not 0 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} is not an id (0 to {MAX_ID})")
    return value


def _count(maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be between 1 and {maximum}")
        return value

    return parse


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    default_db: str | os.PathLike[str] | None = None,
) -> None:
    """Add ``credits audit|balance|grant|revoke|history|top`` to the CLI."""
    credits = subparsers.add_parser("credits", help="inspect and adjust the credits ledger")
    commands = credits.add_subparsers(dest="credits_command", metavar="COMMAND", required=True)

    def command(
        name: str,
        help_text: str,
        handler: Handler,
        *,
        every_guild: bool = False,
        writes: bool = False,
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        if default_db is None:
            parser.add_argument(
                "--db", required=True, help="the credits database: a file, or a postgresql:// URL"
            )
        else:
            parser.add_argument(
                "--db", default=os.fspath(default_db), help="database file or postgresql:// URL"
            )
        if every_guild:
            parser.add_argument("--guild", type=discord_id, help="one server id (default: all)")
        else:
            parser.add_argument("--guild", type=discord_id, default=0, help="server id (default 0)")
        parser.set_defaults(func=_runner(handler, read_only=not writes))
        return parser

    def member(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--user", type=discord_id, required=True, help="member id")

    def adjustment(parser: argparse.ArgumentParser) -> None:
        member(parser)
        # Text, so the ledger's own sentences explain "1.5", "-3" or "10e9".
        parser.add_argument("--amount", required=True, help="whole number of credits")
        parser.add_argument("--reason", required=True, help="why (kept in the ledger)")
        parser.add_argument("--actor", type=discord_id, default=0, help="moderator id (default 0)")

    command("audit", "check every balance and reservation; exit 1 on any discrepancy", _audit)
    member(command("balance", "show a member's balance", _balance))
    adjustment(command("grant", "give a member credits", _grant, writes=True))
    adjustment(command("revoke", "take credits from a member", _revoke, writes=True))
    history = command("history", "show a member's ledger, newest first", _history)
    member(history)
    history.add_argument("--page", type=_count(10**9), default=1, help="page number (default 1)")
    history.add_argument("--per-page", type=_count(MAX_PER_PAGE), default=20, help="rows per page")
    spend = command(
        "spend",
        "provider spend per server and model per UTC day (the operator's budget)",
        _spend,
        every_guild=True,
    )
    spend.add_argument("--days", type=_count(366), default=7, help="how many days (default 7)")
    top = command("top", "show the highest balances in a server", _top)
    top.add_argument("--limit", type=_count(MAX_TOP), default=10, help="how many (default 10)")
