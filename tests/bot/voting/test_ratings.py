"""Bradley–Terry ratings: recovery of known strengths, interval coverage, ties, weights, rows."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.voting.leaderboard import community_line, leaderboard
from bot.voting.ratings import (
    BAD,
    LETTERS,
    TIE,
    Battle,
    ComparisonVotes,
    PanelFacts,
    battles_for,
    bootstrap_intervals,
    bradley_terry,
)

# Known strengths on the rating scale.
TRUTH = {"alpha": 1180.0, "bravo": 1090.0, "charlie": 1000.0, "delta": 930.0, "echo": 800.0}


def duels(seed: int, count: int, truth: dict[str, float] = TRUTH) -> list[Battle]:
    """Duels between random pairs, each won with the Bradley–Terry probability of the truth."""
    rng = random.Random(seed)
    names = sorted(truth)
    battles = []
    for _ in range(count):
        a, b = rng.sample(names, 2)
        p_a = 1 / (1 + 10 ** ((truth[b] - truth[a]) / 400))
        battles.append(Battle(a, b, 1.0 if rng.random() < p_a else 0.0))
    return battles


def centred(truth: dict[str, float], battles: list[Battle]) -> dict[str, float]:
    """The truth on the estimates' scale: the average weighted by games played is 1000."""
    games = dict.fromkeys(truth, 0.0)
    for b in battles:
        games[b.a] += b.weight
        games[b.b] += b.weight
    mean = sum(truth[name] * games[name] for name in truth) / sum(games.values())
    return {name: 1000 + value - mean for name, value in truth.items()}


def by_rating(ratings: dict[str, float]) -> list[str]:
    return sorted(ratings, key=lambda name: -ratings[name])


def test_known_strengths_are_recovered_in_order_with_covering_intervals() -> None:
    battles = duels(seed=0, count=2000)
    ratings = bradley_terry(battles)
    intervals = bootstrap_intervals(battles, rounds=200, seed=0)
    assert by_rating(ratings) == by_rating(TRUTH)
    for name, true in centred(TRUTH, battles).items():
        low, high = intervals[name]
        assert low <= ratings[name] <= high, name
        assert low <= true <= high, (name, low, true, high)


def test_interval_coverage_is_close_to_95_percent_over_many_datasets() -> None:
    # One dataset covering the truth could be luck; the coverage rate over many cannot.
    covered = checked = 0
    for seed in range(40):
        battles = duels(seed=100 + seed, count=1000)
        ratings = bradley_terry(battles)
        intervals = bootstrap_intervals(battles, rounds=100, seed=seed)
        assert by_rating(ratings) == by_rating(TRUTH), seed
        for name, true in centred(TRUTH, battles).items():
            low, high = intervals[name]
            covered += low <= true <= high
            checked += 1
    assert 0.88 <= covered / checked <= 0.995


def minorization_maximization(battles: list[Battle], prior: float) -> dict[str, float]:
    """Hunter's (2004) MM iteration, with the same virtual game, as an independent check."""
    names = sorted({b.a for b in battles} | {b.b for b in battles})
    wins = dict.fromkeys(names, prior / 2)
    games: dict[tuple[str, str], float] = {}
    for b in battles:
        wins[b.a] += b.weight * b.score_a
        wins[b.b] += b.weight * (1 - b.score_a)
        key = (min(b.a, b.b), max(b.a, b.b))
        games[key] = games.get(key, 0.0) + b.weight
    strength = dict.fromkeys(names, 1.0)
    for _ in range(5000):
        strength = {
            i: wins[i]
            / (
                prior / (strength[i] + 1)
                + sum(n / (strength[a] + strength[b]) for (a, b), n in games.items() if i in (a, b))
            )
            for i in names
        }
    logs = {i: 400 * math.log10(s) for i, s in strength.items()}
    mean = sum(logs.values()) / len(logs)
    return {i: 1000 + v - mean for i, v in logs.items()}


def test_newton_agrees_with_the_textbook_mm_algorithm() -> None:
    battles = [*duels(seed=9, count=150), Battle("alpha", "echo", 0.5, weight=0.5)]
    newton, mm = bradley_terry(battles), minorization_maximization(battles, 1.0)
    # Compare gaps: the two centre the scale differently, but the gaps are the model.
    assert {k: v - newton["echo"] for k, v in newton.items()} == pytest.approx(
        {k: v - mm["echo"] for k, v in mm.items()}, abs=1e-3
    )


