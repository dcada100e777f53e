"""The leaderboard as plain data: ratings with intervals, and each model's votes, cost, speed.

Rows are sorted by the interval's lower bound, so a lucky model with three votes cannot top a
proven one; models below the server's vote threshold follow, unranked. Which comparisons go in
is the caller's choice (``bot.voting.store`` passes the server's, without deleted or demo ones); with
``blind_only`` only blind comparisons count (the arena rule).

The bootstrap resamples whole comparisons, so it cannot measure the uncertainty of a model seen
in fewer than ``MIN_COMPARISONS`` of them, nor of one whose comparisons are all alike: every
resample agrees, giving a falsely certain "± 0". Such a row keeps its rating but its interval is
unknown (``low``, ``high`` and ``margin`` are None, shown as "± ?"), and it ranks after every
model whose lower bound is known.

Per model: ``votes`` are the counted 🇦–🇩 and 🤝 votes on comparisons where it produced an
image, ``wins`` the votes for its own panel. Credits, generation time and refusals come from
all its panels in those comparisons, voted on or not: what the server spent per vote it won.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.voting.ratings import (
    BAD,
    DEFAULT_PRIOR,
    TIE,
    Battle,
    ComparisonVotes,
    battles_for,
    rate_with_intervals,
)

#: comparisons a model needs before its bootstrap interval means anything
MIN_COMPARISONS = 2
#: an interval narrower than this many points is every resample agreeing, not a measurement
#: (a real 95% interval that narrow would take millions of votes)
MIN_INTERVAL_WIDTH = 1.0
#: what the text says instead of a margin when the comparisons, though enough, are all alike
UNKNOWN_MARGIN = "margin unknown"


def votes_noun(n: int, *, blind: bool = False) -> str:
    """ "1 vote", "3 votes", "1 blind vote"."""
    return f"{n:,} {'blind ' if blind else ''}vote{'' if n == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    """One model on the leaderboard; ``rating`` is None when it has no usable vote yet.

    ``low`` and ``high`` are None when there is no rating or when the interval is unknown
    (see ``interval_known``).
    """

    model_id: str
    label: str
    rating: float | None
    low: float | None
    high: float | None
    votes: int  # counted 🇦–🇩 and 🤝 votes on comparisons where it produced an image
    blind_votes: int
    wins: int  # votes for its own panel
    win_rate: float | None
    credits: int
    credits_per_win: float | None
    median_seconds: float | None
    panels: int
    refusal_rate: float | None
    ranked: bool
    #: comparisons with a counted vote (the bootstrap needs ``MIN_COMPARISONS`` of them)
    comparisons: int = MIN_COMPARISONS

    @property
    def margin(self) -> float | None:
        """Half the interval's width, for "1,043 ± 38"; None when the interval is unknown."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    @property
    def interval_known(self) -> bool:
        """Whether the rating comes with a measured interval (False without a rating too)."""
        return self.rating is not None and self.low is not None and self.high is not None

    def margin_text(self) -> str:
        """ "± 38", or what the unknown margin still needs ("needs 1 more vote")."""
        if self.margin is not None:
            return f"± {self.margin:,.0f}"
        missing = MIN_COMPARISONS - self.comparisons
        if missing > 0:
            # Votes on one comparison move together: the next one must be on another result.
            return f"needs {votes_noun(missing).replace(' vote', ' more vote')}"
        return UNKNOWN_MARGIN

    def rating_text(self) -> str | None:
        """ "1,043 ± 38", or "1,043, needs 1 more vote" when the interval is unknown."""
        if self.rating is None:
            return None
        if self.margin is None:
            return f"{self.rating:,.0f}, {self.margin_text()}"
        return f"{self.rating:,.0f} {self.margin_text()}"

    def summary(self) -> str:
        """One plain line: rating, interval, votes, win rate, cost, speed, refusals."""
        parts = [self.label]
        if self.rating is not None and self.low is not None and self.high is not None:
            parts.append(f"{self.rating:,.0f} ({self.low:,.0f}–{self.high:,.0f})")
        elif self.rating is not None:
            parts.append(f"{self.rating:,.0f} (interval unknown)")
        blind = f" ({self.blind_votes} blind)" if 0 < self.blind_votes < self.votes else ""
        parts.append(f"{self.votes} vote{'' if self.votes == 1 else 's'}{blind}")
        if self.win_rate is not None:
            parts.append(f"{self.win_rate:.0%} won")
        if self.credits_per_win is not None:
            parts.append(f"{self.credits_per_win:,.1f} cr/win")
        if self.median_seconds is not None:
            parts.append(f"{self.median_seconds:.1f} s")
        if self.refusal_rate is not None:
            parts.append(f"{self.refusal_rate:.0%} refused")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """Ranked rows (by interval lower bound) followed by the models below the vote threshold."""

    rows: tuple[LeaderboardRow, ...]
    use_case: str | None
    blind_only: bool
    min_votes: int
    votes: int  # votes that produced battles
    blind_votes: int
    all_bad_votes: int
    comparisons: int
    rounds: int  # bootstrap rounds behind the intervals; 0: point estimates only
    level: float

    @property
    def has_intervals(self) -> bool:
        """Whether the rows' intervals were bootstrapped (a point-only board has none)."""
        return self.rounds > 0

    @property
    def ranked(self) -> tuple[LeaderboardRow, ...]:
        """Rows with enough votes, best lower bound first."""
        return tuple(row for row in self.rows if row.ranked)

    @property
    def unranked(self) -> tuple[LeaderboardRow, ...]:
        """Rows still below the vote threshold."""
        return tuple(row for row in self.rows if not row.ranked)

    def row(self, model_id: str) -> LeaderboardRow | None:
        """The row of this model, if it appears."""
        return next((row for row in self.rows if row.model_id == model_id), None)

    def not_enough_votes(self) -> str | None:
        """The sentence to show instead of a table when no model is ranked yet, else None."""
        if self.ranked:
            return None
        needed = f"a model needs {votes_noun(self.min_votes, blind=self.blind_only)} to be ranked"
        most = max((row.votes for row in self.rows), default=0)
        if most == 0:
            return f"Not enough votes yet: nobody has voted here, and {needed}."
        return f"Not enough votes yet: {needed}, and the most any model has is {most}."


