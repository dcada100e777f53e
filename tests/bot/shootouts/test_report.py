"""The report's numbers and its one rule: recommend only when the intervals separate."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.comparisons.records import ComparisonRecord, PanelRecord
from bot.shootouts.report import (
    ModelLine,
    RoundData,
    ShootoutData,
    VoteRow,
    build_report,
    quotes_text,
    separated,
)
from bot.shootouts.store import RoundRow, ShootoutRow

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def line(model: str, rating: float | None, low: float | None, high: float | None) -> ModelLine:
    return ModelLine(model, model, rating, low, high, 0, 0, 0, None, None, 0, 0, 0)


def test_a_leader_is_recommended_only_when_its_interval_clears_every_other() -> None:
    clear = [line("a", 1200, 1100, 1300), line("b", 800, 700, 900)]
    assert separated(clear) is clear[0]
    overlapping = [line("a", 1200, 950, 1300), line("b", 800, 700, 1000)]
    assert separated(overlapping) is None
    unknown = [line("a", 1200, None, None), line("b", 800, 700, 900)]
    assert separated(unknown) is None
    assert separated([line("a", 1000, 900, 1100)]) is None, "one model is no contest"


def test_quoted_text_is_noticed() -> None:
    assert quotes_text(['A poster titled "SUMMER FAIR"'])
    assert quotes_text(["a sign reading “OPEN”"])
    assert not quotes_text(["a quiet street at dawn"])


def panel(idx: int, model: str, status: str = "ok", credits: int = 10) -> PanelRecord:
    return PanelRecord(idx, "AB"[idx], model, model.upper(), "fake", status,
                       None if status == "ok" else "declined", 2.0 + idx, credits if status == "ok" else 0,
                       240, 320, price=credits)  # fmt: skip


def round_data(idx: int, choices: list[str], *, refused: bool = False) -> RoundData:
    cid = f"c{idx}"
    panels = (panel(0, "m1"), panel(1, "m2", "refused" if refused else "ok"))
    record = ComparisonRecord(
        cid, 1, 2, 100 + idx, 5, f"prompt {idx}", "poster", "3:4", "standard", True, False,
        sum(p.credits for p in panels), "closed", NOW, NOW, panels, kind="shootout",
        parent_id="s",
    )  # fmt: skip
    votes = tuple(VoteRow(900 + n, c, NOW.isoformat()) for n, c in enumerate(choices))
    return RoundData(RoundRow("s", idx, f"prompt {idx}", cid, 1, 20, "posted", None), record, votes)


def shootout(rounds: tuple[RoundData, ...]) -> ShootoutData:
    row = ShootoutRow(
        "s", 1, 2, 3, 4, None, 5, 0, "Posters", "poster", ("m1", "m2"), None, False, True,
        "closed", NOW, NOW, NOW, None, None, tuple(r.round for r in rounds),
    )  # fmt: skip
    return ShootoutData(row, rounds)


def test_the_report_counts_wins_cost_latency_and_refusals() -> None:
    data = shootout(
        (
            round_data(0, ["A"] * 12),
            round_data(1, ["A"] * 12),
            round_data(2, ["A"] * 11 + ["B"]),
            round_data(3, [], refused=True),
        )
    )
    report = build_report(data, "Poster")
    assert [r.winner for r in report.rounds] == ["M1", "M1", "M1", "No votes"]
    assert report.rounds[3].refusals == ("M2 declined (declined)",)
    m1, m2 = report.models
    assert (m1.model_id, m1.wins, m1.votes, m1.credits) == ("m1", 35, 36, 40)
    assert m1.credits_per_win is not None and round(m1.credits_per_win, 2) == round(40 / 35, 2)
    assert m1.median_seconds == 2.0 and m2.refusals == 1
    assert report.votes == 36
    assert report.conclusion == "Recommended for poster: M1"


def test_no_clear_winner_says_how_many_votes() -> None:
    report = build_report(
        shootout((round_data(0, ["A", "B"]), round_data(1, ["B", "A"]))), "Poster"
    )
    assert report.recommended is None
    assert report.conclusion == "No clear winner after 4 votes; add rounds or voters."
