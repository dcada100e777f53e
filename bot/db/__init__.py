"""SQLite storage: the one aiosqlite connection, its transaction helpers and the migrations."""

from bot.db.connection import Database
from bot.db.migrate import MigrationError

__all__ = ["Database", "MigrationError"]
