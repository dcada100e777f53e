"""The Discord presenter of one comparison job: live progress, the posted result, refund notices.

The job (:mod:`bot.comparisons.job`) owns the money and the record. This module subscribes to
its events to draw progress, posts the result once the job has settled and recorded it, and
tells the job whether the member got it: :meth:`ComparisonJob.delivered` with the message, or
:meth:`ComparisonJob.undelivered` (which refunds) when Discord did not take it.

Longer than the ~400-line guide on purpose: the progress board and the posting with its fallbacks are one conversation with Discord.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import discord

from bot.comparisons.events import Composing, Event, PanelChanged
from bot.comparisons.job import ComparisonJob
from bot.comparisons.plan import FINISHED, Plan, State
from bot.comparisons.service import AllModelsFailed, ComparisonResult
from bot.compose import MAX_UPLOAD_BYTES
from bot.errors import SplitshotError
from bot.render.embed import (
    COLOUR_FAILED,
    ProgressLine,
    attachment_name,
    escaped,
    notice_embed,
    progress_embed,
    result_embed,
)
from bot.tasks import finish_task, stop_task
from bot.voting.rules import seed_emojis, vote_deadline
from cogs.compare.views import result_view

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.guild_settings import GuildSettings

log = logging.getLogger(__name__)

#: stop editing through the interaction this long before Discord's 15-minute token expires
EXPIRY_MARGIN = timedelta(seconds=30)
#: Discord's answers when the reply can no longer be edited: unknown message (someone deleted
#: it), unknown webhook, invalid webhook token
_TOKEN_GONE_CODES = frozenset({10008, 10015, 50027})


class DeliveryFailed(SplitshotError):
    """Discord did not take the result message, so the member never saw the image."""


def _token_gone(error: discord.HTTPException) -> bool:
    return error.status == 401 or error.code in _TOKEN_GONE_CODES


# ----------------------------------------------------------------------- progress
@dataclass(slots=True)
class _Slot:
    label: str
    state: State = State.QUEUED
    started: float | None = None
    finished: float | None = None
    reason: str | None = None
    position: int | None = None


class ProgressBoard:
    """The per-model progress lines of one comparison, edited at most once per ``interval``.

    It stops by flag: :meth:`stop` lets an edit that is already on the wire finish (so it can
    never land on top of the result that follows) and cancels only a board that is waiting.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        edit: Callable[[discord.Embed], Awaitable[bool]],
        clock: Callable[[], float],
        interval: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._plan = plan
        self._edit = edit
        self._clock = clock
        self._interval = interval
        self._sleep = sleep
        self._slots = [_Slot(label) for label in plan.public_labels()]
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._editing = False
        self._compose_ahead: int | None = None

    def update(self, event: PanelChanged) -> None:
        """Record a panel's new state; the next tick shows it."""
        slot = self._slots[event.index]
        now = self._clock()
        slot.position = event.position if event.state is State.QUEUED else None
        if event.state is State.GENERATING:
            slot.started = now
        elif event.state in FINISHED:
            slot.finished = now
            slot.reason = event.reason
        slot.state = event.state

    def composing(self, event: Composing) -> None:
        """Record how many composes wait in front of this one; the next tick shows it."""
        self._compose_ahead = event.ahead

    def render(self) -> discord.Embed:
        """The progress embed as of now."""
        plan, now = self._plan, self._clock()
        lines = []
        for slot in self._slots:
            seconds = None
            if slot.started is not None:
                seconds = (slot.finished if slot.finished is not None else now) - slot.started
            lines.append(
                ProgressLine(slot.label, slot.state.value, seconds, slot.reason, slot.position)
            )
        names = " vs ".join(p.letter if plan.blind else p.model.name for p in plan.panels)
        return progress_embed(
            f"Comparing {names} — {plan.use_case.name}",
            plan.prompt,
            lines,
            reserved=plan.public_price_text,
            demo=plan.uses_demo,
            composing=self.finished,
            composing_ahead=self._compose_ahead,
        )

    @property
    def finished(self) -> bool:
        """True once every model has answered (the image is being composed)."""
        return all(slot.state in FINISHED for slot in self._slots)

    async def _frame(self) -> bool:
        self._editing = True
        try:
            return await self._edit(self.render())
        finally:
            self._editing = False

    async def start(self) -> None:
        """Show the first frame now, then refresh it every ``interval`` seconds."""
        if await self._frame() and not self._stopped:
            self._task = asyncio.create_task(self._tick(), name=f"progress-{self._plan.id}")

    async def _tick(self) -> None:
        while not self._stopped:
            await self._sleep(self._interval)
            if self._stopped:
                return
            finished = self.finished
            if not await self._frame() or finished:
                return

    async def stop(self) -> None:
        """Stop editing; after this returns no progress edit can land on top of the result."""
        self._stopped = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._editing:
            await finish_task(task)  # the edit is on the wire: let it land first
        else:
            await stop_task(task)


