"""Voting on Discord as pure functions: the closed result, the close announcement, the leaderboard.

Nothing here talks to Discord or the database. The closed result is the ordinary result embed
(:func:`bot.render.embed.result_embed`) rebuilt from the stored comparison with its vote tally;
the leaderboard embed shows the table as monospace text beside the chart image
(:func:`bot.voting.chart.leaderboard_chart`), which the embed shows through ``attachment://``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import discord

from bot.comparisons.view import view_from_record
from bot.render.embed import (
    COLOUR_INFO,
    attachment_url,
    code_block,
    cut,
    fit_embed,
    result_embed,
)
from bot.voting.leaderboard import votes_noun
from bot.voting.rules import OPTION_EMOJI, CloseResult, Tally, seed_emojis

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.comparisons.records import ComparisonRecord
    from bot.measure.store import TextRecord
    from bot.voting.leaderboard import Leaderboard, LeaderboardRow

#: the widest model name in the tables before it is cut; the tables stay under ~45 characters,
#: which an embed shows without wrapping on desktop and most phones
NAME_WIDTH = 18
#: how a stand-in's label ends (bot.comparisons.service's Panel.label); the tables star it instead
DEMO_SUFFIX = " · demo"
DEMO_STAR = "*"
DASH = "—"
DEMO_TITLE = "demo stand-ins"
TEXT_NOTE = (
    "Text: mean measured text accuracy (images read) when prompts quoted text — read back by "
    "OCR, not voted."
)
DEMO_NOTE = "⚠️ Counts votes on **demo stand-ins** — pictures drawn offline, not real model output."
COMMUNITY_FOOTER = "Community results: this server's votes, not editorial ratings"


# -------------------------------------------------------------------- the result
def closed_result_embed(
    record: ComparisonRecord,
    tally: Tally,
    catalog: Catalog,
    *,
    image_url: str | None,
    community: Sequence[str] = (),
) -> discord.Embed:
    """The result message once voting closed: winner, counts, and model names for a blind one."""
    card = view_from_record(
        record,
        catalog,
        reveal=True,
        image_url=image_url,
        vote_headline=tally.headline(reveal=True),
        vote_lines=tally.lines(reveal=True),
        community=community,
    )
    embed: discord.Embed = result_embed(card)  # bot.render.embed is typed loosely
    return embed


def reveal_line(tally: Tally) -> str:
    """ "🇦 GPT-Image 2 · 🇧 Nano Banana Pro": which model drew which panel."""
    return " · ".join(f"{OPTION_EMOJI[p.letter]} {p.label}" for p in tally.panels)


def close_announcement(result: CloseResult) -> str:
    """The short reply under a result whose voting just closed."""
    tally = result.tally
    who = (
        "Voting has closed" if result.closed_by is None else f"<@{result.closed_by}> closed voting"
    )
    lines = [f"🏁 {who}: {tally.headline(reveal=True)}"]
    if tally.blind:
        lines.append(f"🙈 Revealed: {reveal_line(tally)}.")
    return "\n".join(lines)


def vote_hint(panel_count: int = 4) -> str:
    """How to vote, in one line."""
    letters = " ".join(seed_emojis(panel_count)[:-2])
    return (
        f"React to a result with {letters} for the better image, "
        f"{OPTION_EMOJI['tie']} for a tie or {OPTION_EMOJI['bad']} when none works."
    )


# --------------------------------------------------------------------- leaderboard
def leaderboard_title(use_case_name: str | None, *, demo: bool) -> str:
    """ "Portrait leaderboard", or "Leaderboard — all use cases", marked when demo votes count."""
    title = f"{use_case_name} leaderboard" if use_case_name else "Leaderboard — all use cases"
    return f"{title} · {DEMO_TITLE}" if demo else title


def _name(row: LeaderboardRow) -> str:
    label = row.label
    if label.endswith(DEMO_SUFFIX):
        label = label.removesuffix(DEMO_SUFFIX) + DEMO_STAR
    name: str = cut(label, NAME_WIDTH)
    return name


def _has_stand_ins(board: Leaderboard) -> bool:
    return any(row.label.endswith(DEMO_SUFFIX) for row in board.rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """Columns padded to their widest cell; numbers aligned right, names left."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(w) if align else cell.ljust(w)
            for cell, w, align in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def ratings_table(board: Leaderboard, text: Mapping[str, TextRecord] | None = None) -> str:
    """Rank, model, rating ± half-interval (or what it needs), votes and win rate.

    With ``text`` (mean measured text accuracy per model), a "Text" column follows the rating.
    """
    rows = []
    for rank, row in enumerate(board.rows, start=1):
        rating = row.rating_text()
        if row.ranked and rating is not None:
            cells = [str(rank), _name(row), rating, f"{row.votes:,}", _percent(row.win_rate)]
        else:
            votes = f"{row.votes}/{board.min_votes}"
            cells = [DASH, _name(row), "not ranked", votes, _percent(row.win_rate)]
        if text:
            record = text.get(row.model_id)
            cells.insert(3, DASH if record is None else record.text())
        rows.append(cells)
    header = ["#", "Model", "Rating", "Votes", "Won"]
    right = [True, False, True, True, True]
    if text:
        header.insert(3, "Text")
        right.insert(3, True)
    return _table(header, rows, right)


