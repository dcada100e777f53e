"""Follow-ups: variants, reroll and swap from a result's buttons, /edit, and /history."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.client import SplitshotBot


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    # Imported here: the result view (cogs.compare) imports this package's buttons, and the
    # cog imports cogs.compare; loading the cog lazily keeps that from being a cycle.
    from cogs.followups.cog import FollowUpsCog

    await bot.add_cog(FollowUpsCog(bot))
