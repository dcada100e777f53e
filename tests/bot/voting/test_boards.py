"""Fitted boards are cached per server and refit only after something they read changed.

Fits are counted through ``VoteStore(fit=...)``, never by timing: a second lookup must not
refit, any write a board reads must, and community lines must never run the bootstrap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from bot.comparisons.records import mark_deleted
from bot.db import Database
from bot.guild_settings import GuildSettings
from bot.voting.leaderboard import Leaderboard, leaderboard
from bot.voting.ratings import ComparisonVotes
from bot.voting.store import BOOTSTRAP_ROUNDS, VoteStore
from tests.bot.voting.test_store import GUILD, Clock, add_comparison, react

SETTINGS = GuildSettings(min_votes_to_rank=1, exclude_requester_votes=False)
MODELS = ["gpt-image-2", "nano-banana-pro"]


@dataclass
class CountingFit:
    """The real ``leaderboard`` fit, recording the (guild-less) arguments of every call."""

    calls: list[dict[str, object]] = field(default_factory=list)

    def __call__(
        self,
        comparisons: Iterable[ComparisonVotes],
        *,
        min_votes: int,
        blind_only: bool,
        use_case: str | None,
        rounds: int,
        seed: int,
    ) -> Leaderboard:
        self.calls.append({"use_case": use_case, "rounds": rounds, "blind_only": blind_only})
        return leaderboard(
            comparisons,
            min_votes=min_votes,
            blind_only=blind_only,
            use_case=use_case,
            rounds=rounds,
            seed=seed,
        )

    @property
    def rounds(self) -> list[object]:
        return [call["rounds"] for call in self.calls]


@pytest.fixture
def fit() -> CountingFit:
    return CountingFit()


@pytest.fixture
def store(db: Database, fit: CountingFit) -> VoteStore:
    return VoteStore(db, clock=Clock(), fit=fit)


async def lines(store: VoteStore, guild: int = GUILD) -> list[str]:
    return await store.community_lines(
        guild, "portrait", MODELS, SETTINGS, use_case_name="portrait"
    )


async def test_a_second_community_lookup_does_not_refit(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    await add_comparison(db, "c1", message=1)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)

    first = await lines(store)
    second = await lines(store)

    row = (await store.standings(GUILD, "portrait", SETTINGS)).row("gpt-image-2")
    assert row is not None and row.rating is not None
    assert first == second
    assert (
        first[0]
        == f"In this server, GPT-Image 2 won 1 of 1 portrait votes (rating {row.rating:,.0f})"
    )
    assert fit.rounds == [0], "one fit, without bootstrap, for every lookup since the vote"


async def test_a_vote_a_switch_a_withdrawal_and_a_close_each_invalidate(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    await add_comparison(db, "c1", message=1)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)
    assert "won 1 of 1" in (await lines(store))[0]

    await store.handle_reaction(react("🇧", message=1), SETTINGS)  # switch
    assert "GPT-Image 2 won 0 of 1" in (await lines(store))[0]
    await store.handle_reaction(react("🇦", user=43, message=1), SETTINGS)  # a second voter
    assert "GPT-Image 2 won 1 of 2" in (await lines(store))[0]
    await store.handle_reaction(react("🇦", user=43, message=1, added=False), SETTINGS)
    assert "GPT-Image 2 won 0 of 1" in (await lines(store))[0]
    await store.close("c1", by=None)
    await lines(store)
    await lines(store)

    assert fit.rounds == [0] * 5, "one refit per change, none for the repeated lookup"


async def test_ignored_reactions_other_servers_and_message_ids_keep_the_cache(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    await add_comparison(db, "c1", message=1)
    await add_comparison(db, "elsewhere", message=2, guild=GUILD + 1)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)
    await lines(store)

    await store.handle_reaction(react("🔥", message=1), SETTINGS)  # not a vote
    await store.handle_reaction(react("🇦", message=2, guild=GUILD + 1), SETTINGS)
    await add_comparison(db, "elsewhere-2", message=3, guild=GUILD + 1)
    # Attaching a posted message to a stored comparison changes nothing a board reads.
    await db.execute("UPDATE comparisons SET message_id = 99 WHERE id = 'c1'")
    await lines(store)

    assert fit.rounds == [0]


async def test_deleting_or_adding_a_comparison_invalidates(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    await add_comparison(db, "c1", message=1)
    await add_comparison(db, "c2", message=2)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)
    await store.handle_reaction(react("🇦", message=2), SETTINGS)
    assert "won 2 of 2" in (await lines(store))[0]

    # The Delete button's path, which never goes through the vote store.
    assert await mark_deleted(db, "c2")
    assert "won 1 of 1" in (await lines(store))[0]
    # A new comparison changes what the leaderboard shows (its credits, its speed).
    await add_comparison(db, "c3", message=3)
    await lines(store)

    assert fit.rounds == [0, 0, 0]


async def test_community_lines_never_bootstrap_and_reuse_the_leaderboards_fit(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    for n in range(4):
        await add_comparison(db, f"c{n}", message=n + 1)
        await store.handle_reaction(react("🇦" if n else "🇧", message=n + 1), SETTINGS)

    points = await lines(store)
    board = await store.leaderboard(GUILD, "portrait", SETTINGS)
    assert board.has_intervals and board.row("gpt-image-2") is not None
    again = await store.leaderboard(GUILD, "portrait", SETTINGS)
    after = await lines(store)

    assert again is board
    assert after == points, "the same point ratings, with or without a bootstrap behind them"
    assert fit.rounds == [0, BOOTSTRAP_ROUNDS]


async def test_the_cache_is_keyed_by_use_case_demo_and_ranking_settings(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    await add_comparison(db, "c1", message=1)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)
    blind_only = GuildSettings(min_votes_to_rank=1, blind_only_ranking=True)

    for _ in range(2):
        await store.standings(GUILD, "portrait", SETTINGS)
        await store.standings(GUILD, None, SETTINGS)
        await store.standings(GUILD, "portrait", SETTINGS, include_demo=True)
        await store.standings(GUILD, "portrait", blind_only)

    assert fit.rounds == [0, 0, 0, 0]
    assert [call["use_case"] for call in fit.calls] == ["portrait", None, "portrait", "portrait"]
    assert [call["blind_only"] for call in fit.calls] == [False, False, False, True]


async def test_concurrent_lookups_share_one_fit(
    store: VoteStore, db: Database, fit: CountingFit
) -> None:
    await add_comparison(db, "c1", message=1)
    await store.handle_reaction(react("🇦", message=1), SETTINGS)

    results = await asyncio.gather(*(lines(store) for _ in range(5)))

    assert all(result == results[0] for result in results)
    assert fit.rounds == [0]


async def test_the_least_recently_used_board_is_dropped(db: Database, fit: CountingFit) -> None:
    store = VoteStore(db, clock=Clock(), fit=fit, max_cached_boards=2)
    await store.standings(GUILD, "portrait", SETTINGS)
    await store.standings(GUILD, "poster", SETTINGS)
    await store.standings(GUILD, "portrait", SETTINGS)  # cached, and now the most recent
    await store.standings(GUILD, "product", SETTINGS)  # evicts "poster"
    await store.standings(GUILD, "portrait", SETTINGS)
    await store.standings(GUILD, "poster", SETTINGS)

    assert [call["use_case"] for call in fit.calls] == ["portrait", "poster", "product", "poster"]
