"""The verdict as plain data: quick verdict, criterion table, needs table, features, strengths.

Consistency rules (PRODUCT §2): cost efficiency follows price, so a cheaper model can never
have fewer dots; "best first test" is the use-case-weighted score; the winner column names
the model with the most dots and says "Tie" when the top is shared.

Every sentence (short answer, pick, "If you need…", "Avoid if", closing) is built from those
same rows for the models compared, never from catalog prose: a model is said to lead only
where it alone has the most dots, and a price is called cheaper only when it is.

Longer than the ~400-line guide on purpose: the criterion rows and every sentence derived from them are one computation: the sentences must read the same numbers as the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from bot.catalog import Catalog, Model, UseCase
from bot.measure import report as text_report
from bot.measure.ocr import TextAccuracy

TIE = "Tie"
NEXT_STEP = "Keep the output that best matches your brief and generate variants from it."


def dots(n: int, out_of: int = 5) -> str:
    """Render a 1–5 score as filled and empty dots, e.g. 4 → ●●●●○."""
    n = max(0, min(out_of, n))
    return "●" * n + "○" * (out_of - n)


def cost_dots(price: int, cheapest: int) -> int:
    """Cost-efficiency dots from price: 5 at the cheapest catalog price, one fewer per doubling."""
    if price <= cheapest:
        return 5
    return max(1, 5 - math.floor(math.log2(price / cheapest) + 0.5))


@dataclass(frozen=True, slots=True)
class CriterionRow:
    """One row of the criterion table: dots per model and the winner."""

    criterion_id: str
    name: str
    scores: tuple[int, ...]
    winner: str
    #: "editorial" (catalog ratings), "price" (cost efficiency), "weighted" or "measured"
    basis: str
    #: what to show instead of dots (the measured text row: "100% ✓", "86%")
    cells: tuple[str, ...] = ()

    @property
    def winner_index(self) -> int | None:
        """Index of the single model with the most dots, None on a tie."""
        top = max(self.scores)
        leaders = [i for i, s in enumerate(self.scores) if s == top]
        return leaders[0] if len(leaders) == 1 else None


@dataclass(frozen=True, slots=True)
class NeedRow:
    """One row of the "If you need… / Choose / Why" table."""

    need: str
    choose: str
    why: str


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """One row of the feature table, a value per model."""

    feature: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MeasuredCell:
    """What one model did in this run."""

    status: str  # "ok" | "refused" | "failed"
    seconds: float | None
    credits: int
    width: int | None = None
    height: int | None = None

    def text(self) -> str:
        """A compact cell such as '14.2 s · 8 cr · 1024×1536' or 'refused · refunded'."""
        if self.status != "ok":
            return f"{self.status} · refunded"
        parts = [f"{self.seconds:.1f} s" if self.seconds is not None else "—", f"{self.credits} cr"]
        if self.width and self.height:
            parts.append(f"{self.width}×{self.height}")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything the renderers need, already decided; renderers only lay it out."""

    labels: tuple[str, ...]
    model_ids: tuple[str, ...]
    use_case: UseCase
    prices: tuple[int, ...]
    weighted: tuple[float, ...]
    short_answer: str
    pick_sentence: str
    rows: tuple[CriterionRow, ...]
    needs: tuple[NeedRow, ...]
    features: tuple[FeatureRow, ...]
    strengths: tuple[tuple[str, tuple[str, ...]], ...]
    closing: str
    #: (label, sentence) for each model that trails somewhere: where, and who is ahead
    avoid: tuple[tuple[str, str], ...] = ()
    next_step: str = NEXT_STEP
    measured: tuple[MeasuredCell, ...] = ()
    community: tuple[str, ...] = field(default_factory=tuple)
    updated: str = ""
    #: measured text accuracy per panel (None: no image); empty when the prompt quotes no text
    text: tuple[TextAccuracy | None, ...] = ()
    text_sentence: str = ""
    #: the line that explains the "Text (measured)" row, or why it is empty
    text_note: str = ""

    @property
    def quick_verdict(self) -> str:
        """The two-sentence answer shown first (and what the text measurement found)."""
        answer = f"{self.short_answer} {self.pick_sentence}"
        return f"{answer} {self.text_sentence}" if self.text_sentence else answer

    def row(self, criterion_id: str) -> CriterionRow:
        """The criterion row with this id."""
        for row in self.rows:
            if row.criterion_id == criterion_id:
                return row
        raise KeyError(criterion_id)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _winner(scores: Sequence[int], labels: Sequence[str]) -> str:
    top = max(scores)
    leaders = [labels[i] for i, s in enumerate(scores) if s == top]
    return leaders[0] if len(leaders) == 1 else TIE


