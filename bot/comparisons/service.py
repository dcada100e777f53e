"""The comparison service: validate → price → reserve → run concurrently → compose → deliver → settle.

Nothing is lost: whatever fails between the reserve and the delivery (every model failing, the
compositor, the upload, a timeout, a cancellation), the hold is released in full; only models that
delivered an image the member received are ever charged.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic, TypeVar

from bot.catalog import ASPECT_RE, Catalog, Model, UseCase
from bot.compose import MAX_UPLOAD_BYTES, Composite, Panel, compose
from bot.errors import BadInput, SplitshotError
from bot.measure.ocr import TextAccuracy, TextMeter
from bot.measure.reading import TextReading
from bot.references import MAX_REFERENCE_BYTES
from bot.verdict import MeasuredCell, Verdict, build_verdict
from providers.base import ImageRequest, ImageResult, ProviderError, Quality, ReferenceImage
from providers.registry import Registry, Route

if TYPE_CHECKING:
    from bot.credits.ledger import Hold, Ledger, LineItem, Settlement

log = logging.getLogger(__name__)

MIN_MODELS, MAX_MODELS = 2, 4
MAX_PROMPT = 4000
LETTERS = "ABCD"
T = TypeVar("T")


class State(enum.StrEnum):
    """A panel's progress, as shown live to the member."""

    QUEUED = "queued"
    GENERATING = "generating"
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CompareRequest:
    """What a member (or the CLI) asked for, before validation."""

    prompt: str
    use_case: str
    models: Sequence[str] = ()
    aspect: str | None = None
    quality: Quality = "standard"
    reference: ReferenceImage | None = None
    blind: bool = False
    seed: int | None = None
    user_hash: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedPanel:
    """One model in a validated plan: what serves it and what it costs."""

    index: int
    model: Model
    route: Route
    credits: int
    blind: bool = False

    @property
    def letter(self) -> str:
        """A, B, C or D."""
        return LETTERS[self.index]

    @property
    def label(self) -> str:
        """The model's name, with '· demo' when the offline stand-in serves it."""
        return f"{self.model.name} · demo" if self.route.is_demo else self.model.name

    @property
    def public_label(self) -> str:
        """The name that may be written where others could read it: 'Model A' while blind."""
        return f"Model {self.letter}" if self.blind else self.label


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated, priced comparison that has not spent anything yet."""

    id: str
    prompt: str
    use_case: UseCase
    aspect: str
    quality: Quality
    blind: bool
    panels: tuple[PlannedPanel, ...]
    request: ImageRequest

    @property
    def total(self) -> int:
        """Total credits for the whole comparison."""
        return sum(p.credits for p in self.panels)

    @property
    def price_text(self) -> str:
        """Itemised price, e.g. 'GPT-Image 2 8 + Nano Banana Pro 22 = 30 credits'."""
        items = " + ".join(f"{p.label} {p.credits}" for p in self.panels)
        return f"{items} = {self.total} credits"

    @property
    def uses_demo(self) -> bool:
        """True when at least one model is served by the offline demo stand-in."""
        return any(p.route.is_demo for p in self.panels)

    def line_items(self) -> list[LineItem]:
        """The price as ledger line items."""
        from bot.credits.ledger import LineItem

        # Ledger rows outlive the vote and show in /credits history: never a blind model's name.
        return [LineItem(p.model.id, p.public_label, p.credits) for p in self.panels]


@dataclass(frozen=True, slots=True)
class PanelOutcome:
    """What one model did: an image, or a refusal/failure with a plain reason."""

    panel: PlannedPanel
    state: State
    started: float
    finished: float
    result: ImageResult | None = None
    reason: str | None = None
    error_kind: str | None = None

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
class ProgressEvent:
    """A panel changed state; sent to the caller's progress callback."""

    plan: Plan
    index: int
    state: State
    elapsed: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """The finished comparison, ready to deliver."""

    plan: Plan
    outcomes: tuple[PanelOutcome, ...]
    composite: Composite
    verdict: Verdict

    @property
    def charged(self) -> int:
        """Credits kept: only the models that delivered."""
        return sum(o.panel.credits for o in self.outcomes if o.ok)

    @property
    def refunded(self) -> int:
        """Credits given back for models that refused or failed."""
        return sum(o.panel.credits for o in self.outcomes if not o.ok)

    def labels(self, *, reveal: bool = False) -> tuple[str, ...]:
        """Panel labels: letters when blind and not yet revealed, model names otherwise."""
        if self.plan.blind and not reveal:
            return tuple(o.panel.letter for o in self.outcomes)
        return tuple(o.panel.label for o in self.outcomes)


