"""The vote-counting rules as pure functions and plain data (no database, no Discord).

``decide`` is the whole ladder of early returns, each with a one-line reason, so "why didn't my
vote count?" always has an answer. One active vote per member per comparison, tied to the
reaction that cast it: a new reaction replaces it, and removing *that* reaction withdraws it.
``bot.voting.store`` runs this ladder against the database; the Discord layer may call it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.comparisons.plan import blind_name
from bot.guild_settings import GuildSettings
from bot.voting.ratings import BAD, LETTERS, TIE

EMOJI_OPTIONS: Mapping[str, str] = {
    "🇦": "A",
    "🇧": "B",
    "🇨": "C",
    "🇩": "D",
    "🤝": TIE,
    "👎": BAD,
}
OPTION_EMOJI: Mapping[str, str] = {choice: emoji for emoji, choice in EMOJI_OPTIONS.items()}
OPTION_NAMES: Mapping[str, str] = {TIE: "Tie", BAD: "All bad"}
# Discord sends 👎🏽 for a skin-toned thumbs down; it still means "all bad".
_MODIFIERS = dict.fromkeys([0xFE0F, *range(0x1F3FB, 0x1F400)])

Action = Literal["ignore", "record", "switch", "withdraw"]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the store's default clock)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds, the database's time format (text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def seed_emojis(panel_count: int, *, skip: Sequence[str] = ()) -> list[str]:
    """The reactions the bot adds under a result: a letter per panel (minus ``skip``), 🤝, 👎."""
    letters = [letter for letter in LETTERS[:panel_count] if letter not in skip]
    return [OPTION_EMOJI[choice] for choice in (*letters, TIE, BAD)]


def choice_for(emoji: str) -> str | None:
    """The option an emoji votes for ("A".."D", "tie", "bad"), or None for any other emoji."""
    return EMOJI_OPTIONS.get(emoji.translate(_MODIFIERS))


def vote_deadline(settings: GuildSettings, posted_at: datetime) -> datetime:
    """When voting on a result posted at ``posted_at`` closes under the server's window."""
    return posted_at + timedelta(hours=settings.vote_window_hours)


@dataclass(frozen=True, slots=True)
class ReactionEvent:
    """A raw reaction add or remove, as much as the rules need of it."""

    guild_id: int | None
    channel_id: int
    message_id: int
    user_id: int
    emoji: str  # str(payload.emoji); custom emoji come as "<:name:id>" and never count
    added: bool
    is_bot: bool = False  # removals carry no member; a bot's vote is never stored anyway
    member_joined_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VoteTarget:
    """What the rules need to know about the comparison a message carries."""

    comparison_id: str
    guild_id: int
    channel_id: int | None
    message_id: int | None
    requester_id: int
    state: str  # "open" | "closed" | "deleted"
    deadline: datetime | None
    statuses: Mapping[str, str]  # letter → panel status

    def is_open(self, now: datetime) -> bool:
        """Open and its deadline (if any) not yet reached."""
        return self.state == "open" and (self.deadline is None or now < self.deadline)


@dataclass(frozen=True, slots=True)
class ActiveVote:
    """A member's current vote on one comparison and the reaction that cast it."""

    choice: str
    emoji: str


@dataclass(frozen=True, slots=True)
class VoteDecision:
    """What one reaction did: ``counted`` when it changed the member's vote, and why."""

    counted: bool
    reason: str
    action: Action = "ignore"
    choice: str | None = None
    comparison_id: str | None = None
    previous_emoji: str | None = None  # the old reaction the bot should remove if it may


def _ignored(reason: str, comparison_id: str | None = None) -> VoteDecision:
    return VoteDecision(False, f"ignored: {reason}", comparison_id=comparison_id)


