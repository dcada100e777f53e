"""Bradley–Terry ratings from votes, with seeded bootstrap intervals (pure, no I/O).

Scale: 1000 + 400·log10(strength), a 400-point gap meaning 10:1 odds, centred so that the
models' average — weighted by how many games each played — is 1000. The weighting keeps a
newcomer with two votes, whose rating swings wildly between bootstrap rounds, from dragging
everyone else's interval along with it. Every model also plays one virtual game (half won, half lost) against a fixed
reference of strength 1: a model with no wins, or a group of models never compared with the
rest, then gets a finite rating instead of running off to minus infinity.

Weighting (PRODUCT §6): a vote for panel X among k usable panels yields "X beat Y" for each of
the k−1 others, each weighted 1/(k−1); a 🤝 vote yields a half win each way for every one of
the C(k,2) pairs, each weighted 1/C(k,2). Either way one vote weighs as much as one duel.
"All bad" yields no battle. Refused or failed panels take no part (a refusal is not a loss).
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

LETTERS = ("A", "B", "C", "D")
TIE = "tie"
BAD = "bad"
CHOICES = (*LETTERS, TIE, BAD)

BASE_RATING = 1000.0
_POINTS_PER_LOG = 400.0 / math.log(10.0)  # +400 points = 10× the odds
DEFAULT_PRIOR = 1.0
_MAX_ITERATIONS = 60
_TOLERANCE = 1e-7


@dataclass(frozen=True, slots=True)
class Battle:
    """One weighted pairwise outcome; battles sharing a ``group`` are resampled together."""

    a: str
    b: str
    score_a: float  # 1 a won, 0.5 tie, 0 b won
    weight: float = 1.0
    blind: bool = False  # carried for callers that filter; the fit ignores it
    group: Hashable | None = None  # None: this battle is its own resampling unit


@dataclass(frozen=True, slots=True)
class PanelFacts:
    """What the ratings need to know about one panel of a comparison."""

    letter: str
    model_id: str
    label: str
    status: str  # "ok" | "refused" | "failed"
    latency_s: float | None = None
    credits: int = 0


@dataclass(frozen=True, slots=True)
class ComparisonVotes:
    """One comparison's panels and the counted choice of each voter ("A".."D", "tie", "bad")."""

    id: str
    blind: bool
    panels: tuple[PanelFacts, ...]
    choices: tuple[str, ...] = ()

    def contenders(self) -> dict[str, str]:
        """Letter → model id of the panels that produced an image (duplicated models dropped)."""
        seen: dict[str, str] = {}
        for panel in self.panels:
            if panel.status == "ok" and panel.model_id not in seen.values():
                seen[panel.letter] = panel.model_id
        return seen


def battles_for(comparison: ComparisonVotes) -> list[Battle]:
    """The weighted battles of every vote on one comparison, grouped by the comparison."""
    contenders = comparison.contenders()
    k = len(contenders)
    if k < 2:
        return []
    pair_weight = 1.0 / math.comb(k, 2)
    battles: list[Battle] = []
    for choice in comparison.choices:
        if choice == TIE:
            battles.extend(
                Battle(a, b, 0.5, pair_weight, comparison.blind, comparison.id)
                for a, b in combinations(contenders.values(), 2)
            )
        elif choice in contenders:
            winner = contenders[choice]
            battles.extend(
                Battle(winner, other, 1.0, 1.0 / (k - 1), comparison.blind, comparison.id)
                for other in contenders.values()
                if other != winner
            )
    return battles


# --- fitting ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    """Battles aggregated per group into pair-count patterns, ready for fast resampling."""

    models: list[str]
    pairs: list[tuple[int, int]]
    patterns: list[tuple[tuple[int, float, float], ...]]  # (pair index, wins i, wins j)
    group_pattern: list[int]  # per group, the index of its pattern


def _prepare(battles: Iterable[Battle]) -> _Prepared:
    rows = list(battles)
    models = sorted({b.a for b in rows} | {b.b for b in rows})
    index = {model: i for i, model in enumerate(models)}
    groups: dict[Hashable, dict[tuple[int, int], list[float]]] = {}
    for battle in rows:
        if battle.a == battle.b or battle.weight <= 0 or not 0.0 <= battle.score_a <= 1.0:
            raise ValueError(f"not a valid battle: {battle!r}")
        i, j, score = index[battle.a], index[battle.b], battle.score_a
        if i > j:
            i, j, score = j, i, 1.0 - score
        key = object() if battle.group is None else battle.group
        cell = groups.setdefault(key, {}).setdefault((i, j), [0.0, 0.0])
        cell[0] += battle.weight * score
        cell[1] += battle.weight * (1.0 - score)
    # Everything is sorted, so the same battles in any order resample identically.
    pairs = sorted({pair for cells in groups.values() for pair in cells})
    pair_index = {pair: p for p, pair in enumerate(pairs)}
    shapes = sorted(
        tuple(
            sorted((pair_index[pair], round(x, 12), round(y, 12)) for pair, (x, y) in cells.items())
        )
        for cells in groups.values()
    )
    patterns = sorted(set(shapes))
    lookup = {pattern: n for n, pattern in enumerate(patterns)}
    return _Prepared(models, pairs, patterns, [lookup[shape] for shape in shapes])


def _totals(prep: _Prepared, counts: Iterable[tuple[int, int]]) -> tuple[list[float], list[float]]:
    """Wins of each pair's first and second model over the given (pattern, multiplicity)s."""
    wins_i, wins_j = [0.0] * len(prep.pairs), [0.0] * len(prep.pairs)
    patterns = prep.patterns
    for pattern, times in counts:
        for p, x, y in patterns[pattern]:
            wins_i[p] += times * x
            wins_j[p] += times * y
    return wins_i, wins_j


