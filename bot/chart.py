"""The leaderboard chart: ratings as dots with 95% interval bars, as PNG bytes (pure Pillow).

Drawn at twice the size and scaled down, so dots and bars are anti-aliased. CPU-bound for a
few tens of milliseconds: the Discord layer calls it through ``asyncio.to_thread``. When no
model is ranked yet it still returns an image — a "Not enough votes yet" card showing each
model's progress towards the threshold — so the caller never needs a special case.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from bot.fonts import Font, displayable, load_font
from bot.leaderboard import Leaderboard, LeaderboardRow
from bot.ratings import BASE_RATING

CHART_FILENAME = "leaderboard.png"  # the upload's name and the embed's attachment:// name
WIDTH = 1200
ROW = 60
HEADER = 120
FOOTER = 64
_S = 2  # supersampling factor

BACKGROUND = (43, 45, 49)
STRIPE = (49, 51, 56)
TEXT = (242, 243, 245)
MUTED = (148, 155, 164)
GRID = (63, 65, 71)
BASELINE = (99, 102, 110)
PALETTE = (
    (88, 101, 242),
    (87, 242, 135),
    (254, 231, 92),
    (235, 69, 158),
    (237, 66, 69),
    (69, 200, 230),
    (250, 166, 26),
    (170, 130, 250),
)

# Column edges at 1x: rank, name, plot, numbers.
_RANK_X, _NAME_X, _PLOT_L, _PLOT_R, _NUM_X = 32, 76, 400, 880, 912
_TICK_STEPS = (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)


class _Canvas:
    """A supersampled drawing surface that takes 1x coordinates."""

    def __init__(self, height: int) -> None:
        self.image = Image.new("RGB", (WIDTH * _S, height * _S), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)

    def font(self, size: int, *, bold: bool = False) -> Font:
        return load_font(size * _S, bold=bold)

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        font: Font,
        fill: tuple[int, int, int],
        anchor: str = "lm",
    ) -> None:
        position = (xy[0] * _S, xy[1] * _S)
        self.draw.text(position, displayable(font, text), font=font, fill=fill, anchor=anchor)

    def fit(self, text: str, font: Font, width: float) -> str:
        """``text`` shortened with an ellipsis until it fits ``width`` (1x pixels)."""
        text = displayable(font, text)
        if self.draw.textlength(text, font=font) <= width * _S:
            return text
        while text and self.draw.textlength(text + "…", font=font) > width * _S:
            text = text[:-1]
        return text.rstrip() + "…"

    def rect(
        self, box: tuple[float, float, float, float], fill: tuple[int, int, int], radius: float = 0
    ) -> None:
        scaled = tuple(v * _S for v in box)
        self.draw.rounded_rectangle(scaled, radius=radius * _S, fill=fill)

    def line(
        self, points: Sequence[tuple[float, float]], fill: tuple[int, int, int], width: float
    ) -> None:
        self.draw.line(
            [(x * _S, y * _S) for x, y in points], fill=fill, width=max(1, round(width * _S))
        )

    def dot(
        self,
        x: float,
        y: float,
        r: float,
        fill: tuple[int, int, int] | None,
        outline: tuple[int, int, int],
        width: float = 2,
    ) -> None:
        box = ((x - r) * _S, (y - r) * _S, (x + r) * _S, (y + r) * _S)
        self.draw.ellipse(box, fill=fill, outline=outline, width=round(width * _S))

    def arrow(self, x: float, y: float, direction: int, fill: tuple[int, int, int]) -> None:
        """A small triangle at the plot's edge, pointing to a rating beyond it."""
        tip, back = x + 6 * direction, x - 8 * direction
        points = [(tip * _S, y * _S), (back * _S, (y - 9) * _S), (back * _S, (y + 9) * _S)]
        self.draw.polygon(points, fill=fill)

    def png(self) -> bytes:
        final = self.image.resize(
            (self.image.width // _S, self.image.height // _S), Image.Resampling.LANCZOS
        )
        out = io.BytesIO()
        final.save(out, format="PNG", optimize=True)
        return out.getvalue()


@dataclass(frozen=True, slots=True)
class _Axis:
    """The rating range the plot shows, and where a rating falls on it."""

    low: float
    high: float
    step: float

    def x(self, rating: float) -> float:
        """The 1x x-coordinate of a rating, pinned to the plot's edges."""
        share = (min(max(rating, self.low), self.high) - self.low) / (self.high - self.low)
        return _PLOT_L + share * (_PLOT_R - _PLOT_L)

    def shows(self, rating: float) -> bool:
        """Whether a rating lies inside the plotted range."""
        return self.low <= rating <= self.high


def _axis(rows: Sequence[LeaderboardRow]) -> _Axis:
    """A padded rating range covering the ranked intervals, and a round tick step."""
    lows = [r.low for r in rows if r.low is not None]
    highs = [r.high for r in rows if r.high is not None]
    low, high = min(lows, default=BASE_RATING), max(highs, default=BASE_RATING)
    low, high = min(low, BASE_RATING), max(high, BASE_RATING)  # the 1000 baseline is always in view
    pad = max((high - low) * 0.08, 10.0)
    low, high = low - pad, high + pad
    step = next((s for s in _TICK_STEPS if (high - low) / s <= 7), _TICK_STEPS[-1])
    return _Axis(math.floor(low / step) * step, math.ceil(high / step) * step, float(step))


def _header(canvas: _Canvas, title: str, subtitle: str) -> None:
    big, small = canvas.font(34, bold=True), canvas.font(18)
    canvas.text((_RANK_X, 44), canvas.fit(title, big, WIDTH - 64), big, TEXT)
    canvas.text((_RANK_X, 86), canvas.fit(subtitle, small, WIDTH - 64), small, MUTED)


def _subtitle(board: Leaderboard) -> str:
    votes = f"{board.votes:,} vote{'' if board.votes == 1 else 's'}"
    if board.blind_only:
        votes += ", blind only"
    elif board.blind_votes:
        votes += f" ({board.blind_votes:,} blind)"
    level = f"{board.level:.0%}"
    return f"Bradley–Terry rating · {level} interval · {votes} · ranked by the interval's low end"


def leaderboard_chart(board: Leaderboard, *, title: str) -> bytes:
    """The leaderboard as a PNG, 1200 px wide; a progress card when nothing is ranked yet."""
    if not board.ranked:
        return _progress_card(board, title)
    rows, ranked_count = board.rows, len(board.ranked)
    gap = ROW // 2 if board.unranked else 0  # room for the "not ranked yet" note

    def top_of(n: int) -> float:
        return HEADER + n * ROW + (gap if n >= ranked_count else 0)

    bottom = top_of(len(rows))
    canvas = _Canvas(round(bottom) + FOOTER)
    _header(canvas, title, _subtitle(board))
    axis = _axis(board.ranked)
    for n in range(0, len(rows), 2):
        canvas.rect((16, top_of(n), WIDTH - 16, top_of(n) + ROW), STRIPE, radius=8)
    tick_font = canvas.font(16)
    for k in range(round((axis.high - axis.low) / axis.step) + 1):
        tick = axis.low + k * axis.step
        baseline = tick == BASE_RATING
        x = axis.x(tick)
        canvas.line(
            [(x, HEADER), (x, bottom)], BASELINE if baseline else GRID, 2 if baseline else 1
        )
        canvas.text((x, bottom + 20), f"{tick:,.0f}", tick_font, MUTED, "mm")
    note = "1,000 = the average here, weighted by votes · +400 = 10× the odds of winning"
    canvas.text((_PLOT_L, bottom + 46), note, canvas.font(15), MUTED)
    if board.unranked:
        note = f"Not ranked yet — fewer than {board.min_votes} votes"
        canvas.text((_NAME_X, top_of(ranked_count) - gap / 2 + 4), note, canvas.font(16), MUTED)
    for n, row in enumerate(rows):
        _draw_row(canvas, row, n, top_of(n) + ROW / 2, axis, board.min_votes)
    return canvas.png()


def _draw_row(
    canvas: _Canvas,
    row: LeaderboardRow,
    n: int,
    y: float,
    axis: _Axis,
    min_votes: int,
) -> None:
    """One model: rank, name, interval bar with its dot, rating and details."""
    colour = PALETTE[n % len(PALETTE)] if row.ranked else MUTED
    strong = TEXT if row.ranked else MUTED
    if row.ranked:
        canvas.text((_RANK_X, y), f"{n + 1}", canvas.font(20), MUTED)
    name_font = canvas.font(22, bold=True)
    canvas.text(
        (_NAME_X, y), canvas.fit(row.label, name_font, _PLOT_L - _NAME_X - 20), name_font, strong
    )
    numbers = "no rating yet"
    if row.rating is not None and row.low is not None and row.high is not None:
        canvas.line([(axis.x(row.low), y), (axis.x(row.high), y)], colour, 6)
        for end in (row.low, row.high):
            if axis.shows(end):  # a bar running off the plot has no end cap
                canvas.line([(axis.x(end), y - 9), (axis.x(end), y + 9)], colour, 3)
        if axis.shows(row.rating):
            # Unranked models get a hollow dot: a rating, but not one to trust yet.
            canvas.dot(axis.x(row.rating), y, 9, colour if row.ranked else BACKGROUND, strong, 2.5)
        else:
            canvas.arrow(axis.x(row.rating), y, 1 if row.rating > axis.high else -1, strong)
        numbers = f"{row.rating:,.0f} ± {row.margin or 0:,.0f}"
    canvas.text((_NUM_X, y - 11), numbers, canvas.font(21, bold=True), strong)
    canvas.text((_NUM_X, y + 14), _details(row, min_votes), canvas.font(15), MUTED)


def _details(row: LeaderboardRow, min_votes: int) -> str:
    if not row.ranked:
        return f"{row.votes} vote{'' if row.votes == 1 else 's'}, needs {min_votes}"
    parts = [f"{row.votes:,} votes"]
    if row.win_rate is not None:
        parts.append(f"{row.win_rate:.0%} won")
    if row.credits_per_win is not None:
        parts.append(f"{row.credits_per_win:,.0f} cr/win")
    return " · ".join(parts)


def _progress_card(board: Leaderboard, title: str) -> bytes:
    rows = board.rows
    canvas = _Canvas(HEADER + 70 + ROW * max(len(rows), 1) + 24)
    kind = "blind votes" if board.blind_only else "votes"
    _header(canvas, title, f"Ratings appear once a model has {board.min_votes} {kind}.")
    canvas.text((_RANK_X, HEADER + 30), "Not enough votes yet", canvas.font(28, bold=True), TEXT)
    if not rows:
        hint = (
            "React to a result with the winner's letter, the handshake for a tie, or thumbs down."
        )
        canvas.text((_RANK_X, HEADER + 70 + ROW / 2), hint, canvas.font(20), MUTED)
    name_font, detail_font = canvas.font(22, bold=True), canvas.font(18)
    for n, row in enumerate(rows):
        y = HEADER + 70 + n * ROW + ROW / 2
        canvas.text(
            (_RANK_X, y), canvas.fit(row.label, name_font, _PLOT_L - _RANK_X - 20), name_font, TEXT
        )
        share = min(row.votes / max(board.min_votes, 1), 1.0)
        canvas.rect((_PLOT_L, y - 7, _PLOT_R, y + 7), GRID, radius=7)
        if share > 0:
            canvas.rect(
                (_PLOT_L, y - 7, _PLOT_L + max(share * (_PLOT_R - _PLOT_L), 14), y + 7),
                PALETTE[0],
                radius=7,
            )
        canvas.text((_NUM_X, y), f"{row.votes} of {board.min_votes} {kind}", detail_font, MUTED)
    return canvas.png()
