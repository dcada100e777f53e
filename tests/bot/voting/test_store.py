"""Vote storage rules on both backends: the ladder, switching, closing, tallies, ratings."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.db import AnyDatabase
from bot.guild_settings import GuildSettings, update_guild_settings
from bot.voting.rules import ActiveVote, VoteTarget
from bot.voting.store import (
    ReactionEvent,
    VoteStore,
    choice_for,
    decide,
    may_close,
    seed_emojis,
    vote_deadline,
    winner_of,
)
from tests.pg import fetch, run_script, stamp

START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
GUILD, CHANNEL, MESSAGE, REQUESTER, MEMBER = 1, 10, 100, 7, 42
DEFAULTS = GuildSettings()
OPEN_TO_ALL = GuildSettings(exclude_requester_votes=False)
LABELS = {
    "gpt-image-2": "GPT-Image 2",
    "nano-banana-pro": "Nano Banana Pro",
    "nb2": "Nano Banana 2",
}

SQL_ADD_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, state, vote_deadline, created_at)
VALUES (?, ?, ?, ?, ?, 'a fox', ?, '1:1', 'standard', ?, ?, 'open', ?, ?)
"""
SQL_ADD_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, status, latency_s, credits)
VALUES (?, ?, ?, ?, ?, 'fake', ?, ?, ?)
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: AnyDatabase, clock: Clock) -> VoteStore:
    return VoteStore(db, clock=clock)


async def add_comparison(
    db: AnyDatabase,
    cid: str = "c1",
    *,
    message: int | None = MESSAGE,
    models: tuple[str, ...] = ("gpt-image-2", "nano-banana-pro"),
    statuses: tuple[str, ...] = (),
    blind: bool = False,
    demo: bool = False,
    use_case: str = "portrait",
    deadline: datetime | None = START + timedelta(hours=24),
    created: datetime = START,
    guild: int = GUILD,
) -> str:
    statements: list[tuple[str, tuple[object, ...]]] = [
        (
            SQL_ADD_COMPARISON,
            (cid, guild, CHANNEL, message, REQUESTER, use_case, blind, demo,
             stamp(db, deadline) if deadline else None, stamp(db, created)),
        )
    ]  # fmt: skip
    for idx, model in enumerate(models):
        status = statuses[idx] if statuses else "ok"
        credits = 8 if status == "ok" else 0
        label = LABELS.get(model, model)
        statements.append(
            (SQL_ADD_PANEL, (cid, idx, "ABCD"[idx], model, label, status, 10.0 + idx, credits))
        )
    await run_script(db, statements)
    return cid


def react(
    emoji: str,
    user: int = MEMBER,
    *,
    added: bool = True,
    message: int = MESSAGE,
    guild: int | None = GUILD,
    is_bot: bool = False,
    joined: datetime | None = START - timedelta(days=30),
) -> ReactionEvent:
    return ReactionEvent(guild, CHANNEL, message, user, emoji, added, is_bot, joined)


async def counts(store: VoteStore, cid: str = "c1") -> dict[str, int]:
    tally = await store.tally(cid)
    assert tally is not None
    return dict(tally.counts)


def test_seed_emojis_and_emoji_choices() -> None:
    assert seed_emojis(2) == ["🇦", "🇧", "🤝", "👎"]
    assert seed_emojis(4) == ["🇦", "🇧", "🇨", "🇩", "🤝", "👎"]
    assert seed_emojis(3, skip=["B"]) == ["🇦", "🇨", "🤝", "👎"]
    assert choice_for("👎🏽") == "bad" and choice_for("🤝") == "tie" and choice_for("🔥") is None
    assert vote_deadline(DEFAULTS, START) == START + timedelta(hours=24)


async def test_vote_switch_and_withdraw(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db)
    first = await store.handle_reaction(react("🇦"), DEFAULTS)
    assert (first.counted, first.reason, first.action, first.choice) == (
        True, "recorded A", "record", "A"
    )  # fmt: skip
    again = await store.handle_reaction(react("🇦"), DEFAULTS)
    assert (again.counted, again.reason) == (False, "ignored: already voted A")
    switch = await store.handle_reaction(react("🇧"), DEFAULTS)
    assert (switch.counted, switch.reason, switch.previous_emoji) == (True, "switched A → B", "🇦")
    assert await counts(store) == {"A": 0, "B": 1, "tie": 0, "bad": 0}
    # The bot removing the old 🇦 (or the member doing it) must not touch the active vote.
    stale = await store.handle_reaction(react("🇦", added=False), DEFAULTS)
    assert (stale.counted, stale.reason) == (False, "ignored: not the active vote")
    assert (await counts(store))["B"] == 1
    gone = await store.handle_reaction(react("🇧", added=False), DEFAULTS)
    assert (gone.counted, gone.reason, gone.action) == (True, "withdrawn", "withdraw")
    assert await counts(store) == {"A": 0, "B": 0, "tie": 0, "bad": 0}
    nothing = await store.handle_reaction(react("🇧", added=False), DEFAULTS)
    assert nothing.reason == "ignored: not the active vote"