# --------------------------------------------------------------------------- run
class DiscordPresenter:
    """Shows one comparison job on Discord, from the acknowledged command to the result."""

    def __init__(
        self,
        bot: SplitshotBot,
        interaction: discord.Interaction[SplitshotBot],
        job: ComparisonJob,
        settings: GuildSettings,
        *,
        seed_emojis: Callable[..., list[str]] = seed_emojis,
    ) -> None:
        self.bot = bot
        self.seed_emojis = seed_emojis
        self.interaction = interaction
        self.job = job
        self.plan = job.plan
        self.settings = settings
        self.delivered = False
        self.board = ProgressBoard(
            job.plan,
            edit=self._edit_progress,
            clock=bot.clock,
            interval=bot.progress_interval,
            sleep=bot.sleep,
        )
        self._progress_message_id: int | None = None
        assert interaction.guild_id is not None
        self.guild_id = interaction.guild_id
        self.user_id = interaction.user.id
        job.events.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        """The job's events this presenter draws."""
        if isinstance(event, PanelChanged):
            self.board.update(event)
        elif isinstance(event, Composing):
            self.board.composing(event)

    async def run(self) -> None:
        """Run the reserved job to the end; every outcome is shown, nothing is raised but cancels."""
        await self.board.start()
        try:
            try:
                result = await self.job.produce()
            finally:
                # No progress frame may land on top of the result or the notice that follows.
                await self.board.stop()
        except AllModelsFailed as exc:
            await self._nothing_delivered(exc)
            return
        except asyncio.CancelledError:
            with suppress(Exception):
                await self._notify_refund("⚠️ Splitshot restarted before your comparison finished")
            raise
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("comparison %s failed (ref %s)", self.plan.id, reference)
            await self._notify_refund(
                f"⚠️ Something went wrong on our side (reference `{reference}`)"
            )
            return
        await self._deliver(result)

    def _max_bytes(self) -> int:
        limit = getattr(self.interaction, "filesize_limit", None)
        return limit if isinstance(limit, int) and limit > 0 else MAX_UPLOAD_BYTES

    # ---------------------------------------------------------------- talking
    def _expired(self) -> bool:
        return discord.utils.utcnow() >= self.interaction.expires_at - EXPIRY_MARGIN

    async def _edit_progress(self, embed: discord.Embed) -> bool:
        """One progress frame; False once the interaction can no longer be edited."""
        if self._expired():
            return False
        try:
            message = await self.interaction.edit_original_response(embed=embed)
        except discord.HTTPException as exc:
            if _token_gone(exc):
                return False
            log.warning("progress edit failed for %s: %s", self.plan.id, exc)
            return True
        self._progress_message_id = message.id
        return True

    def _channel(self) -> discord.abc.Messageable:
        channel = self.interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        assert self.interaction.channel_id is not None
        return self.bot.get_partial_messageable(self.interaction.channel_id, guild_id=self.guild_id)

    async def _post(
        self, embed: discord.Embed, image: bytes, filename: str, view: discord.ui.View
    ) -> discord.Message:
        """Turn the progress message into the result; after 15 minutes post to the channel instead."""
        why = "it outlasted Discord's 15-minute reply window"
        if not self._expired():
            try:
                return await self.interaction.edit_original_response(
                    embed=embed, attachments=[discord.File(io.BytesIO(image), filename)], view=view
                )
            except discord.HTTPException as exc:
                if not _token_gone(exc):
                    raise DeliveryFailed(
                        f"Your images were ready, but Discord did not accept the upload (HTTP {exc.status})"
                    ) from exc
                why = "the reply it would have replaced is gone"
        mention = f"<@{self.user_id}>"
        try:
            message = await self._channel().send(
                f"{mention} here is your comparison — {why}.",
                embed=embed,
                file=discord.File(io.BytesIO(image), filename),
                view=view,
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(self.user_id)]),
            )
        except discord.HTTPException as exc:
            raise DeliveryFailed(
                f"Your images were ready, but I could not post them in this channel (HTTP {exc.status})"
            ) from exc
        await self._remove_stale_progress()
        return message

    async def _remove_stale_progress(self) -> None:
        channel = self._channel()
        get_partial = getattr(channel, "get_partial_message", None)
        if self._progress_message_id is None or get_partial is None:
            return
        with suppress(discord.HTTPException):
            await get_partial(self._progress_message_id).delete()

    async def _show(self, embed: discord.Embed) -> None:
        """Best effort: replace the progress message, else follow up, else post in the channel."""
        if not self._expired():
            try:
                await self.interaction.edit_original_response(
                    embed=embed, attachments=[], view=None
                )
                return
            except discord.HTTPException:
                log.warning("could not edit the reply for %s", self.plan.id, exc_info=True)
            with suppress(discord.HTTPException):
                await self.interaction.followup.send(embed=embed)
                return
        try:
            await self._channel().send(
                f"<@{self.user_id}>",
                embed=embed,
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(self.user_id)]),
            )
        except discord.HTTPException:
            log.warning(
                "could not tell user %s about comparison %s",
                self.user_id,
                self.plan.id,
                exc_info=True,
            )

    async def _tell_privately(self, text: str) -> None:
        """A line only the member sees (their balance); best effort, never raises."""
        if self._expired():
            return
        try:
            await self.interaction.followup.send(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        except Exception:
            log.warning("could not tell user %s their balance", self.user_id, exc_info=True)

    async def _tell_balance(self) -> None:
        try:
            balance = await self.bot.ledger.balance(self.guild_id, self.user_id)
        except Exception:
            log.warning("could not read the balance of user %s", self.user_id, exc_info=True)
            return
        await self._tell_privately(f"Your balance is {balance} credits.")

    async def _notify_refund(self, headline: str) -> None:
        lines = [
            f"{headline}.",
            f"Nothing was charged: all {self.plan.total} credits are back.",
            "Please try again.",
        ]
        await self._show(notice_embed("No result this time", lines))
        await self._tell_balance()

    async def _nothing_delivered(self, exc: AllModelsFailed) -> None:
        lines = []
        for outcome in exc.outcomes:
            verb = "🚫 declined this prompt" if outcome.status == "refused" else "⚠️ failed"
            lines.append(f"**{outcome.panel.public_label}** {verb} ({escaped(outcome.reason)}).")
        lines.append(f"Nothing was charged: all {self.plan.total} credits are back.")
        await self._show(notice_embed("No model produced an image", lines, colour=COLOUR_FAILED))
        await self._tell_balance()

    # ---------------------------------------------------------------- delivery
    async def _deliver(self, result: ComparisonResult) -> None:
        """Post the settled, recorded result; refund it if the member did not get it."""
        posted_at = discord.utils.utcnow()
        deadline = vote_deadline(self.settings, posted_at)
        filename = attachment_name(self.plan.id, result.composite.extension)
        # The balance is the member's business: the public card shows the cost only, and the
        # balance follows privately.
        view = result.view.with_delivery(
            # No embed image: the attachment itself shows above the card, larger.
            vote_deadline=deadline,
        )
        try:
            message = await self._post(
                result_embed(view), result.composite.data, filename, result_view(self.plan.id)
            )
        except DeliveryFailed as exc:
            await self.job.undelivered(str(exc))
            await self._notify_refund(f"⚠️ {exc}")
            return
        except asyncio.CancelledError:
            await asyncio.shield(self.job.undelivered("comparison cancelled"))
            raise
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("posting comparison %s failed (ref %s)", self.plan.id, reference)
            await self.job.undelivered("the result could not be posted")
            await self._notify_refund(
                f"⚠️ Something went wrong on our side (reference `{reference}`)"
            )
            return
        # The member has the image now: a shutdown lets this run finish instead of cancelling it.
        self.delivered = True
        self.bot.mark_delivered()
        await self.job.delivered(
            channel_id=message.channel.id, message_id=message.id, vote_deadline=deadline
        )
        try:
            await self._add_reactions(message, result)
        except Exception:
            log.exception("could not add vote reactions to comparison %s", self.plan.id)
        balance = self.job.balance_after
        await self._tell_privately(
            f"Charged {result.charged} credits"
            + (f", refunded {result.refunded}" if result.refunded else "")
            + (f" · your balance is {balance}." if balance is not None else ".")
        )

    async def _add_reactions(self, message: discord.Message, result: ComparisonResult) -> None:
        failed = [o.panel.letter for o in result.outcomes if not o.ok]
        for emoji in self.seed_emojis(len(result.outcomes), skip=failed):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:
                log.warning("could not add vote reactions to %s: %s", message.id, exc)
                return
