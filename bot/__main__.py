"""`splitshot` entry point: settings → logging → the CLI command (or the bot / playground)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from bot.settings import Settings


def configure_logging(level: str, discord_level: str | None = None) -> None:
    """One plain log format for the whole process.

    discord.py's loggers never go below INFO unless ``discord_level`` asks: at DEBUG they print
    interaction webhook URLs, and those carry the interaction's token.
    """
    root = getattr(logging, level, logging.INFO)
    logging.basicConfig(
        level=root,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs full URLs at INFO; keep ours as the one line per provider call.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asked = getattr(logging, discord_level, None) if discord_level else None
    logging.getLogger("discord").setLevel(
        asked if isinstance(asked, int) else max(root, logging.INFO)
    )


def run_bot_or_playground(settings: Settings, *, stop_after: float | None = None) -> int:
    """Run the Discord bot with a token, else the local playground."""
    if settings.discord_token:
        from bot.client import run_bot

        return int(run_bot(settings))
    from bot.playground import run_playground

    return int(run_playground(settings, stop_after=stop_after))


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    from bot.cli.main import main as cli_main
    from bot.errors import SplitshotError

    try:
        settings = Settings.from_env()
    except SplitshotError as exc:
        print(f"splitshot: {exc}", file=sys.stderr)
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    default = "INFO" if args[:1] == ["run"] else "WARNING"
    configure_logging(settings.log_level or default, settings.discord_log_level)
    return cli_main(argv, settings=settings)


if __name__ == "__main__":
    sys.exit(main())
