"""`splitshot export`: a comparison or a shoot-out as one self-contained HTML file plus JSON.

The same export as the bot's Export button and /export, read straight from the database, for
results too large to attach on Discord. The JSON goes beside the HTML (report.html →
report.json). Exit codes: 0 written, 1 nothing to export (unknown id, blind vote still open),
2 the database or the output cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path

from bot.catalog import load_catalog
from bot.db import Database, MigrationError
from bot.errors import SplitshotError
from bot.settings import Settings
from bot.shootouts.export import export_comparison, export_shootout, to_json
from bot.shootouts.store import ShootoutStore

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], *, default_db: Path | None
) -> None:
    """Add the `export` sub-command."""
    parser = subparsers.add_parser(
        "export", help="a comparison or shoot-out as self-contained HTML (and JSON beside it)"
    )
    parser.add_argument("--db", type=Path, default=default_db, help="the bot's database")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--comparison", metavar="ID", help="export one comparison")
    which.add_argument("--shootout", metavar="ID", help="export a shoot-out with every round")
    parser.add_argument("--out", type=Path, required=True, help="where to write the HTML file")
    parser.set_defaults(func=run)


def _fail(message: str, code: int) -> int:
    print(f"splitshot export: {message}", file=sys.stderr)
    return code


async def _export(args: argparse.Namespace, path: Path) -> tuple[str, str]:
    db = await Database.open(path)
    try:
        if args.comparison:
            page, document = await export_comparison(db, args.comparison)
        else:
            row = await ShootoutStore(db).get(args.shootout)
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
    if args.db is None or not Path(args.db).is_file():
        return _fail(f"no database at {args.db} (check --db)", EXIT_USAGE)
    try:
        page, data = asyncio.run(_export(args, Path(args.db)))
    except SplitshotError as exc:
        return _fail(str(exc), EXIT_REFUSED)
    except (sqlite3.DatabaseError, MigrationError) as exc:
        return _fail(f"cannot use {args.db} as a Splitshot database: {exc}", EXIT_USAGE)
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
