"""`splitshot sync`: publish the slash commands to Discord, to every server or to one.

The bot does not sync globally when it starts: every start, on every shard, would rewrite the
global commands and spend the application's sync rate limit. Run this once after a release that
adds or changes a command. With ``--guild`` the commands show in that server at once (handy
before a release); global commands can take up to an hour to reach every server.

Exit codes: 0 synced, 1 Discord refused (token, permissions), 2 no DISCORD_TOKEN.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, Protocol

from bot.errors import SplitshotError
from bot.settings import Settings

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class Publish(Protocol):
    """Logs in, syncs to one server (or globally with None), logs out; how many were synced."""

    def __call__(self, settings: Settings, *, guild_id: int | None) -> Coroutine[Any, Any, int]: ...


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `sync` sub-command."""
    parser = subparsers.add_parser(
        "sync", help="publish the slash commands to Discord (every server, or one with --guild)"
    )
    parser.add_argument(
        "--guild", type=int, metavar="ID", help="publish to this server only (shows at once)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, publish: Publish | None = None) -> int:
    """Log in, sync, log out; one line on stdout when done, or one on stderr saying why not."""
    settings: Settings = args.settings
    if not settings.discord_token:
        print(
            "splitshot sync: DISCORD_TOKEN is not set; it is the bot token the commands are "
            "published with (Developer Portal → Bot → Reset Token).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if publish is None:
        from bot.client import publish_commands_once

        publish = publish_commands_once
    guild_id: int | None = args.guild
    try:
        count = asyncio.run(publish(settings, guild_id=guild_id))
    except SplitshotError as exc:
        print(f"splitshot sync: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    noun = "command" if count == 1 else "commands"
    if guild_id is None:
        print(f"Synced {count} {noun} globally; they can take up to an hour to reach every server.")
    else:
        print(f"Synced {count} {noun} to the server {guild_id}; they show there now.")
    return EXIT_OK