def build_verdict(
    catalog: Catalog,
    models: Sequence[Model],
    use_case: UseCase,
    *,
    labels: Sequence[str] | None = None,
    prices: Sequence[int] | None = None,
    measured: Sequence[MeasuredCell] = (),
    community: Sequence[str] = (),
    quality: str = "standard",
    text: Sequence[TextAccuracy | None] = (),
) -> Verdict:
    """Decide the verdict for 2–4 models on a use case; ``labels`` may carry '· demo'.

    ``prices`` are per image at ``quality`` (default: the catalog's standard prices).
    ``text`` is the measured text accuracy per panel when the prompt quoted text.
    """
    labels = tuple(labels or (m.name for m in models))
    prices = tuple(prices or (m.credits["standard"] for m in models))
    uc = use_case.id
    cheapest = min(catalog.min_price, *prices)
    cost = tuple(cost_dots(p, cheapest) for p in prices)

    rows: list[CriterionRow] = []
    per_criterion: dict[str, tuple[int, ...]] = {}
    for criterion in catalog.criteria:
        cid = criterion.id
        if cid == "best_first_test":
            continue
        if cid == "cost_efficiency":
            scores, basis = cost, "price"
        else:
            scores, basis = tuple(m.rating(cid, uc) for m in models), "editorial"
        per_criterion[cid] = scores
        rows.append(CriterionRow(cid, criterion.name, scores, _winner(scores, labels), basis))

    weights = use_case.weights
    total_weight = sum(weights.get(cid, 0) for cid in per_criterion) or 1
    weighted = tuple(
        sum(weights.get(cid, 0) * scores[i] for cid, scores in per_criterion.items()) / total_weight
        for i in range(len(models))
    )
    # Round half up so 4.5 reads as five dots, as a person would expect.
    best = tuple(max(1, min(5, math.floor(w + 0.5))) for w in weighted)
    bft_name = next(
        (c.name for c in catalog.criteria if c.id == "best_first_test"), "Best first test"
    )
    bft = CriterionRow("best_first_test", bft_name, best, _winner(best, labels), "weighted")
    rows.append(bft)

    pick_sentence, lead = _pick_sentence(
        bft, per_criterion, weights, labels, prices, use_case, catalog
    )
    criteria_rows = rows[:-1]
    short_answer = _short_answer(criteria_rows, labels)
    needs = _needs(catalog, models, labels, prices, rows, bft, lead, use_case)
    if text_report.any_text(text):
        rows, needs = _with_measured_text(rows, needs, tuple(text), labels)
    return Verdict(
        labels=labels,
        model_ids=tuple(m.id for m in models),
        use_case=use_case,
        prices=prices,
        weighted=weighted,
        short_answer=short_answer,
        pick_sentence=pick_sentence,
        rows=tuple(rows),
        needs=needs,
        features=_features(models, prices, quality),
        strengths=tuple((label, m.strengths) for label, m in zip(labels, models, strict=True)),
        closing=_closing(criteria_rows, labels, bft, lead, use_case),
        avoid=_avoid(catalog, criteria_rows, labels, prices, use_case),
        measured=tuple(measured),
        community=tuple(community),
        updated=catalog.updated.strftime("%B %-d, %Y"),
        text=tuple(text),
        text_sentence=text_report.sentence(text, labels) if text else "",
        text_note=text_report.note(text) if text_report.any_text(text) else "",
    )