def test_a_tie_is_half_a_win_each_way() -> None:
    with_tie = [Battle("a", "b", 1.0), Battle("a", "b", 0.5)]
    as_fractions = [Battle("a", "b", 1.0, weight=1.5), Battle("b", "a", 1.0, weight=0.5)]
    tied = bradley_terry(with_tie, prior=1e-6)
    fractional = bradley_terry(as_fractions, prior=1e-6)
    assert tied == pytest.approx(fractional)
    # 1.5 wins to 0.5 means odds of 3:1, i.e. 400·log10(3) ≈ 191 points apart.
    assert tied["a"] - tied["b"] == pytest.approx(400 * math.log10(3), abs=0.1)


def test_only_ties_rate_everyone_equal() -> None:
    battles = [Battle(a, b, 0.5) for a, b in [("a", "b"), ("b", "c"), ("a", "c")] * 5]
    assert bradley_terry(battles) == pytest.approx({"a": 1000.0, "b": 1000.0, "c": 1000.0})


def test_a_model_with_no_wins_gets_a_finite_rating_and_interval_at_the_bottom() -> None:
    battles = duels(seed=3, count=300, truth={"a": 1100, "b": 1000, "c": 900})
    battles += [Battle("a", "loser", 1.0), Battle("b", "loser", 1.0), Battle("loser", "c", 0.0)]
    battles *= 2
    ratings = bradley_terry(battles)
    intervals = bootstrap_intervals(battles, rounds=100, seed=1)
    assert by_rating(ratings)[-1] == "loser"
    low, high = intervals["loser"]
    assert all(math.isfinite(v) for v in (ratings["loser"], low, high))
    assert low < ratings["loser"] <= high


def test_disconnected_groups_stay_finite_and_ordered_within_each_group() -> None:
    battles = [Battle("a", "b", 1.0)] * 6 + [Battle("a", "b", 0.0)] * 2
    battles += [Battle("c", "d", 0.0)] * 5 + [Battle("c", "d", 1.0)]
    ratings = bradley_terry(battles)
    assert all(math.isfinite(r) for r in ratings.values())
    assert ratings["a"] > ratings["b"] and ratings["d"] > ratings["c"]


def test_the_same_data_gives_the_same_intervals_in_any_order() -> None:
    battles = duels(seed=5, count=500)
    first = bootstrap_intervals(battles, rounds=100, seed=7)
    assert bootstrap_intervals(battles, rounds=100, seed=7) == first
    shuffled = battles[:]
    random.Random(1).shuffle(shuffled)
    assert bootstrap_intervals(shuffled, rounds=100, seed=7) == first
    assert bootstrap_intervals(battles, rounds=100, seed=8) != first


def test_a_group_is_resampled_whole() -> None:
    # All battles in one group: every resample draws that group, so the interval has no width.
    battles = [Battle(b.a, b.b, b.score_a, group="one") for b in duels(seed=2, count=200)]
    ratings = bradley_terry(battles)
    for name, (low, high) in bootstrap_intervals(battles, rounds=20).items():
        assert low == pytest.approx(ratings[name]) == pytest.approx(high)


def test_invalid_battles_are_rejected() -> None:
    with pytest.raises(ValueError):
        bradley_terry([Battle("a", "a", 1.0)])
    with pytest.raises(ValueError):
        bradley_terry([Battle("a", "b", 2.0)])
    assert bradley_terry([]) == {} and bootstrap_intervals([]) == {}


def panels(*models: str, refused: str = "") -> tuple[PanelFacts, ...]:
    return tuple(
        PanelFacts(letter, model, model.upper(), "refused" if model == refused else "ok", 10.0, 8)
        for letter, model in zip(LETTERS, models, strict=False)
    )


