"""The leaderboard chart: a real PNG of the promised size with each row's bar where it belongs."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from bot.chart import (
    _PLOT_L,
    _PLOT_R,
    BACKGROUND,
    FOOTER,
    HEADER,
    PALETTE,
    ROW,
    TEXT,
    WIDTH,
    leaderboard_chart,
)
from bot.leaderboard import Leaderboard, leaderboard
from bot.ratings import LETTERS, ComparisonVotes, PanelFacts

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


def board(count: int = 400, *, min_votes: int = 5, extra: tuple[str, ...] = ()) -> Leaderboard:
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
    return leaderboard(comparisons, min_votes=min_votes, rounds=50, use_case="portrait")


def render(b: Leaderboard) -> Image.Image:
    data = leaderboard_chart(b, title="Portrait leaderboard")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def close_to(pixel: object, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def xs_of(image: Image.Image, colour: tuple[int, int, int], top: int, bottom: int) -> list[int]:
    """Columns inside the plot where ``colour`` appears between rows ``top`` and ``bottom``."""
    pixels = image.load()
    assert pixels is not None
    return [
        x
        for x in range(_PLOT_L - 5, _PLOT_R + 5)
        if any(close_to(pixels[x, y], colour) for y in range(top, bottom, 2))
    ]


def test_chart_has_the_promised_size_and_a_dark_background() -> None:
    b = board()
    image = render(b)
    assert image.size == (WIDTH, HEADER + ROW * len(b.rows) + FOOTER)
    assert close_to(image.getpixel((4, 4)), BACKGROUND, 0)


def test_each_row_draws_its_bar_where_its_rating_puts_it() -> None:
    b = board()
    image = render(b)
    assert [row.model_id for row in b.ranked] == list(STRENGTH)
    centres = []
    for n, row in enumerate(b.ranked):
        xs = xs_of(image, PALETTE[n], HEADER + n * ROW + 8, HEADER + (n + 1) * ROW - 8)
        assert len(xs) > 20, row.model_id  # an interval bar, not a stray pixel
        centres.append(sum(xs) / len(xs))
    assert centres == sorted(centres, reverse=True)  # the strongest model sits furthest right


def test_names_and_numbers_are_written_and_long_names_stop_before_the_plot() -> None:
    b = board()
    image = render(b)
    pixels = image.load()
    assert pixels is not None
    for n in range(len(b.rows)):
        top, bottom = HEADER + n * ROW + 6, HEADER + (n + 1) * ROW - 6

        def bright(x0: int, x1: int, top: int = top, bottom: int = bottom) -> int:
            return sum(
                close_to(pixels[x, y], TEXT, 40) for x in range(x0, x1) for y in range(top, bottom)
            )

        assert bright(76, 300) > 100  # the model's name
        assert bright(912, 1180) > 100  # its rating and details
        assert bright(_PLOT_L - 18, _PLOT_L - 4) == 0  # names are cut short with an ellipsis


def test_unranked_models_follow_below_a_note() -> None:
    b = board(extra=("newcomer",))
    assert b.rows[-1].model_id == "newcomer" and not b.rows[-1].ranked
    image = render(b)
    assert image.size == (WIDTH, HEADER + ROW * len(b.rows) + ROW // 2 + FOOTER)


def test_not_enough_votes_gives_a_progress_card() -> None:
    b = board(count=6, min_votes=50)
    assert not b.ranked
    image = render(b)
    assert image.width == WIDTH and image.height < HEADER + 70 + ROW * len(b.rows) + 40
    lengths = [
        len(xs_of(image, PALETTE[0], HEADER + 70 + n * ROW + 20, HEADER + 70 + (n + 1) * ROW - 20))
        for n in range(len(b.rows))
    ]
    votes = [row.votes for row in b.rows]
    assert votes == sorted(votes, reverse=True)
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > 0


@pytest.mark.parametrize("count", [0, 1])
def test_empty_and_tiny_boards_still_render(count: int) -> None:
    empty = leaderboard([], min_votes=5)
    assert render(empty).width == WIDTH
    assert render(board(count=count * 30, min_votes=1)).width == WIDTH


def test_the_same_board_draws_the_same_bytes() -> None:
    b = board()
    assert leaderboard_chart(b, title="x") == leaderboard_chart(b, title="x")
