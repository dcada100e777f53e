"""Sentences and cells about measured text accuracy, derived only from the measurements.

The verdict calls these; they know nothing of criteria rows or renderers, so the verdict stays
the one place that decides layout.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.measure.ocr import TextAccuracy

ROW_ID = "text_measured"
ROW_NAME = "Text (measured)"
#: cell for a panel that delivered no image, so there was nothing to read
NO_IMAGE = "—"


def any_text(accuracies: Sequence[TextAccuracy | None]) -> bool:
    """Whether the prompt asked for text at all (a row is shown even when OCR is missing)."""
    return any(a is not None for a in accuracies)


def cells(accuracies: Sequence[TextAccuracy | None]) -> tuple[str, ...]:
    """One cell per panel: '100% ✓', '86%', or '—' for no image or no measurement."""
    return tuple(NO_IMAGE if a is None else a.cell() for a in accuracies)


def points(accuracies: Sequence[TextAccuracy | None]) -> tuple[int, ...]:
    """Whole percentages for ranking; -1 where nothing was measured (it can never win)."""
    return tuple(
        -1 if a is None or not a.measured or a.percent is None else a.percent for a in accuracies
    )


def winner_index(accuracies: Sequence[TextAccuracy | None]) -> int | None:
    """The one panel with the best measured score; None on a tie or with fewer than two read."""
    scored = [(p, i) for i, p in enumerate(points(accuracies)) if p >= 0]
    if len(scored) < 2:
        return None
    top = max(p for p, _ in scored)
    leaders = [i for p, i in scored if p == top]
    return leaders[0] if len(leaders) == 1 else None


def winner(accuracies: Sequence[TextAccuracy | None], labels: Sequence[str], tie: str) -> str:
    """The winner column: a label, ``tie``, or NO_IMAGE when fewer than two panels were read."""
    if sum(p >= 0 for p in points(accuracies)) < 2:
        return NO_IMAGE
    index = winner_index(accuracies)
    return tie if index is None else labels[index]


def _clause(label: str, accuracy: TextAccuracy) -> str:
    if accuracy.exact:
        return f"{label} spelled {_requested(accuracy)} exactly"
    # Name the string that went most wrong: that is what a member will look for on the image.
    parts = accuracy.parts or (accuracy.score or 0.0,)
    worst = min(range(len(parts)), key=lambda i: parts[i])
    read = accuracy.read[worst] if worst < len(accuracy.read) else ""
    if not read:
        missing = accuracy.requested[worst] if worst < len(accuracy.requested) else ""
        return f"{label} did not write \u201c{missing}\u201d legibly ({accuracy.percent}%)"
    return f"{label} wrote \u201c{read}\u201d ({accuracy.percent}%)"


def _requested(accuracy: TextAccuracy) -> str:
    quoted = [f"\u201c{t}\u201d" for t in accuracy.requested]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def sentence(accuracies: Sequence[TextAccuracy | None], labels: Sequence[str]) -> str:
    """E.g. 'GPT-Image 2 spelled “OPEN 24/7” exactly; Nano Banana Pro wrote “OPEN 2A/7” (86%).'"""
    measured = [
        (label, a)
        for label, a in zip(labels, accuracies, strict=True)
        if a is not None and a.measured
    ]
    if not measured:
        return ""
    text = "; ".join(_clause(label, a) for label, a in measured) + "."
    if any(a.truncated for _, a in measured):
        text += " (Measured on the first 200 characters of the quoted text.)"
    return text


def need_why(accuracies: Sequence[TextAccuracy | None], labels: Sequence[str]) -> str | None:
    """The 'why' of the text need when one model measured best; None to keep the editorial one."""
    index = winner_index(accuracies)
    if index is None:
        return None
    best = cells(accuracies)[index]
    others = "/".join(
        c
        for i, (c, p) in enumerate(zip(cells(accuracies), points(accuracies), strict=True))
        if i != index and p >= 0
    )
    return f"{labels[index]} wrote the requested text best in this run ({best} against {others}, measured)."


def note(accuracies: Sequence[TextAccuracy | None]) -> str:
    """The line under the table that says what the measured row is (or why it is empty)."""
    reasons = sorted({a.reason for a in accuracies if a is not None and a.reason})
    if reasons and not any(a is not None and a.measured for a in accuracies):
        return f"{ROW_NAME}: not measured ({', '.join(reasons)})."
    text = f"{ROW_NAME}: the quoted text read back from each image by OCR; ✓ = spelled exactly."
    if any(a is not None and a.truncated for a in accuracies):
        text += " Only the first 200 characters of the quoted text were measured."
    if reasons:
        text += f" Some images were not measured ({', '.join(reasons)})."
    return text