def _leads(rows: Sequence[CriterionRow], count: int) -> list[list[str]]:
    """For each model, the criteria (lower case) where it alone has the most dots."""
    leads: list[list[str]] = [[] for _ in range(count)]
    for row in rows:
        if row.winner_index is not None:
            leads[row.winner_index].append(row.name.lower())
    return leads


def _short_answer(rows: Sequence[CriterionRow], labels: Sequence[str]) -> str:
    """Who leads on what, and where the top is shared — read off the criterion rows."""
    leads = _leads(rows, len(labels))
    parts = [
        f"{label} leads on {_join(led)}" for label, led in zip(labels, leads, strict=True) if led
    ]
    if not parts:
        return "Short answer: they rate the same on every criterion."
    shared = [row.name.lower() for row in rows if row.winner_index is None]
    if shared:
        level = "they tie" if len(labels) == 2 else "the top is shared"
        parts.append(f"{level} on {_join(shared)}")
    return "Short answer: " + "; ".join(parts) + "."


def _with_measured_text(
    rows: Sequence[CriterionRow],
    needs: Sequence[NeedRow],
    text: Sequence[TextAccuracy | None],
    labels: Sequence[str],
) -> tuple[list[CriterionRow], tuple[NeedRow, ...]]:
    """Add the "Text (measured)" row after the editorial one; the text need follows it."""
    index = text_report.winner_index(text)
    measured = CriterionRow(
        text_report.ROW_ID,
        text_report.ROW_NAME,
        text_report.points(text),
        text_report.winner(text, labels, TIE),
        "measured",
        cells=text_report.cells(text),
    )
    ids = [r.criterion_id for r in rows]
    at = ids.index("text_accuracy") + 1 if "text_accuracy" in ids else len(rows) - 1
    new_needs = list(needs)
    why = text_report.need_why(text, labels)
    # Needs follow the catalog's criteria in order (see _needs), so the text need sits at the
    # editorial text row's index.
    if why is not None and index is not None and "text_accuracy" in ids:
        need_at = ids.index("text_accuracy")
        if need_at < len(new_needs):
            new_needs[need_at] = replace(new_needs[need_at], choose=labels[index], why=why)
    return [*rows[:at], measured, *rows[at:]], tuple(new_needs)


def _lead_criterion(
    index: int, per_criterion: Mapping[str, Sequence[int]], weights: Mapping[str, int]
) -> tuple[str, bool] | None:
    """The heaviest criterion where model ``index`` alone has the most dots, and whether it is the heaviest overall."""
    ranked = sorted((w, cid) for cid, w in weights.items() if w > 0 and cid in per_criterion)
    ranked.reverse()
    top_weight = ranked[0][0] if ranked else 0
    for weight, cid in ranked:
        scores = per_criterion[cid]
        if all(scores[index] > s for i, s in enumerate(scores) if i != index):
            return cid, weight == top_weight
    return None