@dataclass
class _Totals:
    """One model's running totals while the comparisons are read."""

    label: str
    panels: int = 0
    refused: int = 0
    credits: int = 0
    seconds: list[float] = field(default_factory=list)
    votes: int = 0
    blind_votes: int = 0
    wins: int = 0
    comparisons: int = 0  # comparisons with a counted vote: the bootstrap's resampling units

    def row(
        self,
        model_id: str,
        rating: float | None,
        interval: tuple[float, float] | None,
        min_votes: int,
    ) -> LeaderboardRow:
        low, high = (None, None)
        if (
            interval is not None
            and self.comparisons >= MIN_COMPARISONS
            and interval[1] - interval[0] >= MIN_INTERVAL_WIDTH
        ):
            low, high = interval
        return LeaderboardRow(
            model_id=model_id,
            label=self.label,
            rating=rating,
            low=low,
            high=high,
            votes=self.votes,
            blind_votes=self.blind_votes,
            wins=self.wins,
            win_rate=self.wins / self.votes if self.votes else None,
            credits=self.credits,
            credits_per_win=self.credits / self.wins if self.wins else None,
            median_seconds=statistics.median(self.seconds) if self.seconds else None,
            panels=self.panels,
            refusal_rate=self.refused / self.panels if self.panels else None,
            ranked=rating is not None and self.votes >= min_votes,
            comparisons=self.comparisons,
        )


def _sort_key(row: LeaderboardRow) -> tuple[bool, float, float, str]:
    if row.ranked and row.rating is not None:
        # An unknown lower bound counts as -inf: proven models first, then the rest by rating.
        low = -math.inf if row.low is None else row.low
        return (False, -low, -row.rating, row.label)
    return (True, -row.votes, 0.0, row.label)


def leaderboard(
    comparisons: Iterable[ComparisonVotes],
    *,
    min_votes: int,
    blind_only: bool = False,
    use_case: str | None = None,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
    prior: float = DEFAULT_PRIOR,
) -> Leaderboard:
    """Rate the models of these comparisons and add each one's votes, costs, speed, refusals."""
    models: dict[str, _Totals] = {}
    battles: list[Battle] = []
    votes = blind = bad = rated = 0
    for comparison in comparisons:
        if blind_only and not comparison.blind:
            continue
        for panel in comparison.panels:
            totals = models.setdefault(panel.model_id, _Totals(panel.label))
            totals.label = panel.label  # the latest comparison names it
            totals.panels += 1
            totals.credits += panel.credits
            totals.refused += panel.status == "refused"
            if panel.status == "ok" and panel.latency_s is not None:
                totals.seconds.append(panel.latency_s)
        contenders = comparison.contenders()
        if len(contenders) < 2:
            continue  # one image is no contest
        counted = [c for c in comparison.choices if c == TIE or c in contenders]
        for choice in counted:
            for letter, model in contenders.items():
                models[model].votes += 1
                models[model].blind_votes += comparison.blind
                models[model].wins += choice == letter
        for model in contenders.values():
            models[model].comparisons += bool(counted)
        votes += len(counted)
        blind += len(counted) * comparison.blind
        bad += comparison.choices.count(BAD)
        rated += bool(counted)
        battles.extend(battles_for(comparison))
    ratings, intervals = rate_with_intervals(
        battles, rounds=rounds, seed=seed, level=level, prior=prior
    )
    rows = sorted(
        (
            totals.row(model, ratings.get(model), intervals.get(model), min_votes)
            for model, totals in models.items()
        ),
        key=_sort_key,
    )
    return Leaderboard(
        rows=tuple(rows),
        use_case=use_case,
        blind_only=blind_only,
        min_votes=min_votes,
        votes=votes,
        blind_votes=blind,
        all_bad_votes=bad,
        comparisons=rated,
        rounds=rounds,
        level=level,
    )


def community_line(row: LeaderboardRow, use_case_name: str | None = None) -> str:
    """ "In this server, GPT-Image 2 won 14 of 22 portrait votes (rating 1,043)".

    The point rating only: a verdict cites the server's standing from the cached fit, and the
    intervals (a bootstrap of every vote) are computed only where /leaderboard shows them.
    """
    kind = f"{use_case_name} votes" if use_case_name else "votes"
    rating = "" if row.rating is None else f" (rating {row.rating:,.0f})"
    return f"In this server, {row.label} won {row.wins} of {row.votes} {kind}{rating}"
