"""The comparison page, the catalog and a result's details as embeds (pure, inside the limits).

Split from :mod:`bot.render.embed`, whose limit helpers and result card these reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import discord

from bot.render.embed import (
    BLANK,
    COLOUR_INFO,
    DESCRIPTION_LIMIT,
    FIELD_VALUE_LIMIT,
    card_from_record,
    code_block,
    cut,
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


def versus_embeds(
    verdict: Verdict, models: Sequence[Model], *, community: Sequence[str] = ()
) -> list[discord.Embed]:
    """The whole comparison page of PRODUCT §4 as two embeds (the page, then features)."""
    letters = list("ABCD"[: len(models)])
    title = " vs ".join(m.name for m in models) + f" — {verdict.use_case.name}"
    summary = " ".join(f"**{m.name}** — {m.summary}." for m in models if m.summary)
    page = discord.Embed(
        title=title,
        description=f"{verdict.quick_verdict}\n\n{summary}".strip(),
        colour=COLOUR_INFO,
    )
    needs = [f"**{n.need}** → {n.choose}. {n.why}" for n in verdict.needs]
    for name, value in field_chunks("If you need… → choose", needs):
        page.add_field(name=name, value=value, inline=False)
    table = criteria_table(verdict, letters) + "\n\n" + _legend(verdict.labels)
    page.add_field(
        name="Criterion by criterion · editorial dots", value=code_block(table), inline=False
    )
    if community:
        for name, value in field_chunks("This server's votes", community):
            page.add_field(name=name, value=value, inline=False)
    page.add_field(name="Verdict", value=cut(verdict.closing, FIELD_VALUE_LIMIT), inline=False)
    page.add_field(name="Recommended next step", value=verdict.next_step, inline=False)
    page.set_footer(
        text=f"Editorial ratings, not measurements · last updated {verdict.updated} · free, no credits used"
    )
    features = discord.Embed(title="Features and strengths", colour=COLOUR_INFO)
    # One inline column per model, so the models sit side by side.
    for index, (label, strengths) in enumerate(verdict.strengths):
        lines = [*_feature_lines(verdict, index), "**Strengths**", *(f"• {s}" for s in strengths)]
        features.add_field(name=label, value=cut("\n".join(lines), FIELD_VALUE_LIMIT), inline=True)
    avoid = [f"**{m.name}:** {m.avoid_if}" for m in models if m.avoid_if]
    if avoid:
        features.add_field(name="Avoid if", value="\n".join(avoid), inline=False)
    return fit_embeds([page, features])


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
    model: Model, catalog: Catalog, status: str, prices: Mapping[Quality, int] | None = None
) -> discord.Embed:
    """One model's catalog entry: summary, prices (this server's when given), capabilities, ratings."""
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


def details_embeds(
    record: ComparisonRecord, catalog: Catalog, *, reveal: bool = False
) -> list[discord.Embed]:
    """Every parameter of a stored comparison, each panel's run, and the feature table.

    While a blind comparison is hidden, a panel shows only its status and time: its model,
    adapter, resolution and price would each tell which model drew it.
    """
    card = card_from_record(record, catalog, reveal=reveal)
    use_case = catalog.use_cases.get(record.use_case)
    params = discord.Embed(title=f"Details · comparison {record.id}", colour=COLOUR_INFO)
    params.add_field(
        name="Prompt", value=cut(record.prompt, FIELD_VALUE_LIMIT) or BLANK, inline=False
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
        ("Blind", ("yes, revealed" if card.revealed else "yes") if record.blind else "no"),
        ("Demo stand-ins", "yes" if record.demo else "no"),
        ("Requested by", f"<@{record.user_id}>"),
        ("Created", discord.utils.format_dt(record.created_at, "f")),
        ("Votes", votes),
        (
            "Charged",
            f"{card.charged} credits" + (f" (refunded {card.refunded})" if card.refunded else ""),
        ),
    ]
    for name, value in facts:
        params.add_field(name=name, value=value, inline=True)
    for panel, stored in zip(card.panels, record.panels, strict=True):
        status = {"ok": "delivered", "refused": "declined", "failed": "failed"}.get(
            panel.status, panel.status
        )
        status_line = f"Status: {status}" + (f" — {panel.reason}" if panel.reason else "")
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
    embeds = [params]
    if not card.hidden:
        features = discord.Embed(title="Feature table", colour=COLOUR_INFO)
        for header, value in feature_fields(card.verdict, card.verdict.labels):
            features.add_field(name=header, value=value, inline=True)
        embeds.append(features)
    return fit_embeds(embeds)