def _log_likelihood(
    theta: Sequence[float], terms: Sequence[tuple[int, int, float, float]], prior: float
) -> float:
    total = 0.0
    for t in theta:  # the virtual half-won game against the reference at 0
        total += prior * (0.5 * t - max(t, 0.0) - math.log1p(math.exp(-abs(t))))
    for i, j, x, y in terms:
        a, b = theta[i], theta[j]
        total += x * a + y * b - (x + y) * (max(a, b) + math.log1p(math.exp(-abs(a - b))))
    return total


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve a small symmetric positive-definite system by Cholesky decomposition."""
    n = len(vector)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = matrix[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            low[i][j] = math.sqrt(max(s, 1e-300)) if i == j else s / low[j][j]
    forward = [0.0] * n
    for i in range(n):
        forward[i] = (vector[i] - sum(low[i][k] * forward[k] for k in range(i))) / low[i][i]
    out = [0.0] * n
    for i in reversed(range(n)):
        out[i] = (forward[i] - sum(low[k][i] * out[k] for k in range(i + 1, n))) / low[i][i]
    return out


def _fit(
    n: int,
    pairs: Sequence[tuple[int, int]],
    wins_i: Sequence[float],
    wins_j: Sequence[float],
    prior: float,
    start: Sequence[float] | None = None,
) -> list[float]:
    """Log-strengths maximising the likelihood, by damped Newton steps (concave, so it converges)."""
    terms = [(i, j, x, y) for (i, j), x, y in zip(pairs, wins_i, wins_j, strict=True) if x + y > 0]
    theta = list(start) if start is not None else [0.0] * n
    current = _log_likelihood(theta, terms, prior)
    for _ in range(_MAX_ITERATIONS):
        grad = [prior * (0.5 - _sigmoid(t)) for t in theta]
        hess = [[0.0] * n for _ in range(n)]
        for i, t in enumerate(theta):
            s = _sigmoid(t)
            hess[i][i] = prior * s * (1.0 - s)
        for i, j, x, y in terms:
            s = _sigmoid(theta[i] - theta[j])
            games = x + y
            grad[i] += x - games * s
            grad[j] += y - games * (1.0 - s)
            h = games * s * (1.0 - s)
            hess[i][i] += h
            hess[j][j] += h
            hess[i][j] -= h
            hess[j][i] -= h
        step = _solve(hess, grad)
        scale = 1.0
        while True:  # halve the step until it does not lose likelihood
            trial = [t + scale * d for t, d in zip(theta, step, strict=True)]
            value = _log_likelihood(trial, terms, prior)
            if value >= current - 1e-12 * abs(current):
                break
            scale /= 2.0
            if scale < 1e-6:
                return theta  # no ascent left at double precision: this is the optimum
        theta, current = trial, value
        if max(map(abs, step), default=0.0) * scale < _TOLERANCE:
            break
    return theta


def _to_ratings(theta: Sequence[float], games: Sequence[float]) -> list[float]:
    mean = statistics.fmean(theta, games) if theta else 0.0
    return [BASE_RATING + _POINTS_PER_LOG * (t - mean) for t in theta]


def _percentile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rate_with_intervals(
    battles: Iterable[Battle],
    *,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
    prior: float = DEFAULT_PRIOR,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Ratings and bootstrap intervals together, sharing one preparation of the battles."""
    if prior <= 0:
        raise ValueError("prior must be positive (it keeps the ratings finite)")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    prep = _prepare(battles)
    n = len(prep.models)
    wins_i, wins_j = _totals(prep, Counter(prep.group_pattern).items())
    full = _fit(n, prep.pairs, wins_i, wins_j, prior)
    games = [0.0] * n
    for (i, j), x, y in zip(prep.pairs, wins_i, wins_j, strict=True):
        games[i] += x + y
        games[j] += x + y
    ratings = dict(zip(prep.models, _to_ratings(full, games), strict=True))
    samples: list[list[float]] = [[] for _ in range(n)]
    rng = random.Random(seed)
    groups = len(prep.group_pattern)
    for _ in range(rounds if groups else 0):
        drawn = Counter(rng.choices(prep.group_pattern, k=groups))
        # Warm start from the full-data fit: a resample's optimum is close, so Newton needs
        # two or three steps instead of a cold start's six or seven.
        theta = _fit(n, prep.pairs, *_totals(prep, drawn.items()), prior, full)
        for column, rating in zip(samples, _to_ratings(theta, games), strict=True):
            column.append(rating)
    tail = (1.0 - level) / 2.0
    intervals: dict[str, tuple[float, float]] = {}
    for model, column in zip(prep.models, samples, strict=True):
        column.sort()
        point = ratings[model]
        intervals[model] = (
            (_percentile(column, tail), _percentile(column, 1.0 - tail))
            if column
            else (point, point)
        )
    return ratings, intervals


def bradley_terry(battles: Iterable[Battle], *, prior: float = DEFAULT_PRIOR) -> dict[str, float]:
    """Maximum-likelihood Bradley–Terry ratings (ties are half a win each way) around 1000."""
    return rate_with_intervals(battles, rounds=0, seed=0, level=0.95, prior=prior)[0]


def bootstrap_intervals(
    battles: Iterable[Battle],
    *,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
    prior: float = DEFAULT_PRIOR,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from resampling whole groups with ``random.Random(seed)``."""
    return rate_with_intervals(battles, rounds=rounds, seed=seed, level=level, prior=prior)[1]
