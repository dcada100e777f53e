"""One /compare run on Discord: acknowledge after the reserve, live progress, delivery, refunds.

The engine (``ComparisonService.execute``) owns the money: it reserves, releases the hold in full
if anything fails before the member has the image, and settles after. This module only decides
what the member sees, and raises from ``deliver`` whenever the image did not reach them;
``deliver`` returns as soon as the message is posted, and the record and the vote reactions
follow once the engine has settled, so nothing after the post can refund a delivered image.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord

from bot.comparisons.records import record_comparison
from bot.comparisons.service import (
    AllModelsFailed,
    Community,
    ComparisonResult,
    Payer,
    Plan,
    ProgressEvent,
    State,
)
from bot.compose import MAX_UPLOAD_BYTES
from bot.errors import SplitshotError
from bot.render.embed import (
    COLOUR_FAILED,
    ProgressLine,
    attachment_name,
    attachment_url,
    card_from_result,
    escaped,
    notice_embed,
    progress_embed,
    result_embed,
)
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
_FINISHED = frozenset({State.DONE, State.REFUSED, State.FAILED})


class DeliveryFailed(SplitshotError):
    """Discord did not take the result message, so the member never saw the image."""


@dataclass(frozen=True, slots=True)
class Posted:
    """A result the member can see, with what its record needs."""

    message: discord.Message
    result: ComparisonResult
    vote_deadline: datetime
    posted_at: datetime


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


class ProgressBoard:
    """The per-model progress lines of one comparison, edited at most once per ``interval``."""

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
        labels = [f"Model {p.letter}" if plan.blind else p.label for p in plan.panels]
        self._slots = [_Slot(label) for label in labels]
        self._task: asyncio.Task[None] | None = None

    def update(self, event: ProgressEvent) -> None:
        """The engine's progress callback: record the state; the next tick shows it."""
        slot = self._slots[event.index]
        now = self._clock()
        if event.state is State.GENERATING:
            slot.started = now
        elif event.state in _FINISHED:
            slot.finished = now
            slot.reason = event.reason
        slot.state = event.state

    def render(self) -> discord.Embed:
        """The progress embed as of now."""
        plan, now = self._plan, self._clock()
        lines = []
        for slot in self._slots:
            seconds = None
            if slot.started is not None:
                seconds = (slot.finished if slot.finished is not None else now) - slot.started
            lines.append(ProgressLine(slot.label, slot.state.value, seconds, slot.reason))
        names = " vs ".join(p.letter if plan.blind else p.model.name for p in plan.panels)
        reserved = f"{plan.total} credits" if plan.blind else plan.price_text
        return progress_embed(
            f"Comparing {names} — {plan.use_case.name}",
            plan.prompt,
            lines,
            reserved=reserved,
            demo=plan.uses_demo,
            composing=self.finished,
        )

    @property
    def finished(self) -> bool:
        """True once every model has answered (the image is being composed)."""
        return all(slot.state in _FINISHED for slot in self._slots)

    async def start(self) -> None:
        """Show the first frame now, then refresh it every ``interval`` seconds."""
        if await self._edit(self.render()):
            self._task = asyncio.create_task(self._tick(), name=f"progress-{self._plan.id}")

    async def _tick(self) -> None:
        while True:
            await self._sleep(self._interval)
            finished = self.finished
            if not await self._edit(self.render()) or finished:
                return

    async def stop(self) -> None:
        """Stop editing; after this returns no progress edit can land on top of the result."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


# --------------------------------------------------------------------------- run
class ComparisonRun:
    """Drives one comparison from the reserve to the posted result (or the refund notice)."""

    def __init__(
        self,
        bot: SplitshotBot,
        interaction: discord.Interaction[SplitshotBot],
        plan: Plan,
        settings: GuildSettings,
        *,
        on_started: Callable[[], None],
        community: Community = (),
    ) -> None:
        self.bot = bot
        self.interaction = interaction
        self.plan = plan
        self.settings = settings
        self.on_started = on_started
        self.community = community
        self.acknowledged = False
        self.delivered = False
        self.board = ProgressBoard(
            plan,
            edit=self._edit_progress,
            clock=bot.clock,
            interval=bot.progress_interval,
            sleep=bot.sleep,
        )
        self._progress_message_id: int | None = None
        self._posted: Posted | None = None
        self._balance_after: int | None = None
        assert interaction.guild_id is not None
        self.guild_id = interaction.guild_id
        self.user_id = interaction.user.id

    async def run(self) -> None:
        """Reserve, run, deliver, settle; errors before the acknowledgement reach the boundary."""
        try:
            try:
                await self.bot.service.execute(
                    self.plan,
                    self._deliver,
                    payer=Payer(self.bot.ledger, self.guild_id, self.user_id),
                    on_progress=self.board.update,
                    on_reserved=self._acknowledge,
                    max_bytes=self._max_bytes(),
                    community=self.community,
                )
            finally:
                # No progress frame may land on top of the notice that follows.
                await self.board.stop()
        except AllModelsFailed as exc:
            await self._nothing_delivered(exc)
        except asyncio.CancelledError:
            if self.acknowledged and not self.delivered:
                with suppress(Exception):
                    await self._notify_refund(
                        "⚠️ Splitshot restarted before your comparison finished"
                    )
            raise
        except Exception as exc:
            if not self.acknowledged:
                raise
            if self.delivered:
                # Settling failed after the member got the image: the open hold is refunded by
                # the stale-hold sweep; the result message must stay as it is.
                log.exception("comparison %s was delivered but not settled", self.plan.id)
                await self._after_delivery()
            elif isinstance(exc, DeliveryFailed):
                await self._notify_refund(f"⚠️ {exc}")
            else:
                reference = uuid.uuid4().hex[:8]
                log.exception("comparison %s failed (ref %s)", self.plan.id, reference)
                await self._notify_refund(
                    f"⚠️ Something went wrong on our side (reference `{reference}`)"
                )
        else:
            await self._after_delivery()

    def _max_bytes(self) -> int:
        limit = getattr(self.interaction, "filesize_limit", None)
        return limit if isinstance(limit, int) and limit > 0 else MAX_UPLOAD_BYTES

    async def _acknowledge(self) -> None:
        await self.interaction.response.defer(thinking=True)
        self.acknowledged = True
        self.on_started()
        await self.board.start()

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
            name = f"Model {outcome.panel.letter}" if self.plan.blind else outcome.panel.label
            verb = "🚫 declined this prompt" if outcome.status == "refused" else "⚠️ failed"
            lines.append(f"**{name}** {verb} ({escaped(outcome.reason)}).")
        lines.append(f"Nothing was charged: all {self.plan.total} credits are back.")
        await self._show(notice_embed("No model produced an image", lines, colour=COLOUR_FAILED))
        await self._tell_balance()

    # ---------------------------------------------------------------- delivery
    async def _deliver(self, result: ComparisonResult, balance_after: int | None) -> Posted:
        """Post the split image with its verdict; raise when the member did not get it.

        Returns as soon as the message is posted: everything after that (the record, the vote
        reactions) happens once the engine has settled, outside its refund window.
        """
        await self.board.stop()
        posted_at = discord.utils.utcnow()
        deadline = vote_deadline(self.settings, posted_at)
        filename = attachment_name(self.plan.id, result.composite.extension)
        # The balance is the member's business: the public card shows the cost only, and the
        # balance follows privately.
        self._balance_after = balance_after
        card = card_from_result(
            result,
            self.bot.catalog,
            vote_deadline=deadline,
            image_url=attachment_url(filename),
        )
        message = await self._post(
            result_embed(card), result.composite.data, filename, result_view(self.plan.id)
        )
        # The member has the image now: from here on nothing may raise and refund it, and a
        # shutdown lets this run settle instead of cancelling it.
        self.delivered = True
        self.bot.mark_delivered()
        self._posted = Posted(message, result, deadline, posted_at)
        return self._posted

    async def _after_delivery(self) -> None:
        """Record the comparison and seed the vote reactions; failures are logged, never raised."""
        posted = self._posted
        if posted is None:
            return
        await self._record(posted)
        try:
            await self._add_reactions(posted.message, posted.result)
        except Exception:
            # Raising would reach the error boundary, which would replace the result with an
            # error message.
            log.exception("could not add vote reactions to comparison %s", self.plan.id)
        result = posted.result
        await self._tell_privately(
            f"Charged {result.charged} credits"
            + (f", refunded {result.refunded}" if result.refunded else "")
            + (
                f" · your balance is {self._balance_after}."
                if self._balance_after is not None
                else "."
            )
        )

    async def _record(self, posted: Posted) -> None:
        message = posted.message
        try:
            await record_comparison(
                self.bot.db,
                posted.result,
                guild_id=self.guild_id,
                user_id=self.user_id,
                channel_id=message.channel.id,
                message_id=message.id,
                vote_deadline=posted.vote_deadline,
                now=posted.posted_at,
            )
        except Exception:
            log.exception("could not record comparison %s (message %s)", self.plan.id, message.id)

    async def _add_reactions(self, message: discord.Message, result: ComparisonResult) -> None:
        failed = [o.panel.letter for o in result.outcomes if not o.ok]
        for emoji in seed_emojis(len(result.outcomes), skip=failed):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:
                log.warning("could not add vote reactions to %s: %s", message.id, exc)
                return
