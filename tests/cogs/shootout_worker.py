"""One bot process's shoot-out closer, for the multi-process shoot-out test (run as ``python -m``).

``URL WORKER START_AT POST_SECONDS``: at START_AT (epoch seconds) do what a bot process's closer
does when it starts — recover what earlier runs left unfinished, then close every due shoot-out
and post every report still missing — through the real :class:`ShootoutRunner`, on a stand-in
for the Discord client whose report posts take POST_SECONDS (so the other process's closer runs
meanwhile). Prints one JSON line: each report this process posted (shoot-out id, message id) and
the rounds it refunded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bot.catalog import Catalog, load_catalog
from bot.credits.ledger import Ledger
from bot.db import PostgresDatabase
from bot.shootouts.store import shootout_store
from cogs.shootouts.runner import ShootoutRunner

TICKS = 3


@dataclass(frozen=True)
class Message:
    id: int


@dataclass
class Channel:
    """A channel of the stand-in Discord: remembers each report posted to it."""

    channel_id: int
    bot: StandInBot

    async def send(self, *, embed: Any, view: Any) -> Message:
        await asyncio.sleep(self.bot.post_seconds)
        message = Message(next(self.bot.message_ids))
        shootout_id = view.children[0].comparison_id  # the Export button names its shoot-out
        self.bot.posted.append({"shootout": shootout_id, "message": message.id})
        return message


@dataclass
class StandInBot:
    """What the runner asks of the Discord client while it closes and reports."""

    db: PostgresDatabase
    ledger: Ledger
    catalog: Catalog
    message_ids: itertools.count[int]
    post_seconds: float
    posted: list[dict[str, Any]] = field(default_factory=list)

    def get_cog(self, name: str) -> None:
        return None  # no votes cog: the runner closes the rounds' votes through the store

    def get_partial_messageable(self, channel_id: int, *, guild_id: int | None = None) -> Channel:
        return Channel(channel_id, self)


async def close_and_report(url: str, worker: int, start_at: float, post_seconds: float) -> None:
    db = await PostgresDatabase.open(url, max_size=4)
    try:
        ids = itertools.count(worker * 1_000_000)
        bot = StandInBot(db, Ledger(db), load_catalog(), ids, post_seconds)
        runner = ShootoutRunner(bot, shootout_store(db))  # type: ignore[arg-type]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        refunded = await runner.recover()
        for _ in range(TICKS):
            await runner.tick()
        print(json.dumps({"posted": bot.posted, "refunded": refunded}), flush=True)
    finally:
        await db.close()


if __name__ == "__main__":
    url, worker, start_at, post_seconds = sys.argv[1:5]
    asyncio.run(close_and_report(url, int(worker), float(start_at), float(post_seconds)))
