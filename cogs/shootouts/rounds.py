"""Posts one shoot-out round — an ordinary comparison job — to the shoot-out's thread.

The job owns the money and the record, as for /compare; this presenter only posts the result
where the shoot-out lives (a thread or channel, not an interaction reply) and tells the job
whether it got there: :meth:`ComparisonJob.delivered`, or :meth:`ComparisonJob.undelivered`,
which refunds. A thread that vanished mid-way is replaced by the fallback channel.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import discord

from bot.comparisons.job import ComparisonJob
from bot.comparisons.service import AllModelsFailed, ComparisonResult
from bot.render.embed import attachment_name, attachment_url, result_embed
from bot.voting.rules import seed_emojis
from cogs.compare.views import result_view
from cogs.votes.views import CLOSE_PREFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """How a round ended: posted as ``message``, or refunded (``message`` None); ``note`` says
    what the report should mention (a refusal, a refund, a move to the channel)."""

    message: discord.Message | None
    note: str | None = None
    moved: bool = False  # the thread was gone: the round went to the fallback channel


def round_view(comparison_id: str) -> discord.ui.View:
    """The usual buttons under a result, minus "Close vote": all rounds close together."""
    view = result_view(comparison_id)
    for item in list(view.children):
        if (
            isinstance(item, discord.ui.DynamicItem)
            and item.item.custom_id
            and (item.item.custom_id.startswith(CLOSE_PREFIX))
        ):
            view.remove_item(item)
    return view


def _refusals(result: ComparisonResult) -> str | None:
    lines = []
    for outcome in result.outcomes:
        if outcome.ok:
            continue
        verb = "declined" if outcome.status == "refused" else "failed"
        lines.append(
            f"{outcome.panel.public_label} {verb} ({outcome.reason}); its "
            f"{outcome.panel.credits} credits were refunded"
        )
    return "; ".join(lines) or None


class RoundPresenter:
    """Runs one reserved round job and posts its result to ``targets`` (first that works)."""

    def __init__(
        self,
        job: ComparisonJob,
        targets: Sequence[discord.abc.Messageable],
        *,
        legend: str,
        deadline: datetime,
        seed: Callable[..., list[str]] = seed_emojis,
    ) -> None:
        self.job = job
        self.plan = job.plan
        self.targets = list(targets)
        self.legend = legend
        self.deadline = deadline
        self.seed = seed

    async def run(self) -> RoundOutcome:
        """Produce, post, settle; every failure is a refund and a note, never an exception."""
        try:
            result = await self.job.produce()
        except AllModelsFailed as exc:
            why = "; ".join(f"{o.panel.public_label}: {o.reason}" for o in exc.outcomes)
            return RoundOutcome(None, f"every model refused or failed ({why}); refunded")
        except asyncio.CancelledError:
            raise
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("shoot-out round %s failed (ref %s)", self.plan.id, reference)
            return RoundOutcome(None, f"something went wrong (reference {reference}); refunded")
        return await self._deliver(result)

    async def _deliver(self, result: ComparisonResult) -> RoundOutcome:
        filename = attachment_name(self.plan.id, result.composite.extension)
        card = result.view.with_delivery(
            vote_deadline=self.deadline, image_url=attachment_url(filename)
        )
        message: discord.Message | None = None
        moved = False
        why = "no channel to post in"
        try:
            for number, target in enumerate(self.targets):
                try:
                    message = await target.send(
                        self.legend,
                        embed=result_embed(card),
                        file=discord.File(io.BytesIO(result.composite.data), filename),
                        view=round_view(self.plan.id),
                        allowed_mentions=discord.AllowedMentions.none(),
                    )
                except (discord.NotFound, discord.Forbidden) as exc:
                    why = f"HTTP {exc.status}"
                    log.warning("round %s could not go to target %d: %s", self.plan.id, number, exc)
                    continue
                except discord.HTTPException as exc:
                    why = f"Discord did not accept the upload (HTTP {exc.status})"
                    break
                moved = number > 0
                break
        except asyncio.CancelledError:
            if message is None:
                await asyncio.shield(self.job.undelivered("comparison cancelled"))
            raise
        if message is None:
            await self.job.undelivered(f"the round could not be posted: {why}")
            return RoundOutcome(None, f"could not be posted ({why}); refunded")
        await self.job.delivered(
            channel_id=message.channel.id, message_id=message.id, vote_deadline=self.deadline
        )
        failed = [o.panel.letter for o in result.outcomes if not o.ok]
        for emoji in self.seed(len(result.outcomes), skip=failed):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:
                log.warning("could not add vote reactions to %s: %s", message.id, exc)
                break
        return RoundOutcome(message, _refusals(result), moved)
