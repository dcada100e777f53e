"""Plain-text rendering of verdicts and tables for the terminal (and monospace embed blocks)."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Sequence

from bot.catalog import Catalog
from bot.verdict import Verdict

DEMO_BANNER = (
    "DEMO MODE — {names} {verb} drawn by the offline demo provider, not by the real "
    "model{plural}. Set provider keys (see README) for real images."
)


# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \\) and two-character escapes.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def terminal_safe(text: str) -> str:
    """Text from outside (providers, members) with escape sequences and control characters
    removed, so it cannot move the cursor, retitle the window or hide lines on a terminal."""
    text = _ESCAPE.sub("", text)
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )


def width_of(text: str) -> int:
    """Display width in terminal cells (wide East Asian glyphs count 2)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` display cells."""
    return text + " " * max(0, width - width_of(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, max_col: int = 40) -> str:
    """A simple aligned table with a header rule; long cells are cut with an ellipsis."""

    def cut(cell: str) -> str:
        return cell if width_of(cell) <= max_col else cell[: max_col - 1] + "…"

    cells = [[cut(c) for c in headers]] + [[cut(c) for c in row] for row in rows]
    widths = [max(width_of(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("─" * w for w in widths))
    return "\n".join(lines)


def criteria_table(verdict: Verdict, labels: Sequence[str] | None = None) -> str:
    """The criterion table: dots per model and the winner column."""
    from bot.verdict import dots

    labels = tuple(labels or verdict.labels)
    headers = ["Criteria", *labels, "Winner"]
    rows = [
        [
            row.name,
            *(row.cells or tuple(dots(s) for s in row.scores)),
            _winner(row.winner, verdict.labels, labels),
        ]
        for row in verdict.rows
    ]
    return table(headers, rows)


#: short criterion names, so a four-model table fits a phone-width embed
SHORT_NAMES = {
    "realism": "Realism",
    "text_accuracy": "Text",
    "editing_flexibility": "Editing",
    "cost_efficiency": "Cost",
    "final_polish": "Polish",
    "consistency": "Consistent",
    "best_first_test": "First pick",
    "text_measured": "Text read",
}


def compact_criteria_table(verdict: Verdict, letters: Sequence[str]) -> str:
    """The criterion table with short names and A–D as columns (about 40 characters wide)."""
    from bot.verdict import dots

    rows = [
        [
            SHORT_NAMES.get(row.criterion_id, row.name[:10]),
            *(row.cells or tuple(dots(s) for s in row.scores)),
            _winner(row.winner, verdict.labels, letters),
        ]
        for row in verdict.rows
    ]
    return table(["", *letters, "Best"], rows)


def _winner(winner: str, names: Sequence[str], shown: Sequence[str]) -> str:
    # In blind mode the winner column must use the same letters as the headers.
    return shown[names.index(winner)] if winner in names else winner


def measured_table(verdict: Verdict, labels: Sequence[str] | None = None) -> str:
    """The measured row of a run: time, credits and resolution per model."""
    labels = tuple(labels or verdict.labels)
    return table(["Measured", *labels], [["This run", *(c.text() for c in verdict.measured)]])


def needs_table(verdict: Verdict) -> str:
    """The "If you need… / Choose / Why" table."""
    return table(
        ["If you need…", "Choose", "Why"],
        [[n.need, n.choose, n.why] for n in verdict.needs],
        max_col=90,
    )


def features_table(verdict: Verdict) -> str:
    """The feature table."""
    return table(
        ["Feature", *verdict.labels], [[f.feature, *f.values] for f in verdict.features], max_col=44
    )


def wrap(text: str, width: int = 96) -> str:
    """Wrap a paragraph for the terminal."""
    return "\n".join(textwrap.wrap(text, width=width))


def render_verdict(verdict: Verdict, *, full: bool = False) -> str:
    """The verdict block printed after a comparison (full=True: the whole comparison page)."""
    parts = [wrap(verdict.quick_verdict), "", criteria_table(verdict)]
    parts.append(
        "Dots: editorial ratings from the catalog; cost efficiency from price; "
        "best first test weighted for the use case."
    )
    if verdict.text_note:
        parts.append(verdict.text_note)
    if verdict.measured:
        parts += ["", measured_table(verdict)]
    if verdict.community:
        parts += ["", "Community results (this server's votes):", *verdict.community]
    if full:
        parts += ["", needs_table(verdict), "", features_table(verdict), ""]
        for label, strengths in verdict.strengths:
            parts.append(f"{label} strengths:")
            parts += [f"  • {s}" for s in strengths]
        parts += ["", "Verdict", wrap(verdict.closing)]
        if verdict.updated:
            parts.append(f"Last updated {verdict.updated}.")
    parts += ["", f"Next step: {verdict.next_step}"]
    return "\n".join(parts)


def render_models(catalog: Catalog) -> str:
    """The catalog as a compact table."""
    rows = [
        [
            m.id,
            m.name,
            m.provider,
            f"{m.credits['draft']}/{m.credits['standard']}/{m.credits['high']}",
            m.safety,
            ", ".join(a for a, _ in m.adapters),
        ]
        for m in catalog.models.values()
    ]
    return table(["id", "Model", "Provider", "Credits d/s/h", "Safety", "Adapters"], rows)


def render_use_cases(catalog: Catalog) -> str:
    """The use cases with their default aspect and heaviest criteria."""
    names = {c.id: c.name for c in catalog.criteria}
    rows = []
    for uc in catalog.use_cases.values():
        top = sorted(uc.weights.items(), key=lambda kv: -kv[1])[:2]
        rows.append(
            [uc.id, uc.name, uc.default_aspect, ", ".join(names[k] for k, _ in top), uc.description]
        )
    return table(["id", "Use case", "Aspect", "Weighs most", "Description"], rows, max_col=60)


def demo_banner(labels: Sequence[str]) -> str:
    """The loud line printed when demo stand-ins serve any model."""
    names = ", ".join(labels)
    many = len(labels) > 1
    return DEMO_BANNER.format(names=names, verb="are" if many else "is", plural="s" if many else "")
