"""Votes from raw reactions, /vote close, /leaderboard, and the server's results for verdicts.

Reactions are read from raw gateway events, so they count on messages the cache never saw and
after restarts; every rule (bots, closed votes, the requester, new members…) is one early return
with its reason in ``bot.voting.rules``, and the votes live in SQLite.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import is_moderator, use_case_choices
from bot.errors import SplitshotError
from bot.measure.store import text_means
from bot.render.vote_embed import leaderboard_embed, leaderboard_title
from bot.voting.chart import CHART_FILENAME, leaderboard_chart
from bot.voting.store import ReactionEvent, VoteStore, VoteTarget, may_close
from cogs.votes.closer import VoteCloser, jump_url
from cogs.votes.views import COG_NAME, CloseVoteButton

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.guild_settings import GuildSettings
    from bot.voting.store import CloseResult

log = logging.getLogger(__name__)

#: a rule another feature adds to voting (a shoot-out's team role): why a reaction does not
#: count, or None when it may
VoteGate = Callable[[discord.RawReactionActionEvent], Awaitable[str | None]]

MESSAGE_LINK = re.compile(
    r"discord(?:app)?\.com/channels/(?:\d+|@me)/(?P<channel>\d+)/(?P<message>\d+)"
)


# ---------------------------------------------------------------------- errors
class NoOpenVote(SplitshotError):
    """/vote close found nothing to close."""

    def __init__(self) -> None:
        super().__init__(
            "There is no open vote in this channel. To close another one, pass its message link."
        )


class NotAComparison(SplitshotError):
    """The message given to /vote close is not a Splitshot result in this server."""

    def __init__(self) -> None:
        super().__init__("That message is not a Splitshot comparison in this server.")


class BadMessageLink(SplitshotError):
    """The message option is neither a link nor an id."""

    def __init__(self) -> None:
        super().__init__(
            "Give the result's message link (right-click it → Copy Message Link) or its id."
        )


class AlreadyClosed(SplitshotError):
    """Voting on that comparison has closed already."""

    def __init__(self) -> None:
        super().__init__("Voting on that comparison has already closed.")


class NotAllowedToClose(SplitshotError):
    """Someone other than the requester or a moderator tried to close a vote."""

    def __init__(self) -> None:
        super().__init__(
            "Only the member who ran this comparison or a moderator can close its vote."
        )


# --------------------------------------------------------------------- helpers
def message_id_from(text: str) -> int:
    """The message id in a message link or a bare id."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = MESSAGE_LINK.search(text)
    if match is None:
        raise BadMessageLink()
    return int(match["message"])


def reaction_event(
    payload: discord.RawReactionActionEvent, *, added: bool, bot_id: int
) -> ReactionEvent:
    """What the vote rules need from a raw reaction event (removals carry no member)."""
    member = payload.member
    return ReactionEvent(
        guild_id=payload.guild_id,
        channel_id=payload.channel_id,
        message_id=payload.message_id,
        user_id=payload.user_id,
        emoji=str(payload.emoji),
        added=added,
        # The bot's own seed reactions come back as events too; they are never votes.
        is_bot=payload.user_id == bot_id or (member is not None and member.bot),
        member_joined_at=member.joined_at if member is not None else None,
    )