def _pick_sentence(
    bft: CriterionRow,
    per_criterion: Mapping[str, Sequence[int]],
    weights: Mapping[str, int],
    labels: Sequence[str],
    prices: Sequence[int],
    use_case: UseCase,
    catalog: Catalog,
) -> tuple[str, str | None]:
    uc_name = use_case.name.lower()
    tail = (
        "run the same prompt through both and keep the winner."
        if len(labels) == 2
        else ("run the same prompt through all of them and keep the winner.")
    )
    index = bft.winner_index
    if index is None:
        top = max(bft.scores)
        level = [i for i, s in enumerate(bft.scores) if s == top]
        names = _join([labels[i] for i in level])
        low = min(prices[i] for i in level)
        cheapest = [i for i in level if prices[i] == low]
        if len(cheapest) == 1:
            than = "cheaper" if len(level) == 2 else "cheapest of them"
            cost = f"{labels[cheapest[0]]} is the {than} first test at {low} credits"
        elif len(cheapest) == len(level):
            cost = f"they cost the same, {low} credits per image"
        else:
            cost = (
                f"{_join([labels[i] for i in cheapest])} are the cheapest of them at {low} credits"
            )
        return (
            f"For {uc_name}, {names} start level on the criteria that matter most — {cost}; {tail}",
            None,
        )
    lead = _lead_criterion(index, per_criterion, weights)
    criteria = {c.id: c.name.lower() for c in catalog.criteria}
    if lead is None:
        reason = f"it has the best weighted score for {uc_name}"
        lead_id = None
    else:
        lead_id, heaviest = lead
        matters = "which matters most" if heaviest else "which counts"
        reason = f"it leads on {criteria[lead_id]}, {matters} for {uc_name}"
    return f"For {uc_name}, {labels[index]} is the stronger first pick — {reason}; {tail}", lead_id


def _needs(
    catalog: Catalog,
    models: Sequence[Model],
    labels: Sequence[str],
    prices: Sequence[int],
    rows: Sequence[CriterionRow],
    bft: CriterionRow,
    lead: str | None,
    use_case: UseCase,
) -> tuple[NeedRow, ...]:
    either = "Either model" if len(models) == 2 else "Any of them"
    needs: list[NeedRow] = []
    for criterion, row in zip(
        (c for c in catalog.criteria if c.id != "best_first_test"), rows, strict=False
    ):
        index = row.winner_index
        if row.criterion_id == "cost_efficiency":
            if index is None:
                level_i = [i for i, score in enumerate(row.scores) if score == max(row.scores)]
                who = "They" if len(level_i) == len(labels) else _join([labels[i] for i in level_i])
                cost = ", ".join(str(prices[i]) for i in level_i)
                why = f"{who} cost about the same per image ({cost} credits)."
            else:
                why = (
                    f"{labels[index]} costs {prices[index]} credits per image, so you can test "
                    "more directions for less."
                )
        elif index is None:
            top = max(row.scores)
            level = [labels[i] for i, score in enumerate(row.scores) if score == top]
            why = f"They rate the same on {criterion.name.lower()} ({top}/5, editorial)."
            if len(level) < len(labels):
                why = f"{_join(level)} share the top on {criterion.name.lower()} ({top}/5, editorial)."
        else:
            others = _join([f"{score}/5" for i, score in enumerate(row.scores) if i != index])
            why = (
                f"{labels[index]} rates {row.scores[index]}/5 on {criterion.name.lower()} "
                f"against {others} (editorial)."
            )
        if index is not None:
            choose = labels[index]
        else:
            level = [labels[i] for i, score in enumerate(row.scores) if score == max(row.scores)]
            choose = either if len(level) == len(labels) else " or ".join(level)
        needs.append(NeedRow(criterion.need, choose, why))
    index = bft.winner_index
    uc_name = use_case.name.lower()
    if index is None:
        level = [labels[i] for i, score in enumerate(bft.scores) if score == max(bft.scores)]
        if len(level) == len(labels):
            why, choose = f"They score the same once weighted for {uc_name}.", either
        else:
            why = f"{_join(level)} share the best score once weighted for {uc_name}."
            choose = " or ".join(level)
    else:
        choose = labels[index]
        criteria = {c.id: c.name.lower() for c in catalog.criteria}
        if lead is None:
            why = f"{choose} has the best score once weighted for {uc_name}."
        else:
            heaviest = max(use_case.weights.values(), default=0)
            matters = "matters most" if use_case.weights.get(lead, 0) == heaviest else "counts"
            why = f"{choose} alone leads on {criteria[lead]}, which {matters} for {uc_name}."
    needs.append(NeedRow(f"{use_case.name} specifically", choose, why))
    return tuple(needs)


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _features(
    models: Sequence[Model], prices: Sequence[int], quality: str
) -> tuple[FeatureRow, ...]:
    def row(name: str, values: Sequence[str]) -> FeatureRow:
        return FeatureRow(name, tuple(values))

    return (
        row("Provider", [m.provider for m in models]),
        row("Subcategories", [", ".join(m.modes) for m in models]),
        row("1080p / 2K mode", [_yes(m.capabilities.mode_2k) for m in models]),
        row("4K mode", [_yes(m.capabilities.mode_4k) for m in models]),
        row("Mask inpainting", [_yes(m.capabilities.mask) for m in models]),
        row("Reference images", [str(m.capabilities.max_references) for m in models]),
        row("Safety filter", [m.safety for m in models]),
        row("Image sizes", [", ".join(m.image_sizes) for m in models]),
        row("Quality", [", ".join(m.quality_options) for m in models]),
        row("Starting price", [f"{m.starting_price} credits" for m in models]),
        row(f"Credits per image ({quality})", [f"{p} credits" for p in prices]),
    )


