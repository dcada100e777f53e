"""The comparison engine's working part: call every model at once, each with its own deadline,
and compose what they delivered into one split image.

Admission, policy, the money and the record belong to the job (:mod:`bot.comparisons.job`);
this module never touches the ledger or the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from bot.catalog import Catalog
from bot.comparisons.capacity import Capacity
from bot.comparisons.events import Composing, PanelChanged
from bot.comparisons.plan import Plan, PlannedPanel, State
from bot.compose import MAX_UPLOAD_BYTES, Composite, Panel, compose
from bot.errors import SplitshotError
from bot.workers import OutputClaim, Workers, usable_cores
from providers.base import ImageResult, ProviderError
from providers.limits import RequestSlots, before_large_body
from providers.registry import Registry

if TYPE_CHECKING:
    from bot.comparisons.view import ComparisonView
    from bot.credits.budget import Budget
    from bot.measure.ocr import TextMeter
    from bot.verdict import Verdict

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PanelOutcome:
    """What one model did: an image, or a refusal/failure with a plain reason."""

    panel: PlannedPanel
    state: State
    started: float
    finished: float
    result: ImageResult | None = None
    reason: str | None = None
    #: the provider error's stable kind (providers.base.KINDS), None when the model delivered
    error_kind: str | None = None
    #: what went wrong for the operator (never a key); not shown to members
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """True when this model delivered an image."""
        return self.state is State.DONE

    @property
    def status(self) -> str:
        """ok / refused / failed."""
        return {State.DONE: "ok", State.REFUSED: "refused"}.get(self.state, "failed")

    @property
    def seconds(self) -> float:
        """Time this model took (monotonic)."""
        return self.finished - self.started

    def refund_reason(self) -> str:
        """The sentence a member reads about this model's refund."""
        if self.state is State.REFUSED:
            return f"{self.panel.public_label} declined this prompt ({self.reason}); {self.panel.credits} credits refunded"
        return f"{self.panel.public_label} failed ({self.reason}); {self.panel.credits} credits refunded"


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """The finished comparison, ready to deliver."""

    plan: Plan
    outcomes: tuple[PanelOutcome, ...]
    composite: Composite
    view: ComparisonView

    @property
    def verdict(self) -> Verdict:
        """The verdict, decided once in the view."""
        return self.view.verdict

    @property
    def charged(self) -> int:
        """Credits kept: only the models that delivered."""
        return sum(o.panel.credits for o in self.outcomes if o.ok)

    @property
    def refunded(self) -> int:
        """Credits given back for models that refused or failed."""
        return sum(o.panel.credits for o in self.outcomes if not o.ok)


class AllModelsFailed(SplitshotError):
    """Every model refused or failed; the hold has been released."""

    def __init__(self, outcomes: Sequence[PanelOutcome], refunded: int) -> None:
        self.outcomes = tuple(outcomes)
        self.refunded = refunded
        reasons = "; ".join(f"{o.panel.public_label}: {o.reason}" for o in outcomes)
        tail = f" All {refunded} credits were refunded." if refunded else ""
        super().__init__(f"No model produced an image ({reasons}).{tail}")


ProgressCallback = Callable[[PanelChanged], Awaitable[None] | None]
ComposeCallback = Callable[[Composing], Awaitable[None] | None]

#: bytes of encoded output one image is expected to hold, by quality (3 bytes a pixel at the
#: long edge each quality asks for: 1K, 2K, 4K); only the output budget uses it
OUTPUT_ESTIMATE = {"draft": 3 * 1024 * 1024, "standard": 3 * 2048 * 2048, "high": 3 * 4096 * 4096}


def output_held(outcomes: Sequence[PanelOutcome]) -> int:
    """What a comparison's output really holds once every model has answered (reused
    panels included: their outcomes carry the parent's image)."""
    return sum(len(o.result.image) for o in outcomes if o.result is not None and o.ok)


def output_estimate(plan: Plan) -> int:
    """What a comparison's provider output may hold in memory until it is composed."""
    fresh = len(plan.charged_panels)
    reused = sum(len(p.reused.image) for p in plan.panels if p.reused is not None)
    return fresh * OUTPUT_ESTIMATE.get(plan.quality, OUTPUT_ESTIMATE["high"]) + reused