async def test_cleared_reactions_withdraw_their_votes_while_open(
    store: VoteStore, db: AnyDatabase
) -> None:
    await add_comparison(db)
    for user, emoji in ((1, "🇦"), (2, "🇦"), (3, "🇧"), (4, "👎🏽")):
        await store.handle_reaction(react(emoji, user), DEFAULTS)
    # A moderator clears every 🇦 from the message: only those two votes go.
    assert await store.clear_reactions(MESSAGE, "🇦") == 2
    assert await counts(store) == {"A": 0, "B": 1, "tie": 0, "bad": 1}
    assert await store.clear_reactions(MESSAGE + 99) == 0  # not a comparison
    # Clearing everything after the vote closed changes nothing: the result stands.
    await store.close("c1", by=None)
    assert await store.clear_reactions(MESSAGE) == 0
    assert await counts(store) == {"A": 0, "B": 1, "tie": 0, "bad": 1}


async def test_a_skin_toned_thumbs_down_is_all_bad_and_only_it_withdraws(
    store: VoteStore, db: AnyDatabase
) -> None:
    await add_comparison(db)
    assert (await store.handle_reaction(react("👎🏽"), DEFAULTS)).reason == "recorded bad"
    repeat = await store.handle_reaction(react("👎"), DEFAULTS)
    assert repeat.reason == "ignored: already voted bad"
    removed_plain = await store.handle_reaction(react("👎", added=False), DEFAULTS)
    assert removed_plain.reason == "ignored: not the active vote"
    assert (await store.handle_reaction(react("👎🏽", added=False), DEFAULTS)).reason == "withdrawn"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (react("🇦", is_bot=True), "ignored: bot"),
        (react("🇦", guild=None), "ignored: not in a server"),
        (react("🔥"), "ignored: unknown emoji"),
        (react("<:vote_a:1234>"), "ignored: unknown emoji"),
        (react("🇦", message=999), "ignored: not an open comparison"),
        (react("🇦", guild=2), "ignored: not an open comparison"),
        (react("🇨"), "ignored: no panel C"),
    ],
)
async def test_ignored_reactions_say_why_and_store_nothing(
    store: VoteStore, db: AnyDatabase, event: ReactionEvent, reason: str
) -> None:
    await add_comparison(db)
    decision = await store.handle_reaction(event, OPEN_TO_ALL)
    assert (decision.counted, decision.reason, decision.action) == (False, reason, "ignore")
    assert (await store.tally("c1")) is not None and sum((await counts(store)).values()) == 0


async def test_a_refused_panel_cannot_be_voted_for(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db, statuses=("ok", "refused"))
    decision = await store.handle_reaction(react("🇧"), DEFAULTS)
    assert decision.reason == "ignored: panel B has no image (refused)"
    assert seed_emojis(2, skip=["B"]) == ["🇦", "🤝", "👎"]
    assert await counts(store) == {"A": 0, "tie": 0, "bad": 0}


@pytest.mark.parametrize(
    ("exclude", "reason"), [(True, "ignored: requester excluded"), (False, "recorded A")]
)
async def test_requester_exclusion_follows_the_config(
    store: VoteStore, db: AnyDatabase, exclude: bool, reason: str
) -> None:
    await add_comparison(db)
    settings = GuildSettings(exclude_requester_votes=exclude)
    assert (await store.handle_reaction(react("🇦", REQUESTER), settings)).reason == reason


