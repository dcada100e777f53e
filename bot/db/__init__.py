"""SQLite storage: the one aiosqlite connection, its transaction helpers and the migrations."""

from bot.db.connection import Database, DatabaseUnavailable
from bot.db.migrate import MigrationError

__all__ = ["Database", "DatabaseUnavailable", "MigrationError"]
