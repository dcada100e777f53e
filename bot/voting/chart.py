"""The leaderboard chart: ratings as dots with 95% interval bars, as PNG bytes (pure Pillow).

Laid out for Discord, which shows an embed image at most about 400 px wide: the chart is
800 px wide, one column, with text no smaller than 20 px, so it stays legible at half size.
Each model is a card of two text lines (rank badge, name, rating; then its votes, win rate
and cost) above its interval bar, which spans nearly the full width.

Drawn at twice the size and scaled down, so dots and bars are anti-aliased. CPU-bound for a
few tens of milliseconds: the Discord layer calls it through ``asyncio.to_thread``. When no
model is ranked yet it still returns an image — a "Not enough votes yet" card showing each
model's progress towards the threshold — so the caller never needs a special case.

Longer than the ~400-line guide on purpose: one chart: its layout and drawing share private geometry.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from bot.voting.leaderboard import Leaderboard, LeaderboardRow, votes_noun
from bot.voting.ratings import BASE_RATING
from providers.fonts import Font, displayable, load_font

CHART_FILENAME = "leaderboard.png"  # the upload's name and the embed's attachment:// name
WIDTH = 800
HEADER = 120  # title and subtitle on one line each; every wrapped line adds its line height
ROW = 104  # one model's card: name and rating, details, interval bar
UNRANKED_GAP = 48  # the "Not ranked yet" divider between ranked and unranked cards
FOOTER = 108  # tick labels and two lines of notes
PROGRESS_TOP = 56  # below the header: the progress card's "Not enough votes yet" line
PROGRESS_ROW = 80  # one model's name, count and progress bar
PROGRESS_FOOTER = 16
_S = 2  # supersampling factor

BACKGROUND = (43, 45, 49)
STRIPE = (49, 51, 56)  # the cards
TEXT = (242, 243, 245)
MUTED = (148, 155, 164)
GRID = (70, 73, 80)
BASELINE = (110, 114, 122)
ON_LIGHT = (30, 31, 34)  # a badge number on a light palette colour
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

# Font sizes at 1x: halved when Discord shows the chart 400 px wide.
TITLE_SIZE, SUBTITLE_SIZE, NAME_SIZE, DETAIL_SIZE = 36, 22, 28, 22
_TITLE_LINE, _SUBTITLE_LINE, _NOTE_LINE = 44, 30, 28
_TITLE_Y = 44  # the middle of the first title line
_SUBTITLE_BELOW = 42  # from the middle of the last title line to the subtitle's

# Horizontal layout at 1x.
_MARGIN = 24  # text keeps this far from the image's edges
_CARD_L, _CARD_R = 16, WIDTH - 16
_BADGE_X, _BADGE_R = 44, 16
_NAME_X = 72
_RIGHT = WIDTH - 32  # where right-aligned text ends
_PLOT_L, _PLOT_R = 72, WIDTH - 40
# Vertical layout inside a card, from its top.
_LINE1, _LINE2, _BAR = 30, 58, 82
_TICK_STEPS = (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
_NOTES = (
    "Bar = 95% interval · models are ranked by the bar's low end",
    "1,000 = the vote-weighted average · +400 = 10× the odds",
)

Colour = tuple[int, int, int]


class _Canvas:
    """A supersampled drawing surface that takes 1x coordinates."""

    def __init__(self, height: int) -> None:
        self.image = Image.new("RGB", (WIDTH * _S, height * _S), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)

    def text(
        self, xy: tuple[float, float], text: str, font: Font, fill: Colour, anchor: str = "lm"
    ) -> None:
        position = (xy[0] * _S, xy[1] * _S)
        self.draw.text(position, displayable(font, text), font=font, fill=fill, anchor=anchor)

    def rect(self, box: tuple[float, float, float, float], fill: Colour, radius: float = 0) -> None:
        scaled = tuple(v * _S for v in box)
        self.draw.rounded_rectangle(scaled, radius=radius * _S, fill=fill)

    def line(self, points: Sequence[tuple[float, float]], fill: Colour, width: float) -> None:
        self.draw.line(
            [(x * _S, y * _S) for x, y in points], fill=fill, width=max(1, round(width * _S))
        )

    def dot(
        self, x: float, y: float, r: float, fill: Colour | None, outline: Colour, width: float
    ) -> None:
        box = ((x - r) * _S, (y - r) * _S, (x + r) * _S, (y + r) * _S)
        self.draw.ellipse(box, fill=fill, outline=outline, width=round(width * _S))

    def arrow(self, x: float, y: float, direction: int, fill: Colour) -> None:
        """A triangle at the plot's edge, pointing to a rating beyond it."""
        tip, back = x + 8 * direction, x - 10 * direction
        points = [(tip * _S, y * _S), (back * _S, (y - 11) * _S), (back * _S, (y + 11) * _S)]
        self.draw.polygon(points, fill=fill)

    def png(self) -> bytes:
        final = self.image.resize(
            (self.image.width // _S, self.image.height // _S), Image.Resampling.LANCZOS
        )
        out = io.BytesIO()
        final.save(out, format="PNG", optimize=True)
        return out.getvalue()


def _font(size: int, *, bold: bool = False) -> Font:
    """The UI font at ``size`` 1x pixels, loaded at the supersampled size."""
    return load_font(size * _S, bold=bold)


def _width(text: str, font: Font) -> float:
    """The advance width of ``text`` in 1x pixels."""
    return font.getlength(displayable(font, text)) / _S


def _fit(text: str, font: Font, width: float) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` (1x pixels)."""
    text = displayable(font, text)
    if _width(text, font) <= width:
        return text
    while text and _width(text + "…", font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(text: str, font: Font, width: float, max_lines: int = 2) -> list[str]:
    """``text`` broken into at most ``max_lines`` lines, the last cut to fit ``width``.

    Breaks at a " · " separator when one falls on the line (dropping it: the break itself
    separates), else at the last space that fits.
    """
    lines: list[str] = []
    words = text.split(" ")
    while len(lines) < max_lines - 1 and _width(" ".join(words), font) > width:
        if _width(words[0], font) > width:
            break  # one overlong word: cut it below rather than leave an empty line
        take = 1
        while take < len(words) and _width(" ".join(words[: take + 1]), font) <= width:
            take += 1
        separators = [k for k in range(1, take + 1) if k < len(words) and words[k] == "·"]
        if separators:
            cut = separators[-1]
            lines.append(" ".join(words[:cut]))
            words = words[cut + 1 :]
        else:
            lines.append(" ".join(words[:take]))
            words = words[take:]
    lines.append(_fit(" ".join(words), font, width))
    return lines


@dataclass(frozen=True, slots=True)
class _Header:
    """The title and subtitle, wrapped to the chart's width."""

    title: list[str]
    subtitle: list[str]

    @classmethod
    def of(cls, title: str, subtitle: str) -> _Header:
        width = WIDTH - 2 * _MARGIN
        return cls(
            _wrap(title, _font(TITLE_SIZE, bold=True), width),
            _wrap(subtitle, _font(SUBTITLE_SIZE), width),
        )

    @property
    def height(self) -> int:
        extra = (len(self.title) - 1) * _TITLE_LINE + (len(self.subtitle) - 1) * _SUBTITLE_LINE
        return HEADER + extra

    def draw(self, canvas: _Canvas) -> None:
        big, small = _font(TITLE_SIZE, bold=True), _font(SUBTITLE_SIZE)
        for k, line in enumerate(self.title):
            canvas.text((_MARGIN, _TITLE_Y + k * _TITLE_LINE), line, big, TEXT)
        below = _TITLE_Y + (len(self.title) - 1) * _TITLE_LINE + _SUBTITLE_BELOW
        for k, line in enumerate(self.subtitle):
            canvas.text((_MARGIN, below + k * _SUBTITLE_LINE), line, small, MUTED)


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

    def ticks(self) -> list[float]:
        """The ratings that get a grid line and a label."""
        return [
            self.low + k * self.step for k in range(round((self.high - self.low) / self.step) + 1)
        ]


def _axis(rows: Sequence[LeaderboardRow]) -> _Axis:
    """A padded rating range covering the ranked ratings and intervals, and a round tick step."""
    values = [v for r in rows for v in (r.low, r.high, r.rating) if v is not None]
    low, high = min(values, default=BASE_RATING), max(values, default=BASE_RATING)
    low, high = min(low, BASE_RATING), max(high, BASE_RATING)  # the 1000 baseline is always in view
    pad = max((high - low) * 0.08, 10.0)
    low, high = low - pad, high + pad
    # At most six steps: each label needs ~60 px at 1x to stay apart when halved.
    step = next((s for s in _TICK_STEPS if (high - low) / s <= 6), _TICK_STEPS[-1])
    return _Axis(math.floor(low / step) * step, math.ceil(high / step) * step, float(step))


def _subtitle(board: Leaderboard) -> str:
    votes = f"{board.votes:,} vote{'' if board.votes == 1 else 's'}"
    if board.blind_only:
        votes += ", blind only"
    elif board.blind_votes:
        votes += f" ({board.blind_votes:,} blind)"
    return f"Bradley–Terry ratings · {board.level:.0%} intervals · {votes}"


def chart_height(board: Leaderboard, title: str) -> int:
    """The height in pixels of ``leaderboard_chart(board, title=title)``."""
    if not board.ranked:
        return _progress_height(board, _progress_header(board, title))
    return _ranked_height(board, _Header.of(title, _subtitle(board)))


def _ranked_height(board: Leaderboard, header: _Header) -> int:
    gap = UNRANKED_GAP if board.unranked else 0
    return header.height + ROW * len(board.rows) + gap + FOOTER


def leaderboard_chart(board: Leaderboard, *, title: str) -> bytes:
    """The leaderboard as a PNG, 800 px wide; a progress card when nothing is ranked yet."""
    if not board.ranked:
        return _progress_card(board, _progress_header(board, title))
    header = _Header.of(title, _subtitle(board))
    rows, ranked_count = board.rows, len(board.ranked)
    gap = UNRANKED_GAP if board.unranked else 0

    def top_of(n: int) -> float:
        return header.height + n * ROW + (gap if n >= ranked_count else 0)

    bottom = top_of(len(rows))
    canvas = _Canvas(_ranked_height(board, header))
    header.draw(canvas)
    axis = _axis(board.ranked)
    for n, row in enumerate(rows):
        _draw_row(canvas, row, n, top_of(n), axis, board.min_votes)
    small = _font(DETAIL_SIZE)
    if board.unranked:
        y = top_of(ranked_count) - gap / 2
        note = f"Not ranked yet — fewer than {_kind(board)}"
        canvas.text((_MARGIN, y), note, small, MUTED)
        canvas.line([(_MARGIN + _width(note, small) + 16, y), (_CARD_R, y)], GRID, 1)
    for tick in axis.ticks():
        canvas.text((axis.x(tick), bottom + 20), f"{tick:,.0f}", small, MUTED, "mm")
    for k, note in enumerate(_NOTES):
        canvas.text(
            (_MARGIN, bottom + 56 + k * _NOTE_LINE),
            _fit(note, small, WIDTH - 2 * _MARGIN),
            small,
            MUTED,
        )
    return canvas.png()


def _draw_row(
    canvas: _Canvas, row: LeaderboardRow, n: int, top: float, axis: _Axis, min_votes: int
) -> None:
    """One model's card: badge, name, rating; its details; its interval bar with the dot."""
    colour = PALETTE[n % len(PALETTE)] if row.ranked else MUTED
    strong = TEXT if row.ranked else MUTED
    canvas.rect((_CARD_L, top + 4, _CARD_R, top + ROW - 4), STRIPE, radius=12)
    y1, y2, bar = top + _LINE1, top + _LINE2, top + _BAR
    _badge(canvas, n + 1 if row.ranked else None, colour, y1)

    # The rating, right-aligned: the number bold, its margin muted beside it.
    rating_left = float(_RIGHT)
    if row.rating is None:
        rating_left -= _width("no rating yet", _font(DETAIL_SIZE))
        canvas.text((_RIGHT, y1), "no rating yet", _font(DETAIL_SIZE), MUTED, "rm")
    else:
        number, margin_font = _font(NAME_SIZE, bold=True), _font(DETAIL_SIZE, bold=True)
        margin_text = row.margin_text()
        canvas.text((_RIGHT, y1 + 2), margin_text, margin_font, MUTED, "rm")
        rating_left -= _width(margin_text, margin_font) + 8
        canvas.text((rating_left, y1), f"{row.rating:,.0f}", number, strong, "rm")
        rating_left -= _width(f"{row.rating:,.0f}", number)
    name_font = _font(NAME_SIZE, bold=True)
    name = _fit(row.label, name_font, rating_left - 20 - _NAME_X)
    canvas.text((_NAME_X, y1), name, name_font, strong)
    canvas.text((_NAME_X, y2), _details(row, min_votes), _font(DETAIL_SIZE), MUTED)

    for tick in axis.ticks():
        on_base = tick == BASE_RATING
        x = axis.x(tick)
        canvas.line(
            [(x, bar - 10), (x, bar + 10)], BASELINE if on_base else GRID, 2 if on_base else 1
        )
    if row.rating is None:
        return
    if row.low is not None and row.high is not None:
        canvas.line([(axis.x(row.low), bar), (axis.x(row.high), bar)], colour, 8)
        for end in (row.low, row.high):
            if axis.shows(end):  # a bar running off the plot has no end cap
                canvas.line([(axis.x(end), bar - 11), (axis.x(end), bar + 11)], colour, 3)
    if axis.shows(row.rating):
        # Unranked models get a hollow dot: a rating, but not one to trust yet.
        canvas.dot(axis.x(row.rating), bar, 10, colour if row.ranked else STRIPE, strong, 3)
    else:
        canvas.arrow(axis.x(row.rating), bar, 1 if row.rating > axis.high else -1, strong)


def _badge(canvas: _Canvas, rank: int | None, colour: Colour, y: float) -> None:
    """The rank in a disc of the row's colour; an empty ring for an unranked model."""
    if rank is None:
        canvas.dot(_BADGE_X, y, _BADGE_R - 1, None, GRID, 2)
        return
    canvas.dot(_BADGE_X, y, _BADGE_R, colour, colour, 1)
    light = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150
    size = 20 if rank < 10 else 16
    canvas.text((_BADGE_X, y), str(rank), _font(size, bold=True), ON_LIGHT if light else TEXT, "mm")


def _details(row: LeaderboardRow, min_votes: int) -> str:
    if not row.ranked:
        return f"{votes_noun(row.votes)}, needs {min_votes}"
    parts = [f"{row.votes:,} vote{'' if row.votes == 1 else 's'}"]
    if row.win_rate is not None:
        parts.append(f"{row.win_rate:.0%} won")
    if row.credits_per_win is not None:
        parts.append(f"{row.credits_per_win:,.0f} cr/win")
    if not row.interval_known:
        parts.append("no interval yet")
    return " · ".join(parts)


def _kind(board: Leaderboard) -> str:
    """ "5 votes", "1 blind vote": the threshold with its noun."""
    return votes_noun(board.min_votes, blind=board.blind_only)


# ------------------------------------------------------------------ the progress card
def _progress_header(board: Leaderboard, title: str) -> _Header:
    return _Header.of(title, f"Ratings appear once a model has {_kind(board)}.")


def _progress_height(board: Leaderboard, header: _Header) -> int:
    return header.height + PROGRESS_TOP + PROGRESS_ROW * max(len(board.rows), 1) + PROGRESS_FOOTER


def _progress_card(board: Leaderboard, header: _Header) -> bytes:
    rows = board.rows
    canvas = _Canvas(_progress_height(board, header))
    header.draw(canvas)
    top = header.height + PROGRESS_TOP
    canvas.text((_MARGIN, top - 28), "Not enough votes yet", _font(NAME_SIZE, bold=True), TEXT)
    left = _CARD_L + 24
    if not rows:
        hint = (
            "React to a result with the winner's letter, the handshake for a tie, or thumbs down."
        )
        small = _font(DETAIL_SIZE)
        canvas.rect((_CARD_L, top + 4, _CARD_R, top + PROGRESS_ROW - 4), STRIPE, radius=12)
        for k, line in enumerate(_wrap(hint, small, _RIGHT - left)):
            canvas.text((left, top + 26 + k * _NOTE_LINE), line, small, MUTED)
    name_font, count_font = _font(NAME_SIZE, bold=True), _font(DETAIL_SIZE)
    for n, row in enumerate(rows):
        y = top + n * PROGRESS_ROW
        canvas.rect((_CARD_L, y + 4, _CARD_R, y + PROGRESS_ROW - 4), STRIPE, radius=12)
        count = f"{row.votes} of {_kind(board)}"
        canvas.text((_RIGHT, y + 28), count, count_font, MUTED, "rm")
        room = _RIGHT - _width(count, count_font) - 20 - left
        canvas.text((left, y + 28), _fit(row.label, name_font, room), name_font, TEXT)
        share = min(row.votes / max(board.min_votes, 1), 1.0)
        bar = (left, y + 52, _RIGHT, y + 64)
        canvas.rect(bar, GRID, radius=6)
        if share > 0:
            canvas.rect(
                (left, bar[1], left + max(share * (_RIGHT - left), 12), bar[3]),
                PALETTE[0],
                radius=6,
            )
    return canvas.png()
