"""Closing votes on time and showing the outcome on the result message.

One background task sleeps until the earliest stored deadline (never longer than
``MAX_SLEEP``, so a comparison posted meanwhile is never missed), closes whatever is due and
announces it: the result message is fetched and edited — winner, counts, model names of a blind
comparison — and a short reply tells the channel. Everything it needs is in the database, so a
restarted bot closes what fell due while it was down and finishes announcements it never made.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import tasks

from bot.comparisons.records import get_comparison
from bot.render.vote_embed import close_announcement, closed_result_embed
from bot.tasks import stop_task
from cogs.votes.views import CLOSE_PREFIX

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.voting.store import CloseResult, VoteStore

log = logging.getLogger(__name__)

#: the longest the closer sleeps; vote windows are at least an hour, so none is missed
MAX_SLEEP = 600.0
#: the shortest, so a deadline a microsecond away cannot make the loop spin
MIN_SLEEP = 0.01
#: how long the closer waits after an error before it tries again
ERROR_BACKOFF = 60.0
#: an announcement still missing after this long is retried (the closer of that vote failed)
RETRY_AFTER = timedelta(minutes=2)

Community = Callable[[int, str, Sequence[str]], Awaitable[Sequence[str]]]


def jump_url(guild_id: int, channel_id: int, message_id: int) -> str:
    """The link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def view_without_close_button(message: discord.Message) -> discord.ui.View | None:
    """The message's buttons minus "Close vote", or None when it has no such button."""
    view = discord.ui.View.from_message(message, timeout=None)
    closers = [
        item
        for item in view.children
        if isinstance(item, discord.ui.Button) and (item.custom_id or "").startswith(CLOSE_PREFIX)
    ]
    if not closers:
        return None
    for item in closers:
        view.remove_item(item)
    # Only the serialised buttons are wanted: a stopped view is not stored for dispatch, so the
    # persistent Details/Delete handlers keep answering the clicks.
    view.stop()
    return view


class VoteCloser:
    """Closes votes when their deadline passes and shows each outcome on its message."""

    def __init__(self, bot: SplitshotBot, store: VoteStore, community: Community) -> None:
        self.bot = bot
        self.store = store
        self.community = community
        self._first = True
        # A discord.ext.tasks loop rather than a bare sleep: its wait between iterations is one
        # that hosts such as SimCord recognise as idle, so no action ever waits for it (a bare
        # 600 s sleep froze the playground for minutes) and simulated time alone wakes it.
        self._loop: tasks.Loop[Callable[[], Coroutine[Any, Any, None]]] = tasks.loop(
            seconds=MAX_SLEEP, name="splitshot-vote-closer"
        )(self._iteration)
        self._loop.before_loop(self._before)

    def start(self) -> None:
        """Start the background loop (it waits for the gateway to be ready)."""
        if not self._loop.is_running():
            self._first = True
            self._loop.start()

    async def stop(self) -> None:
        """Stop the background loop."""
        task = self._loop.get_task()
        self._loop.cancel()
        await stop_task(task)

    async def _before(self) -> None:
        await self.bot.wait_until_ready()

    async def _iteration(self) -> None:
        try:
            delay = await self.tick(announce_all=self._first)
            self._first = False
        except Exception:
            log.exception("the vote closer failed; trying again in %.0f s", ERROR_BACKOFF)
            delay = ERROR_BACKOFF
        # Set during the body, the new interval times the sleep that follows it.
        self._loop.change_interval(seconds=delay)

    async def tick(self, *, announce_all: bool = False) -> float:
        """Close and announce what is due; return the seconds until the next look.

        ``announce_all`` (at startup) also finishes every announcement an earlier run left
        undone; later ticks only retry those older than ``RETRY_AFTER``, so they never race an
        announcement another command or shard is making right now.
        """
        now = discord.utils.utcnow()
        for result in await self.store.close_due(now):
            await self.announce(result)
        for result in await self.store.unannounced():
            if announce_all or now - result.closed_at >= RETRY_AFTER:
                await self.announce(result)
        deadline = await self.store.next_deadline()
        if deadline is None:
            return MAX_SLEEP
        wait = (deadline - discord.utils.utcnow()).total_seconds()
        return min(max(wait, MIN_SLEEP), MAX_SLEEP)

    async def announce(self, result: CloseResult) -> str | None:
        """Edit the result message and reply with the outcome; the message's link, if it exists.

        A message that is gone or out of reach is given up on (and marked announced); any other
        Discord error leaves the closure unannounced, to be retried.
        """
        tally = result.tally
        cid, channel_id, message_id = tally.comparison_id, tally.channel_id, tally.message_id
        if channel_id is None or message_id is None:
            await self.store.mark_announced(cid)
            return None
        channel = self.bot.get_partial_messageable(channel_id, guild_id=tally.guild_id)
        try:
            message = await channel.fetch_message(message_id)
            edit = await self._closed_edit(result, message)
            if edit:
                await message.edit(**edit)
            await self._remove_own_reactions(message)
            await message.reply(
                close_announcement(result),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            log.warning(
                "cannot show the vote result of %s on message %s (%s); giving up",
                cid,
                message_id,
                exc,
            )
            await self.store.mark_announced(cid)
            return None
        except discord.HTTPException as exc:
            log.warning("could not show the vote result of %s yet (%s); will retry", cid, exc)
            return None
        await self.store.mark_announced(cid)
        return jump_url(tally.guild_id, channel_id, message_id)

    async def _remove_own_reactions(self, message: discord.Message) -> None:
        """Take the vote buttons away: the closed result says the vote is over, and later
        reactions are ignored (members' own reactions stay; removing them needs a permission)."""
        me = self.bot.user
        if me is None:
            return
        for reaction in message.reactions:
            if not reaction.me:
                continue
            try:
                await message.remove_reaction(reaction.emoji, me)
            except discord.HTTPException as exc:
                log.debug("could not remove %s from %s: %s", reaction.emoji, message.id, exc)

    async def _closed_edit(self, result: CloseResult, message: discord.Message) -> dict[str, Any]:
        """What to change on the result message: the closed embed, and the buttons without
        "Close vote". Empty when the embed cannot be rebuilt (the reply still goes out)."""
        tally = result.tally
        try:
            record = await get_comparison(self.bot.db, tally.comparison_id)
            if record is None or record.state == "deleted":
                return {}
            # The split image stays as the message's attachment, shown above the card.
            community = await self.community(
                record.guild_id, record.use_case, [p.model_id for p in record.panels]
            )
            embed = closed_result_embed(
                record,
                tally,
                self.bot.catalog,
                image_url=None,
                community=community,
            )
        except Exception:
            log.exception("could not rebuild the result embed of %s", tally.comparison_id)
            return {}
        edit: dict[str, Any] = {"embed": embed}
        view = view_without_close_button(message)
        if view is not None:
            edit["view"] = view
        return edit