# -------------------------------------------------------------------- commands
def build_vote_group(cog: VotesCog) -> app_commands.Group:
    """/vote close."""
    group = app_commands.Group(
        name="vote", description="Voting on comparison results", guild_only=True
    )

    @group.command(
        name="close", description="Close voting on a result now (its requester or a moderator)"
    )
    @app_commands.describe(
        message="The result's message link or id (default: the newest open vote in this channel)"
    )
    async def close(
        interaction: discord.Interaction[SplitshotBot],
        message: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        await cog.close_by_command(interaction, message)

    return group


def build_leaderboard_command(cog: VotesCog) -> app_commands.Command[Any, ..., None]:
    """/leaderboard with the catalog's use cases as choices."""

    @app_commands.command(
        name="leaderboard", description="This server's model ratings from its votes, with a chart"
    )
    @app_commands.guild_only()
    @app_commands.describe(use_case="Rate the models for one use case (default: all of them)")
    @app_commands.choices(use_case=use_case_choices(cog.bot.catalog))
    async def leaderboard(
        interaction: discord.Interaction[SplitshotBot], use_case: str | None = None
    ) -> None:
        await cog.leaderboard(interaction, use_case)

    return leaderboard


# ------------------------------------------------------------------------- cog
class VotesCog(commands.Cog, name=COG_NAME):
    """Reactions → votes, closing, the leaderboard and community results."""

    def __init__(self, bot: SplitshotBot, *, store: VoteStore | None = None) -> None:
        self.bot = bot
        # discord.utils.utcnow: the clock deadlines are written with (and tests can move).
        self.store = store or VoteStore(
            bot.db, clock=discord.utils.utcnow, offload=bot.service.workers.boards.run
        )
        self.closer = VoteCloser(bot, self.store, self.community_lines)
        self.vote_group = build_vote_group(self)
        self.leaderboard_command = build_leaderboard_command(self)
        #: extra rules for added reactions, asked in order; withdrawing a vote always works
        self.gates: list[VoteGate] = []

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.vote_group)
        self.bot.tree.add_command(self.leaderboard_command)
        self.bot.add_dynamic_items(CloseVoteButton)
        self.bot.community_source = self.community_lines
        self.closer.start()

    async def cog_unload(self) -> None:
        await self.closer.stop()
        if self.bot.community_source == self.community_lines:
            self.bot.community_source = None
        self.bot.remove_dynamic_items(CloseVoteButton)
        self.bot.tree.remove_command(self.leaderboard_command.name)
        self.bot.tree.remove_command(self.vote_group.name)

    def include_demo(self, settings: GuildSettings) -> bool:
        """Whether demo comparisons count: only where demo stand-ins run (the playground, or an
        operator who opted in); a real bot keeps stand-in pictures out of its ratings."""
        if settings.demo_mode is not None:
            return settings.demo_mode
        return self.bot.service.allow_demo

    # ------------------------------------------------------------- reactions
    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction added anywhere the bot can see: maybe a vote."""
        await self._on_reaction(payload, added=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction removed: maybe a withdrawn vote."""
        await self._on_reaction(payload, added=False)

    @commands.Cog.listener()
    async def on_raw_reaction_clear(self, payload: discord.RawReactionClearEvent) -> None:
        """Every reaction was cleared from a message: the votes they cast are withdrawn."""
        withdrawn = await self.store.clear_reactions(payload.message_id)
        log.debug("reactions cleared on %d: %d votes withdrawn", payload.message_id, withdrawn)

    @commands.Cog.listener()
    async def on_raw_reaction_clear_emoji(
        self, payload: discord.RawReactionClearEmojiEvent
    ) -> None:
        """One emoji was cleared from a message: the votes it cast are withdrawn."""
        withdrawn = await self.store.clear_reactions(payload.message_id, str(payload.emoji))
        log.debug(
            "%s cleared on %d: %d votes withdrawn", payload.emoji, payload.message_id, withdrawn
        )

    async def _on_reaction(self, payload: discord.RawReactionActionEvent, *, added: bool) -> None:
        me = self.bot.user
        if me is None:
            return  # not logged in yet: nothing can be a result of ours
        author = payload.message_author_id
        if author is not None and author != me.id:
            # Discord names the author on adds: skip the database for other people's messages.
            log.debug("reaction on message %d ignored: not the bot's message", payload.message_id)
            return
        if added:
            for gate in self.gates:
                reason = await gate(payload)
                if reason is not None:
                    log.debug("reaction on message %d ignored: %s", payload.message_id, reason)
                    return
        decision = await self.store.handle_reaction(
            reaction_event(payload, added=added, bot_id=me.id)
        )
        if decision.previous_emoji is not None:
            await self._remove_reaction(payload, decision.previous_emoji)

    async def _remove_reaction(self, payload: discord.RawReactionActionEvent, emoji: str) -> None:
        """Remove a member's replaced vote reaction, when the bot may manage messages here."""
        channel = self.bot.get_channel(payload.channel_id)
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            return
        me = channel.guild.me
        if me is None or not channel.permissions_for(me).manage_messages:
            log.debug("left %s by %d in place: no Manage Messages", emoji, payload.user_id)
            return
        partial = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        try:
            await partial.get_partial_message(payload.message_id).remove_reaction(
                emoji, discord.Object(payload.user_id)
            )
        except discord.HTTPException as exc:
            log.debug("could not remove %s by %d: %s", emoji, payload.user_id, exc)

    # --------------------------------------------------------------- closing
    async def close_by_command(
        self, interaction: discord.Interaction[SplitshotBot], message: str | None
    ) -> None:
        """/vote close: the given result, or the newest open one in this channel."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        if message is None:
            target = await self.store.latest_open(interaction.guild_id, interaction.channel_id)
            if target is None:
                raise NoOpenVote()
        else:
            target = await self.store.target_for_message(message_id_from(message))
            if target is None or target.guild_id != interaction.guild_id:
                raise NotAComparison()
        await self._close(interaction, target)

    async def close_by_button(
        self, interaction: discord.Interaction[SplitshotBot], comparison_id: str
    ) -> None:
        """The "Close vote" button under a result."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = interaction.message
        target = None if message is None else await self.store.target_for_message(message.id)
        if target is None or target.comparison_id != comparison_id:
            raise NotAComparison()
        await self._close(interaction, target)

    async def _close(
        self, interaction: discord.Interaction[SplitshotBot], target: VoteTarget
    ) -> None:
        if target.state == "deleted":
            raise NotAComparison()
        if target.state != "open":
            raise AlreadyClosed()
        settings = await self.bot.guild_settings(target.guild_id)
        moderator = is_moderator(interaction, settings)
        if not may_close(target, interaction.user.id, is_moderator=moderator):
            raise NotAllowedToClose()
        result = await self.store.close(target.comparison_id, by=interaction.user.id)
        if result is None:  # the deadline or someone else got there first
            raise AlreadyClosed()
        link = await self.closer.announce(result)
        await interaction.followup.send(self._closed_text(result, link), ephemeral=True)

    @staticmethod
    def _closed_text(result: CloseResult, link: str | None) -> str:
        text = f"Voting closed. {result.tally.headline(reveal=True)}"
        tally = result.tally
        if link is None and tally.channel_id is not None and tally.message_id is not None:
            link = jump_url(tally.guild_id, tally.channel_id, tally.message_id)
        return f"{text}\n[Jump to the result]({link})" if link else text

    # ----------------------------------------------------------- leaderboard
    async def leaderboard(
        self, interaction: discord.Interaction[SplitshotBot], use_case_id: str | None
    ) -> None:
        """The server's ratings as a table and a chart."""
        await interaction.response.defer(thinking=True)
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        demo = self.include_demo(settings)
        name = self.bot.catalog.use_case(use_case_id).name if use_case_id else None
        board = await self.store.leaderboard(
            interaction.guild_id, use_case_id, settings, include_demo=demo
        )
        text = await text_means(self.bot.db, interaction.guild_id, use_case_id, include_demo=demo)
        title = leaderboard_title(name, demo=demo)
        chart = await self.bot.service.workers.boards.run(leaderboard_chart, board, title=title)
        embed = leaderboard_embed(
            board, title=title, chart_filename=CHART_FILENAME, demo=demo, text=text
        )
        await interaction.followup.send(
            embed=embed, file=discord.File(io.BytesIO(chart), CHART_FILENAME)
        )

    # ------------------------------------------------------- community results
    async def community_lines(
        self, guild_id: int, use_case_id: str, model_ids: Sequence[str]
    ) -> list[str]:
        """This server's results for these models, once they pass its vote threshold.

        From the cached point estimates (no bootstrap): every /compare, /versus and vote close
        asks, and only a vote or a comparison in this server makes the next one refit.
        """
        settings = await self.bot.guild_settings(guild_id)
        use_case = self.bot.catalog.use_cases.get(use_case_id)
        return await self.store.community_lines(
            guild_id,
            use_case_id,
            model_ids,
            settings,
            use_case_name=use_case.name.lower() if use_case else None,
            include_demo=self.include_demo(settings),
        )