@given(st.integers(2, 4), st.sampled_from([*LETTERS, TIE]))
def test_every_vote_weighs_one_duel_whatever_the_panel_count(k: int, choice: str) -> None:
    comparison = ComparisonVotes("c", False, panels(*"wxyz"[:k]), (choice,))
    battles = battles_for(comparison)
    if choice in LETTERS[:k]:
        assert len(battles) == k - 1 and math.isclose(sum(b.weight for b in battles), 1.0)
        assert all(b.score_a == 1.0 and b.a == "wxyz"[LETTERS.index(choice)] for b in battles)
    elif choice == TIE:
        assert len(battles) == math.comb(k, 2) and math.isclose(sum(b.weight for b in battles), 1)
        assert all(b.score_a == 0.5 for b in battles)
    else:
        assert battles == []  # a letter beyond the panels
    assert all(b.group == "c" for b in battles)


def test_all_bad_and_refused_panels_yield_no_battle() -> None:
    assert battles_for(ComparisonVotes("c", False, panels("x", "y"), (BAD,))) == []
    three = ComparisonVotes("c", False, panels("x", "y", "z", refused="z"), ("A", "C"))
    assert [(b.a, b.b, b.weight) for b in battles_for(three)] == [("x", "y", 1.0)]


def test_leaderboard_rows_carry_votes_costs_speed_and_refusals() -> None:
    facts = (
        PanelFacts("A", "gpt", "GPT", "ok", 10.0, 8),
        PanelFacts("B", "nano", "Nano", "ok", 20.0, 20),
    )
    refusal = (
        PanelFacts("A", "gpt", "GPT", "ok", 30.0, 8),
        PanelFacts("B", "nano", "Nano", "refused"),
    )
    comparisons = [
        ComparisonVotes("1", True, facts, ("A", "A", "B", TIE)),
        ComparisonVotes("2", False, facts, ("A", BAD)),
        ComparisonVotes("3", False, refusal, ("A",)),  # one usable panel: no contest
    ]
    board = leaderboard(comparisons, min_votes=5, rounds=50)
    gpt, nano = board.row("gpt"), board.row("nano")
    assert gpt is not None and nano is not None
    assert (gpt.votes, gpt.blind_votes, gpt.wins) == (5, 4, 3)
    assert (nano.votes, nano.wins) == (5, 1)
    assert gpt.win_rate == pytest.approx(0.6) and gpt.credits == 24
    assert gpt.credits_per_win == pytest.approx(8.0) and nano.credits_per_win == pytest.approx(40)
    assert gpt.median_seconds == 10.0 and nano.median_seconds == 20.0
    assert nano.refusal_rate == pytest.approx(1 / 3) and gpt.refusal_rate == 0
    assert (board.votes, board.blind_votes, board.all_bad_votes, board.comparisons) == (5, 4, 1, 2)
    assert [row.model_id for row in board.ranked] == ["gpt", "nano"]
    assert board.not_enough_votes() is None
    assert "GPT · " in gpt.summary() and "(4 blind)" in gpt.summary()


def test_rows_rank_by_lower_bound_and_unranked_follow() -> None:
    battles = duels(seed=11, count=600)
    names = sorted(TRUTH)
    comparisons = [
        ComparisonVotes(str(n), False, panels(b.a, b.b), ("A" if b.score_a == 1 else "B",))
        for n, b in enumerate(battles)
    ]
    comparisons.append(ComparisonVotes("new", False, panels("foxtrot", "alpha"), ("A",)))
    board = leaderboard(comparisons, min_votes=10, rounds=100)
    lows = [row.low or 0.0 for row in board.ranked]
    assert lows == sorted(lows, reverse=True)
    assert {row.model_id for row in board.ranked} == set(names)
    assert [row.model_id for row in board.unranked] == ["foxtrot"]
    assert board.rows[-1].ranked is False


def test_blind_only_counts_blind_comparisons_and_says_when_too_few() -> None:
    facts = panels("x", "y")
    comparisons = [
        ComparisonVotes("1", True, facts, ("A", "A")),
        ComparisonVotes("2", False, facts, ("B",) * 9),
    ]
    board = leaderboard(comparisons, min_votes=3, blind_only=True, rounds=20)
    assert board.votes == 2 and not board.ranked
    assert board.not_enough_votes() == (
        "Not enough votes yet: a model needs 3 blind votes to be ranked, "
        "and the most any model has is 2."
    )
    empty = leaderboard([], min_votes=3)
    assert empty.rows == () and "nobody has voted" in (empty.not_enough_votes() or "")