def cost_table(board: Leaderboard) -> str:
    """Credits per won vote, median generation time and refusal rate per model."""
    rows = [
        [
            _name(row),
            DASH if row.credits_per_win is None else f"{row.credits_per_win:,.1f}",
            DASH if row.median_seconds is None else f"{row.median_seconds:.1f} s",
            _percent(row.refusal_rate),
        ]
        for row in board.rows
    ]
    return _table(["Model", "cr/win", "Median", "Refused"], rows, [False, True, True, True])


def _percent(share: float | None) -> str:
    return DASH if share is None else f"{share:.0%}"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _summary(board: Leaderboard) -> str:
    votes = _plural(board.votes, "vote")
    if board.blind_only:
        votes += " (blind comparisons only)"
    elif board.blind_votes:
        votes += f" ({board.blind_votes:,} blind)"
    text = (
        f"Bradley–Terry ratings from {votes} on {_plural(board.comparisons, 'comparison')}, "
        f"with {board.level:.0%} intervals, ranked by the interval's low end. "
        "1,000 is this server's average."
    )
    if any(row.ranked and not row.interval_known for row in board.rows):
        text += (
            " A rating without a ± margin needs votes on more comparisons before its "
            "uncertainty can be measured."
        )
    if board.unranked:
        fewer = votes_noun(board.min_votes, blind=board.blind_only)
        text += f" Models with fewer than {fewer} are listed without a rank."
    if board.all_bad_votes:
        bad = _plural(board.all_bad_votes, "all-bad vote")
        text += f" {OPTION_EMOJI['bad']} {bad} rate no model and are not counted here."
    return text


def leaderboard_embed(
    board: Leaderboard,
    *,
    title: str,
    chart_filename: str,
    demo: bool,
    text: Mapping[str, TextRecord] | None = None,
) -> discord.Embed:
    """The leaderboard: a sentence, the ratings and cost tables, and the chart image.

    ``text`` adds each model's mean measured text accuracy beside its rating.
    """
    description = []
    if demo:
        description.append(DEMO_NOTE)
    sentence = board.not_enough_votes()
    description.append(sentence if sentence is not None else _summary(board))
    if sentence is not None:
        description.append(vote_hint())
    embed = discord.Embed(title=title, description="\n\n".join(description), colour=COLOUR_INFO)
    if board.rows:
        ratings = code_block(ratings_table(board, text))
        if text:
            ratings += f"\n{TEXT_NOTE}"
        embed.add_field(name="Ratings", value=ratings, inline=False)
        embed.add_field(
            name="Cost, speed and refusals", value=code_block(cost_table(board)), inline=False
        )
    footer = COMMUNITY_FOOTER + (f" · includes {DEMO_TITLE}" if demo else "")
    if _has_stand_ins(board):
        footer += f" · {DEMO_STAR} demo stand-in"
    embed.set_footer(text=footer)
    embed.set_image(url=attachment_url(chart_filename))
    fitted: discord.Embed = fit_embed(embed)
    return fitted
