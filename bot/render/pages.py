"""The comparison page, the catalog and a result's details as embeds (pure, inside the limits).

Split from :mod:`bot.render.embed`, whose limit helpers and result card these reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import discord

from bot.catalog import LIST_ASPECT
from bot.comparisons.view import view_from_record
from bot.render.embed import (
    BLANK,
    COLOUR_INFO,
    DESCRIPTION_LIMIT,
    FIELD_VALUE_LIMIT,
    code_block,
    cut,
    escaped,
    field_chunks,
    fit_embed,
    fit_embeds,
    vote_emoji,
)
from bot.render.terminal import criteria_table
from bot.verdict import Verdict, dots

if TYPE_CHECKING:
    from bot.catalog import Catalog, Model
    from bot.comparisons.records import ComparisonRecord
    from providers.base import Quality


def _feature_lines(verdict: Verdict, index: int) -> list[str]:
    return [f"**{row.feature}:** {row.values[index]}" for row in verdict.features]


def feature_fields(verdict: Verdict, headers: Sequence[str]) -> list[tuple[str, str]]:
    """The feature table as one inline field per model (tables are too wide for embeds)."""
    return [
        (header, cut("\n".join(_feature_lines(verdict, i)), FIELD_VALUE_LIMIT))
        for i, header in enumerate(headers)
    ]


def _legend(labels: Sequence[str]) -> str:
    return " · ".join(f"{letter} = {label}" for letter, label in zip("ABCD", labels, strict=False))


def versus_embed(
    verdict: Verdict, models: Sequence[Model], *, community: Sequence[str] = ()
) -> discord.Embed:
    """The comparison page's first screen (PRODUCT §4): short answer, pick, criteria, votes.

    The rest — "If you need…", features, strengths, "Avoid if", the verdict — is one click away
    (:func:`versus_more_embeds`), so the page itself fits on a phone screen.
    """
    letters = list("ABCD"[: len(models)])
    title = " vs ".join(m.name for m in models) + f" — {verdict.use_case.name}"
    page = discord.Embed(title=title, description=verdict.quick_verdict, colour=COLOUR_INFO)
    table = criteria_table(verdict, letters) + "\n\n" + _legend(verdict.labels)
    page.add_field(
        name="Criterion by criterion · editorial dots, cost from price",
        value=code_block(table),
        inline=False,
    )
    if community:
        for name, value in field_chunks("This server's votes", community):
            page.add_field(name=name, value=value, inline=False)
    page.set_footer(
        text=f"Editorial ratings, not measurements · last updated {verdict.updated} · "
        "free, no credits used · More: needs, features, strengths, verdict"
    )
    return fit_embed(page)


def versus_more_embeds(verdict: Verdict, models: Sequence[Model]) -> list[discord.Embed]:
    """The rest of the comparison page, behind /versus's "More" button."""
    title = " vs ".join(m.name for m in models) + f" — {verdict.use_case.name}"
    more = discord.Embed(title=f"{title} · more", colour=COLOUR_INFO)
    needs = [f"**{n.need}** → {n.choose}. {n.why}" for n in verdict.needs]
    for name, value in field_chunks("If you need… → choose", needs):
        more.add_field(name=name, value=value, inline=False)
    if verdict.avoid:
        avoid = [line for _, line in verdict.avoid]
        for name, value in field_chunks("Avoid if", avoid):
            more.add_field(name=name, value=value, inline=False)
    more.add_field(name="Verdict", value=cut(verdict.closing, FIELD_VALUE_LIMIT), inline=False)
    more.add_field(name="Recommended next step", value=verdict.next_step, inline=False)
    features = discord.Embed(title="Features and strengths (editorial)", colour=COLOUR_INFO)
    # One inline column per model, so the models sit side by side.
    for index, ((label, strengths), model) in enumerate(
        zip(verdict.strengths, models, strict=True)
    ):
        lines = [*_feature_lines(verdict, index), "**Strengths**", *(f"• {s}" for s in strengths)]
        if model.summary:
            lines.insert(0, f"*{model.summary}.*")
        features.add_field(name=label, value=cut("\n".join(lines), FIELD_VALUE_LIMIT), inline=True)
    return fit_embeds([more, features])


