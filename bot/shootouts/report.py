"""A shoot-out's result: per-round winners, its own Bradley–Terry ratings with 95% intervals,
cost per win, latency and refusals per model, and a recommendation only when the intervals
separate the leader from every other model.

Pure once loaded: :func:`load` reads the shoot-out, its rounds' comparisons and votes in one
read (one snapshot, on either backend); :func:`build_report` computes from that. Measured text accuracy is another feature's
measurement: pass it in as ``text_accuracy`` (model id -> 0..1) when it exists.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.comparisons.records import (
    PG_COMPARISON,
    PG_PANELS,
    SQL_COMPARISON,
    SQL_PANELS,
    ComparisonRecord,
    _parse,
)
from bot.db import AnyDatabase, PostgresDatabase
from bot.shootouts import postgres as pg
from bot.shootouts.store import SQL_ROUNDS, SQL_SHOOTOUT, RoundRow, ShootoutRow, _shootout
from bot.voting.leaderboard import leaderboard
from bot.voting.ratings import BAD, TIE, ComparisonVotes, PanelFacts
from bot.voting.rules import OPTION_NAMES, iso, winner_of

if TYPE_CHECKING:
    from bot.db.postgres import PgConnection

SQL_VOTES = """
SELECT user_id, choice, created_at FROM votes WHERE comparison_id = ? ORDER BY created_at, user_id
"""
PG_VOTES = """
SELECT user_id, choice, created_at FROM votes WHERE comparison_id = $1
ORDER BY created_at, user_id
"""
#: text in quotes in a prompt: what a poster must spell right
QUOTED = re.compile(r"[\"“”«]([^\"“”«»]{2,})[\"“”»]")
BOOTSTRAP_ROUNDS = 200


@dataclass(frozen=True, slots=True)
class VoteRow:
    """One member's counted vote on one round."""

    user_id: int
    choice: str
    created_at: str