def test_a_threshold_of_one_reads_in_the_singular() -> None:
    # The playground ranks a model after one vote: "needs 1 votes" read wrong.
    assert leaderboard([], min_votes=1).not_enough_votes() == (
        "Not enough votes yet: nobody has voted here, and a model needs 1 vote to be ranked."
    )
    blind = leaderboard([], min_votes=1, blind_only=True)
    assert "needs 1 blind vote to be ranked" in (blind.not_enough_votes() or "")


def test_an_unknown_margin_says_what_it_needs() -> None:
    facts = panels("x", "y")
    one = leaderboard([ComparisonVotes("1", False, facts, ("A", "B", "A"))], min_votes=1, rounds=20)
    x = one.row("x")
    assert x is not None and x.margin is None
    assert x.margin_text() == "needs 1 more vote"


def test_community_line_reads_like_the_issue() -> None:
    comparisons = [
        ComparisonVotes(str(n), False, panels("gpt-image-2", "nano"), ("A" if n < 14 else "B",))
        for n in range(22)
    ]
    board = leaderboard(comparisons, min_votes=5, rounds=100)
    row = board.row("gpt-image-2")
    assert row is not None and row.rating is not None and row.margin is not None
    line = community_line(row, "portrait")
    # The point rating only, even when the board has intervals: verdicts cite the cached fit.
    assert line == (
        f"In this server, GPT-IMAGE-2 won 14 of 22 portrait votes (rating {row.rating:,.0f})"
    )


def test_one_comparison_gives_a_rating_with_an_unknown_interval() -> None:
    # Five voters on one comparison: enough votes to rank, but the bootstrap resamples whole
    # comparisons, so every round redraws the same one and the interval would be "± 0".
    board = leaderboard(
        [ComparisonVotes("1", False, panels("x", "y"), ("A", "A", "A", "B", "A"))],
        min_votes=5,
        rounds=50,
    )
    x, y = board.row("x"), board.row("y")
    assert x is not None and y is not None
    assert x.ranked and x.rating is not None and x.rating > 1000
    assert (x.low, x.high, x.margin, x.interval_known) == (None, None, None, False)
    # One comparison: the margin needs votes on one more before it can be measured.
    assert x.rating_text() == f"{x.rating:,.0f}, needs 1 more vote"
    assert "(interval unknown)" in x.summary()
    # Community lines cite point ratings only (no bootstrap): no "± ?" to explain.
    assert community_line(x).endswith(f"(rating {x.rating:,.0f})")
    assert "?" not in community_line(x)
    assert [row.model_id for row in board.ranked] == ["x", "y"], "by rating when none is known"


def test_comparisons_all_alike_give_an_unknown_interval_too() -> None:
    same = [ComparisonVotes(str(n), False, panels("x", "y"), ("A", "A", "B")) for n in range(3)]
    x = leaderboard(same, min_votes=1, rounds=50).row("x")
    assert x is not None and x.rating is not None and not x.interval_known
    different = [*same, ComparisonVotes("4", False, panels("x", "y"), ("B",))]
    x = leaderboard(different, min_votes=1, rounds=50).row("x")
    assert x is not None and x.interval_known and x.margin is not None and x.margin >= 1
    assert x.rating_text() == f"{x.rating:,.0f} ± {x.margin:,.0f}"


def test_an_unknown_interval_ranks_after_every_known_one() -> None:
    battles = duels(seed=11, count=600)
    comparisons = [
        ComparisonVotes(str(n), False, panels(b.a, b.b), ("A" if b.score_a == 1 else "B",))
        for n, b in enumerate(battles)
    ]
    # A newcomer beating the best model five times in one comparison: the highest rating,
    # but one comparison says nothing about its uncertainty.
    comparisons.append(ComparisonVotes("new", False, panels("foxtrot", "alpha"), ("A",) * 5))
    board = leaderboard(comparisons, min_votes=5, rounds=100)
    foxtrot = board.row("foxtrot")
    assert foxtrot is not None and foxtrot.ranked and not foxtrot.interval_known
    assert foxtrot.rating is not None
    assert foxtrot.rating > max(row.rating or 0.0 for row in board.ranked[:-1])
    assert board.ranked[-1] is foxtrot
    assert all(row.interval_known for row in board.ranked[:-1])
    lows = [row.low or 0.0 for row in board.ranked[:-1]]
    assert lows == sorted(lows, reverse=True)
