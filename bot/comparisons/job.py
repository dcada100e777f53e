"""A comparison job owns one comparison end to end: reserve → run → compose → verdict → settle
and record (one transaction) → delivered or undelivered.

Presenters (the Discord cog, the terminal) subscribe to the job's events and drive the only
step the engine cannot do itself: showing the result. They call :meth:`ComparisonJob.delivered`
once the member has it, or :meth:`ComparisonJob.undelivered` when it could not be shown; the
job never calls up into them.

Nothing is lost: whatever fails before the settle (every model failing, the compositor, a
timeout, a cancellation) releases the hold in full; a result that was settled but never shown
is refunded by :meth:`undelivered`, or after a crash by :func:`recover_undelivered`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from bot.comparisons.capacity import LoadTicket
from bot.comparisons.events import Delivered as DeliveredEvent
from bot.comparisons.events import EventBus, Failed, Reserved, ResultReady
from bot.comparisons.plan import Plan
from bot.comparisons.records import (
    RecordRows,
    Undelivered,
    attach_message,
    record_rows,
    save_record,
    stale_pending,
)
from bot.comparisons.service import AllModelsFailed, ComparisonResult, ComparisonService
from bot.comparisons.view import view_from_result
from bot.compose import MAX_UPLOAD_BYTES
from bot.db.storage import run_step
from bot.measure.reading import TextReading

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.credits.ledger import Hold, Ledger, Settlement
    from bot.db import AnyDatabase
    from bot.measure.ocr import TextAccuracy

log = logging.getLogger(__name__)

#: the server's results to cite, fetched while the models run
CommunitySource = Callable[[], Awaitable[Sequence[str]]]
#: how often and how long to retry a money write the database refused (e.g. locked)
RETRY_DELAYS = (0.2, 1.0, 3.0)
UNDELIVERED_AFTER_RESTART = "the bot restarted before it could post the result"


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, and where: the account that pays and the channel the result goes to."""

    guild_id: int
    user_id: int
    channel_id: int | None = None
    #: the account charged when it is not the member's own (a shoot-out paid by the team pool)
    payer_id: int | None = None

    @property
    def account_id(self) -> int:
        """The ledger account that pays: the payer when one is set, else the member."""
        return self.user_id if self.payer_id is None else self.payer_id


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


