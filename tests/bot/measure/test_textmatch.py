"""The normaliser and the word-bounded matcher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.measure.textmatch import (
    Box,
    best_span,
    edit_distance,
    line_order,
    match,
    normalise,
    words,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OPEN 24/7", "open247"),
        ("Caf\u00e9 cr\u00e8me", "cafecreme"),
        ("STRASSE Stra\u00dfe", "strassestrasse"),
        ("0 O o", "ooo"),
        ("1 I i l L", "lllll"),
        ("Hello, world!", "helloworld"),
        ("\u2014 \u2026 \u00b7", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_words_keep_the_text_between_them_for_display() -> None:
    found = words("OPEN 24/7!")
    assert [w.key for w in found] == ["open", "24", "7"]
    assert [w.shown for w in found] == ["OPEN", "24", "7"]


def test_exact_reading() -> None:
    result = match("OPEN 24/7", [Box("OPEN 24/7")])
    assert result.exact and result.score == 1.0 and result.read == "OPEN 24/7"


def test_one_typo_scores_one_edit_per_character() -> None:
    result = match("OPEN 24/7", [Box("OPEN 2A/7")])
    assert result.edits == 1 and not result.exact
    assert result.score == pytest.approx(1 - 1 / 7)
    assert result.read == "OPEN 2A/7"


def test_look_alikes_and_case_and_accents_are_not_typos() -> None:
    assert match("CAF\u00c9 0PEN", [Box("cafe open")]).exact
    assert match("Illinois", [Box("lLL1NO1S")]).exact


def test_no_text_scores_zero() -> None:
    result = match("OPEN 24/7", [])
    assert result.score == 0.0 and result.read == "" and not result.exact


@pytest.mark.parametrize("requested", ["o", "Q", "OPEN", "Midnight Ride", "24/7"])
def test_unrelated_text_scores_low(requested: str) -> None:
    # A plain fuzzy partial ratio finds "o" inside "not" and calls it perfect.
    noise = [Box("DEMO \u2014 not a real model"), Box("1.4s \u00b7 680\u00d71024")]
    assert match(requested, noise).score < 0.5


def test_matches_are_word_bounded() -> None:
    assert match("PEN", [Box("OPEN")]).edits == 1  # not a free substring of OPEN
    assert match("OPEN", [Box("REOPENED")]).edits == 4


def test_text_around_the_request_costs_nothing() -> None:
    result = match("OPEN", [Box("WE ARE OPEN TODAY")])
    assert result.exact and result.read == "OPEN"


def test_lines_are_read_top_to_bottom_even_if_boxes_are_not() -> None:
    boxes = [Box("RIDE", 0, 100, 80, 140), Box("MIDNIGHT", 0, 0, 200, 40)]
    assert [b.text for b in line_order(boxes)] == ["MIDNIGHT", "RIDE"]
    assert match("Midnight Ride", boxes).exact


def test_boxes_on_one_line_are_read_left_to_right() -> None:
    boxes = [Box("24/7", 120, 0, 200, 40), Box("OPEN", 0, 5, 100, 45)]
    assert match("OPEN 24/7", boxes).exact


def test_word_by_word_skips_whole_boxes_between_requested_words() -> None:
    boxes = [
        Box("MIDNIGHT", 0, 0, 200, 40),
        Box("tonight only", 0, 100, 300, 140),
        Box("RIDE", 0, 200, 80, 240),
    ]
    found = match("Midnight Ride", boxes)
    assert found.exact and found.read == "MIDNIGHT tonight only RIDE"
    assert not match("RIDE RIDE", [Box("RIDE")]).exact  # one OCR word cannot answer twice
    assert not match("Ride Midnight", boxes).exact  # nor out of order


def test_a_text_dense_image_cannot_spell_a_request_from_scattered_words() -> None:
    vocabulary = ["the", "of", "and", "to", "in", "is", "for", "on", "with", "at", "by", "from"]
    rows = [" ".join(vocabulary[(i * 5 + k) % 12] for k in range(8)) for i in range(20)]
    boxes = [Box(row, 0, 40 * i, 500, 40 * i + 30) for i, row in enumerate(rows)]
    requested = "on the and with of for to in the is at by"
    # Words inside a box are not skippable: the request must be running text there.
    assert match(requested, boxes).score < 0.6


def test_best_span_reports_the_words_it_used() -> None:
    found = words("we are OPEN 24/7 today")
    edits, first, end = best_span(normalise("open 24/7"), found)
    assert (edits, first, end) == (0, 2, 5)


@given(st.text(min_size=1, max_size=30))
def test_score_stays_between_zero_and_one(text: str) -> None:
    result = match("OPEN 24/7", [Box(text)])
    assert 0.0 <= result.score <= 1.0
    assert result.exact == (result.score == 1.0)


@given(st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd"]), min_size=1, max_size=20))
def test_text_always_finds_itself(text: str) -> None:
    if normalise(text):
        assert match(text, [Box(f"before {text} after")]).exact


def test_edit_distance() -> None:
    assert edit_distance("open247", "open2a7") == 1
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
