"""How much of the requested text an image shows: normalise, then a word-bounded fuzzy search.

The rule (issue 14): normalise both sides (drop accents, case-fold, fold look-alikes 0→o and
1/i/l→l, keep letters and digits), then find the span of whole OCR words whose edit distance to
the requested text is smallest, trying three readings of the image — boxes grouped into lines
(top to bottom, left to right), boxes in the order the OCR returned them, and word by word (the
requested words in reading order, with whole OCR boxes between them skipped free: a sign split
by a logo or another line). score = 1 − edits / len(requested), clipped at 0; "exact" only at
1.0. Words inside one box are never skipped, so a text-dense image cannot spell a request by
picking its words from all over the picture.

Word bounds are what keep a picture with no text at a low score: a plain fuzzy partial ratio
finds "o" somewhere in any noise and calls a one-letter request perfect.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

#: look-alikes OCR confuses (and models swap) that should not count as misspellings
_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l"})


def normalise(text: str) -> str:
    """Letters and digits only, accents dropped, case-folded, 0→o and 1/i/l→l."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in bare.casefold().translate(_FOLD) if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Word:
    """One OCR word: its normalised form, and where it sits in the text the OCR returned."""

    key: str
    source: str
    start: int
    end: int

    @property
    def shown(self) -> str:
        """The word as the OCR read it."""
        return self.source[self.start : self.end]


def words(text: str) -> list[Word]:
    """Split OCR text into words at anything that is not a letter or digit."""
    out: list[Word] = []
    start: int | None = None
    for index, ch in enumerate(text + " "):
        if normalise(ch) or (start is not None and unicodedata.combining(ch)):
            if start is None:
                start = index
            continue
        if start is not None:
            key = normalise(text[start:index])
            if key:
                out.append(Word(key, text, start, index))
            start = None
    return out


def shown(span: Sequence[Word]) -> str:
    """The text a run of words came from, punctuation included ("OPEN 2A/7", not "OPEN 2A 7")."""
    parts: list[str] = []
    first = 0
    for i in range(1, len(span) + 1):
        if i == len(span) or span[i].source is not span[first].source:
            # Same text (one box): keep what lies between the words, such as "/" in 24/7.
            parts.append(span[first].source[span[first].start : span[i - 1].end])
            first = i
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Box:
    """One detected text box: what was read and where (axis-aligned bounds)."""

    text: str
    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0


def line_order(boxes: Sequence[Box]) -> list[Box]:
    """Boxes grouped into lines by vertical overlap, lines top to bottom, each left to right."""
    lines: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.top + b.bottom) / 2):
        centre = (box.top + box.bottom) / 2
        for line in lines:
            first = line[0]
            if first.top <= centre <= first.bottom:
                line.append(box)
                break
        else:
            lines.append([box])
    return [box for line in lines for box in sorted(line, key=lambda b: b.left)]


@dataclass(frozen=True, slots=True)
class Match:
    """The best reading of one requested string."""

    requested: str
    read: str
    edits: int
    length: int

    @property
    def score(self) -> float:
        """1 − edits / length, clipped at 0 (1.0 for a request with nothing to measure)."""
        if self.length == 0:
            return 1.0
        return max(0.0, 1.0 - self.edits / self.length)

    @property
    def exact(self) -> bool:
        """Only a perfect reading counts as exact."""
        return self.edits == 0


def best_span(
    target: str, ocr_words: Sequence[Word], *, skip_boxes: bool = False
) -> tuple[int, int, int]:
    """(edits, first, end) of the run of whole words closest to ``target`` (Sellers' algorithm).

    An empty word list costs the whole target. Starts and ends are restricted to word edges.
    With ``skip_boxes``, whole OCR boxes lying between the requested words cost nothing (words
    from one box share its ``source``), so a sign split by another line still reads right.
    """
    if not ocr_words:
        return len(target), 0, 0
    text = "".join(w.key for w in ocr_words)
    word_at: list[int] = []  # character offset → index of its word
    starts: set[int] = set()
    ends: dict[int, int] = {}
    offset = 0
    for index, word in enumerate(ocr_words):
        starts.add(offset)
        word_at.extend([index] * len(word.key))
        offset += len(word.key)
        ends[offset] = index + 1
    n = len(text)
    box_start: dict[int, int] = {}  # character offset where a box ends → where it starts
    if skip_boxes:
        offset = 0
        for index, word in enumerate(ocr_words):
            if index == 0 or word.source is not ocr_words[index - 1].source:
                opened = offset
            offset += len(word.key)
            if index + 1 == len(ocr_words) or ocr_words[index + 1].source is not word.source:
                box_start[offset] = opened
    # prev[j]: the cheapest way to spell target[:i] ending at text offset j; origin[j]: its start
    prev = [0] * (n + 1)
    origin = list(range(n + 1))
    for j in range(1, n + 1):
        if j not in starts:
            prev[j], origin[j] = prev[j - 1] + 1, origin[j - 1]
    for i in range(1, len(target) + 1):
        ch = target[i - 1]
        cur = [i] + [0] * n
        cur_origin = [0] * (n + 1)
        for j in range(1, n + 1):
            best, start = prev[j - 1] + (ch != text[j - 1]), origin[j - 1]
            if prev[j] + 1 < best:
                best, start = prev[j] + 1, origin[j]
            if cur[j - 1] + 1 < best:
                best, start = cur[j - 1] + 1, cur_origin[j - 1]
            # Skip a whole box between two requested characters (never after the last one:
            # a trailing skip would only pad what the span shows).
            skip_from = box_start.get(j)
            if skip_from is not None and i < len(target) and cur[skip_from] < best:
                best, start = cur[skip_from], cur_origin[skip_from]
            cur[j], cur_origin[j] = best, start
        prev, origin = cur, cur_origin
    # On a tie, the longer span: "OPEN 24/8" tells more than "OPEN 24" for a requested "OPEN 24/7".
    edits, end = min((prev[j], -j) for j in ends)
    end = -end
    first = word_at[origin[end]] if origin[end] < n else ends[end]
    return edits, first, ends[end]


def _span_match(
    requested: str, target: str, ocr_words: Sequence[Word], *, skip_boxes: bool = False
) -> Match:
    edits, first, end = best_span(target, ocr_words, skip_boxes=skip_boxes)
    read = shown(ocr_words[first:end])
    return Match(requested, read, edits, len(target))


def edit_distance(a: str, b: str) -> int:
    """Plain Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def match(requested: str, boxes: Sequence[Box]) -> Match:
    """The best of the line-order, box-order and word-by-word readings of ``requested``."""
    target = normalise(requested)
    by_line = [w for box in line_order(boxes) for w in words(box.text)]
    by_box = [w for box in boxes for w in words(box.text)]
    candidates = [_span_match(requested, target, by_line)]
    if by_box != by_line:
        candidates.append(_span_match(requested, target, by_box))
    # Word by word: the requested words in reading order, whole boxes between them skipped.
    candidates.append(_span_match(requested, target, by_line, skip_boxes=True))
    # Fewest edits wins; on a tie the plainest reading (line order) is the one reported.
    return min(candidates, key=lambda m: m.edits)
