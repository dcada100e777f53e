"""/shootout: team shoot-outs — several prompts, every model, blind rounds, a report, an export."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.shootouts.cog import ShootoutsCog

if TYPE_CHECKING:
    from bot.client import SplitshotBot


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point: shoot-outs run on either database (SQLite or PostgreSQL)."""
    await bot.add_cog(ShootoutsCog(bot))