class AllModelsFailed(SplitshotError):
    """Every model refused or failed; the hold has been released."""

    def __init__(self, outcomes: Sequence[PanelOutcome], refunded: int) -> None:
        self.outcomes = tuple(outcomes)
        self.refunded = refunded
        reasons = "; ".join(f"{o.panel.label}: {o.reason}" for o in outcomes)
        tail = f" All {refunded} credits were refunded." if refunded else ""
        super().__init__(f"No model produced an image ({reasons}).{tail}")


@dataclass(frozen=True, slots=True)
class Payer:
    """Who pays: a ledger account."""

    ledger: Ledger
    guild_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class Delivered(Generic[T]):
    """A comparison that reached the member, with the money settled."""

    result: ComparisonResult
    delivery: T
    hold: Hold | None = None
    settlement: Settlement | None = None
    balance_after: int | None = None


ProgressCallback = Callable[[ProgressEvent], Awaitable[None] | None]
#: the server's results to cite: the lines, or an async callable that fetches them
Community = Sequence[str] | Callable[[], Awaitable[Sequence[str]]]


@dataclass(slots=True)
class ComparisonService:
    """Runs comparisons on the engine; knows nothing about Discord."""

    catalog: Catalog
    registry: Registry
    model_timeout_s: float = 240.0
    allow_demo: bool = True
    #: reads quoted text back from each image (None: no "Text (measured)" row at all)
    text_meter: TextMeter | None = None
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    # ----------------------------------------------------------------- plan
    def plan(
        self,
        request: CompareRequest,
        *,
        enabled_models: Collection[str] = (),
        price_overrides: Mapping[str, int] | None = None,
        banned_words: Collection[str] = (),
        allow_demo: bool | None = None,
    ) -> Plan:
        """Validate everything and price it; raises BadInput before anything is spent."""
        # Tidy spaces but keep line breaks: posters put each line of text on its own line.
        lines = (" ".join(line.split()) for line in request.prompt.strip().splitlines())
        prompt = "\n".join(lines).strip()
        if not prompt:
            raise BadInput("The prompt is empty: describe the image you want.")
        if len(prompt) > MAX_PROMPT:
            raise BadInput(f"The prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}.")
        lowered = prompt.lower()
        for word in banned_words:
            if word and word.lower() in lowered:
                raise BadInput("This server does not allow one of the words in that prompt.")
        use_case = self.catalog.use_case(request.use_case)
        model_ids = list(request.models) or list(self.catalog.default_models)
        if len(model_ids) < MIN_MODELS or len(model_ids) > MAX_MODELS:
            raise BadInput(
                f"Pick {MIN_MODELS} to {MAX_MODELS} models; you picked {len(model_ids)}."
            )
        if len(set(model_ids)) != len(model_ids):
            raise BadInput("Each model can appear only once in a comparison.")
        models = [self.catalog.model(mid) for mid in model_ids]
        if enabled_models:
            off = [m.name for m in models if m.id not in enabled_models]
            if off:
                raise BadInput(
                    f"{_names(off)} {'is' if len(off) == 1 else 'are'} turned off on this server."
                )
        aspect = request.aspect or use_case.default_aspect
        if not ASPECT_RE.match(aspect):
            raise BadInput(f"'{aspect}' is not an aspect ratio; use a form like 3:4.")
        unsupported = [m.name for m in models if aspect not in m.aspects]
        if unsupported:
            raise BadInput(f"{_names(unsupported)} cannot draw {aspect}; try 1:1, 3:4 or 4:3.")
        if request.reference is not None:
            if len(request.reference.data) > MAX_REFERENCE_BYTES:
                raise BadInput("The reference image is larger than 20 MB.")
            no_i2i = [m.name for m in models if not m.capabilities.image_to_image]
            if no_i2i:
                raise BadInput(f"{_names(no_i2i)} cannot use a reference image.")
        demo = self.allow_demo if allow_demo is None else allow_demo
        overrides = price_overrides or {}
        plan_id = uuid.uuid4().hex[:12]
        if request.blind:
            # Letters must not follow the option order, or A would always be model_a.
            random.Random(plan_id).shuffle(models)
        panels = []
        for index, model in enumerate(models):
            route = self.registry.route(model.id, model.name, model.adapters, allow_demo=demo)
            if request.blind:
                # Whatever the adapter writes (a refusal sentence, the demo's caption) must not
                # give the model away before the vote closes.
                blind_name = f"Model {LETTERS[index]}"
                route = Route(route.adapter, replace(route.target, display_name=blind_name))
            price = price_for(model, request.quality, overrides)
            panels.append(PlannedPanel(index, model, route, price, blind=request.blind))
        image_request = ImageRequest(
            prompt=prompt,
            aspect=aspect,
            quality=request.quality,
            references=(request.reference,) if request.reference else (),
            seed=request.seed,
            user_hash=request.user_hash,
        )
        return Plan(
            id=plan_id,
            prompt=prompt,
            use_case=use_case,
            aspect=aspect,
            quality=request.quality,
            blind=request.blind,
            panels=tuple(panels),
            request=image_request,
        )

    # ------------------------------------------------------------------ run
    async def run(
        self,
        plan: Plan,
        on_progress: ProgressCallback | None = None,
        on_outcome: Callable[[PanelOutcome], None] | None = None,
    ) -> list[PanelOutcome]:
        """Call every model concurrently, each with its own deadline; never raises for one model.

        ``on_outcome`` sees each panel the moment it finishes (e.g. to start measuring it).
        """
        start = self._clock()

        async def report(index: int, state: State, reason: str | None = None) -> None:
            if on_progress is None:
                return
            try:
                maybe = on_progress(
                    ProgressEvent(plan, index, state, self._clock() - start, reason)
                )
                if maybe is not None:
                    await maybe
            except Exception:
                # Progress is cosmetic: a failed progress edit must never sink a model.
                log.warning("progress callback failed for %s", plan.id, exc_info=True)

        async def one(panel: PlannedPanel) -> PanelOutcome:
            await report(panel.index, State.GENERATING)
            began = self._clock()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.model_timeout_s
            adapter = panel.route.adapter
            try:
                async with asyncio.timeout_at(deadline + 1.0):
                    result = await adapter.generate(
                        panel.route.target, plan.request, deadline=deadline
                    )
            except ProviderError as exc:
                state = State.REFUSED if exc.kind == "refused" else State.FAILED
                outcome = PanelOutcome(
                    panel, state, began, self._clock(), reason=exc.message, error_kind=exc.kind
                )
            except TimeoutError:
                outcome = PanelOutcome(
                    panel,
                    State.FAILED,
                    began,
                    self._clock(),
                    reason=f"no answer within {self.model_timeout_s:.0f} s",
                    error_kind="timeout",
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
    def verdict(
        self,
        plan: Plan,
        outcomes: Sequence[PanelOutcome] = (),
        community: Sequence[str] = (),
        text: Sequence[TextAccuracy | None] = (),
    ) -> Verdict:
        """The verdict for a plan, with the measured row when outcomes exist."""
        measured = tuple(
            MeasuredCell(
                status=o.status,
                seconds=o.seconds,
                credits=o.panel.credits if o.ok else 0,
                width=o.result.width if o.result else None,
                height=o.result.height if o.result else None,
            )
            for o in outcomes
        )
        return build_verdict(
            self.catalog,
            [p.model for p in plan.panels],
            plan.use_case,
            labels=[p.label for p in plan.panels],
            prices=[p.credits for p in plan.panels],
            measured=measured,
            community=community,
            quality=plan.quality,
            text=text,
        )

    async def compose(
        self, plan: Plan, outcomes: Sequence[PanelOutcome], *, max_bytes: int = MAX_UPLOAD_BYTES
    ) -> Composite:
        """Compose the split image off the event loop."""
        panels = [
            Panel(
                label=o.panel.letter if plan.blind else o.panel.label,
                caption=_caption(o, blind=plan.blind),
                image=o.result.image if o.result else None,
                failure=None if o.ok else _failure_text(o),
            )
            for o in outcomes
        ]
        return await asyncio.to_thread(compose, panels, max_bytes=max_bytes)

    async def produce(
        self,
        plan: Plan,
        *,
        on_progress: ProgressCallback | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
        community: Community = (),
    ) -> ComparisonResult:
        """Run, compose and judge; raises AllModelsFailed when no model delivered.

        ``community`` is the server's results to cite, or an async callable fetching them,
        awaited while the models run (it can take a while on a busy server).
        """
        lines = asyncio.ensure_future(_community_lines(plan, community))
        reading = TextReading(self.text_meter, plan.prompt)
        try:
            outcomes = await self.run(plan, on_progress, on_outcome=reading.start_outcome)
        except BaseException:
            lines.cancel()
            reading.cancel()
            raise
        if not any(o.ok for o in outcomes):
            lines.cancel()
            reading.cancel()
            raise AllModelsFailed(outcomes, refunded=0)
        try:
            composite = await self.compose(plan, outcomes, max_bytes=max_bytes)
        except BaseException:
            reading.cancel()
            raise
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
            lines.cancel()
            reading.cancel()
            raise AllModelsFailed(outcomes, refunded=0)
        text = await reading.results([o.ok for o in outcomes])
        return ComparisonResult(
            plan, tuple(outcomes), composite, self.verdict(plan, outcomes, await lines, text)
        )

    # -------------------------------------------------------------- execute
    async def execute(
        self,
        plan: Plan,
        deliver: Callable[[ComparisonResult, int | None], Awaitable[T]],
        *,
        payer: Payer | None = None,
        on_progress: ProgressCallback | None = None,
        on_reserved: Callable[[], Awaitable[None]] | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
        community: Community = (),
    ) -> Delivered[T]:
        """Reserve, produce, deliver, then settle; any failure before delivery releases the hold.

        ``deliver`` gets the result and the balance the member will have once settled (None
        without a payer); it must raise if the member did not receive the image.
        ``on_reserved`` runs right after the credits are held (e.g. to acknowledge a Discord
        interaction, so a member without credits still gets a private answer).
        """
        hold: Hold | None = None
        if payer is not None:
            hold = await payer.ledger.reserve(
                payer.guild_id, payer.user_id, plan.line_items(), comparison_id=plan.id
            )
        try:
            if on_reserved is not None:
                await on_reserved()
            try:
                result = await self.produce(
                    plan, on_progress=on_progress, max_bytes=max_bytes, community=community
                )
            except AllModelsFailed as exc:
                raise AllModelsFailed(exc.outcomes, refunded=plan.total if hold else 0) from None
            balance_after = None
            if hold is not None:
                balance_after = hold.balance_after + result.refunded
            delivery = await deliver(result, balance_after)
        except BaseException as exc:
            if hold is not None and payer is not None:
                # Shielded so a cancellation cannot interrupt the refund itself.
                await asyncio.shield(_release(payer.ledger, hold.id, _release_reason(exc)))
            raise
        settlement = None
        if hold is not None and payer is not None:
            delivered = [o.panel.model.id for o in result.outcomes if o.ok]
            reasons = {o.panel.model.id: o.refund_reason() for o in result.outcomes if not o.ok}
            settlement = await payer.ledger.settle(hold.id, delivered, reasons)
            if settlement.already_closed:
                # Only the stale-hold sweep closes a hold behind our back: its age limit is
                # shorter than this comparison took, so the member got these images free.
                log.error(
                    "comparison %s was settled after its hold had been released (%s); "
                    "raise SPLITSHOT_STALE_HOLD_MINUTES",
                    plan.id,
                    settlement.state,
                )
        return Delivered(result, delivery, hold, settlement, balance_after)


#: how often and how long to retry a refund that the database refused (e.g. locked by a shard)
RELEASE_RETRY_DELAYS = (0.2, 1.0, 3.0)


async def _release(ledger: Ledger, hold_id: int, reason: str) -> None:
    """Release a hold, retrying a few times; a refund is the one write that must not be lost."""
    for delay in (*RELEASE_RETRY_DELAYS, None):
        try:
            await ledger.release(hold_id, reason)
        except Exception:
            if delay is None:
                # The stale-hold sweep refunds it later; the original error still propagates.
                log.exception("could not release hold %d; the sweep will refund it", hold_id)
                return
            log.warning("releasing hold %d failed; retrying in %.1f s", hold_id, delay)
            await asyncio.sleep(delay)
        else:
            return


async def _community_lines(plan: Plan, community: Community) -> Sequence[str]:
    if not callable(community):
        return community
    try:
        return await community()
    except Exception:
        # Community results decorate the verdict; failing to fetch them sinks nothing.
        log.exception("community results failed for comparison %s", plan.id)
        return ()


def price_for(model: Model, quality: Quality, overrides: Mapping[str, int]) -> int:
    """Credits per image; a server's override is the standard-tier price, other tiers scale."""
    if model.id not in overrides:
        return model.credits[quality]
    standard = overrides[model.id]
    scale = model.credits[quality] / model.credits["standard"]
    return max(1, round(standard * scale))


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _release_reason(exc: BaseException) -> str:
    if isinstance(exc, AllModelsFailed):
        return "every model refused or failed"
    if isinstance(exc, asyncio.CancelledError):
        return "comparison cancelled"
    return "the result could not be delivered"


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
