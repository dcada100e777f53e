"""What a prompt asks to see written, capped at what is worth measuring."""

from __future__ import annotations

from dataclasses import dataclass

from bot.measure.textmatch import normalise
from providers.quotes import quoted_strings

__all__ = ["MAX_MEASURED_CHARS", "Requested", "quoted_strings", "requested_text"]

#: longer quoted text is measured on its first this-many characters (and the row says so)
MAX_MEASURED_CHARS = 200


@dataclass(frozen=True, slots=True)
class Requested:
    """The quoted strings to look for, and whether they were cut to the first 200 characters."""

    texts: tuple[str, ...]
    truncated: bool = False

    @property
    def display(self) -> str:
        """The strings as a member reads them: “OPEN 24/7” and “Midnight Ride”."""
        quoted = [f"\u201c{t}\u201d" for t in self.texts]
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def requested_text(prompt: str) -> Requested | None:
    """The quoted text of a prompt worth measuring, or None when it quotes nothing legible."""
    texts: list[str] = []
    budget, truncated = MAX_MEASURED_CHARS, False
    for text in quoted_strings(prompt):
        if not normalise(text):
            continue  # only punctuation or symbols: nothing an OCR could check
        if len(text) > budget:
            truncated = True
            cut = text[:budget]
            # End on a whole word when one fits, so the cut word does not count as a typo.
            if " " in cut and not text[budget].isspace():
                cut = cut[: cut.rindex(" ")]
            cut = cut.strip()
            if normalise(cut):
                texts.append(cut)
            break
        texts.append(text)
        budget -= len(text)
    return Requested(tuple(texts), truncated) if texts else None
