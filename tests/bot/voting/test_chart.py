"""The leaderboard chart: a real PNG of the promised size, each bar where it belongs, readable
when Discord shows it 400 px wide."""

from __future__ import annotations

import io
import itertools
import random

import pytest
from PIL import Image

from bot.voting.chart import (
    _BAR,
    _LINE1,
    _LINE2,
    _NAME_X,
    _PLOT_L,
    _PLOT_R,
    _RIGHT,
    BACKGROUND,
    FOOTER,
    HEADER,
    MUTED,
    PALETTE,
    PROGRESS_FOOTER,
    PROGRESS_ROW,
    PROGRESS_TOP,
    ROW,
    STRIPE,
    TEXT,
    UNRANKED_GAP,
    WIDTH,
    _axis,
    chart_height,
    leaderboard_chart,
)
from bot.voting.leaderboard import Leaderboard, leaderboard
from bot.voting.ratings import LETTERS, ComparisonVotes, PanelFacts

STRENGTH = {
    "gpt-image-2": 1150,
    "nano-banana-pro": 1050,
    "nano-banana-2": 950,
    "gpt-image-1.5": 850,
}
NAMES = {
    "gpt-image-2": "GPT-Image 2",
    "nano-banana-pro": "Nano Banana Pro",
    "nano-banana-2": "Nano Banana 2",
    "gpt-image-1.5": "GPT-Image 1.5 with a name far too long to fit in its column",
}
Colour = tuple[int, int, int]
# Discord shows an embed image at most this wide.
DISCORD_WIDTH = 400


def board(
    count: int = 400,
    *,
    min_votes: int = 5,
    extra: tuple[str, ...] = (),
    more: tuple[ComparisonVotes, ...] = (),
) -> Leaderboard:
    rng = random.Random(4)
    models = list(STRENGTH)
    comparisons = []
    for n in range(count):
        pair = rng.sample(models, 2)
        odds = [10 ** (STRENGTH[m] / 400) for m in pair]
        panels = tuple(
            PanelFacts(letter, m, NAMES[m], "ok", 12.0, 8)
            for letter, m in zip(LETTERS, pair, strict=False)
        )
        choice = rng.choices("AB", weights=odds)[0]
        comparisons.append(ComparisonVotes(str(n), n % 3 == 0, panels, (choice,)))
    for model in extra:  # a newcomer with one vote, below any threshold
        facts = (
            PanelFacts("A", model, model, "ok"),
            PanelFacts("B", models[0], NAMES[models[0]], "ok"),
        )
        comparisons.append(ComparisonVotes(model, False, facts, ("A",)))
    comparisons.extend(more)
    return leaderboard(comparisons, min_votes=min_votes, rounds=50, use_case="portrait")


def duel(id: str, newcomer: str, rival: str, *choices: str) -> ComparisonVotes:
    """One comparison of ``newcomer`` (panel A) against a model of the test board (panel B)."""
    facts = (PanelFacts("A", newcomer, newcomer, "ok"), PanelFacts("B", rival, NAMES[rival], "ok"))
    return ComparisonVotes(id, False, facts, choices)


def render(b: Leaderboard, title: str = "Portrait leaderboard") -> Image.Image:
    data = leaderboard_chart(b, title=title)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def close_to(pixel: object, colour: Colour, tolerance: int = 12) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def xs_of(image: Image.Image, colour: Colour, top: float, bottom: float) -> list[int]:
    """Columns around the plot where ``colour`` appears between rows ``top`` and ``bottom``."""
    pixels = image.load()
    assert pixels is not None
    return [
        x
        for x in range(_PLOT_L - 12, _PLOT_R + 12)
        if any(close_to(pixels[x, y], colour) for y in range(round(top), round(bottom)))
    ]


def top_of(b: Leaderboard, n: int, header: int = HEADER) -> int:
    """The top of row ``n``'s card: unranked cards sit below the "Not ranked yet" divider."""
    return header + n * ROW + (UNRANKED_GAP if n >= len(b.ranked) and b.unranked else 0)


def ink(
    image: Image.Image, box: tuple[int, int, int, int], ground: Colour, colour: Colour
) -> list[int]:
    """The rows of ``box`` holding ``colour`` drawn on ``ground``: at least 40% of the way there.

    Anti-aliasing blurs glyph edges; counting a pixel once it is 40% of the way from the
    ground to the ink keeps the height of a letter as a reader sees it.
    """
    pixels = image.load()
    assert pixels is not None
    full = max(abs(a - b) for a, b in zip(colour, ground, strict=True))
    x0, y0, x1, y1 = box
    return [
        y
        for y in range(y0, y1)
        if any(
            max(abs(a - b) for a, b in zip(pixels[x, y], ground, strict=True)) >= 0.4 * full
            for x in range(x0, x1)
        )
    ]


