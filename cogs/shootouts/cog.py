"""/shootout start|close|list, /export comparison|shootout, and the report's Export button.

Glue only: the engine (:mod:`bot.shootouts`) plans, stores, reports and exports; the runner
(:mod:`cogs.shootouts.runner`) spends, posts and closes. Every refusal is a private sentence
and comes before any credit moves.

Longer than the ~400-line guide on purpose: the /shootout and /export commands share the runner, the store and their refusals.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import is_moderator, model_choices, reply_privately, use_case_choices
from bot.comparisons.job import Requester
from bot.errors import SplitshotError
from bot.measure.store import child_text_means
from bot.render.embed import COLOUR_INFO, fit_embed
from bot.shootouts.export import ExportBlocked, export_comparison, export_shootout, to_json
from bot.shootouts.plan import (
    DEFAULT_HOURS,
    MAX_HOURS,
    MAX_NAME,
    MIN_HOURS,
    ShootoutRequest,
    plan_shootout,
)
from bot.shootouts.pool import POOL_USER_ID
from bot.shootouts.store import ShootoutRow, shootout_store
from cogs.shootouts.render import jump_url, price_embed, status_embed
from cogs.shootouts.runner import ShootoutRunner, deadline_after
from cogs.shootouts.views import ConfirmView, ExportButton, PromptsModal
from cogs.votes.views import COG_NAME as VOTES_COG

if TYPE_CHECKING:
    from bot.client import SplitshotBot
    from bot.shootouts.plan import ShootoutPlan
    from bot.shootouts.store import ShootoutRow
    from cogs.votes.cog import VotesCog

log = logging.getLogger(__name__)

LIST_COUNT = 10
ShootoutId = app_commands.Range[str, 1, 32]


class NotYourShootout(SplitshotError):
    """Someone other than the starter or a moderator tried to close a shoot-out."""

    def __init__(self) -> None:
        super().__init__("Only the member who started this shoot-out or a moderator can close it.")


class NoShootout(SplitshotError):
    """Nothing to close here."""

    def __init__(self, shootout_id: str | None) -> None:
        if shootout_id:
            super().__init__(f"There is no open shoot-out `{shootout_id}` in this server.")
        else:
            super().__init__(
                "There is no open shoot-out in this channel; pass its id (see `/shootout list`)."
            )


class PoolForModerators(SplitshotError):
    """Only moderators spend the team pool."""

    def __init__(self) -> None:
        super().__init__(
            "Only moderators can spend the team pool; run it without `pool` to pay yourself."
        )


@dataclass(frozen=True, slots=True)
class Draft:
    """A shoot-out's options while the starter writes its prompts."""

    name: str
    use_case: str
    models: tuple[str, ...]
    team_role_id: int | None
    hours: int
    blind: bool
    payer_id: int


def build_start_command(cog: ShootoutsCog) -> app_commands.Command[Any, ..., None]:
    """/shootout start, with the catalog's models and use cases as choices."""
    catalog = cog.bot.catalog
    models = model_choices(catalog)

    @app_commands.command(
        name="start", description="Run 1–5 prompts through every model, voted blind"
    )
    @app_commands.describe(
        name="What the team is deciding, e.g. Event posters",
        use_case="The kind of work",
        model_a="First model",
        model_b="Second model",
        model_c="Third model (optional)",
        model_d="Fourth model (optional)",
        team="Only members with this role vote (default: every member)",
        hours=f"How long voting stays open (default {DEFAULT_HOURS})",
        blind="Hide model names until voting closes (default on)",
        pool="Moderators: pay from the server's team pool",
    )
    @app_commands.choices(
        use_case=use_case_choices(catalog),
        model_a=models,
        model_b=models,
        model_c=models,
        model_d=models,
    )
    async def start(
        interaction: discord.Interaction[SplitshotBot],
        name: app_commands.Range[str, 1, MAX_NAME],
        use_case: str,
        model_a: str,
        model_b: str,
        model_c: str | None = None,
        model_d: str | None = None,
        team: discord.Role | None = None,
        hours: app_commands.Range[int, MIN_HOURS, MAX_HOURS] = DEFAULT_HOURS,
        blind: bool = True,
        pool: bool = False,
    ) -> None:
        picked = tuple(m for m in (model_a, model_b, model_c, model_d) if m)
        draft = Draft(
            name=name,
            use_case=use_case,
            models=picked,
            team_role_id=team.id if team is not None else None,
            hours=hours,
            blind=blind,
            payer_id=POOL_USER_ID if pool else interaction.user.id,
        )
        await cog.ask_prompts(interaction, draft)

    return start