class ComparisonJob:
    """One comparison, from the reserve to the member having it (or getting every credit back)."""

    def __init__(
        self,
        plan: Plan,
        *,
        service: ComparisonService,
        catalog: Catalog,
        ledger: Ledger | None = None,
        db: AnyDatabase | None = None,
        requester: Requester | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
        community: CommunitySource | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if ledger is not None and requester is None:
            raise ValueError("a job that charges needs its requester")
        self.plan = plan
        self.service = service
        self.catalog = catalog
        self.ledger = ledger
        self.db = db
        self.requester = requester
        self.max_bytes = max_bytes
        self.community = community
        self.events = EventBus()
        self.hold: Hold | None = None
        self.settlement: Settlement | None = None
        self.result: ComparisonResult | None = None
        self.recorded = False
        #: what the OCR read per panel (empty when the prompt quotes no text)
        self.text: tuple[TextAccuracy | None, ...] = ()
        self._load: LoadTicket | None = None
        self._wall = wall_clock
        self._sleep = sleep

    # ------------------------------------------------------------- reserve
    def admit(self) -> None:
        """Claim this comparison's place in the process (Overloaded, before any charge)."""
        capacity = self.service.capacity
        if self._load is None and capacity is not None:
            guild = self.requester.guild_id if self.requester else None
            self._load = capacity.admit(self.plan, guild)

    def _leave(self) -> None:
        if self._load is not None:
            self._load.release()

    async def reserve(self) -> Hold | None:
        """Hold the price (InsufficientCredits when the member lacks it); None when free.

        Admission comes first: work that could not start in time is refused with Overloaded
        before anything is charged.
        """
        self.admit()
        if self.ledger is None or self.requester is None:
            await self.events.publish(Reserved(self.plan, self.plan.total, None))
            return None
        budget = self.service.budget
        if budget is not None:
            # The operator's budgets come first: over them, nothing is reserved at all.
            await budget.admit(self.requester.guild_id, self.plan)
        try:
            self.hold = await self.ledger.reserve(
                self.requester.guild_id,
                self.requester.account_id,
                self.plan.line_items(),
                comparison_id=self.plan.id,
            )
        except BaseException:
            if budget is not None:
                await budget.finish(self.plan.id)
            self._leave()
            raise
        await self.events.publish(Reserved(self.plan, self.hold.amount, self.hold.balance_after))
        return self.hold

    @property
    def balance_after(self) -> int | None:
        """The member's balance once this comparison is settled (None when nothing is charged)."""
        if self.hold is None:
            return None
        if self.settlement is not None:
            return self.settlement.balance
        refunded = self.result.refunded if self.result else 0
        return self.hold.balance_after + refunded

    # ------------------------------------------------------------- produce
    async def produce(self) -> ComparisonResult:
        """Run, compose, judge, then settle and record in one transaction.

        Reserves first if :meth:`reserve` was not called. Raises AllModelsFailed (every credit
        back) when no model delivered; any other failure before the settle also releases the
        hold in full before it propagates.
        """
        if self.hold is None and self.ledger is not None:
            await self.reserve()
        else:
            self.admit()
        try:
            return await self._produce()
        finally:
            self._leave()

    async def _produce(self) -> ComparisonResult:
        lines = asyncio.ensure_future(self._community_lines())
        # Quoted text is read back from each image as it arrives, in the meter's workers.
        reading = TextReading(self.service.text_meter, self.plan.prompt)
        try:
            try:
                outcomes, composite = await self.service.produce(
                    self.plan,
                    on_progress=self.events.publish,
                    on_compose=self.events.publish,
                    max_bytes=self.max_bytes,
                    on_outcome=reading.start_outcome,
                )
            except AllModelsFailed as exc:
                refunded = self.hold.amount if self.hold else 0
                raise AllModelsFailed(exc.outcomes, refunded=refunded) from None
            self.text = await reading.results([o.ok for o in outcomes])
            view = view_from_result(
                self.plan, outcomes, self.catalog, community=await lines, text=self.text
            )
            result = ComparisonResult(self.plan, tuple(outcomes), composite, view)
            # A cancellation must not split the settle from its record, nor leave it unknown
            # whether the charge landed.
            await asyncio.shield(self._settle_and_record(result))
        except BaseException as exc:
            lines.cancel()
            reading.cancel()
            if self.settlement is None and self.hold is not None:
                await asyncio.shield(self._release(_release_reason(exc)))
                if self.service.budget is not None:
                    await self.service.budget.finish(self.plan.id)
            await self.events.publish(
                Failed(
                    self.plan,
                    _release_reason(exc),
                    self.hold.amount if self.hold and self.settlement is None else 0,
                    exc if isinstance(exc, AllModelsFailed) else None,
                )
            )
            raise
        self.result = result
        await self.events.publish(ResultReady(self.plan, result, view))
        return result

    async def _community_lines(self) -> Sequence[str]:
        if self.community is None:
            return ()
        try:
            return await self.community()
        except Exception:
            # Community results decorate the verdict; failing to fetch them sinks nothing.
            log.exception("community results failed for comparison %s", self.plan.id)
            return ()

    async def _rows_for(self, result: ComparisonResult) -> RecordRows | None:
        if self.db is None or self.requester is None:
            return None
        # Off the loop: the rows carry a SHA-256 of every image (tens of ms for a 4K PNG).
        return await asyncio.to_thread(
            record_rows,
            self.plan,
            result.outcomes,
            result.composite,
            guild_id=self.requester.guild_id,
            user_id=self.requester.user_id,
            channel_id=self.requester.channel_id,
            now=self._wall(),
            kind=self.plan.kind,
            parent_id=self.plan.parent_id,
            hold_id=self.hold.id if self.hold else None,
            text=self.text,
        )

    async def _settle_and_record(self, result: ComparisonResult) -> None:
        write = await self._rows_for(result)
        if self.hold is None or self.ledger is None:
            if write is not None and self.db is not None:
                await save_record(self.db, write)
                self.recorded = True
            return
        charged = [o for o in result.outcomes if o.panel.reused is None]
        delivered = [o.panel.key for o in charged if o.ok]
        reasons = {o.panel.key: o.refund_reason() for o in charged if not o.ok}
        self.settlement = await self.ledger.settle(self.hold.id, delivered, reasons, also=write)
        if self.service.budget is not None:
            # The providers were paid for what they delivered, shown or not.
            await self.service.budget.finish(self.plan.id, delivered)
        self.recorded = write is not None
        if self.settlement.already_closed:
            # Only the stale-hold sweep closes a hold behind our back: its age limit is
            # shorter than this comparison took, so the member gets these images free.
            log.error(
                "comparison %s was settled after its hold had been released (%s); "
                "raise SPLITSHOT_STALE_HOLD_MINUTES",
                self.plan.id,
                self.settlement.state,
            )

    # ------------------------------------------------------------ delivery
    async def delivered(
        self,
        *,
        channel_id: int | None = None,
        message_id: int | None = None,
        vote_deadline: datetime | None = None,
    ) -> None:
        """The member has the result: attach where it was posted (retried; never raises)."""
        if self.recorded and self.db is not None:
            attach = partial(
                attach_message,
                self.db,
                self.plan.id,
                channel_id=channel_id,
                message_id=message_id,
                vote_deadline=vote_deadline,
                now=self._wall(),
            )
            if not await self._retrying(attach, "attach the message of"):
                log.error(
                    "comparison %s was posted as %s but could not be marked posted",
                    self.plan.id,
                    message_id,
                )
        await self.events.publish(DeliveredEvent(self.plan, message_id))

    async def undelivered(self, reason: str) -> int:
        """The result could not be shown: give back what was kept; returns the credits refunded."""
        refunded = 0
        if self.settlement is not None and self.ledger is not None and self.hold is not None:
            ledger, hold_id = self.ledger, self.hold.id
            mark = Undelivered(self.plan.id) if self.recorded else None

            async def refund() -> None:
                nonlocal refunded
                settlement = await ledger.unsettle(hold_id, reason, also=mark)
                refunded = (
                    0 if settlement.already_closed else sum(r.credits for r in settlement.refunds)
                )

            await asyncio.shield(self._retrying(refund, "refund the undelivered"))
        elif self.recorded and self.db is not None:
            await run_step(self.db, Undelivered(self.plan.id))
        await self.events.publish(Failed(self.plan, reason, refunded))
        return refunded

    async def abandon(self, reason: str) -> None:
        """Never run this reserved job: give back its hold (once), its budget and its place."""
        try:
            await asyncio.shield(self._release(reason))
            if self.service.budget is not None:
                await self.service.budget.finish(self.plan.id)
        finally:
            self._leave()

    async def _release(self, reason: str) -> None:
        """Release the hold in full, retrying; a refund is the one write that must not be lost."""
        if self.ledger is None or self.hold is None:
            return
        ledger, hold_id = self.ledger, self.hold.id
        if not await self._retrying(partial(ledger.release, hold_id, reason), "release"):
            log.error("could not release hold %d; the stale-hold sweep will refund it", hold_id)

    async def _retrying(self, write: Callable[[], Awaitable[object]], what: str) -> bool:
        for delay in (*RETRY_DELAYS, None):
            try:
                await write()
            except Exception:
                if delay is None:
                    log.exception("could not %s comparison %s", what, self.plan.id)
                    return False
                log.warning(
                    "could not %s comparison %s; retrying in %.1f s", what, self.plan.id, delay
                )
                await self._sleep(delay)
            else:
                return True
        return False


def _release_reason(exc: BaseException) -> str:
    if isinstance(exc, AllModelsFailed):
        return "every model refused or failed"
    if isinstance(exc, asyncio.CancelledError):
        return "comparison cancelled"
    return "the result could not be delivered"


async def recover_undelivered(ledger: Ledger, db: AnyDatabase, older_than: timedelta) -> int:
    """Refund comparisons settled but never posted (a crash between settle and post).

    Safe with several processes on one PostgreSQL database: the unsettle is exactly once per
    hold, so of two processes recovering the same comparison only one refunds it.
    """
    cutoff = datetime.now(UTC) - older_than
    recovered = 0
    for comparison_id, hold_id in await stale_pending(db, cutoff):
        mark = Undelivered(comparison_id)
        if hold_id is None:
            await run_step(db, mark)
            continue
        settlement = await ledger.unsettle(hold_id, UNDELIVERED_AFTER_RESTART, also=mark)
        if not settlement.already_closed:
            recovered += 1
    if recovered:
        log.warning("refunded %d comparison(s) that were never posted", recovered)
    return recovered
