"""Running a shoot-out: reserve every round, make the thread, post each round, close on time.

Money first: every round's hold is taken before the first model runs, so a shoot-out either
is paid in full or never starts. Rounds then run one after another, each an ordinary
comparison job posted by :class:`RoundPresenter`. A shutdown cancels the running round (its
job refunds it) and refunds the rounds that had not started; a restart refunds whatever a
previous run left unfinished and lets the rest go on to voting. Closing is driven by the
deadlines stored in the database, so it still happens on time after a restart.

Rounds run for longer, together, than the stale-hold sweep lets a hold stay open, so before each
round the holds of the rounds still to run are marked alive (``Ledger.keep_open``); one round is
bounded by the model timeout and the upload allowance, which the settings keep below the sweep's
window. After a crash nothing marks them, and the sweep refunds them a window after the last mark.

Longer than the ~400-line guide on purpose: a shoot-out's whole life on Discord (start, rounds, restart, close, report) shares its state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord

from bot.comparisons.job import ComparisonJob, Requester
from bot.comparisons.records import Undelivered
from bot.credits.rules import InsufficientCredits
from bot.errors import SplitshotError
from bot.shootouts.plan import ShootoutPlan
from bot.shootouts.pool import POOL_USER_ID, open_pool
from bot.shootouts.report import Report, build_report, load
from bot.shootouts.store import ShootoutRow, ShootoutStore
from bot.tasks import stop_task
from bot.voting.store import VoteStore
from cogs.shootouts.render import jump_url, report_embed, status_embed
from cogs.shootouts.rounds import RoundPresenter
from cogs.shootouts.views import export_view
from cogs.votes.views import COG_NAME as VOTES_COG

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.comparisons.plan import Plan
    from bot.guild_settings import GuildSettings
    from cogs.votes.cog import VotesCog

log = logging.getLogger(__name__)

MAX_SLEEP = 600.0
MIN_SLEEP = 0.01
ERROR_BACKOFF = 60.0
RESTARTED = "the bot restarted before this round ran"
EXPIRED = "its reservation had expired and was refunded before it could run"
#: (shoot-out, its stored data) -> model id -> measured text accuracy (0..1); another feature's
TextAccuracy = Callable[[ShootoutRow], Awaitable[Mapping[str, float] | None]]


class NotEnoughForShootout(SplitshotError):
    """The payer cannot cover every round; nothing was spent."""

    def __init__(self, payer_id: int, balance: int, total: int) -> None:
        who = "The team pool has" if payer_id == POOL_USER_ID else "You have"
        super().__init__(
            f"{who} {balance:,} credits; this shoot-out costs {total:,}, "
            f"{total - balance:,} short. Nothing was spent."
            + (
                " A moderator can fund the pool with `/credits pool grant`."
                if payer_id == POOL_USER_ID
                else ""
            )
        )


@dataclass(frozen=True, slots=True)
class Started:
    """Where a started shoot-out lives."""

    where: discord.abc.Messageable
    where_id: int
    in_thread: bool
    thread_note: str | None


class ShootoutRunner:
    """Starts, runs, closes and reports shoot-outs for one bot."""

    def __init__(self, bot: SplitshotBot, store: ShootoutStore) -> None:
        self.bot = bot
        self.store = store
        self.text_accuracy: TextAccuracy | None = None
        self._closer: asyncio.Task[None] | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------ money
    async def balance(self, guild_id: int, payer_id: int) -> int:
        """What the payer has now (the pool is opened empty on first use)."""
        if payer_id == POOL_USER_ID:
            await open_pool(self.bot.db, guild_id)
            return await self.bot.ledger.balance(guild_id, payer_id)
        return await self.bot.ledger.ensure_account(guild_id, payer_id)

    async def check_funds(self, guild_id: int, payer_id: int, total: int) -> int:
        """The payer's balance, or NotEnoughForShootout with the shortfall."""
        balance = await self.balance(guild_id, payer_id)
        if balance < total:
            raise NotEnoughForShootout(payer_id, balance, total)
        return balance

    async def reserve_all(self, plan: ShootoutPlan, requester: Requester) -> list[ComparisonJob]:
        """One reserved job per round, or none at all (every hold taken is released)."""
        jobs: list[ComparisonJob] = []
        try:
            for round_plan in plan.rounds:
                job = self._job(round_plan, requester)
                await job.reserve()
                jobs.append(job)
        except BaseException as exc:
            await asyncio.shield(self.release([j for j in jobs if j.hold], "shoot-out not started"))
            if isinstance(exc, InsufficientCredits):
                balance = await self.balance(requester.guild_id, requester.account_id)
                raise NotEnoughForShootout(requester.account_id, balance, plan.total) from None
            raise
        return jobs

    def _job(self, round_plan: Plan, requester: Requester) -> ComparisonJob:
        return ComparisonJob(
            round_plan,
            service=self.bot.service,
            catalog=self.bot.catalog,
            ledger=self.bot.ledger,
            db=self.bot.db,
            requester=requester,
        )

    async def release(self, jobs: list[ComparisonJob], reason: str) -> None:
        """Give back everything the reserved, never-run ``jobs`` took: hold, budget, place."""
        for job in jobs:
            if job.hold is None:
                continue
            try:
                await job.abandon(reason)
            except Exception:
                log.exception("could not release hold %d; the sweep will", job.hold.id)

    # ------------------------------------------------------------ running
    async def open_thread(self, channel: discord.abc.Messageable, name: str) -> Started:
        """A public thread for the shoot-out, else the channel itself (and why)."""
        assert isinstance(channel, discord.abc.Snowflake)
        if isinstance(channel, discord.TextChannel):
            try:
                thread = await channel.create_thread(
                    name=f"Shoot-out: {name}"[:100],
                    type=discord.ChannelType.public_thread,
                    auto_archive_duration=10080,
                )
            except discord.HTTPException as exc:
                log.info("no thread for shoot-out in %s: %s", channel.id, exc)
            else:
                return Started(thread, thread.id, True, None)
        if isinstance(channel, discord.Thread):
            note = "Started inside a thread, so the rounds are posted right here."
        else:
            note = (
                "I couldn't create a thread here (I need the Create Public Threads permission), "
                "so the rounds are posted in this channel."
            )
        return Started(channel, channel.id, False, note)

    async def run(
        self,
        plan: ShootoutPlan,
        jobs: list[ComparisonJob],
        *,
        shootout: ShootoutRow,
        target: discord.abc.Messageable,
        fallback: discord.abc.Messageable,
        settings: GuildSettings,
    ) -> None:
        """Run every reserved round in turn; refund what cannot run; then open the vote."""
        started = 0
        current = target
        finished: set[int] = set()
        try:
            for idx, job in enumerate(jobs):
                started = idx + 1
                kept = await self.keep_alive(jobs[idx:])
                if job.hold is not None and kept is not None and job.hold.id not in kept:
                    # Swept already (this shoot-out stalled past the window): running it would
                    # pay the providers for a round nobody can be charged for.
                    log.error("shoot-out %s round %d: %s", shootout.id, idx + 1, EXPIRED)
                    await job.abandon(EXPIRED)
                    await self.store.set_round(shootout.id, idx, "refunded", EXPIRED)
                    finished.add(idx)
                    continue
                await self.store.set_round(shootout.id, idx, "running")
                await self.refresh_status(shootout.id)
                presenter = RoundPresenter(
                    job,
                    [current, fallback] if current is not fallback else [current],
                    legend=self.legend(shootout, idx, settings),
                    deadline=shootout.deadline,
                )
                outcome = await presenter.run()
                if outcome.moved:
                    current = fallback
                    await self.store.set_where(shootout.id, thread_id=None)
                if outcome.message is None:
                    await self.store.set_round(shootout.id, idx, "refunded", outcome.note)
                else:
                    await self.store.set_round(shootout.id, idx, "posted", outcome.note)
                finished.add(idx)
                await self.refresh_status(shootout.id)
        except asyncio.CancelledError:
            # The running round's job gave its own hold back; the rest never started.
            first = started - 1 if started and started - 1 not in finished else started
            await asyncio.shield(self._refund_unstarted(shootout.id, first, jobs[first:]))
            raise
        await self.store.open_voting(shootout.id)
        # No need to wake the closer: it never sleeps past MAX_SLEEP, far below the shortest
        # voting window, so this deadline is seen in time.
        await self.refresh_status(shootout.id)

    async def keep_alive(self, jobs: list[ComparisonJob]) -> frozenset[int] | None:
        """Keep the stale-hold sweep off these rounds' holds for another window; the ids still
        open, or None when the ledger could not be reached (the rounds run on regardless)."""
        try:
            return await self.bot.ledger.keep_open([job.hold.id for job in jobs if job.hold])
        except Exception:
            log.exception("could not keep a shoot-out's holds open; the sweep may refund them")
            return None

    async def _refund_unstarted(
        self, shootout_id: str, first: int, jobs: list[ComparisonJob]
    ) -> None:
        await self.release([j for j in jobs if j.settlement is None], RESTARTED)
        for offset, job in enumerate(jobs):
            if job.settlement is None:
                await self.store.set_round(shootout_id, first + offset, "refunded", RESTARTED)
            # else it was settled: the startup recovery decides by whether it was posted

    def legend(self, shootout: ShootoutRow, idx: int, settings: GuildSettings) -> str:
        """The line above a round: which round, and who votes."""
        head = f"**{shootout.name}** · round {idx + 1} of {len(shootout.rounds)}"
        if shootout.team_role_id is not None:
            who = f"Votes count from <@&{shootout.team_role_id}> members only (one each)."
        else:
            who = "Every member may vote, once."
            if settings.exclude_requester_votes:
                who = "Every member may vote, once; the starter's own vote does not count."
        return f"{head}\n🗳️ {who} Voting closes {discord.utils.format_dt(shootout.deadline, 'R')}."

    async def refresh_status(self, shootout_id: str) -> None:
        """Edit the status message to show every round's state (best effort)."""
        shootout = await self.store.get(shootout_id)
        if shootout is None or shootout.status_message_id is None:
            return
        links = await self._links(shootout)
        names = [self.bot.catalog.model(m).name for m in shootout.models]
        channel = self.bot.get_partial_messageable(shootout.where_id, guild_id=shootout.guild_id)
        try:
            await channel.get_partial_message(shootout.status_message_id).edit(
                embed=status_embed(shootout, links, model_names=names)
            )
        except discord.HTTPException as exc:
            log.debug("status of shoot-out %s not updated: %s", shootout_id, exc)

    async def _links(self, shootout: ShootoutRow) -> dict[int, str]:
        by_id = await self.store.round_messages(shootout.id)
        return {
            r.idx: jump_url(shootout.guild_id, *by_id[r.comparison_id])
            for r in shootout.rounds
            if r.comparison_id in by_id
        }

    # ------------------------------------------------------------ team votes
    async def team_gate(self, payload: discord.RawReactionActionEvent) -> str | None:
        """On a round with a team role, only the role's members vote (a deleted role: everyone)."""
        found = await self.store.team_for_message(payload.message_id)
        if found is None:
            return None
        shootout_id, role_id, gone = found
        if role_id is None or gone:
            return None
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        if guild is not None and guild.get_role(role_id) is None:
            if await self.store.mark_team_role_gone(shootout_id):
                log.warning(
                    "team role of shoot-out %s was deleted; everyone votes now", shootout_id
                )
            return None
        member = payload.member
        if member is None or all(role.id != role_id for role in member.roles):
            return "not in the shoot-out's team"
        return None

    # ------------------------------------------------------------ closing
    def lock(self, shootout_id: str) -> asyncio.Lock:
        """One close at a time per shoot-out (the deadline and a command may race)."""
        return self._locks.setdefault(shootout_id, asyncio.Lock())

    async def close(self, shootout_id: str, *, by: int | None) -> discord.Message | None:
        """Close the shoot-out and every round, reveal, report; the report message.

        Of every process sharing the database, only the one holding the shoot-out's claim closes
        and reports it: the deadline closer skips a shoot-out another process holds, while a
        member's close waits for it (and then finds it closed, or closes it).
        """
        async with (
            self.lock(shootout_id),
            self.store.claim(shootout_id, wait=by is not None) as ours,
        ):
            if not ours:
                return None
            closed = await self.store.close(shootout_id, by=by, now=discord.utils.utcnow())
            if not closed:
                return None
            return await self.report(shootout_id, by=by)

    async def report(self, shootout_id: str, *, by: int | None = None) -> discord.Message | None:
        """Close any round still open, reveal it, then post the report (once).

        Called with the shoot-out claimed, so the fresh read below sees any report another
        process posted before.
        """
        shootout = await self.store.get(shootout_id)
        if shootout is None or shootout.reported_at is not None:
            return None
        await self._close_rounds(shootout, by)
        report = await self.build(shootout)
        message = await self._post_report(shootout, report)
        await self.store.mark_reported(
            shootout_id, message.id if message else None, now=discord.utils.utcnow()
        )
        await self.refresh_status(shootout_id)
        return message

    async def build(self, shootout: ShootoutRow) -> Report:
        """The report as of now."""
        data = await load(self.bot.db, shootout.id)
        assert data is not None
        accuracy = None
        if self.text_accuracy is not None:
            try:
                accuracy = await self.text_accuracy(shootout)
            except Exception:
                log.exception("text accuracy failed for shoot-out %s", shootout.id)
        use_case = self.bot.catalog.use_cases.get(shootout.use_case)
        name = use_case.name if use_case else shootout.use_case
        # The bootstrap is CPU work: small for a shoot-out, but never on the event loop.
        return await asyncio.to_thread(build_report, data, name, text_accuracy=accuracy)

    async def _close_rounds(self, shootout: ShootoutRow, by: int | None) -> None:
        votes: VotesCog | None = self.bot.get_cog(VOTES_COG)  # type: ignore[assignment]
        store = votes.store if votes is not None else VoteStore(self.bot.db)
        for r in shootout.rounds:
            if r.state != "posted":
                continue
            result = await store.close(r.comparison_id, by=by)
            if result is not None and votes is not None:
                await votes.closer.announce(result)

    async def _post_report(self, shootout: ShootoutRow, report: Report) -> discord.Message | None:
        embed = report_embed(report, shootout)
        targets = [shootout.where_id]
        if shootout.channel_id not in targets:
            targets.append(shootout.channel_id)
        for channel_id in targets:
            channel = self.bot.get_partial_messageable(channel_id, guild_id=shootout.guild_id)
            try:
                return await channel.send(embed=embed, view=export_view(shootout.id))
            except (discord.NotFound, discord.Forbidden) as exc:
                log.warning("report of %s could not go to %s: %s", shootout.id, channel_id, exc)
        log.error("the report of shoot-out %s could not be posted anywhere", shootout.id)
        return None

    # ------------------------------------------------------------ background
    def start_closer(self) -> None:
        """Start the task that closes shoot-outs when their deadline passes."""
        if self._closer is None or self._closer.done():
            self._closer = asyncio.create_task(self._closer_loop(), name="splitshot-shootouts")

    async def stop_closer(self) -> None:
        """Stop the closer task."""
        task, self._closer = self._closer, None
        await stop_task(task)

    async def _closer_loop(self) -> None:
        await self.bot.wait_until_ready()
        try:
            await self.recover()
        except Exception:
            log.exception("could not recover the shoot-outs of a previous run")
        while True:
            try:
                delay = await self.tick()
            except Exception:
                log.exception("the shoot-out closer failed; trying again in %.0f s", ERROR_BACKOFF)
                delay = ERROR_BACKOFF
            await asyncio.sleep(delay)

    async def tick(self) -> float:
        """Close what is due and post reports never posted; seconds until the next look."""
        now = discord.utils.utcnow()
        for shootout_id in await self.store.due(now):
            await self.close(shootout_id, by=None)
        for shootout_id in await self.store.unreported():
            # Closed but not reported: the process that closed it may still be reporting it.
            async with self.lock(shootout_id), self.store.claim(shootout_id) as ours:
                if ours:
                    await self.report(shootout_id)
        deadline = await self.store.next_deadline()
        if deadline is None:
            return MAX_SLEEP
        wait = (deadline - discord.utils.utcnow()).total_seconds()
        return min(max(wait, MIN_SLEEP), MAX_SLEEP)

    async def recover(self) -> int:
        """At startup: refund rounds a previous run never finished; their shoot-outs vote on."""
        refunded = 0
        for r in await self.store.unfinished_rounds():
            stored = await self.store.round_comparison(r.comparison_id)
            if stored is not None and stored[0] == "posted":
                await self.store.set_round(r.shootout_id, r.idx, "posted")
                continue
            if stored is None and r.hold_id is not None:
                settlement = await self.bot.ledger.release(r.hold_id, RESTARTED)
                refunded += not settlement.already_closed
            elif stored is not None and stored[1] is not None:
                mark = Undelivered(r.comparison_id)
                settlement = await self.bot.ledger.unsettle(stored[1], RESTARTED, also=mark)
                refunded += not settlement.already_closed
            await self.store.set_round(r.shootout_id, r.idx, "refunded", RESTARTED)
        moved = await self.store.orphaned_to_voting()
        if refunded or moved:
            log.warning(
                "after a restart: %d shoot-out round(s) refunded, %d shoot-out(s) open for voting",
                refunded,
                moved,
            )
        return refunded


def deadline_after(now: datetime, hours: int) -> datetime:
    """When a shoot-out started now closes."""
    return now + timedelta(hours=hours)
