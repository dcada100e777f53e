"""/compare: one prompt through 2–4 models, live progress, one labelled split image, vote reactions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.compare.cog import CompareCog

if TYPE_CHECKING:
    from bot.client import SplitshotBot


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(CompareCog(bot))
