"""Voting: reactions count as votes, votes close and show their winner, /leaderboard rates models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.votes.cog import VotesCog

if TYPE_CHECKING:
    from bot.client import SplitshotBot


async def setup(bot: SplitshotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(VotesCog(bot))