def height(rows: list[int]) -> int:
    return rows[-1] - rows[0] + 1 if rows else 0


def test_chart_has_the_promised_size_and_a_dark_background() -> None:
    b = board()
    image = render(b)
    assert image.size == (WIDTH, HEADER + ROW * len(b.rows) + FOOTER)
    assert image.height == chart_height(b, "Portrait leaderboard")
    assert close_to(image.getpixel((4, 4)), BACKGROUND, 0)
    assert close_to(image.getpixel((WIDTH // 2, HEADER + ROW // 2 - 20)), STRIPE, 0), "a card"


def test_each_row_draws_its_bar_where_its_rating_puts_it() -> None:
    b = board()
    image = render(b)
    axis = _axis(b.ranked)
    assert [row.model_id for row in b.ranked] == list(STRENGTH)
    centres = []
    for n, row in enumerate(b.ranked):
        bar = top_of(b, n) + _BAR
        xs = xs_of(image, PALETTE[n], bar - 12, bar + 12)
        assert row.low is not None and row.high is not None
        # The bar runs from the interval's low end to its high end, end caps included.
        assert abs(min(xs) - axis.x(row.low)) <= 3, row.model_id
        assert abs(max(xs) - axis.x(row.high)) <= 3, row.model_id
        assert len(xs) > 40, row.model_id  # an interval bar, not a stray pixel
        centres.append(sum(xs) / len(xs))
    assert centres == sorted(centres, reverse=True)  # the strongest model sits furthest right


def test_names_ratings_and_details_are_written_and_long_names_stop_short() -> None:
    b = board()
    image = render(b)
    for n in range(len(b.rows)):
        top = top_of(b, n)
        line1 = (top + _LINE1 - 14, top + _LINE1 + 14)
        line2 = (top + _LINE2 - 11, top + _LINE2 + 11)
        name = ink(image, (_NAME_X, line1[0], _NAME_X + 120, line1[1]), STRIPE, TEXT)
        rating = ink(image, (_RIGHT - 160, line1[0], _RIGHT - 60, line1[1]), STRIPE, TEXT)
        details = ink(image, (_NAME_X, line2[0], _NAME_X + 200, line2[1]), STRIPE, MUTED)
        assert height(name) >= 18 and height(rating) >= 18 and height(details) >= 14, n
    # The long name is cut with an ellipsis before it reaches the rating: a clear gap remains.
    long_row = top_of(b, 3) + _LINE1
    pixels = image.load()
    assert pixels is not None
    lit = [
        x
        for x in range(_NAME_X, _RIGHT)
        if any(close_to(pixels[x, y], TEXT, 60) for y in range(long_row - 12, long_row + 12))
    ]
    gaps = [right - left for left, right in itertools.pairwise(lit)]
    assert max(gaps) >= 16, "the name runs into the rating"
    assert max(lit) >= _RIGHT - 100, "the rating sits at the right"
    margin = ink(image, (_RIGHT - 12, long_row - 12, _RIGHT, long_row + 12), STRIPE, MUTED)
    assert height(margin) >= 14, "its margin, muted, ends at the right edge"


def test_a_chart_stays_readable_at_discord_s_400_px() -> None:
    b = board()
    # Capitals without descenders: the ink's height is the cap height.
    image = render(b, title="HIGH SCORES")
    scale = DISCORD_WIDTH / WIDTH
    small = image.resize((DISCORD_WIDTH, round(image.height * scale)), Image.Resampling.LANCZOS)
    title = ink(small, (0, 0, DISCORD_WIDTH, round(HEADER * scale * 0.5)), BACKGROUND, TEXT)
    assert height(title) >= 12, "the title's capitals are under 12 px tall at 400 px wide"
    # The first name's "G" and the first details line's "1" (of "1xx votes"), in the first card.
    top = top_of(b, 0) * scale
    name_band = (round(_NAME_X * scale), round(top + 4), round(_NAME_X * scale) + 9)
    name = ink(small, (name_band[0], name_band[1], name_band[2], round(top + 22)), STRIPE, TEXT)
    assert height(name) >= 9, "model names' capitals are under 9 px tall at 400 px wide"
    details_top, details_bottom = (
        round(top + (_LINE2 - 9) * scale),
        round(top + (_LINE2 + 9) * scale),
    )
    digits = ink(small, (name_band[0], details_top, name_band[2], details_bottom), STRIPE, MUTED)
    assert height(digits) >= 7, "the details' digits are under 7 px tall at 400 px wide"


def test_unranked_models_follow_below_a_note_with_hollow_dots() -> None:
    # A newcomer with a win and a loss against a middling model: rated inside the plot.
    b = board(
        more=(
            duel("n1", "newcomer", "nano-banana-2", "A"),
            duel("n2", "newcomer", "nano-banana-2", "B"),
        )
    )
    newcomer = b.rows[-1]
    assert newcomer.model_id == "newcomer" and not newcomer.ranked
    assert newcomer.rating is not None and newcomer.interval_known
    image = render(b)
    assert image.size == (WIDTH, HEADER + ROW * len(b.rows) + UNRANKED_GAP + FOOTER)
    axis = _axis(b.ranked)
    assert axis.shows(newcomer.rating)
    x, y = round(axis.x(newcomer.rating)), top_of(b, len(b.rows) - 1) + _BAR
    assert close_to(image.getpixel((x, y)), STRIPE, 16), "the unranked dot is hollow"
    assert close_to(image.getpixel((x + 9, y)), MUTED, 40), "with a muted ring"
    assert not xs_of(image, PALETTE[len(b.ranked)], y - 12, y + 12), "and no palette colour"


def test_a_rating_beyond_the_plot_gets_an_arrow_at_its_edge() -> None:
    b = board(
        more=(
            duel("n1", "loser", "gpt-image-1.5", "B", "B"),
            duel("n2", "loser", "gpt-image-1.5", "B"),
        )
    )
    loser = b.rows[-1]
    assert loser.model_id == "loser" and loser.rating is not None
    axis = _axis(b.ranked)
    assert loser.rating < axis.low
    image = render(b)
    y = top_of(b, len(b.rows) - 1) + _BAR
    pixels = image.load()
    assert pixels is not None
    on_line = [x for x in range(_PLOT_L - 12, _PLOT_L + 12) if close_to(pixels[x, y], MUTED, 30)]
    assert min(on_line) <= _PLOT_L - 6, "a tip pointing left, past the plot's edge"
    # The arrow is taller than the bar (8 px): muted well above and below the bar's line.
    for dy in (-7, 7):
        assert any(close_to(pixels[x, y + dy], MUTED, 30) for x in range(_PLOT_L, _PLOT_L + 12))
        assert not any(
            close_to(pixels[x, y + dy], MUTED, 30) for x in range(_PLOT_L + 40, _PLOT_L + 80)
        ), "away from the arrow, the bar is thinner"


def test_an_unknown_interval_draws_a_dot_without_a_bar() -> None:
    b = board(min_votes=1, extra=("newcomer",))  # one comparison: ranked, interval unknown
    row = b.ranked[-1]
    assert row.model_id == "newcomer" and not row.interval_known and row.rating is not None
    image = render(b)
    n = len(b.ranked) - 1
    bar = top_of(b, n) + _BAR
    xs = xs_of(image, PALETTE[n], bar - 12, bar + 12)
    assert 0 < len(xs) <= 24, "a dot, no bar"
    assert abs(sum(xs) / len(xs) - _axis(b.ranked).x(row.rating)) <= 2


def test_a_long_title_wraps_and_keeps_its_demo_marker() -> None:
    b = board()
    image = render(b, title="Poster / typography leaderboard · demo stand-ins")
    assert image.height == chart_height(b, "Poster / typography leaderboard · demo stand-ins")
    assert image.height == HEADER + 44 + ROW * len(b.rows) + FOOTER, "one more title line"
    second_line = ink(image, (24, 70, 300, 106), BACKGROUND, TEXT)
    assert height(second_line) >= 20, "the second title line is drawn"


def test_not_enough_votes_gives_a_progress_card() -> None:
    b = board(count=6, min_votes=50)
    assert not b.ranked
    image = render(b)
    top = HEADER + PROGRESS_TOP
    assert image.size == (WIDTH, top + PROGRESS_ROW * len(b.rows) + PROGRESS_FOOTER)
    lengths = [
        len(xs_of(image, PALETTE[0], top + n * PROGRESS_ROW + 52, top + n * PROGRESS_ROW + 64))
        for n in range(len(b.rows))
    ]
    votes = [row.votes for row in b.rows]
    assert votes == sorted(votes, reverse=True)
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > 0


@pytest.mark.parametrize("count", [0, 1])
def test_empty_and_tiny_boards_still_render(count: int) -> None:
    empty = leaderboard([], min_votes=5)
    assert render(empty).size == (WIDTH, HEADER + PROGRESS_TOP + PROGRESS_ROW + PROGRESS_FOOTER)
    assert render(board(count=count * 30, min_votes=1)).width == WIDTH


def test_the_same_board_draws_the_same_bytes() -> None:
    b = board()
    assert leaderboard_chart(b, title="x") == leaderboard_chart(b, title="x")
