"""/config: a server's settings — show, set, reset and their history — for moderators only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.config.cog import ConfigCog

if TYPE_CHECKING:
    from bot.client import SplitshotBot


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(ConfigCog(bot))
