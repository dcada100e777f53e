"""Shoot-outs keep their rounds in SQLite; on PostgreSQL they are not offered yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.db import Database
from bot.errors import SplitshotError

if TYPE_CHECKING:
    from bot.client import SplitshotBot


class ShootoutsUnavailable(SplitshotError):
    """This deployment's database is PostgreSQL, where shoot-outs are not available yet."""

    def __init__(self) -> None:
        super().__init__(
            "Shoot-outs are not available on this bot's database yet; ordinary comparisons are."
        )


def supports_shootouts(bot: SplitshotBot) -> bool:
    """Shoot-outs need the embedded SQLite database."""
    return isinstance(bot.db, Database)


def sqlite_db(bot: SplitshotBot) -> Database:
    """The bot's SQLite database, or ShootoutsUnavailable."""
    db = bot.db
    if not isinstance(db, Database):
        raise ShootoutsUnavailable()
    return db
