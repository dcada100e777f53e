"""The shoot-out's Discord messages: the price to confirm, the live status, and the report."""

from __future__ import annotations

from collections.abc import Mapping

import discord

from bot.render.embed import COLOUR_CLOSED, COLOUR_INFO, COLOUR_OK, fit_embed
from bot.shootouts.plan import ShootoutPlan
from bot.shootouts.pool import payer_name
from bot.shootouts.report import Report
from bot.shootouts.store import ShootoutRow

ROUND_STATES = {
    "planned": "⏳ waiting",
    "running": "🎨 generating",
    "posted": "✅ posted",
    "refunded": "↩️ refunded",
}


def jump_url(guild_id: int, channel_id: int, message_id: int | None = None) -> str:
    """The link that opens a channel (or a message in it) in Discord."""
    tail = f"/{message_id}" if message_id is not None else ""
    return f"https://discord.com/channels/{guild_id}/{channel_id}{tail}"


def price_embed(
    plan: ShootoutPlan, *, payer_id: int, balance: int, team_role_id: int | None
) -> discord.Embed:
    """What the starter confirms before anything is spent: every round, every model, the total."""
    who = "every member (one vote each)" if team_role_id is None else f"<@&{team_role_id}> only"
    lines = [
        f"**{plan.use_case.name}** · {len(plan.rounds)} prompt(s) · "
        f"{'blind' if plan.blind else 'named'} · voting {plan.hours} h · votes: {who}",
        "",
        *[f"{n}. {r.prompt[:180]}" for n, r in enumerate(plan.rounds, start=1)],
        "",
        "**Price**",
        *[f"• {line}" for line in plan.price_lines()],
        f"**Total: {plan.price_text}**, paid by {payer_name(payer_id)} "
        f"(balance {balance:,}, {balance - plan.total:,} after).",
        "",
        "Nothing is spent until you press **Start**.",
    ]
    embed = discord.Embed(
        title=f"Shoot-out: {plan.name}", description="\n".join(lines), colour=COLOUR_INFO
    )
    return fit_embed(embed)


def status_embed(
    shootout: ShootoutRow,
    links: Mapping[int, str],
    *,
    model_names: list[str],
) -> discord.Embed:
    """The status message at the top of the thread, edited as rounds finish."""
    total = len(shootout.rounds)
    done = sum(r.state in ("posted", "refunded") for r in shootout.rounds)
    if shootout.state == "running":
        head = f"Running round {min(done + 1, total)} of {total}…"
    elif shootout.state == "open":
        head = f"Voting open — closes {discord.utils.format_dt(shootout.deadline, 'R')}."
    else:
        head = "Closed — see the report below."
    who = (
        "every member may vote"
        if shootout.team_role_id is None or shootout.team_role_gone
        else f"only <@&{shootout.team_role_id}> votes count"
    )
    models = (
        f"{len(model_names)} models, named when voting closes"
        if shootout.blind and shootout.state != "closed"
        else ", ".join(model_names)
    )
    lines = [
        head,
        f"{models} · {who} · started by <@{shootout.user_id}>, "
        f"paid by {payer_name(shootout.payer_id)}",
        "",
    ]
    for r in shootout.rounds:
        state = ROUND_STATES.get(r.state, r.state)
        link = f" · [jump]({links[r.idx]})" if r.idx in links else ""
        note = f" — {r.note}" if r.note else ""
        lines.append(f"**Round {r.idx + 1}** {state}{link}{note}\n> {r.prompt[:150]}")
    colour = COLOUR_CLOSED if shootout.state == "closed" else COLOUR_INFO
    embed = discord.Embed(
        title=f"🏁 Shoot-out: {shootout.name}", description="\n".join(lines), colour=colour
    )
    embed.set_footer(text=f"Shoot-out {shootout.id} · /shootout close · /export shootout")
    return fit_embed(embed)


def report_embed(report: Report, shootout: ShootoutRow) -> discord.Embed:
    """The report: conclusion, per-model table, per-round winners, notes."""
    embed = discord.Embed(
        title=f"📊 Shoot-out report: {report.name}",
        description=f"**{report.conclusion}**",
        colour=COLOUR_OK if report.recommended else COLOUR_CLOSED,
    )
    for m in report.models:
        per_win = "—" if m.credits_per_win is None else f"{m.credits_per_win:,.1f}"
        median = "—" if m.median_seconds is None else f"{m.median_seconds:,.1f} s"
        lines = [
            f"Rating {m.rating_text()}",
            f"Wins {m.wins} of {m.votes} votes",
            f"Cost {m.credits} credits · {per_win} per win",
            f"Median {median} · refusals {m.refusals}"
            + (f" · failures {m.failures}" if m.failures else ""),
        ]
        if m.text_accuracy is not None:
            lines.append(f"Text accuracy {m.text_accuracy:.0%}")
        embed.add_field(name=m.label, value="\n".join(lines), inline=True)
    rounds = []
    for line in report.rounds:
        counts = " · ".join(f"{k} {n}" for k, n in line.counts.items() if n)
        detail = f" ({counts})" if counts else ""
        rounds.append(f"**{line.number}.** {line.winner} — {line.votes} votes{detail}")
        rounds.extend(f"   ↳ {r}" for r in line.refusals)
    embed.add_field(name="Rounds", value="\n".join(rounds) or "No rounds ran.", inline=False)
    notes = [f"Total cost {report.total_credits} credits · {report.votes} votes", *report.notes]
    embed.add_field(name="Notes", value="\n".join(notes), inline=False)
    embed.set_footer(text=f"Shoot-out {shootout.id} · Export for the HTML and JSON files")
    return fit_embed(embed)