@pytest.mark.parametrize(
    ("min_hours", "joined_ago", "reason"),
    [
        (24, timedelta(hours=3), "ignored: member joined 3 h ago (< 24 h)"),
        (24, timedelta(minutes=12), "ignored: member joined 12 min ago (< 24 h)"),
        (24, None, "ignored: member join date unknown (needs 24 h)"),
        (24, timedelta(hours=30), "recorded A"),
        (0, timedelta(minutes=1), "recorded A"),
        (0, None, "recorded A"),
    ],
)
async def test_new_member_exclusion_follows_the_config(
    store: VoteStore, db: AnyDatabase, min_hours: int, joined_ago: timedelta | None, reason: str
) -> None:
    await add_comparison(db)
    settings = GuildSettings(min_member_age_hours=min_hours)
    joined = START - joined_ago if joined_ago is not None else None
    assert (await store.handle_reaction(react("🇦", joined=joined), settings)).reason == reason


async def test_settings_are_read_from_the_database_when_not_given(
    store: VoteStore, db: AnyDatabase
) -> None:
    await add_comparison(db)
    assert (await store.handle_reaction(react("🇦", REQUESTER))).reason == (
        "ignored: requester excluded"
    )
    await update_guild_settings(db, GUILD, exclude_requester_votes=False)
    assert (await store.handle_reaction(react("🇦", REQUESTER))).reason == "recorded A"


async def test_member_rules_never_block_a_withdrawal(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db)
    await store.handle_reaction(react("🇦", REQUESTER), OPEN_TO_ALL)
    stricter = GuildSettings(exclude_requester_votes=True, min_member_age_hours=48)
    removal = react("🇦", REQUESTER, added=False, joined=None)
    assert (await store.handle_reaction(removal, stricter)).reason == "withdrawn"


async def test_reactions_after_close_or_deadline_are_ignored(
    store: VoteStore, db: AnyDatabase, clock: Clock
) -> None:
    await add_comparison(db)
    await add_comparison(db, "c2", message=200)
    await store.handle_reaction(react("🇦"), DEFAULTS)
    assert await store.close("c1", by=REQUESTER) is not None
    assert (await store.handle_reaction(react("🇧"), DEFAULTS)).reason == "ignored: voting closed"
    removal = await store.handle_reaction(react("🇦", added=False), DEFAULTS)
    assert removal.reason == "ignored: voting closed"
    assert (await counts(store))["A"] == 1
    clock.now = START + timedelta(hours=24)  # c2's deadline, before close_due has run
    late = await store.handle_reaction(react("🇦", message=200), DEFAULTS)
    assert late.reason == "ignored: voting closed"


async def test_close_twice_and_close_unknown(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db)
    await store.handle_reaction(react("🇧"), DEFAULTS)
    first = await store.close("c1", by=REQUESTER)
    assert first is not None and first.closed_by == REQUESTER and first.closed_at == START
    assert first.tally.state == "closed" and first.tally.winner == "B"
    assert await store.close("c1", by=REQUESTER) is None
    assert await store.close("missing", by=None) is None


async def test_racing_closes_close_once(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db)
    results = await asyncio.gather(*(store.close("c1", by=n) for n in range(20)))
    assert sum(result is not None for result in results) == 1


async def test_close_due_closes_what_fell_due_and_is_idempotent(
    store: VoteStore, db: AnyDatabase
) -> None:
    await add_comparison(db, "due-1", message=1, deadline=START + timedelta(hours=1))
    await add_comparison(db, "due-2", message=2, deadline=START + timedelta(hours=2))
    await add_comparison(db, "later", message=3, deadline=START + timedelta(hours=30))
    await add_comparison(db, "no-deadline", message=4, deadline=None)
    await store.handle_reaction(react("🤝", message=1), DEFAULTS)
    assert await store.next_deadline() == START + timedelta(hours=1)
    now = START + timedelta(hours=5)  # the bot was down across both deadlines
    closed = await store.close_due(now)
    assert [r.tally.comparison_id for r in closed] == ["due-1", "due-2"]
    assert [r.closed_by for r in closed] == [None, None]
    assert [r.tally.winner for r in closed] == ["tie", None]
    assert await store.close_due(now) == []
    assert await store.next_deadline() == START + timedelta(hours=30)
    untouched = await store.tally("no-deadline")
    assert untouched is not None and untouched.state == "open"


async def test_close_due_after_a_long_outage_closes_everything(
    store: VoteStore, db: AnyDatabase
) -> None:
    for n in range(1100):  # more than one batch
        await add_comparison(db, f"old-{n}", message=n + 1, deadline=START + timedelta(minutes=n))
    closed = await store.close_due(START + timedelta(days=2))
    assert len(closed) == 1100 and len({r.tally.comparison_id for r in closed}) == 1100
    assert await store.next_deadline() is None