@app_commands.guild_only()
class ShootoutsCog(
    commands.GroupCog,
    group_name="shootout",
    group_description="Team shoot-outs: one brief, several prompts, every model",
):
    """Shoot-outs, their export, and the team pool."""

    def __init__(self, bot: SplitshotBot) -> None:
        self.bot = bot
        self.store = shootout_store(bot.db)
        self.runner = ShootoutRunner(bot, self.store)
        self.runner.text_accuracy = self._text_accuracy
        super().__init__()
        self.__cog_app_commands_group__.add_command(build_start_command(self))  # type: ignore[union-attr]
        self.export_group = build_export_group(self)

    async def _text_accuracy(self, shootout: ShootoutRow) -> dict[str, float] | None:
        """Each model's mean measured text accuracy over the rounds (None: nothing measured)."""
        return await child_text_means(self.bot.db, shootout.id) or None

    async def cog_load(self) -> None:
        from cogs.shootouts.pool import attach_pool_group

        self.bot.tree.add_command(self.export_group)
        attach_pool_group(self.bot)
        ExportButton.exporter = self.export_shootout_privately
        self.bot.add_dynamic_items(ExportButton)
        votes: VotesCog | None = self.bot.get_cog(VOTES_COG)  # type: ignore[assignment]
        if votes is not None:
            votes.gates.append(self.runner.team_gate)
        else:
            log.warning("voting is not loaded: shoot-out team roles cannot be enforced")
        self.runner.start_closer()

    async def cog_unload(self) -> None:
        await self.runner.stop_closer()
        votes: VotesCog | None = self.bot.get_cog(VOTES_COG)  # type: ignore[assignment]
        if votes is not None and self.runner.team_gate in votes.gates:
            votes.gates.remove(self.runner.team_gate)
        self.bot.remove_dynamic_items(ExportButton)
        ExportButton.exporter = None
        self.bot.tree.remove_command(self.export_group.name)

    # ------------------------------------------------------------- start
    async def ask_prompts(
        self, interaction: discord.Interaction[SplitshotBot], draft: Draft
    ) -> None:
        """Check what can be checked at once, then open the prompts modal."""
        assert interaction.guild_id is not None
        if draft.payer_id == POOL_USER_ID:
            settings = await self.bot.guild_settings(interaction.guild_id)
            if not is_moderator(interaction, settings):
                await reply_privately(interaction, str(PoolForModerators()))
                return

        async def submitted(
            modal_interaction: discord.Interaction[SplitshotBot], prompts: list[str]
        ) -> None:
            await self.confirm(modal_interaction, draft, prompts)

        await interaction.response.send_modal(PromptsModal(draft.name, submitted))

    async def confirm(
        self, interaction: discord.Interaction[SplitshotBot], draft: Draft, prompts: list[str]
    ) -> None:
        """Plan every round, check the payer can cover all of it, show the price with Start."""
        assert interaction.guild_id is not None
        settings = await self.bot.guild_settings(interaction.guild_id)
        request = ShootoutRequest(
            name=draft.name,
            use_case=draft.use_case,
            models=draft.models,
            prompts=prompts,
            blind=draft.blind,
            team_role_id=draft.team_role_id,
            hours=draft.hours,
        )
        try:
            plan = plan_shootout(self.bot.policy(settings), request)
            balance = await self.runner.check_funds(
                interaction.guild_id, draft.payer_id, plan.total
            )
        except SplitshotError as exc:
            await reply_privately(interaction, str(exc))
            return
        view = ConfirmView(interaction.user.id, lambda i: self.start(i, plan, draft))
        await interaction.response.send_message(
            embed=price_embed(
                plan, payer_id=draft.payer_id, balance=balance, team_role_id=draft.team_role_id
            ),
            view=view,
            ephemeral=True,
        )
        view.message = await interaction.original_response()

    async def start(
        self, interaction: discord.Interaction[SplitshotBot], plan: ShootoutPlan, draft: Draft
    ) -> None:
        """Start pressed: reserve every round, open the thread, run the rounds."""
        await interaction.response.edit_message(content="Starting…", embed=None, view=None)
        # This process owns the shoot-out from before its row exists until its rounds have run,
        # so another process recovering from a restart never takes it for abandoned.
        async with self.store.claim(plan.id, wait=True):
            await self._reserve_and_run(interaction, plan, draft)

    async def _reserve_and_run(
        self, interaction: discord.Interaction[SplitshotBot], plan: ShootoutPlan, draft: Draft
    ) -> None:
        assert interaction.guild_id is not None and interaction.channel is not None
        guild_id = interaction.guild_id
        try:
            requester = Requester(
                guild_id, interaction.user.id, interaction.channel_id, payer_id=draft.payer_id
            )
            jobs = await self.runner.reserve_all(plan, requester)
        except SplitshotError as exc:
            await interaction.edit_original_response(content=str(exc))
            return
        channel = interaction.channel
        assert isinstance(channel, discord.abc.Messageable)
        now = discord.utils.utcnow()
        try:
            await self.store.create(
                plan,
                guild_id=guild_id,
                channel_id=channel.id,
                user_id=interaction.user.id,
                payer_id=draft.payer_id,
                deadline=deadline_after(now, plan.hours),
                now=now,
            )
            for idx, job in enumerate(jobs):
                await self.store.set_hold(plan.id, idx, job.hold.id if job.hold else None)
            started = await self.runner.open_thread(channel, plan.name)
            shootout = await self.store.get(plan.id)
            assert shootout is not None
            names = [self.bot.catalog.model(m).name for m in shootout.models]
            status = await started.where.send(
                embed=status_embed(shootout, {}, model_names=names),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            await self.store.set_where(
                plan.id,
                thread_id=started.where_id if started.in_thread else None,
                status_message_id=status.id,
            )
        except BaseException:
            await asyncio.shield(self.runner.release(jobs, "shoot-out could not start"))
            raise
        shootout = await self.store.get(plan.id)
        assert shootout is not None
        where = f"<#{started.where_id}>"
        text = f"🏁 Shoot-out **{plan.name}** started: {len(plan.rounds)} round(s) in {where}."
        if started.thread_note:
            text += f"\n{started.thread_note}"
        await interaction.edit_original_response(content=text)
        if started.in_thread:
            try:
                await channel.send(
                    f"🏁 <@{interaction.user.id}> started the shoot-out **{plan.name}** — "
                    f"rounds and votes in {where}.",
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as exc:
                log.debug("no announcement for shoot-out %s: %s", plan.id, exc)
        settings = await self.bot.guild_settings(guild_id)
        task = asyncio.current_task()
        if task is not None:
            self.bot.comparisons.add(task)
        try:
            await self.runner.run(
                plan, jobs, shootout=shootout, target=started.where, fallback=channel,
                settings=settings,
            )  # fmt: skip
        finally:
            if task is not None:
                self.bot.forget_comparison(task)

    # ------------------------------------------------------------- close, list
    @app_commands.command(name="close", description="Close a shoot-out now and post its report")
    @app_commands.describe(shootout="The shoot-out's id (default: the open one in this channel)")
    async def close(
        self, interaction: discord.Interaction[SplitshotBot], shootout: ShootoutId | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self._close(interaction, shootout)
        except SplitshotError as exc:
            await reply_privately(interaction, str(exc))

    async def _close(
        self, interaction: discord.Interaction[SplitshotBot], shootout: str | None
    ) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        if shootout is None:
            row = await self.store.latest_open(interaction.guild_id, interaction.channel_id)
        else:
            row = await self.store.get(shootout.strip())
            if row is not None and (row.guild_id != interaction.guild_id or row.state == "closed"):
                row = None
        if row is None:
            raise NoShootout(shootout)
        settings = await self.bot.guild_settings(interaction.guild_id)
        if interaction.user.id != row.user_id and not is_moderator(interaction, settings):
            raise NotYourShootout()
        if row.state == "running":
            raise SplitshotError(
                "Its rounds are still being made; close it once they are all posted."
            )
        message = await self.runner.close(row.id, by=interaction.user.id)
        if message is None:
            await interaction.followup.send("That shoot-out has already closed.", ephemeral=True)
            return
        await interaction.followup.send(
            f"Shoot-out **{row.name}** closed. [Report]({message.jump_url})", ephemeral=True
        )

    @app_commands.command(name="list", description="Open and recent shoot-outs in this server")
    async def list_shootouts(self, interaction: discord.Interaction[SplitshotBot]) -> None:
        assert interaction.guild_id is not None
        rows = await self.store.recent(interaction.guild_id, LIST_COUNT)
        lines = [self._list_line(row) for row in rows]
        embed = discord.Embed(
            title="Shoot-outs",
            description="\n".join(lines) or "No shoot-outs yet. Start one with `/shootout start`.",
            colour=COLOUR_INFO,
        )
        await interaction.response.send_message(embed=fit_embed(embed), ephemeral=True)

    @staticmethod
    def _list_line(row: ShootoutRow) -> str:
        if row.state == "closed":
            when = f"closed {discord.utils.format_dt(row.closed_at or row.deadline, 'R')}"
        elif row.state == "running":
            when = "rounds running"
        else:
            when = f"closes {discord.utils.format_dt(row.deadline, 'R')}"
        message = row.report_message_id if row.state == "closed" else row.status_message_id
        channel = row.where_id if row.report_message_id is None else None
        link = jump_url(row.guild_id, channel or row.where_id, message)
        return f"**[{row.name}]({link})** `{row.id}` · {len(row.rounds)} round(s) · {when}"

    # ------------------------------------------------------------- export
    async def send_export(
        self, interaction: discord.Interaction[SplitshotBot], kind: str, item_id: str
    ) -> None:
        """Attach the HTML and JSON files privately (refusals are private sentences)."""
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self._send_export(interaction, kind, item_id)
        except SplitshotError as exc:
            await reply_privately(interaction, str(exc))

    async def _send_export(
        self, interaction: discord.Interaction[SplitshotBot], kind: str, item_id: str
    ) -> None:
        assert interaction.guild_id is not None
        item_id = item_id.strip()
        if kind == "shootout":
            row = await self.store.get(item_id)
            use_case = self.bot.catalog.use_cases.get(row.use_case) if row else None
            page, document = await export_shootout(
                self.bot.db,
                item_id,
                use_case.name if use_case else (row.use_case if row else ""),
                guild_id=interaction.guild_id,
            )
            stem = f"splitshot-shootout-{item_id}"
        else:
            page, document = await export_comparison(
                self.bot.db, item_id, guild_id=interaction.guild_id
            )
            stem = f"splitshot-comparison-{item_id}"
        html_bytes, json_bytes = page.encode(), to_json(document).encode()
        limit = interaction.guild.filesize_limit if interaction.guild else 10 * 1024 * 1024
        if len(html_bytes) + len(json_bytes) > limit:
            raise ExportBlocked(
                "The export is larger than Discord allows here; run "
                f"`splitshot export --{kind} {item_id}` on the bot's machine instead."
            )
        await interaction.followup.send(
            f"Export of {kind} `{item_id}`: open the HTML in any browser, offline.",
            files=[
                discord.File(io.BytesIO(html_bytes), f"{stem}.html"),
                discord.File(io.BytesIO(json_bytes), f"{stem}.json"),
            ],
            ephemeral=True,
        )

    async def export_shootout_privately(
        self, interaction: discord.Interaction[SplitshotBot], shootout_id: str
    ) -> None:
        """The Export button under a report."""
        await self.send_export(interaction, "shootout", shootout_id)


def build_export_group(cog: ShootoutsCog) -> app_commands.Group:
    """/export comparison|shootout."""
    group = app_commands.Group(
        name="export", description="Download a result as HTML and JSON", guild_only=True
    )

    @group.command(name="comparison", description="One comparison as HTML and JSON")
    @app_commands.describe(id="The comparison's id (shown under Details)")
    async def comparison(interaction: discord.Interaction[SplitshotBot], id: ShootoutId) -> None:
        await cog.send_export(interaction, "comparison", id)

    @group.command(name="shootout", description="A shoot-out with every round, as HTML and JSON")
    @app_commands.describe(id="The shoot-out's id (see /shootout list)")
    async def shootout(interaction: discord.Interaction[SplitshotBot], id: ShootoutId) -> None:
        await cog.send_export(interaction, "shootout", id)

    return group