async def _call(callback: Callable[[T], Awaitable[None] | None] | None, event: T) -> None:
    if callback is None:
        return
    try:
        maybe = callback(event)
        if maybe is not None:
            await maybe
    except Exception:
        # Progress is cosmetic: a failed progress edit must never sink a model.
        log.warning("progress callback failed for %s", event, exc_info=True)


@dataclass(slots=True)
class ComparisonService:
    """Runs comparisons on the engine; knows nothing about Discord."""

    catalog: Catalog
    registry: Registry
    model_timeout_s: float = 240.0
    allow_demo: bool = True
    #: the operator's provider budget, checked before a paying comparison reserves anything
    budget: Budget | None = None
    #: reads quoted text back from each image (None: no "Text (measured)" row at all)
    text_meter: TextMeter | None = None
    #: request slots per adapter and model; a model's deadline starts once it has one
    slots: RequestSlots = field(default_factory=RequestSlots)
    #: the CPU pools and the compose budget
    workers: Workers = field(default_factory=Workers)
    #: what the process takes on at once; None admits everything (tools and tests)
    capacity: Capacity | None = None
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    # ------------------------------------------------------------------ run
    async def run(
        self,
        plan: Plan,
        on_progress: ProgressCallback | None = None,
        on_outcome: Callable[[PanelOutcome], None] | None = None,
        claim: OutputClaim | None = None,
    ) -> list[PanelOutcome]:
        """Call every model concurrently, each with its own deadline; never raises for one model.

        ``on_outcome`` sees each panel the moment it finishes (e.g. to start measuring it);
        ``claim`` is told as each request gets its slot.
        """
        start = self._clock()

        async def report(
            index: int, state: State, reason: str | None = None, position: int | None = None
        ) -> None:
            event = PanelChanged(plan, index, state, self._clock() - start, reason, position)
            await _call(on_progress, event)

        async def one(panel: PlannedPanel) -> PanelOutcome:
            if panel.reused is not None:
                # Carried over from the parent comparison: shown again, not run, not charged.
                now = self._clock()
                outcome = PanelOutcome(
                    panel, State.DONE, now - panel.reused.latency_s, now, result=panel.reused
                )
                if on_outcome is not None:
                    on_outcome(outcome)
                await report(panel.index, State.DONE)
                return outcome
            adapter = panel.route.adapter
            lane = self.slots.lane(adapter.name)

            async def queued(position: int) -> None:
                await report(panel.index, State.QUEUED, position=position)

            begun = False
            try:
                async with lane.slot(panel.model.id, queued):
                    begun = True
                    if claim is not None:
                        claim.started()
                    return await generate(panel, lane.observe)
            finally:
                if not begun and claim is not None:
                    claim.started()  # it will never need its share: let the others claim

        async def generate(
            panel: PlannedPanel, observe: Callable[[str, float], None]
        ) -> PanelOutcome:
            await report(panel.index, State.GENERATING)
            # The deadline starts with the request, never while it waited for its slot.
            began = self._clock()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.model_timeout_s
            adapter = panel.route.adapter
            try:
                async with asyncio.timeout_at(deadline + 1.0):
                    result = await adapter.generate(
                        panel.route.target, plan.request_for(panel), deadline=deadline
                    )
            except ProviderError as exc:
                state = State.REFUSED if exc.kind == "refused" else State.FAILED
                outcome = PanelOutcome(
                    panel,
                    state,
                    began,
                    self._clock(),
                    reason=exc.message,
                    error_kind=exc.kind,
                    detail=exc.detail,
                )
            except TimeoutError:
                outcome = PanelOutcome(
                    panel,
                    State.FAILED,
                    began,
                    self._clock(),
                    reason=f"no answer within {self.model_timeout_s:.0f} s",
                    error_kind="timeout",
                    detail=f"{adapter.name} gave no answer within {self.model_timeout_s:g} s",
                )
            except Exception:
                log.exception(
                    "adapter %s crashed on %s (comparison %s)",
                    adapter.name,
                    panel.model.id,
                    plan.id,
                )
                outcome = PanelOutcome(
                    panel,
                    State.FAILED,
                    began,
                    self._clock(),
                    reason="an unexpected error",
                    error_kind="crash",
                )
            else:
                outcome = PanelOutcome(panel, State.DONE, began, self._clock(), result=result)
                observe(panel.model.id, outcome.seconds)
            log.info(
                "comparison=%s model=%s adapter=%s outcome=%s latency=%.2fs",
                plan.id,
                panel.model.id,
                adapter.name,
                outcome.status,
                outcome.seconds,
            )
            if on_outcome is not None:
                on_outcome(outcome)
            await report(panel.index, outcome.state, outcome.reason)
            return outcome

        for panel in plan.panels:
            await report(panel.index, State.QUEUED)
        return list(await asyncio.gather(*(one(p) for p in plan.panels)))

    # -------------------------------------------------------------- compose
    async def compose(
        self,
        plan: Plan,
        outcomes: Sequence[PanelOutcome],
        *,
        max_bytes: int = MAX_UPLOAD_BYTES,
        on_compose: ComposeCallback | None = None,
    ) -> Composite:
        """Compose the split image on the compose pool, waiting in line for a compose slot."""
        panels = [
            Panel(
                label=o.panel.letter if plan.blind else o.panel.label,
                caption=_caption(o, blind=plan.blind),
                image=o.result.image if o.result else None,
                failure=None if o.ok else _failure_text(o),
            )
            for o in outcomes
        ]
        # An edit shows the image every model edited, small, under the panels.
        original = plan.request.references[0].data if plan.kind == "edit" else None

        async def ahead(count: int) -> None:
            await _call(on_compose, Composing(plan, count))

        composes = self.workers.composes
        async with composes.hold(1, ahead):
            # Alone, a compose decodes its panels on every core; with others running, each
            # gets its share. Under a burst that keeps the threads wanting the GIL to one per
            # core: loop p99 31-38 -> 19-20 ms for 100 comparisons at once, same throughput.
            threads = max(1, usable_cores() // max(1, composes.used))
            return await self.workers.compose.run(
                compose, panels, max_bytes=max_bytes, original=original, max_threads=threads
            )

    async def produce(
        self,
        plan: Plan,
        *,
        on_progress: ProgressCallback | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
        on_outcome: Callable[[PanelOutcome], None] | None = None,
        on_compose: ComposeCallback | None = None,
    ) -> tuple[list[PanelOutcome], Composite]:
        """Run and compose; raises AllModelsFailed when no model delivered an image.

        The output the models return is claimed against the memory budget, all of it at once,
        when the first answer is about to be read; over budget, the answers wait unread until
        earlier comparisons have been composed. Once every model has answered, the claim
        shrinks to the bytes really held (a 2K PNG is about half its estimate), so the next
        comparisons read theirs while this one waits to be composed.
        """
        requests = sum(1 for p in plan.panels if p.reused is None)
        claim = OutputClaim(self.workers.output, output_estimate(plan), requests)
        room = before_large_body.set(claim.take)
        try:
            outcomes = await self.run(plan, on_progress, on_outcome, claim)
            if not any(o.ok for o in outcomes):
                raise AllModelsFailed(outcomes, refunded=0)
            await claim.take()  # answers no body was read for (the demo) count all the same
            claim.shrink_to(output_held(outcomes))
            composite = await self.compose(
                plan, outcomes, max_bytes=max_bytes, on_compose=on_compose
            )
        finally:
            before_large_body.reset(room)
            claim.release()
        # An image the compositor could not show never reached the member: it is a failure
        # (and so refunded), whatever the adapter said.
        for i, failure in enumerate(composite.failures):
            if failure is not None and outcomes[i].ok:
                outcomes[i] = replace(
                    outcomes[i],
                    state=State.FAILED,
                    result=None,
                    reason=failure.lower(),
                    error_kind="malformed",
                )
        if not any(o.ok for o in outcomes):
            raise AllModelsFailed(outcomes, refunded=0)
        return outcomes, composite


def _caption(outcome: PanelOutcome, *, blind: bool = False) -> str:
    if outcome.result is None:
        return f"{outcome.status} · {outcome.seconds:.1f} s"
    if blind:  # each provider's output sizes are their own, so the resolution is a tell
        return f"{outcome.seconds:.1f} s"
    return f"{outcome.seconds:.1f} s · {outcome.result.width}×{outcome.result.height}"


def _failure_text(outcome: PanelOutcome) -> str:
    verb = "Declined" if outcome.state is State.REFUSED else "Failed"
    return f"{verb}: {outcome.reason}"


def user_hash(salt: str, guild_id: int, user_id: int) -> str:
    """A salted hash of a member id for providers' abuse tracking (never the raw id)."""
    return hashlib.sha256(f"{salt}:{guild_id}:{user_id}".encode()).hexdigest()[:32]