async def test_unannounced_results_survive_until_marked(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db)
    await store.close("c1", by=None)
    pending = await store.unannounced()
    assert [r.tally.comparison_id for r in pending] == ["c1"]
    assert await store.mark_announced("c1") is True
    assert await store.mark_announced("c1") is False
    assert await store.unannounced() == []


async def test_tally_winner_tie_all_bad_and_no_votes(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db, models=("gpt-image-2", "nano-banana-pro", "nb2"), blind=True)
    tally = await store.tally("c1")
    assert tally is not None and tally.winner is None and tally.total == 0
    assert tally.headline() == "No votes, so no winner."
    for user, emoji in enumerate(["🇦", "🇦", "🇧", "🤝", "👎"]):
        await store.handle_reaction(react(emoji, 100 + user), DEFAULTS)
    tally = await store.tally("c1")
    assert tally is not None and tally.winner == "A" and tally.total == 5
    assert tally.winner_panel is not None and tally.winner_panel.model_id == "gpt-image-2"
    assert tally.headline() == "GPT-Image 2 (A) wins with 2 of 5 votes."
    assert tally.headline(reveal=False) == "Model A wins with 2 of 5 votes."
    assert tally.lines()[0] == "🇦 GPT-Image 2 (A) — 2" and tally.lines()[-1] == "👎 All bad — 1"
    await store.handle_reaction(react("🇧", 200), DEFAULTS)
    tally = await store.tally("c1")
    assert tally is not None and tally.winner == "tie" and tally.winner_panel is None
    assert tally.headline() == (
        "A tie between GPT-Image 2 (A) and Nano Banana Pro (B), with 2 of 6 votes each."
    )
    for user in range(3):
        await store.handle_reaction(react("👎", 300 + user), DEFAULTS)
    tally = await store.tally("c1")
    assert tally is not None and tally.winner == "bad"
    assert tally.headline() == "All bad: 4 of 9 votes found no image good enough."
    for user in range(5):
        await store.handle_reaction(react("🤝", 400 + user), DEFAULTS)
    tally = await store.tally("c1")
    assert tally is not None and tally.headline() == "A tie: 6 of 14 votes called it even."


def test_winner_of() -> None:
    assert winner_of({"A": 0, "B": 0, "tie": 0, "bad": 0}) is None
    assert winner_of({"A": 2, "B": 1, "tie": 0, "bad": 0}) == "A"
    assert winner_of({"A": 1, "B": 1, "tie": 0, "bad": 0}) == "tie"
    assert winner_of({"A": 1, "B": 0, "tie": 3, "bad": 0}) == "tie"
    assert winner_of({"A": 1, "B": 0, "tie": 0, "bad": 2}) == "bad"


def test_the_ladder_is_a_pure_function() -> None:
    target = VoteTarget("c", GUILD, CHANNEL, MESSAGE, REQUESTER, "open", START, {"A": "ok"})
    assert decide(react("🇦"), target, None, DEFAULTS, START).reason == "ignored: voting closed"
    earlier = START - timedelta(seconds=1)
    assert decide(react("🇦"), target, None, DEFAULTS, earlier).reason == "recorded A"
    active = ActiveVote("tie", "🤝")
    assert decide(react("🇦"), target, active, DEFAULTS, earlier).previous_emoji == "🤝"
    deleted = dataclasses.replace(target, state="deleted")
    assert decide(react("🇦"), deleted, None, DEFAULTS, earlier).reason == (
        "ignored: not an open comparison"
    )
    assert may_close(target, REQUESTER, is_moderator=False)
    assert may_close(target, MEMBER, is_moderator=True)
    assert not may_close(target, MEMBER, is_moderator=False)


async def test_targets_for_permission_checks(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db, created=START)
    await add_comparison(db, "c2", message=200, created=START + timedelta(minutes=5))
    target = await store.target_for_message(MESSAGE)
    assert target is not None and target.comparison_id == "c1"
    assert target.requester_id == REQUESTER and dict(target.statuses) == {"A": "ok", "B": "ok"}
    latest = await store.latest_open(GUILD, CHANNEL)
    assert latest is not None and latest.comparison_id == "c2"
    assert await store.target_for_message(12345) is None


