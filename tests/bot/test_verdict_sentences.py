"""Every sentence of a verdict agrees with its own table (issue: /versus contradicted itself).

For every ordered pair, triple and quad of catalog models, every use case and every quality's
prices (plus arbitrary server prices), each claim a sentence makes is read back out of the text
and checked against the criterion rows: a model said to lead does lead alone, a tie is a tie,
"avoid" names a model that really trails, and "cheaper"/"cheapest" is true.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalog import Catalog, load_catalog
from bot.verdict import CriterionRow, Verdict, build_verdict

CATALOG = load_catalog()
QUALITIES = ("draft", "standard", "high")


def split_list(text: str) -> list[str]:
    """'a, b, and c' / 'a and b' → ['a', 'b', 'c']."""
    return [p for p in re.split(r", and |, | and ", text.strip()) if p]


def leaders(row: CriterionRow) -> list[int]:
    top = max(row.scores)
    return [i for i, s in enumerate(row.scores) if s == top]


def sentences(verdict: Verdict) -> list[str]:
    texts = [verdict.short_answer, verdict.pick_sentence, verdict.closing]
    texts += [need.why for need in verdict.needs] + [line for _, line in verdict.avoid]
    return [s for text in texts for s in re.split(r"(?<=\.)\s+|;\s+| — ", text) if s]


def check(verdict: Verdict) -> None:
    """Fail with the offending sentence when any claim disagrees with the rows."""
    labels = list(verdict.labels)
    names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    by_name = {row.name.lower(): row for row in verdict.rows}
    criteria = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
    crit_list = rf"((?:{criteria})(?:(?:, and |, | and )(?:{criteria}))*)"
    bft = verdict.row("best_first_test")
    prices = verdict.prices

    def sole(label: str, criterion: str, sentence: str) -> None:
        row = by_name[criterion]
        assert row.winner_index == labels.index(label), (
            f"{sentence!r}: the table does not have {label} alone ahead on {criterion} ({row})"
        )

    for sentence in sentences(verdict):
        assert "better for" not in sentence, f"{sentence!r}: catalog prose the table cannot back"
        for m in re.finditer(rf"({names}) (?:alone )?leads on {crit_list}", sentence):
            for criterion in split_list(m[2]):
                sole(m[1], criterion, sentence)
        for m in re.finditer(rf"Reach for ({names}) for {crit_list}", sentence):
            for criterion in split_list(m[2]):
                sole(m[1], criterion, sentence)
        for m in re.finditer(
            rf"({names}) is the only one to lead outright, on {crit_list}", sentence
        ):
            for criterion in split_list(m[2]):
                sole(m[1], criterion, sentence)
        for m in re.finditer(rf"({names}) rates (\d)/5 on ({criteria}) against", sentence):
            sole(m[1], m[3], sentence)
            assert by_name[m[3]].scores[labels.index(m[1])] == int(m[2]), sentence
        for m in re.finditer(rf"(?:they tie|the top is shared) on {crit_list}", sentence):
            for criterion in split_list(m[1]):
                assert by_name[criterion].winner_index is None, f"{sentence!r}: not a tie"
        for m in re.finditer(
            rf"({names}) (?:is the stronger first pick|is the better starting point)", sentence
        ):
            assert bft.winner_index == labels.index(m[1]), f"{sentence!r} vs {bft}"
        if "cheap" in sentence:
            single = re.search(
                rf"({names}) is the (?:cheaper|cheapest of them) first test at (\d+) credits",
                sentence,
            )
            several = re.search(r"(.+) are the cheapest of them at (\d+) credits", sentence)
            assert single or several, f"{sentence!r}: a price claim the test cannot check"
            level = leaders(bft)
            if single:
                i = labels.index(single[1])
                assert prices[i] == int(single[2])
                assert all(prices[j] > prices[i] for j in level if j != i), sentence
            else:
                assert several is not None
                named = [labels.index(n) for n in split_list(several[1].split("— ")[-1])]
                assert all(prices[i] == min(prices[j] for j in level) for i in named), sentence
    for label, line in verdict.avoid:
        i = labels.index(label)
        m = re.fullmatch(rf"Avoid {re.escape(label)} if you need (.+): (.+)\.", line)
        assert m, line
        need = next(
            n for n in verdict.needs if n.need[0].lower() + n.need[1:] == m[1]
        )  # the criterion it names
        row = verdict.rows[verdict.needs.index(need)]
        assert row.scores[i] < max(row.scores), f"{line!r}: {label} does not trail on it"
        if row.criterion_id == "cost_efficiency":
            assert prices[i] > min(prices), line
        else:
            ahead = [labels[j] for j in leaders(row)]
            assert split_list(m[2].split(" rate")[0]) == ahead, line
    for need, row in zip(verdict.needs, verdict.rows, strict=True):
        top = [labels[j] for j in leaders(row)]
        if need.choose in ("Either model", "Any of them"):
            assert len(top) == len(labels), (need, row)
        else:
            assert need.choose.split(" or ") == top, (need, row)


def combos(catalog: Catalog) -> Iterator[tuple[str, ...]]:
    for n in (2, 3, 4):
        yield from itertools.permutations(catalog.models, n)


@pytest.mark.parametrize("use_case", list(CATALOG.use_cases))
@pytest.mark.parametrize("quality", QUALITIES)
def test_no_sentence_contradicts_the_table(use_case: str, quality: str) -> None:
    for ids in combos(CATALOG):
        models = [CATALOG.model(i) for i in ids]
        prices = [m.credits[quality] for m in models]
        check(build_verdict(CATALOG, models, CATALOG.use_case(use_case), prices=prices))


@settings(max_examples=150, deadline=None)
@given(
    ids=st.sampled_from(list(combos(CATALOG))),
    use_case=st.sampled_from(list(CATALOG.use_cases)),
    data=st.data(),
)
def test_server_prices_never_make_a_false_cheapest_claim(
    ids: Sequence[str], use_case: str, data: st.DataObject
) -> None:
    # Moderators may override prices; equal and near-equal prices are the tricky cases.
    prices = data.draw(
        st.lists(
            st.sampled_from([1, 6, 8, 9, 12, 17, 22, 40, 300]), min_size=len(ids), max_size=len(ids)
        )
    )
    models = [CATALOG.model(i) for i in ids]
    check(build_verdict(CATALOG, models, CATALOG.use_case(use_case), prices=prices))


def test_the_issue_s_contradictions_are_gone() -> None:
    models = [CATALOG.model("gpt-image-2"), CATALOG.model("nano-banana-pro")]
    verdict = build_verdict(CATALOG, models, CATALOG.use_case("portrait"))
    text = " ".join(sentences(verdict))
    # Both score 5/5 on polish: nobody is "better for polished final assets".
    assert "polished final assets" not in text
    # GPT-Image 2 is the cheaper one: nothing tells you to avoid it for price.
    assert not any(label == "GPT-Image 2" for label, _ in verdict.avoid)
    # The pick names whoever the table's first-pick row gives the win to (or says they start level).
    first = next(r for r in verdict.rows if r.criterion_id == "best_first_test")
    if first.winner == "Tie":
        assert "level" in verdict.pick_sentence or "cheaper" in verdict.pick_sentence
    else:
        assert f"{first.winner} is the stronger first pick" in verdict.pick_sentence
