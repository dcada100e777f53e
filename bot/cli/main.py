"""The command line: the same engine as the bot, no Discord.

Exit codes: 0 success, 1 every model failed, 2 bad input or an unusable database (one readable
line on stderr).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bot.catalog import Catalog, load_catalog
from bot.cli.compare import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, compare_command, edit_command
from bot.cli.credits import discord_id
from bot.db.connection import explain
from bot.errors import BadInput, SplitshotError
from bot.render.terminal import (
    render_models,
    render_use_cases,
    render_verdict,
    terminal_safe,
)
from bot.settings import Settings
from bot.verdict import build_verdict
from providers.base import QUALITIES

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one readable line (its default already uses 2)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_BAD_INPUT, f"splitshot: {message}\n")


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The `splitshot` argument parser with every sub-command."""
    parser = _Parser(prog="splitshot", description="Compare image models on one prompt.")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    compare = sub.add_parser("compare", help="run one prompt through 2-4 models")
    compare.add_argument("prompt", nargs="?", help="what to draw (or use --example)")
    compare.add_argument(
        "--example", metavar="ID", help="use a catalog example prompt, e.g. boardwalk"
    )
    compare.add_argument("--use-case", help="use case id (default: portrait, or the example's)")
    compare.add_argument(
        "--model",
        action="append",
        dest="models",
        default=[],
        metavar="ID",
        help="model id (repeat 2-4 times; default GPT-Image 2 and Nano Banana Pro)",
    )
    compare.add_argument("--aspect", help="aspect ratio such as 3:4 (default: the use case's)")
    compare.add_argument("--quality", choices=QUALITIES, default="standard")
    compare.add_argument("--reference", type=Path, help="reference image for image-to-image")
    compare.add_argument("--seed", type=int)
    _add_run_options(compare)
    compare.set_defaults(func=compare_command)

    edit = sub.add_parser("edit", help="edit one image with 2-4 models side by side")
    edit.add_argument("image", type=Path, help="the image to edit (PNG, JPEG or WebP)")
    edit.add_argument("prompt", help="what to change")
    edit.add_argument("--mask", type=Path, help="PNG, same size, transparent where it may change")
    edit.add_argument(
        "--model",
        action="append",
        dest="models",
        default=[],
        metavar="ID",
        help="edit-capable model id (repeat 2-4 times; default: the first two that can)",
    )
    edit.add_argument("--use-case", help="use case id for the verdict (default: the first)")
    edit.add_argument("--quality", choices=QUALITIES, default="standard")
    _add_run_options(edit)
    edit.set_defaults(func=edit_command)

    versus = sub.add_parser("versus", help="the comparison page for 2-4 models (free)")
    versus.add_argument("models", nargs="+", metavar="MODEL")
    versus.add_argument("--use-case", default="portrait")
    versus.set_defaults(func=_versus)

    sub.add_parser("models", help="list the catalog's models").set_defaults(func=_models)
    sub.add_parser("usecases", help="list the use cases").set_defaults(func=_use_cases)

    run = sub.add_parser("run", help="run the Discord bot (no token: the local playground)")
    run.add_argument("--no-browser-hint", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)
    run.set_defaults(func=_run)

    from bot.cli import credits as cli_credits
    from bot.cli import db as cli_db
    from bot.cli import doctor as cli_doctor
    from bot.cli import export as cli_export
    from bot.cli import sync as cli_sync

    cli_credits.register(sub, default_db=settings.db_target if settings else None)
    cli_doctor.register(sub)
    cli_export.register(sub, default_db=settings.db_target if settings else None)
    cli_db.register(sub)
    cli_sync.register(sub)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    """What every command that runs models shares: output, JSON, and the account it charges."""
    command.add_argument("--blind", action="store_true", help="label panels A/B/C/D")
    command.add_argument("--out", type=Path, help="where to write the split image")
    command.add_argument("--json", action="store_true", help="print one JSON object")
    command.add_argument(
        "--db", help="charge an account in this credits database (a file or a postgresql:// URL)"
    )
    command.add_argument(
        "--guild", type=discord_id, default=0, help="account's server id (with --db)"
    )
    command.add_argument("--user", type=discord_id, default=0, help="account's user id (with --db)")


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """Parse arguments and run one command; returns the exit code."""
    try:
        settings = settings or Settings.from_env()
    except SplitshotError as exc:
        print(f"splitshot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = build_parser(settings).parse_args(argv)
    try:
        args.settings = settings
        return int(args.func(args))
    except SplitshotError as exc:
        print(f"splitshot: {terminal_safe(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except sqlite3.Error as exc:
        # The database failed after it opened (disk full, locked, made read-only meanwhile).
        print(f"splitshot: the database failed: {explain(exc)}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (asyncpg.PostgresError, ConnectionError) as exc:
        # A --db postgresql:// URL that cannot be reached or refuses us; never shows the URL.
        print(f"splitshot: the PostgreSQL database failed: {exc}.", file=sys.stderr)
        return EXIT_BAD_INPUT


# ----------------------------------------------------------------------- commands
def _catalog(args: argparse.Namespace) -> Catalog:
    settings: Settings = args.settings
    return load_catalog(settings.catalog_path)


def _models(args: argparse.Namespace) -> int:
    print(render_models(_catalog(args)))
    return EXIT_OK


def _use_cases(args: argparse.Namespace) -> int:
    print(render_use_cases(_catalog(args)))
    return EXIT_OK


def _versus(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    ids: list[str] = args.models
    if not 2 <= len(ids) <= 4:
        raise BadInput(f"Pick 2 to 4 models; you picked {len(ids)}.")
    if len(set(ids)) != len(ids):
        raise BadInput("Each model can appear only once in a comparison.")
    models = [catalog.model(m) for m in ids]
    verdict = build_verdict(catalog, models, catalog.use_case(args.use_case))
    title = " vs ".join(m.name for m in models)
    print(f"{title} — {verdict.use_case.name}\n")
    print(render_verdict(verdict, full=True))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from bot.__main__ import run_bot_or_playground

    return run_bot_or_playground(args.settings, stop_after=args.stop_after)