async def test_many_members_voting_at_once_all_count(store: VoteStore, db: AnyDatabase) -> None:
    await add_comparison(db)
    events = [react("🇦🇧"[user % 2], 1000 + user) for user in range(200)]
    decisions = await asyncio.gather(*(store.handle_reaction(e, DEFAULTS) for e in events))
    assert all(d.counted for d in decisions)
    assert await counts(store) == {"A": 100, "B": 100, "tie": 0, "bad": 0}


async def test_one_member_racing_reactions_keeps_one_consistent_vote(
    store: VoteStore, db: AnyDatabase
) -> None:
    await add_comparison(db)
    emojis = ["🇦", "🇧", "🤝", "👎"] * 10
    await asyncio.gather(*(store.handle_reaction(react(e), DEFAULTS) for e in emojis))
    assert sum((await counts(store)).values()) == 1
    [(choice, emoji)] = await fetch(db, "SELECT choice, emoji FROM votes WHERE user_id = ?", MEMBER)
    assert choice_for(emoji) == choice


async def test_random_reaction_streams_match_a_simple_model(
    store: VoteStore, db: AnyDatabase
) -> None:
    await add_comparison(db, models=("gpt-image-2", "nano-banana-pro", "nb2"))
    rng = random.Random(1234)
    model: dict[int, tuple[str, str]] = {}  # user -> (choice, emoji) of the active vote
    for _ in range(400):
        user, emoji = rng.randrange(6), rng.choice(["🇦", "🇧", "🇨", "🤝", "👎"])
        added = rng.random() < 0.6
        decision = await store.handle_reaction(react(emoji, user, added=added), DEFAULTS)
        choice, active = choice_for(emoji), model.get(user)
        assert choice is not None
        if added and (active is None or active[0] != choice):
            assert decision.counted and decision.previous_emoji == (active and active[1])
            model[user] = (choice, emoji)
        elif not added and active is not None and active[1] == emoji:
            assert decision.reason == "withdrawn"
            del model[user]
        else:
            assert not decision.counted
    expected = dict.fromkeys(("A", "B", "C", "tie", "bad"), 0)
    for choice, _ in model.values():
        expected[choice] += 1
    assert await counts(store) == expected


async def test_leaderboard_and_community_lines_from_stored_votes(
    store: VoteStore, db: AnyDatabase
) -> None:
    for n in range(22):
        await add_comparison(db, f"p{n}", message=n + 1, blind=n % 2 == 0)
        await store.handle_reaction(react("🇦" if n < 14 else "🇧", message=n + 1), DEFAULTS)
    await add_comparison(db, "demo", message=500, demo=True)
    await add_comparison(db, "gone", message=501)
    await add_comparison(db, "other-case", message=502, use_case="poster")
    for message in (500, 501, 502):
        await store.handle_reaction(react("🇧", message=message), DEFAULTS)
    await run_script(db, [("UPDATE comparisons SET state = 'deleted' WHERE id = 'gone'", ())])
    await store.close("p0", by=None)  # closed and open votes both count

    # ...except an open blind comparison's: the board moving after a vote would reveal it.
    early = await store.leaderboard(GUILD, "portrait", DEFAULTS, rounds=50)
    assert early.votes == 12  # the 11 open, not blind ones and the closed blind p0
    for n in range(2, 22, 2):
        await store.close(f"p{n}", by=None)

    board = await store.leaderboard(GUILD, "portrait", DEFAULTS, rounds=50)
    gpt = board.row("gpt-image-2")
    assert gpt is not None and (gpt.votes, gpt.wins, gpt.blind_votes) == (22, 14, 11)
    assert board.votes == 22 and board.ranked[0].model_id == "gpt-image-2"
    overall = await store.leaderboard(GUILD, None, DEFAULTS, rounds=50)
    assert overall.votes == 23  # plus the poster vote; never the demo or the deleted one

    blind_only = GuildSettings(blind_only_ranking=True, min_votes_to_rank=5)
    blind_board = await store.leaderboard(GUILD, "portrait", blind_only, rounds=50)
    assert blind_board.blind_only and blind_board.votes == 11

    lines = await store.community_lines(
        GUILD, "portrait", ["gpt-image-2", "unknown"], DEFAULTS, use_case_name="portrait"
    )
    assert len(lines) == 1
    assert lines[0].startswith("In this server, GPT-Image 2 won 14 of 22 portrait votes (rating ")
    high_bar = GuildSettings(min_votes_to_rank=23)
    assert await store.community_lines(GUILD, "portrait", ["gpt-image-2"], high_bar) == []
    assert (await store.leaderboard(2, None, DEFAULTS)).not_enough_votes() is not None
