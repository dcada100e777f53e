"""Prompt text rules as pure functions: what counts as empty, and which banned word a prompt uses.

Members can hide a word from a plain substring check in many ways: zero-width characters inside
it, fullwidth or accented letters, Cyrillic and Greek look-alikes, separators (``n-u-d-e``,
``n.u.d.e``, ``n u d e``) or line breaks. Both the prompt and every banned word are reduced to
the same skeleton before they are compared, so each of those spellings meets the word it hides.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: characters that draw nothing but are not in Unicode's "format" category
_EXTRA_INVISIBLE = frozenset(
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u2800"  # braille pattern blank
    "\u180e"  # Mongolian vowel separator
    "\u034f"  # combining grapheme joiner
)
#: kept in a cleaned prompt when it sits between visible characters: emoji sequences need it
_ZWJ = "\u200d"

# Letters from other scripts that look like Latin ones, mapped after case folding. Only shapes
# a reader takes for the Latin letter in ordinary fonts; anything rarer is not worth a false match.
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "һ": "h",
        "н": "h",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "к": "k",
        "м": "m",
        "о": "o",
        "р": "p",
        "ԛ": "q",
        "с": "c",
        "ѕ": "s",
        "т": "t",
        "у": "y",
        "ү": "y",
        "х": "x",
        "ԁ": "d",
        "ԝ": "w",
        "ɡ": "g",
        "ӏ": "l",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "μ": "u",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ϲ": "c",
        "ζ": "z",
        # Latin letters that read as others
        "ı": "i",
        "ſ": "s",
        "ℓ": "l",
    }
)
_SEPARATOR = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"[^\S\n]+")


def is_invisible(char: str) -> bool:
    """True for characters that render as nothing: zero-width, BOM, word joiner and the like."""
    return unicodedata.category(char) == "Cf" or char in _EXTRA_INVISIBLE


def clean_prompt(text: str) -> str:
    """The prompt as sent to models: invisibles dropped, spaces tidied, line breaks kept.

    Returns "" when nothing visible is left, so "only zero-width characters" reads as empty.
    """
    if not any(not ch.isspace() and not is_invisible(ch) for ch in text):
        return ""
    kept = []
    for i, ch in enumerate(text):
        if ch == _ZWJ and 0 < i < len(text) - 1:
            before, after = text[i - 1], text[i + 1]
            # An emoji sequence (👩‍💻) needs its joiner; between letters it only hides words.
            if not (before.isalnum() or after.isalnum()):
                kept.append(ch)
            continue
        if not is_invisible(ch):
            kept.append(ch)
    lines = (" ".join(line.split()) for line in "".join(kept).strip().splitlines())
    return "\n".join(lines).strip()


def skeleton(text: str) -> str:
    """Lower-case Latin letters, digits, spaces and line breaks: how text is compared."""
    text = "".join(ch for ch in text if not is_invisible(ch))
    # NFKD turns fullwidth and styled letters into plain ones and splits accents off.
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = unicodedata.normalize("NFKC", bare).casefold().translate(_CONFUSABLES)
    without_separators = _SEPARATOR.sub("", folded)
    return _SPACE.sub(" ", without_separators)


def _joined_letter_runs(tokens: list[str]) -> list[str]:
    """Merge runs of single characters ("n u d e" → "nude"), keeping other tokens as they are."""
    out: list[str] = []
    run: list[str] = []
    for token in tokens:
        if len(token) == 1:
            run.append(token)
            continue
        if run:
            out.append("".join(run))
            run = []
        out.append(token)
    if run:
        out.append("".join(run))
    return out


def _readings(prompt: str) -> tuple[str, ...]:
    """The prompt's skeleton as words, with spaced-out letters joined, and joined across lines."""
    base = skeleton(prompt)
    words = base.split()
    lines = [" ".join(line.split()) for line in base.split("\n")]
    return (
        " ".join(words),
        " ".join(_joined_letter_runs(words)),
        # A word broken over two lines ("nu\nde") is still that word.
        "".join(lines),
    )


def find_banned(prompt: str, words: Iterable[str]) -> str | None:
    """The first banned word the prompt uses however it is disguised, else None."""
    readings: tuple[str, ...] | None = None
    for word in words:
        target = " ".join(skeleton(word).split())
        if not target:
            continue
        if readings is None:
            readings = _readings(prompt)
        if any(target in reading for reading in readings):
            return word
    return None
