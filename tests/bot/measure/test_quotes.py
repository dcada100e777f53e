"""Which text a prompt asks to see written."""

from __future__ import annotations

import pytest

from bot.measure.quotes import MAX_MEASURED_CHARS, requested_text
from providers.quotes import quoted_strings


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ('a neon sign that reads "OPEN 24/7"', ("OPEN 24/7",)),
        ("poster with the title \u201cMidnight Ride\u201d", ("Midnight Ride",)),
        ("a bakery sign \u00abBoulangerie\u00bb", ("Boulangerie",)),
        ("a sign \u00bbAchtung\u00ab and \u201eB\u00e4ckerei\u201c", ("Achtung", "B\u00e4ckerei")),
        ("a shop \u2039Chez Nous\u203a", ("Chez Nous",)),
        ("a label \u2018EAT ME\u2019 on a cake", ("EAT ME",)),
        ("a sign reading 'EAT' at a diner", ("EAT",)),
        ('title "A", subtitle "B", footer "C"', ("A", "B", "C")),
        ('"SALE" and again "SALE"', ("SALE",)),
        ('a mug that says "say \\"hi\\" now"', ('say "hi" now',)),
        ('no quote opens at \\"ESCAPED\\" marks', ()),
        ("a fox in a forest at dawn", ()),
        ('an unclosed "quote', ()),
        ('empty "" quotes', ()),
        ("don't stop rock 'n' roll", ()),
        ('"  spaced   out  "', ("spaced out",)),
    ],
)
def test_quoted_strings(prompt: str, expected: tuple[str, ...]) -> None:
    assert quoted_strings(prompt) == expected


def test_apostrophes_inside_double_quotes_stay() -> None:
    assert quoted_strings('a diner sign "Joe\'s Diner"') == ("Joe's Diner",)
    assert quoted_strings("a sign \u201cJoe\u2019s Diner\u201d") == ("Joe\u2019s Diner",)


def test_no_quotes_means_nothing_to_measure() -> None:
    assert requested_text("a portrait of a sailor") is None
    assert requested_text('a sign with "!!!" on it') is None  # nothing an OCR could check


def test_several_strings_are_all_requested() -> None:
    requested = requested_text('a poster "MIDNIGHT RIDE" with "Summer tour 2026" below')
    assert requested is not None
    assert requested.texts == ("MIDNIGHT RIDE", "Summer tour 2026")
    assert not requested.truncated
    assert requested.display == "\u201cMIDNIGHT RIDE\u201d and \u201cSummer tour 2026\u201d"


def test_long_text_is_measured_on_its_first_200_characters_and_says_so() -> None:
    long = " ".join(["lorem"] * 60)  # 359 characters
    requested = requested_text(f'a page that reads "{long}"')
    assert requested is not None and requested.truncated
    assert sum(len(t) for t in requested.texts) <= MAX_MEASURED_CHARS
    assert requested.texts[0].endswith("lorem")  # cut on a whole word


def test_budget_spans_several_strings() -> None:
    first, second = "a" * 150, " ".join(["word"] * 30)
    requested = requested_text(f'"{first}" and "{second}"')
    assert requested is not None and requested.truncated
    assert requested.texts[0] == first
    assert len(first) + len(requested.texts[1]) <= MAX_MEASURED_CHARS