@dataclass(frozen=True, slots=True)
class RoundData:
    """A round with its stored comparison (None when it never ran) and its votes."""

    round: RoundRow
    record: ComparisonRecord | None
    votes: tuple[VoteRow, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Votes per option: each panel with an image, then tie and all bad."""
        if self.record is None:
            return {}
        options = [p.letter for p in self.record.panels if p.status == "ok"] + [TIE, BAD]
        counts = dict.fromkeys(options, 0)
        for vote in self.votes:
            if vote.choice in counts:
                counts[vote.choice] += 1
        return counts

    @property
    def posted(self) -> bool:
        """True when the round reached its channel (only those are voted on and rated)."""
        return self.record is not None and self.record.delivery == "posted"


@dataclass(frozen=True, slots=True)
class ShootoutData:
    """Everything stored about one shoot-out."""

    shootout: ShootoutRow
    rounds: tuple[RoundData, ...]

    @property
    def prompts(self) -> list[str]:
        """Each round's prompt."""
        return [r.round.prompt for r in self.rounds]


def read_comparison(conn: sqlite3.Connection, comparison_id: str) -> RoundData | None:
    """One comparison with its votes (for export of a comparison on its own)."""
    row = conn.execute(SQL_COMPARISON, (comparison_id,)).fetchone()
    if row is None:
        return None
    record = _parse(row, conn.execute(SQL_PANELS, (comparison_id,)).fetchall())
    votes = tuple(VoteRow(*v) for v in conn.execute(SQL_VOTES, (comparison_id,)))
    return RoundData(
        RoundRow("", 0, record.prompt, record.id, None, 0, "posted", None), record, votes
    )


def _read(conn: sqlite3.Connection, shootout_id: str) -> ShootoutData | None:
    row = conn.execute(SQL_SHOOTOUT, (shootout_id,)).fetchone()
    if row is None:
        return None
    shootout = _shootout(row, conn.execute(SQL_ROUNDS, (shootout_id,)).fetchall())
    rounds = []
    for round_row in shootout.rounds:
        found = read_comparison(conn, round_row.comparison_id)
        if found is None:
            rounds.append(RoundData(round_row, None))
        else:
            rounds.append(RoundData(round_row, found.record, found.votes))
    return ShootoutData(shootout, tuple(rounds))


async def read_comparison_pg(conn: PgConnection, comparison_id: str) -> RoundData | None:
    """:func:`read_comparison` on PostgreSQL; vote times as the same text SQLite stores."""
    row = await conn.fetchrow(PG_COMPARISON, comparison_id)
    if row is None:
        return None
    record = _parse(row, await conn.fetch(PG_PANELS, comparison_id))
    votes = tuple(
        VoteRow(v["user_id"], v["choice"], iso(v["created_at"]))
        for v in await conn.fetch(PG_VOTES, comparison_id)
    )
    return RoundData(
        RoundRow("", 0, record.prompt, record.id, None, 0, "posted", None), record, votes
    )


async def _read_pg(conn: PgConnection, shootout_id: str) -> ShootoutData | None:
    row = await conn.fetchrow(pg.SQL_SHOOTOUT, shootout_id)
    if row is None:
        return None
    shootout = _shootout(row, await conn.fetch(pg.SQL_ROUNDS, shootout_id))
    rounds = []
    for round_row in shootout.rounds:
        found = await read_comparison_pg(conn, round_row.comparison_id)
        if found is None:
            rounds.append(RoundData(round_row, None))
        else:
            rounds.append(RoundData(round_row, found.record, found.votes))
    return ShootoutData(shootout, tuple(rounds))


async def load(db: AnyDatabase, shootout_id: str) -> ShootoutData | None:
    """The shoot-out, its rounds' comparisons and votes, read in one snapshot."""
    if isinstance(db, PostgresDatabase):
        async with db.transaction(isolation="repeatable_read", readonly=True) as conn:
            return await _read_pg(conn, shootout_id)
    return await db.run_read(lambda conn: _read(conn, shootout_id))


async def load_comparison(db: AnyDatabase, comparison_id: str) -> RoundData | None:
    """One comparison and its votes."""
    if isinstance(db, PostgresDatabase):
        async with db.transaction(isolation="repeatable_read", readonly=True) as conn:
            return await read_comparison_pg(conn, comparison_id)
    return await db.run_read(lambda conn: read_comparison(conn, comparison_id))


# ------------------------------------------------------------------------ report
@dataclass(frozen=True, slots=True)
class RoundLine:
    """One round in the report."""

    number: int
    prompt: str
    state: str
    note: str | None
    comparison_id: str
    winner: str  # "GPT-Image 2", "Tie", "All bad", "No votes", or why the round did not run
    votes: int
    counts: Mapping[str, int]
    refusals: tuple[str, ...] = ()  # "Nano Banana Pro declined (…)"


@dataclass(frozen=True, slots=True)
class ModelLine:
    """One model's result across the shoot-out."""

    model_id: str
    label: str
    rating: float | None
    low: float | None
    high: float | None
    votes: int
    wins: int
    credits: int
    credits_per_win: float | None
    median_seconds: float | None
    refusals: int
    failures: int
    panels: int
    text_accuracy: float | None = None

    def rating_text(self) -> str:
        """'1,043 (95%: 1,001–1,090)', '1,043 (interval unknown)' or '—'."""
        if self.rating is None:
            return "—"
        if self.low is None or self.high is None:
            return f"{self.rating:,.0f} (interval unknown)"
        return f"{self.rating:,.0f} (95%: {self.low:,.0f}–{self.high:,.0f})"


@dataclass(frozen=True, slots=True)
class Report:
    """The shoot-out's outcome, ready to render as an embed, HTML or JSON."""

    name: str
    use_case: str
    rounds: tuple[RoundLine, ...]
    models: tuple[ModelLine, ...]
    votes: int
    total_credits: int
    recommended: ModelLine | None
    conclusion: str
    notes: tuple[str, ...] = field(default=())


def quotes_text(prompts: Sequence[str]) -> bool:
    """True when a prompt quotes text the image must spell (a poster's title, a sign)."""
    return any(QUOTED.search(p) for p in prompts)


def _round_line(number: int, data: RoundData) -> RoundLine:
    record = data.record
    if record is None or not data.posted:
        why = data.round.note or "did not run"
        return RoundLine(
            number,
            data.round.prompt,
            data.round.state,
            why,
            data.round.comparison_id,
            f"Not run — {why}",
            0,
            {},
        )
    counts = data.counts
    winner = winner_of(counts)
    if winner is None:
        text = "No votes"
    else:
        panel = next((p for p in record.panels if p.letter == winner), None)
        text = panel.label if panel is not None else OPTION_NAMES.get(winner, winner)
    refusals = tuple(
        f"{p.label} {'declined' if p.status == 'refused' else 'failed'} ({p.reason or 'no reason'})"
        for p in record.panels
        if p.status != "ok"
    )
    return RoundLine(
        number,
        record.prompt,
        data.round.state,
        data.round.note,
        record.id,
        text,
        sum(counts.values()),
        counts,
        refusals,
    )


def _votes_for(data: RoundData) -> ComparisonVotes | None:
    record = data.record
    if record is None or not data.posted:
        return None
    facts = tuple(
        PanelFacts(p.letter, p.model_id, p.label, p.status, p.latency_s, p.credits)
        for p in record.panels
    )
    return ComparisonVotes(record.id, record.blind, facts, tuple(v.choice for v in data.votes))


def separated(lines: Sequence[ModelLine]) -> ModelLine | None:
    """The leader, only when its interval's low end is above every other model's high end."""
    rated = [m for m in lines if m.rating is not None]
    if len(rated) < 2 or any(m.low is None or m.high is None for m in rated):
        return None
    leader = max(rated, key=lambda m: m.rating or 0.0)
    rest_high = max(m.high or 0.0 for m in rated if m is not leader)
    assert leader.low is not None
    return leader if leader.low > rest_high else None


def build_report(
    data: ShootoutData,
    use_case_name: str,
    *,
    text_accuracy: Mapping[str, float] | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> Report:
    """Compute the report from what is stored (closed or not: a preview shows the same)."""
    shootout = data.shootout
    lines = tuple(_round_line(n, r) for n, r in enumerate(data.rounds, start=1))
    comparisons = [c for r in data.rounds if (c := _votes_for(r)) is not None]
    board = leaderboard(comparisons, min_votes=1, rounds=rounds, seed=0)
    failed: dict[str, int] = {}
    for comparison in comparisons:
        for panel in comparison.panels:
            failed[panel.model_id] = failed.get(panel.model_id, 0) + (panel.status == "failed")
    refused: dict[str, int] = {}
    for comparison in comparisons:
        for panel in comparison.panels:
            refused[panel.model_id] = refused.get(panel.model_id, 0) + (panel.status == "refused")
    models = tuple(
        ModelLine(
            model_id=row.model_id,
            label=row.label,
            rating=row.rating,
            low=row.low,
            high=row.high,
            votes=row.votes,
            wins=row.wins,
            credits=row.credits,
            credits_per_win=row.credits_per_win,
            median_seconds=row.median_seconds,
            refusals=refused.get(row.model_id, 0),
            failures=failed.get(row.model_id, 0),
            panels=row.panels,
            text_accuracy=(text_accuracy or {}).get(row.model_id),
        )
        for row in sorted(board.rows, key=lambda r: -(r.rating or float("-inf")))
    )
    votes = sum(line.votes for line in lines)
    leader = separated(models)
    if leader is not None:
        conclusion = f"Recommended for {use_case_name.lower()}: {leader.label}"
    else:
        noun = "vote" if votes == 1 else "votes"
        conclusion = f"No clear winner after {votes} {noun}; add rounds or voters."
    notes = []
    if quotes_text(data.prompts) and text_accuracy is None:
        notes.append("Prompts quote text; measured text accuracy is not available yet.")
    if shootout.team_role_gone:
        notes.append(
            "The team role was deleted during the vote; every member's vote counted after that."
        )
    skipped = [line.number for line in lines if line.votes == 0 and line.state == "refunded"]
    if skipped:
        notes.append(f"Round(s) {', '.join(map(str, skipped))} did not run and were refunded.")
    return Report(
        name=shootout.name,
        use_case=use_case_name,
        rounds=lines,
        models=models,
        votes=votes,
        total_credits=sum(m.credits for m in models),
        recommended=leader,
        conclusion=conclusion,
        notes=tuple(notes),
    )