def screen(event: ReactionEvent) -> VoteDecision | None:
    """The rungs that need no database: bots, direct messages, other emoji."""
    if event.is_bot:
        return _ignored("bot")
    if event.guild_id is None:
        return _ignored("not in a server")
    if choice_for(event.emoji) is None:
        return _ignored("unknown emoji")
    return None


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def decide(
    event: ReactionEvent,
    target: VoteTarget | None,
    active: ActiveVote | None,
    settings: GuildSettings,
    now: datetime,
) -> VoteDecision:
    """The whole ladder, pure: one early return per reason a reaction does not count."""
    if (early := screen(event)) is not None:
        return early
    choice = EMOJI_OPTIONS[event.emoji.translate(_MODIFIERS)]  # screen() vouched for it
    if target is None or target.state == "deleted" or target.guild_id != event.guild_id:
        return _ignored("not an open comparison")
    cid = target.comparison_id
    if not target.is_open(now):
        return _ignored("voting closed", cid)
    if not event.added:
        # Removals skip the member rules: withdrawing must work even if the rules changed.
        if active is None or active.emoji != event.emoji:
            return _ignored("not the active vote", cid)
        return VoteDecision(True, "withdrawn", "withdraw", active.choice, cid)
    if choice in LETTERS:
        status = target.statuses.get(choice)
        if status is None:
            return _ignored(f"no panel {choice}", cid)
        if status != "ok":
            return _ignored(f"panel {choice} has no image ({status})", cid)
    if settings.exclude_requester_votes and event.user_id == target.requester_id:
        return _ignored("requester excluded", cid)
    hours = settings.min_member_age_hours
    if hours > 0:
        if event.member_joined_at is None:
            return _ignored(f"member join date unknown (needs {hours} h)", cid)
        age = now - event.member_joined_at
        if age < timedelta(hours=hours):
            return _ignored(f"member joined {_age(age)} ago (< {hours} h)", cid)
    if active is None:
        return VoteDecision(True, f"recorded {choice}", "record", choice, cid)
    if active.choice == choice:
        return _ignored(f"already voted {choice}", cid)
    return VoteDecision(
        True, f"switched {active.choice} → {choice}", "switch", choice, cid, active.emoji
    )


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def may_close(target: VoteTarget, user_id: int, *, is_moderator: bool) -> bool:
    """Whether this member may close the vote early: a moderator or the requester."""
    return is_moderator or user_id == target.requester_id


def winner_of(counts: Mapping[str, int]) -> str | None:
    """The option with the most votes; a shared top is a tie; None when nobody voted."""
    top = max(counts.values(), default=0)
    if top == 0:
        return None
    leaders = [option for option, n in counts.items() if n == top]
    return leaders[0] if len(leaders) == 1 else TIE


@dataclass(frozen=True, slots=True)
class PanelInfo:
    """One panel of a tallied comparison."""

    letter: str
    model_id: str
    label: str
    status: str


@dataclass(frozen=True, slots=True)
class Tally:
    """The votes on one comparison: counts per option (ok panels, tie, all bad) and the winner."""

    comparison_id: str
    guild_id: int
    channel_id: int | None
    message_id: int | None
    requester_id: int
    use_case: str
    blind: bool
    state: str
    deadline: datetime | None
    panels: tuple[PanelInfo, ...]
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        """Votes counted."""
        return sum(self.counts.values())

    @property
    def winner(self) -> str | None:
        """ "A".."D", "tie" (🤝 or a shared top), "bad", or None with no votes."""
        return winner_of(self.counts)

    @property
    def winner_panel(self) -> PanelInfo | None:
        """The winning panel, when a panel won."""
        return next((p for p in self.panels if p.letter == self.winner), None)

    def name(self, option: str, *, reveal: bool = True) -> str:
        """How to call an option: its model (and letter when blind), or "Tie" / "All bad"."""
        panel = next((p for p in self.panels if p.letter == option), None)
        if panel is None:
            return OPTION_NAMES.get(option, option)
        if not self.blind:
            return panel.label
        return f"{panel.label} ({option})" if reveal else blind_name(option)

    def lines(self, *, reveal: bool = True) -> list[str]:
        """One "🇦 GPT-Image 2 — 5" line per option, in reaction order."""
        return [
            f"{OPTION_EMOJI[o]} {self.name(o, reveal=reveal)} — {n}" for o, n in self.counts.items()
        ]

    def headline(self, *, reveal: bool = True) -> str:
        """The result in one sentence, e.g. "GPT-Image 2 wins with 5 of 9 votes."."""
        total, winner = self.total, self.winner
        votes = f"{total} vote{'' if total == 1 else 's'}"
        if winner is None:
            return "No votes, so no winner."
        if winner == TIE:
            top = max(self.counts.values())
            level = [self.name(o, reveal=reveal) for o, n in self.counts.items() if n == top]
            if level == [OPTION_NAMES[TIE]]:
                return f"A tie: {top} of {votes} called it even."
            return f"A tie between {_join(level)}, with {top} of {votes} each."
        if winner == BAD:
            return f"All bad: {self.counts[BAD]} of {votes} found no image good enough."
        return f"{self.name(winner, reveal=reveal)} wins with {self.counts[winner]} of {votes}."


@dataclass(frozen=True, slots=True)
class CloseResult:
    """A comparison whose voting just closed: the final tally, who closed it and when."""

    tally: Tally
    closed_by: int | None  # None: the deadline closed it
    closed_at: datetime
