"""/shootout: team shoot-outs — several prompts, every model, blind rounds, a report, an export."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cogs.shootouts._db import supports_shootouts
from cogs.shootouts.cog import ShootoutsCog

if TYPE_CHECKING:
    from bot.client import SplitshotBot


log = logging.getLogger(__name__)


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point: shoot-outs run on the embedded SQLite database only, for now."""
    if not supports_shootouts(bot):
        log.warning("shoot-outs are off: they are not available on PostgreSQL yet")
        return
    await bot.add_cog(ShootoutsCog(bot))
