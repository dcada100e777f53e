"""The one view model of a comparison: decided here once, only formatted by the renderers.

A finished comparison (:func:`view_from_result`) and a stored one (:func:`view_from_record`, e.g.
when its vote closes) become the same :class:`ComparisonView`. The verdict is built here and
nowhere else, with the names the view may show: letters while a blind vote is open (the
verdict's prose and dots come from the catalog, so they would name the model), the models'
labels otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from bot.comparisons.plan import shown_name
from bot.verdict import MeasuredCell, Verdict, build_verdict

if TYPE_CHECKING:
    from bot.catalog import Catalog, Model
    from bot.comparisons.plan import Plan
    from bot.comparisons.records import ComparisonRecord
    from bot.comparisons.service import PanelOutcome
    from bot.measure.ocr import TextAccuracy
    from providers.base import Quality


@dataclass(frozen=True, slots=True)
class PanelView:
    """One panel as the result shows it."""

    letter: str
    name: str  # the model's display name
    label: str  # the name with "· demo" when the demo stand-in drew it
    status: str  # ok | refused | failed
    reason: str | None
    seconds: float | None
    price: int  # the credits this panel was priced at (charged when ok, refunded otherwise)
    width: int | None = None
    height: int | None = None
    model_id: str = ""
    #: the model's price per image (the verdict's cost row), even when this panel was reused
    unit_price: int | None = None

    @property
    def ok(self) -> bool:
        """True when this panel has an image."""
        return self.status == "ok"

    @property
    def measured(self) -> MeasuredCell:
        """This run's facts about the panel."""
        return MeasuredCell(
            self.status, self.seconds, self.price if self.ok else 0, self.width, self.height
        )


@dataclass(frozen=True, slots=True)
class ComparisonView:
    """Everything a result shows, decided up front; renderers only lay it out."""

    comparison_id: str
    prompt: str
    use_case: str
    panels: tuple[PanelView, ...]
    #: built with the names this view shows (letters while a blind vote is open)
    verdict: Verdict
    blind: bool = False
    revealed: bool = False
    demo: bool = False
    balance_after: int | None = None
    image_url: str | None = None
    vote_deadline: datetime | None = None
    closed: bool = False
    vote_headline: str | None = None
    vote_lines: tuple[str, ...] = ()

    @property
    def hidden(self) -> bool:
        """True while the model names must stay hidden (blind and not yet revealed)."""
        return self.blind and not self.revealed

    @property
    def charged(self) -> int:
        """Credits kept for panels that delivered."""
        return sum(p.price for p in self.panels if p.ok)

    @property
    def refunded(self) -> int:
        """Credits given back for panels that refused or failed."""
        return sum(p.price for p in self.panels if not p.ok)

    def shown(self, panel: PanelView) -> str:
        """How this view names a panel: "Model A" while hidden (as on the image), else its label."""
        return shown_name(panel.letter, panel.label, hidden=self.hidden)

    def names(self) -> list[str]:
        """Column names for tables: letters while hidden, model names otherwise."""
        return [p.letter if self.hidden else p.name for p in self.panels]

    def with_delivery(
        self,
        *,
        balance_after: int | None = None,
        image_url: str | None = None,
        vote_deadline: datetime | None = None,
    ) -> ComparisonView:
        """The same view with what only delivery knows (no verdict is recomputed)."""
        from dataclasses import replace

        return replace(
            self, balance_after=balance_after, image_url=image_url, vote_deadline=vote_deadline
        )


def _verdict(
    catalog: Catalog,
    models: Sequence[Model],
    use_case_id: str,
    panels: Sequence[PanelView],
    *,
    hidden: bool,
    community: Sequence[str],
    quality: str,
    text: Sequence[TextAccuracy | None] = (),
) -> Verdict:
    """The only verdict of a view, in the view's own words."""
    return build_verdict(
        catalog,
        models,
        catalog.use_case(use_case_id),
        labels=[p.letter if hidden else p.label for p in panels],
        prices=[p.unit_price or p.price for p in panels],
        measured=[p.measured for p in panels],
        community=() if hidden else community,  # community lines name the models
        quality=quality,
        text=text,
    )


def view_from_result(
    plan: Plan,
    outcomes: Sequence[PanelOutcome],
    catalog: Catalog,
    *,
    community: Sequence[str] = (),
    text: Sequence[TextAccuracy | None] = (),
) -> ComparisonView:
    """The view of a comparison that has just finished."""
    panels = tuple(
        PanelView(
            letter=o.panel.letter,
            name=o.panel.model.name,
            label=o.panel.label,
            status=o.status,
            reason=o.reason,
            seconds=o.seconds,
            price=o.panel.credits,
            width=o.result.width if o.result else None,
            height=o.result.height if o.result else None,
            model_id=o.panel.model.id,
            unit_price=o.panel.unit_price,
        )
        for o in outcomes
    )
    verdict = _verdict(
        catalog,
        [p.model for p in plan.panels],
        plan.use_case.id,
        panels,
        hidden=plan.blind,
        community=community,
        quality=plan.quality,
        text=text,
    )
    return ComparisonView(
        comparison_id=plan.id,
        prompt=plan.prompt,
        use_case=plan.use_case.name,
        panels=panels,
        verdict=verdict,
        blind=plan.blind,
        demo=plan.uses_demo,
    )


def _unit_price(catalog: Catalog, model_id: str, quality: Quality, aspect: str, route: str) -> int:
    try:
        return catalog.price(model_id, quality, aspect, route)
    except Exception:
        # A stored route the catalog no longer prices (demo, a renamed adapter): the list price.
        return catalog.model(model_id).credits.get(quality, 0)


def view_from_record(
    record: ComparisonRecord,
    catalog: Catalog,
    *,
    reveal: bool = False,
    image_url: str | None = None,
    vote_headline: str | None = None,
    vote_lines: Sequence[str] = (),
    community: Sequence[str] = (),
) -> ComparisonView:
    """The view of a stored comparison, e.g. to edit its message when voting closes."""
    models = [catalog.model(p.model_id) for p in record.panels]
    quality = cast("Quality", record.quality)
    panels = tuple(
        PanelView(
            letter=p.letter,
            name=model.name,
            label=p.label,
            status=p.status,
            reason=p.reason,
            seconds=p.latency_s,
            # What the panel cost here: 0 when carried over from a parent; rows stored without a
            # price fall back on the catalog's at their size and route.
            price=p.price
            if p.price or p.reused
            else _unit_price(catalog, p.model_id, quality, record.aspect, p.adapter),
            width=p.width,
            height=p.height,
            model_id=p.model_id,
            # The model's own price at this size and route, for the verdict's cost row.
            unit_price=_unit_price(catalog, p.model_id, quality, record.aspect, p.adapter),
        )
        for p, model in zip(record.panels, models, strict=True)
    )
    closed = record.state == "closed"
    revealed = reveal or closed
    verdict = _verdict(
        catalog,
        models,
        record.use_case,
        panels,
        hidden=record.blind and not revealed,
        community=community,
        quality=record.quality,
        # Only measured panels are stored: a prompt that quoted text shows its row again here.
        text=[p.text for p in record.panels] if any(p.text for p in record.panels) else (),
    )
    return ComparisonView(
        comparison_id=record.id,
        prompt=record.prompt,
        use_case=catalog.use_case(record.use_case).name,
        panels=panels,
        verdict=verdict,
        blind=record.blind,
        revealed=revealed,
        demo=record.demo,
        image_url=image_url,
        vote_deadline=record.vote_deadline,
        closed=closed,
        vote_headline=vote_headline,
        vote_lines=tuple(vote_lines),
    )
