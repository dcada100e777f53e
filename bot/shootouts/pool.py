"""The server's team pool: an ordinary ledger account of each server, user id 0.

Moderators fund it with grants (same caps, audit and history as any member's); a moderator's
shoot-out may spend from it. It is opened without the starter grant a member gets, so the pool
only ever holds what moderators put in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.credits.accounts import iso
from bot.db import Database

#: the pool's account id in every server (Discord never gives a user the id 0)
POOL_USER_ID = 0
POOL_NAME = "the team pool"

SQL_OPEN_POOL = """
INSERT OR IGNORE INTO accounts (guild_id, user_id, balance, created_at) VALUES (?, ?, 0, ?)
"""


async def open_pool(db: Database, guild_id: int, *, now: datetime | None = None) -> None:
    """Create the server's pool account, empty, if it does not exist yet (never a starter grant)."""
    stamp = iso(now or datetime.now(UTC))
    await db.execute(SQL_OPEN_POOL, (guild_id, POOL_USER_ID, stamp))


def payer_name(payer_id: int) -> str:
    """'the team pool' or the member's mention."""
    return POOL_NAME if payer_id == POOL_USER_ID else f"<@{payer_id}>"