def _closing(
    rows: Sequence[CriterionRow],
    labels: Sequence[str],
    bft: CriterionRow,
    lead: str | None,
    uc: UseCase,
) -> str:
    names = _join(list(labels))
    leads = _leads(rows, len(labels))
    leaders = [i for i, led in enumerate(leads) if led]
    if len(leaders) >= 2:
        who = _join([labels[i] for i in leaders])
        parts = [f"{who} each lead somewhere, so they win in different workflows."]
        parts += [f"Reach for {labels[i]} for {_join(leads[i])}." for i in leaders]
    elif leaders:
        (i,) = leaders
        parts = [
            f"{labels[i]} is the only one to lead outright, on {_join(leads[i])}; "
            "the top is shared everywhere else."
        ]
    else:
        parts = [f"{names} rate the same on every criterion."]
    index = bft.winner_index
    if index is not None:
        row_names = {row.criterion_id: row.name.lower() for row in rows}
        why = (
            f"it alone leads on {row_names[lead]}"
            if lead in row_names
            else "its weighted score is higher"
        )
        parts.append(
            f"For {uc.name.lower()}, {labels[index]} is the better starting point because {why}."
        )
    parts.append(
        "Run the same prompt through each, compare the outputs, and keep the one that fits your workflow."
    )
    return " ".join(parts)


def _avoid(
    catalog: Catalog,
    rows: Sequence[CriterionRow],
    labels: Sequence[str],
    prices: Sequence[int],
    use_case: UseCase,
) -> tuple[tuple[str, str], ...]:
    """For each model, the criterion that matters most for the use case where it trails."""
    needs = {c.id: c.need[0].lower() + c.need[1:] for c in catalog.criteria}
    lines: list[tuple[str, str]] = []
    for i, label in enumerate(labels):
        behind = [row for row in rows if row.scores[i] < max(row.scores)]
        if not behind:
            continue
        row = max(
            behind,
            key=lambda r: (use_case.weights.get(r.criterion_id, 0), max(r.scores) - r.scores[i]),
        )
        top = max(row.scores)
        ahead = [labels[j] for j, s in enumerate(row.scores) if s == top]
        if row.criterion_id == "cost_efficiency":
            # Fewer cost dots means a strictly higher price, so the lowest price is a real saving.
            low = min(prices)
            cheaper = [labels[j] for j, p in enumerate(prices) if p == low]
            verb = "costs" if len(cheaper) == 1 else "cost"
            reason = f"{_join(cheaper)} {verb} {low} credits per image against its {prices[i]}"
        else:
            verb = "rates" if len(ahead) == 1 else "rate"
            reason = f"{_join(ahead)} {verb} {top}/5 against its {row.scores[i]}/5 (editorial)"
        lines.append((label, f"Avoid {label} if you need {needs[row.criterion_id]}: {reason}."))
    return tuple(lines)
