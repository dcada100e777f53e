"""`splitshot export`: a comparison or a shoot-out as one self-contained HTML file plus JSON.

The same export as the bot's Export button and /export, read straight from the database (a
SQLite file or a ``postgresql://`` URL), for results too large to attach on Discord. The JSON
goes beside the HTML (report.html → report.json). Exit codes: 0 written, 1 nothing to export
(unknown id, blind vote still open), 2 the database or the output cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import asyncpg

from bot.catalog import load_catalog
from bot.db import MigrationError, describe_target, is_postgres_url, open_database
from bot.errors import SplitshotError
from bot.settings import Settings
from bot.shootouts.export import export_comparison, export_shootout, to_json
from bot.shootouts.store import shootout_store

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    default_db: str | os.PathLike[str] | None,
) -> None:
    """Add the `export` sub-command."""
    parser = subparsers.add_parser(
        "export", help="a comparison or shoot-out as self-contained HTML (and JSON beside it)"
    )
    parser.add_argument(
        "--db",
        default=None if default_db is None else os.fspath(default_db),
        help="the bot's database: a file, or a postgresql:// URL",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--comparison", metavar="ID", help="export one comparison")
    which.add_argument("--shootout", metavar="ID", help="export a shoot-out with every round")
    parser.add_argument("--out", type=Path, required=True, help="where to write the HTML file")
    parser.set_defaults(func=run)


def _fail(message: str, code: int) -> int:
    print(f"splitshot export: {message}", file=sys.stderr)
    return code


async def _export(args: argparse.Namespace, target: str) -> tuple[str, str]:
    db = await open_database(target, pool_size=2)
    try:
        if args.comparison:
            page, document = await export_comparison(db, args.comparison)
        else:
            row = await shootout_store(db).get(args.shootout)
            settings: Settings | None = getattr(args, "settings", None)
            catalog = load_catalog(settings.catalog_path if settings else None)
            use_case = catalog.use_cases.get(row.use_case) if row else None
            name = use_case.name if use_case else (row.use_case if row else "")
            page, document = await export_shootout(db, args.shootout, name)
        return page, to_json(document)
    finally:
        await db.close()


def run(args: argparse.Namespace) -> int:
    """Write the HTML and the JSON; one line on stdout naming both."""
    target = None if args.db is None else os.fspath(args.db)
    if target is None or (not is_postgres_url(target) and not Path(target).is_file()):
        return _fail(f"no database at {target} (check --db)", EXIT_USAGE)
    label = describe_target(target)
    try:
        page, data = asyncio.run(_export(args, target))
    except SplitshotError as exc:
        return _fail(str(exc), EXIT_REFUSED)
    except (sqlite3.DatabaseError, MigrationError) as exc:
        return _fail(f"cannot use {target} as a Splitshot database: {exc}", EXIT_USAGE)
    except (asyncpg.PostgresError, OSError) as exc:
        return _fail(f"cannot use {label} as the Splitshot database: {exc}", EXIT_USAGE)
    out: Path = args.out
    beside = out.with_suffix(".json")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
        beside.write_text(data, encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}", EXIT_USAGE)
    print(f"wrote {out} and {beside}")
    return EXIT_OK