def models_embed(
    catalog: Catalog,
    status: Mapping[str, str],
    prices: Mapping[str, Mapping[Quality, int]] | None = None,
) -> discord.Embed:
    """The catalog as a compact table; ``status`` says how each model is served here.

    ``prices`` are this server's credits per tier by model id (the catalog's where missing).
    """
    rows = [("Model", "Credits", "Safety", "Here")]
    for model in catalog.models.values():
        tiers = (prices or {}).get(model.id, model.credits)
        credits = f"{tiers['draft']}/{tiers['standard']}/{tiers['high']}"
        rows.append((model.name, credits, model.safety, status.get(model.id, "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("─" * w for w in widths))
    embed = discord.Embed(
        title="Image models",
        description=code_block("\n".join(lines), DESCRIPTION_LIMIT),
        colour=COLOUR_INFO,
    )
    embed.add_field(
        name="Use cases",
        value=", ".join(f"{uc.name} ({uc.default_aspect})" for uc in catalog.use_cases.values()),
        inline=False,
    )
    embed.set_footer(
        text="Credits per image: draft/standard/high · /models info for one model · /versus to compare"
    )
    return fit_embed(embed)


def model_embed(
    model: Model,
    catalog: Catalog,
    status: str,
    prices: Mapping[Quality, int] | None = None,
    formula: Sequence[tuple[str, str, str]] = (),
) -> discord.Embed:
    """One model's catalog entry: summary, prices (this server's when given), capabilities, ratings.

    ``formula`` is (route, cost formula, source) per route: how the price is worked out.
    """
    caps = model.capabilities
    embed = discord.Embed(
        title=f"{model.name} — {model.provider}", description=model.summary, colour=COLOUR_INFO
    )
    embed.add_field(
        name="Credits per image",
        value=" · ".join(f"{tier} {n}" for tier, n in (prices or model.credits).items()),
        inline=True,
    )
    embed.add_field(name="Served here by", value=status or "—", inline=True)
    embed.add_field(name="Safety filter", value=model.safety, inline=True)
    if formula:
        lines = [f"**{route}**: {how} ({source})" for route, how, source in formula]
        lines.append(
            f"Credits = ⌈upstream $ × {catalog.credits_per_dollar:g}⌉, at least "
            f"{model.min_credits}; the list above is for {LIST_ASPECT}, first route"
        )
        embed.add_field(
            name="How the price is worked out",
            value=cut("\n".join(lines), FIELD_VALUE_LIMIT),
            inline=False,
        )
    yes_no = {True: "yes", False: "no"}
    embed.add_field(
        name="Capabilities",
        value="\n".join(
            [
                f"Modes: {', '.join(model.modes)}",
                f"2K: {yes_no[caps.mode_2k]} · 4K: {yes_no[caps.mode_4k]} · mask: {yes_no[caps.mask]}",
                f"Reference images: up to {caps.max_references}",
                f"Aspects: {', '.join(model.aspects)}",
                f"Sizes: {', '.join(model.image_sizes)}",
                f"Quality: {', '.join(model.quality_options)}",
            ]
        ),
        inline=False,
    )
    ratings = [f"{c.name:<20}{dots(model.rating(c.id))}" for c in catalog.criteria if not c.derived]
    embed.add_field(name="Editorial ratings", value=code_block("\n".join(ratings)), inline=False)
    embed.add_field(
        name="Strengths", value="\n".join(f"• {s}" for s in model.strengths) or BLANK, inline=False
    )
    embed.add_field(name="Best for", value=model.best_for or BLANK, inline=True)
    embed.add_field(name="Avoid if", value=model.avoid_if or BLANK, inline=True)
    embed.set_footer(text=f"id {model.id} · catalog updated {catalog.updated:%B %-d, %Y}")
    return fit_embed(embed)


def lineage_line(record: ComparisonRecord, parent: ComparisonRecord | None) -> str | None:
    """ "reroll from comparison X" with a jump link to the parent's message, when it has one."""
    if record.parent_id is None:
        return None
    text = f"{record.kind} from comparison {record.parent_id}"
    if parent is not None and parent.channel_id and parent.message_id:
        link = (
            f"https://discord.com/channels/{parent.guild_id}/{parent.channel_id}/"
            f"{parent.message_id}"
        )
        text = f"[{text}]({link})"
    return text


def details_content(record: ComparisonRecord) -> str:
    """The line above the details: who asked, as a mention (shown as their name).

    In message text, not in the embed: embeds may show a mention as the raw ``<@id>``.
    Send it with mentions disabled, so opening Details pings nobody.
    """
    return f"Comparison `{record.id}`, requested by <@{record.user_id}>"


def details_embeds(
    record: ComparisonRecord,
    catalog: Catalog,
    *,
    reveal: bool = False,
    parent: ComparisonRecord | None = None,
) -> list[discord.Embed]:
    """Every parameter of a stored comparison, each panel's run, and the feature table.

    While a blind comparison is hidden, a panel shows only its status and time: its model,
    adapter, resolution and price would each tell which model drew it.
    """
    card = view_from_record(record, catalog, reveal=reveal)
    use_case = catalog.use_cases.get(record.use_case)
    params = discord.Embed(title=f"Details · comparison {record.id}", colour=COLOUR_INFO)
    params.add_field(
        name="Prompt", value=cut(escaped(record.prompt), FIELD_VALUE_LIMIT) or BLANK, inline=False
    )
    if record.state == "deleted":
        votes = "deleted"
    elif record.state == "closed":
        votes = "closed"
    elif record.vote_deadline is not None:
        votes = f"open, closes {discord.utils.format_dt(record.vote_deadline, 'R')}"
    else:
        votes = "open"
    facts = [
        ("Use case", use_case.name if use_case else record.use_case),
        ("Aspect", record.aspect),
        ("Quality", record.quality),
        ("Kind", lineage_line(record, parent) or record.kind),
        ("Blind", ("yes, revealed" if card.revealed else "yes") if record.blind else "no"),
        ("Demo stand-ins", "yes" if record.demo else "no"),
        ("Created", discord.utils.format_dt(record.created_at, "f")),
        ("Votes", votes),
        (
            "Charged",
            f"{card.charged} credits" + (f" (refunded {card.refunded})" if card.refunded else ""),
        ),
    ]
    for name, value in facts:
        params.add_field(name=name, value=value, inline=True)
    for _ in range(-len(facts) % 3):  # the panels start a row of their own
        params.add_field(name=BLANK, value=BLANK, inline=True)
    for panel, stored in zip(card.panels, record.panels, strict=True):
        status = {"ok": "delivered", "refused": "declined", "failed": "failed"}.get(
            panel.status, panel.status
        )
        status_line = f"Status: {status}" + (f" — {escaped(panel.reason)}" if panel.reason else "")
        time_line = f"Time: {panel.seconds:.2f} s" if panel.seconds is not None else None
        if card.hidden:
            lines = ["Model, adapter, resolution and price hidden until voting closes"]
            lines.append(status_line)
            if time_line:
                lines.append(time_line)
        else:
            lines = [f"Model: {panel.name} (`{stored.model_id}`)", f"Adapter: `{stored.adapter}`"]
            lines.append(status_line)
            if time_line:
                lines.append(time_line)
            if panel.width and panel.height:
                lines.append(f"Resolution: {panel.width}×{panel.height}")
            lines.append(f"Credits: {panel.price}" + ("" if panel.ok else " (refunded)"))
        if stored.text is not None:  # what was read names no model, so blind cards show it too
            read = "; ".join(f"“{t}”" if t else "nothing legible" for t in stored.text.read)
            lines.append(f"Text read: {read} ({stored.text.cell()})")
        params.add_field(
            name=f"{vote_emoji(panel.letter)} {card.shown(panel)}",
            value="\n".join(lines),
            inline=True,
        )
    if not card.hidden:
        params.add_field(name="Recommended next step", value=card.verdict.next_step, inline=False)
    embeds = [params]
    if not card.hidden:
        features = discord.Embed(title="Feature table", colour=COLOUR_INFO)
        for header, value in feature_fields(card.verdict, card.verdict.labels):
            features.add_field(name=header, value=value, inline=True)
        embeds.append(features)
    return fit_embeds(embeds)
