"""What a comparison is before it runs: the request, the validated plan, and the blind-name rule."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.catalog import Model, UseCase
from providers.base import ImageRequest, ImageResult, Quality, ReferenceImage
from providers.registry import Route

if TYPE_CHECKING:
    from bot.credits.ledger import LineItem

LETTERS = "ABCD"


def blind_name(letter: str) -> str:
    """How a panel is named wherever others could read it while its comparison is blind."""
    return f"Model {letter}"


def shown_name(letter: str, label: str, *, hidden: bool) -> str:
    """The one blind-name rule: 'Model A' while hidden, the model's label otherwise."""
    return blind_name(letter) if hidden else label


class State(enum.StrEnum):
    """A panel's progress, as shown live to the member."""

    QUEUED = "queued"
    GENERATING = "generating"
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


FINISHED = frozenset({State.DONE, State.REFUSED, State.FAILED})


@dataclass(frozen=True, slots=True)
class CompareRequest:
    """What a member (or the CLI) asked for, before validation."""

    prompt: str
    use_case: str | None = None
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
    #: this panel's own request (a variant's seed and reference); None uses the plan's
    request: ImageRequest | None = None
    #: an image carried over from the parent comparison: not run again, not charged
    reused: ImageResult | None = None
    #: what tells two panels of one model apart, e.g. "variant 2"
    note: str = ""
    #: the model's price per image here (what a reused panel would have cost; for the verdict)
    list_price: int | None = None

    @property
    def unit_price(self) -> int:
        """Credits per image for this model on this server, paid here or not."""
        return self.list_price if self.list_price is not None else self.credits

    @property
    def letter(self) -> str:
        """A, B, C or D."""
        return LETTERS[self.index]

    @property
    def key(self) -> str:
        """This panel's line-item id in the ledger: the model, or model#n for variants."""
        return f"{self.model.id}#{self.index + 1}" if self.note else self.model.id

    @property
    def label(self) -> str:
        """The model's name, with '· demo' when the offline stand-in serves it."""
        label = f"{self.model.name} · demo" if self.route.is_demo else self.model.name
        return f"{label} · {self.note}" if self.note else label

    @property
    def public_label(self) -> str:
        """The name that may be written where others could read it: 'Model A' while blind."""
        return shown_name(self.letter, self.label, hidden=self.blind)


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
    #: compare, variants, reroll, swap or edit
    kind: str = "compare"
    #: the comparison a follow-up was made from
    parent_id: str | None = None

    def request_for(self, panel: PlannedPanel) -> ImageRequest:
        """What this panel's model is asked to draw."""
        return panel.request or self.request

    @property
    def charged_panels(self) -> tuple[PlannedPanel, ...]:
        """The panels that run (and are paid for); reused ones come from the parent."""
        return tuple(p for p in self.panels if p.reused is None)

    @property
    def total(self) -> int:
        """Total credits for the whole comparison."""
        return sum(p.credits for p in self.panels)

    @property
    def price_text(self) -> str:
        """Itemised price, e.g. 'GPT-Image 2 8 + Nano Banana Pro 22 = 30 credits'."""
        items = " + ".join(f"{p.label} {p.credits}" for p in self.charged_panels)
        return f"{items} = {self.total} credits"

    @property
    def public_price_text(self) -> str:
        """The price as others may read it: the total only while blind (items name models)."""
        return f"{self.total} credits" if self.blind else self.price_text

    @property
    def uses_demo(self) -> bool:
        """True when at least one model is served by the offline demo stand-in."""
        return any(p.route.is_demo for p in self.panels)

    def public_labels(self) -> list[str]:
        """Each panel's name as others may read it."""
        return [p.public_label for p in self.panels]

    def line_items(self) -> list[LineItem]:
        """The price as ledger line items."""
        from bot.credits.ledger import LineItem

        # Ledger rows outlive the vote and show in /credits history: never a blind model's name.
        return [LineItem(p.key, p.public_label, p.credits) for p in self.charged_panels]
