"""The server's team pool: an ordinary ledger account of each server, user id 0.

Moderators fund it with grants (same caps, audit and history as any member's); a moderator's
shoot-out may spend from it. It is opened without the starter grant a member gets, so the pool
only ever holds what moderators put in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.credits.accounts import iso
from bot.db import AnyDatabase, PostgresDatabase

#: the pool's account id in every server (Discord never gives a user the id 0)
POOL_USER_ID = 0
POOL_NAME = "the team pool"

SQL_OPEN_POOL = """
INSERT OR IGNORE INTO accounts (guild_id, user_id, balance, created_at) VALUES (?, ?, 0, ?)
"""
PG_OPEN_POOL = """
INSERT INTO accounts (guild_id, user_id, balance, created_at) VALUES ($1, $2, 0, $3)
ON CONFLICT DO NOTHING
"""


async def open_pool(db: AnyDatabase, guild_id: int, *, now: datetime | None = None) -> None:
    """Create the server's pool account, empty, if it does not exist yet (never a starter grant).

    From then on it is an ordinary account: grants to it and spends from it are the ledger's
    own operations on either backend (each one transaction; a spend is one conditional debit,
    so racing spends never overdraw it, in one process or several).
    """
    if isinstance(db, PostgresDatabase):
        await db.execute(PG_OPEN_POOL, guild_id, POOL_USER_ID, now or datetime.now(UTC))
        return
    stamp = iso(now or datetime.now(UTC))
    await db.execute(SQL_OPEN_POOL, (guild_id, POOL_USER_ID, stamp))


def payer_name(payer_id: int) -> str:
    """'the team pool' or the member's mention."""
    return POOL_NAME if payer_id == POOL_USER_ID else f"<@{payer_id}>"
