"""Storage: SQLite (one aiosqlite connection) or PostgreSQL (an asyncpg pool), and migrations."""

from bot.db.connection import Database, DatabaseUnavailable
from bot.db.migrate import MigrationError
from bot.db.postgres import PostgresDatabase
from bot.db.storage import AnyDatabase, describe_target, is_postgres_url, open_database, store_for

__all__ = [
    "AnyDatabase",
    "Database",
    "DatabaseUnavailable",
    "MigrationError",
    "PostgresDatabase",
    "describe_target",
    "is_postgres_url",
    "open_database",
    "store_for",
]
