"""Discord embeds as pure functions of plain data, always inside Discord's limits.

Nothing here talks to Discord or the database. The engine decides what a result shows
(:class:`bot.comparisons.view.ComparisonView`, verdict included); :func:`result_embed` only lays
it out.
Every builder ends in :func:`fit_embed`, so long text is cut with an ellipsis, never rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import discord

from bot.comparisons.view import ComparisonView, PanelView
from bot.measure.report import cells as text_cells
from bot.render.terminal import compact_criteria_table
from bot.voting.rules import OPTION_EMOJI

# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
FIELD_COUNT_LIMIT = 25
TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
ELLIPSIS = "…"
BLANK = "\u200b"  # Discord rejects empty field names and values

COLOUR_OK = discord.Colour(0x3BA55D)
COLOUR_PARTIAL = discord.Colour(0xFAA61A)
COLOUR_FAILED = discord.Colour(0xED4245)
COLOUR_INFO = discord.Colour(0x5865F2)
COLOUR_CLOSED = discord.Colour(0x4F545C)

TIE_EMOJI = OPTION_EMOJI["tie"]
BAD_EMOJI = OPTION_EMOJI["bad"]
DEMO_WARNING = "⚠️ **Demo stand-ins — not real model output.** Add provider keys for real images."
PROMPT_PREVIEW = 200
BLIND_REVEAL = "Verdict, prices and model names are revealed when voting closes."

_STATE_ICONS = {
    "queued": "⏳",
    "generating": "🎨",
    "done": "✅",
    "refused": "🚫",
    "failed": "⚠️",
}


# --------------------------------------------------------------------------- limits
def escaped(text: str | None) -> str:
    """Text written by members or providers, shown literally: no masked links, spoilers, bold
    or headings of theirs inside the bot's own messages."""
    return discord.utils.escape_markdown(text or "")


def cut(text: str | None, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in an ellipsis when it was cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    return text[: limit - 1].rstrip() + ELLIPSIS


def code_block(text: str, limit: int = FIELD_VALUE_LIMIT) -> str:
    """A monospace block that fits ``limit``; whole lines are dropped, never the closing fence."""
    budget = limit - len("```\n\n```")
    if len(text) <= budget:
        return f"```\n{text}\n```"
    room = max(1, budget - len("\n" + ELLIPSIS))
    kept: list[str] = []
    used = 0
    for line in text.splitlines():
        line = cut(line, room)
        extra = len(line) + (1 if kept else 0)
        if used + extra > room:
            break
        kept.append(line)
        used += extra
    kept.append(ELLIPSIS)
    return "```\n" + "\n".join(kept) + "\n```"


def field_chunks(name: str, lines: Sequence[str]) -> list[tuple[str, str]]:
    """Split lines over as many fields as needed; the continuation fields have blank names."""
    chunks: list[tuple[str, str]] = []
    current: list[str] = []
    for line in lines:
        line = cut(line, FIELD_VALUE_LIMIT)
        if current and len("\n".join([*current, line])) > FIELD_VALUE_LIMIT:
            chunks.append((name if not chunks else BLANK, "\n".join(current)))
            current = []
        current.append(line)
    if current:
        chunks.append((name if not chunks else BLANK, "\n".join(current)))
    return chunks


def _slots(data: dict[str, object]) -> list[tuple[Callable[[], str], Callable[[str], None]]]:
    """Getters and setters for every counted text slot, in the order they are shortened."""
    slots: list[tuple[Callable[[], str], Callable[[str], None]]] = []

    def slot(holder: dict[str, object], key: str) -> None:
        slots.append(
            (lambda: str(holder.get(key) or ""), lambda value: holder.__setitem__(key, value))
        )

    if data.get("description"):
        slot(data, "description")
    fields = cast("list[dict[str, object]]", data.get("fields") or [])
    for field in reversed(fields):
        slot(field, "value")
    footer = cast("dict[str, object] | None", data.get("footer"))
    if footer and footer.get("text"):
        slot(footer, "text")
    for field in reversed(fields):
        slot(field, "name")
    if data.get("title"):
        slot(data, "title")
    author = cast("dict[str, object] | None", data.get("author"))
    if author and author.get("name"):
        slot(author, "name")
    return slots


def _total(data: dict[str, object]) -> int:
    return len(discord.Embed.from_dict(cast("discord.types.embed.Embed", data)))


def fit_embed(embed: discord.Embed, *, budget: int = TOTAL_LIMIT) -> discord.Embed:
    """A copy of ``embed`` inside every Discord limit, cutting text with an ellipsis."""
    data = cast("dict[str, object]", embed.to_dict())
    if "title" in data:
        data["title"] = cut(str(data["title"]), TITLE_LIMIT)
    if "description" in data:
        data["description"] = cut(str(data["description"]), DESCRIPTION_LIMIT)
    for key, limit in (("footer", FOOTER_LIMIT), ("author", AUTHOR_LIMIT)):
        part = cast("dict[str, object] | None", data.get(key))
        label = "text" if key == "footer" else "name"
        if part and part.get(label):
            part[label] = cut(str(part[label]), limit)
    fields = cast("list[dict[str, object]]", data.get("fields") or [])[:FIELD_COUNT_LIMIT]
    for field in fields:
        field["name"] = cut(str(field.get("name") or ""), FIELD_NAME_LIMIT) or BLANK
        value = str(field.get("value") or "")
        field["value"] = (_fit_value(value) if len(value) > FIELD_VALUE_LIMIT else value) or BLANK
    if fields:
        data["fields"] = fields
    budget = max(0, min(budget, TOTAL_LIMIT))
    excess = _total(data) - budget
    for get, put in _slots(data):
        if excess <= 0:
            break
        text = get()
        keep = max(1, len(text) - excess)
        put(_fit_value(text, keep) if text.startswith("```") else cut(text, keep))
        excess = _total(data) - budget
    while excess > 0 and fields:
        fields.pop()
        excess = _total(data) - budget
    return discord.Embed.from_dict(cast("discord.types.embed.Embed", data))


def _fit_value(value: str, limit: int = FIELD_VALUE_LIMIT) -> str:
    if value.startswith("```") and value.rstrip().endswith("```") and limit >= 12:
        inner = value.strip("`").strip("\n")
        return code_block(inner, limit)
    return cut(value, limit)


def fit_embeds(embeds: Sequence[discord.Embed]) -> list[discord.Embed]:
    """Fit up to ten embeds into one message's shared 6,000-character budget, earlier first."""
    fitted: list[discord.Embed] = []
    used = 0
    for embed in embeds[:EMBEDS_PER_MESSAGE]:
        remaining = TOTAL_LIMIT - used
        if remaining <= 0:
            break
        embed = fit_embed(embed, budget=remaining)
        fitted.append(embed)
        used += len(embed)
    return fitted


# ----------------------------------------------------------------------- attachments
def attachment_name(comparison_id: str, extension: str) -> str:
    """The uploaded split image's filename (and so its ``attachment://`` name)."""
    return f"splitshot-{comparison_id}.{extension}"


def attachment_url(filename: str) -> str:
    """The URL an embed uses to show an attachment of the same message."""
    return f"attachment://{filename}"


def vote_emoji(letter: str) -> str:
    """🇦 for "A" and so on: the reaction that votes for a panel."""
    return OPTION_EMOJI[letter]


# ------------------------------------------------------------------------ the result
def _title(names: Sequence[str], use_case: str, *, hidden: bool, demo: bool) -> str:
    head = " vs ".join(names)
    if hidden:
        return f"Blind comparison: {head} — {use_case}"
    return f"{head} — {use_case}" + (" · demo" if demo else "")


def _prompt_quote(prompt: str) -> str:
    return "> " + escaped(cut(" ".join(prompt.split()), PROMPT_PREVIEW))


def _panel_line(card: ComparisonView, panel: PanelView) -> str:
    head = f"{vote_emoji(panel.letter)} **{card.shown(panel)}**"
    if panel.ok:
        return head
    icon, verb = ("🚫", "declined this prompt") if panel.status == "refused" else ("⚠️", "failed")
    why = f" ({escaped(panel.reason)})" if panel.reason else ""
    if card.hidden:  # a panel's own price points at its model; the Cost field has the total
        return f"{head} — {icon} {verb}{why}; refunded"
    return f"{head} — {icon} {verb}{why}; {panel.price} credits refunded"


def cost_line(charged: int, refunded: int, balance: int | None) -> str:
    """The money in one line, e.g. "charged 30 · balance 30"."""
    parts = [f"charged {charged}"]
    if refunded:
        parts.append(f"refunded {refunded}")
    if balance is not None:
        parts.append(f"balance {balance}")
    return " · ".join(parts)


def _vote_text(card: ComparisonView) -> str:
    letters = " ".join(vote_emoji(p.letter) for p in card.panels if p.ok)
    text = f"{letters} for the better image · {TIE_EMOJI} tie · {BAD_EMOJI} none of them works"
    if card.vote_deadline is not None:
        text += f"\nVoting closes {discord.utils.format_dt(card.vote_deadline, 'R')}."
    return text


def result_colour(card: ComparisonView) -> discord.Colour:
    """Green when every model delivered, amber when some were refunded, grey once closed."""
    if card.closed:
        return COLOUR_CLOSED
    if not any(p.ok for p in card.panels):
        return COLOUR_FAILED
    return COLOUR_OK if all(p.ok for p in card.panels) else COLOUR_PARTIAL


def result_embed(card: ComparisonView) -> discord.Embed:
    """The short public card under the split image: short answer, criteria, panels, cost, vote.

    The image itself is the message's attachment, which Discord shows above the embed (and
    larger than an embed image); the measured row and the next step live in Details.
    """
    verdict = card.verdict
    letters = [p.letter for p in card.panels]
    names = letters if card.hidden else [p.name for p in card.panels]
    description = []
    if card.demo:
        description.append(DEMO_WARNING)
    description.append(_prompt_quote(card.prompt))
    if card.closed and card.vote_headline:
        description.append(f"🏁 **Voting closed:** {card.vote_headline}")
    if card.hidden:
        # The verdict's prose, the criteria dots and each panel's price or resolution all come
        # from the catalog or the provider, so any of them would name the model behind a letter.
        description.append(
            "🙈 **Blind comparison** — the models stay hidden as "
            f"{'/'.join(letters)} until voting closes. {BLIND_REVEAL}"
        )
    else:
        description.append(verdict.quick_verdict)
    embed = discord.Embed(
        title=_title(names, card.use_case, hidden=card.hidden, demo=card.demo),
        description="\n\n".join(description),
        colour=result_colour(card),
    )
    if not card.hidden:
        criteria = code_block(compact_criteria_table(verdict, letters))
        embed.add_field(
            name="Criteria · editorial dots, cost from price, text measured",
            value=f"{criteria}\n{verdict.text_note}" if verdict.text_note else criteria,
            inline=False,
        )
    elif verdict.text:  # a score per letter names no model
        text = "\n".join(
            f"{p.letter}  {cell}"
            for p, cell in zip(card.panels, text_cells(verdict.text), strict=True)
        )
        embed.add_field(
            name="Text (measured) · this run",
            value=f"{code_block(text)}\n{verdict.text_note}",
            inline=False,
        )
    embed.add_field(
        name="Panels", value="\n".join(_panel_line(card, p) for p in card.panels), inline=False
    )
    if verdict.community and not card.hidden:  # community lines name the models
        for name, value in field_chunks("This server's votes", verdict.community):
            embed.add_field(name=name, value=value, inline=False)
    embed.add_field(
        name="Cost", value=cost_line(card.charged, card.refunded, card.balance_after), inline=True
    )
    if card.closed:
        if card.vote_lines:
            embed.add_field(name="Votes", value="\n".join(card.vote_lines), inline=True)
    else:
        embed.add_field(name="Vote", value=_vote_text(card), inline=True)
    # Time, resolution and the next step are in Details: the public message stays short.
    footer = f"Comparison {card.comparison_id} · Details: time, sizes and what to try next"
    if verdict.updated:
        footer += f" · editorial ratings updated {verdict.updated}"
    embed.set_footer(text=footer)
    if card.image_url:
        embed.set_image(url=card.image_url)
    return fit_embed(embed)


# ---------------------------------------------------------------------- progress
@dataclass(frozen=True, slots=True)
class ProgressLine:
    """One model's live state while a comparison runs."""

    label: str
    state: str  # a bot.comparisons.service.State value
    seconds: float | None = None
    reason: str | None = None
    #: while queued: place in line for a request slot (1 = next)
    position: int | None = None

    def text(self) -> str:
        """E.g. "🎨 **GPT-Image 2** — generating 4 s" or "⏳ **Model A** — queued — position 3"."""
        icon = _STATE_ICONS.get(self.state, "•")
        secs = self.seconds or 0.0
        if self.state == "generating":
            tail = f"generating {secs:.0f} s"
        elif self.state == "done":
            tail = f"done in {secs:.1f} s"
        elif self.state == "refused":
            tail = "declined" + (f" ({escaped(self.reason)})" if self.reason else "")
        elif self.state == "failed":
            tail = "failed" + (f" ({escaped(self.reason)})" if self.reason else "")
        elif self.state == "queued" and self.position is not None:
            tail = f"queued — position {self.position}"
        else:
            tail = self.state
        return f"{icon} **{self.label}** — {tail}"


def progress_embed(
    title: str,
    prompt: str,
    lines: Sequence[ProgressLine],
    *,
    reserved: str,
    demo: bool = False,
    composing: bool = False,
    composing_ahead: int | None = None,
) -> discord.Embed:
    """The one message a member watches while the models run (``composing_ahead``: composes
    waiting in front of this one, when it is in line for a compose slot)."""
    parts = []
    if demo:
        parts.append(DEMO_WARNING)
    parts += [_prompt_quote(prompt), "\n".join(line.text() for line in lines)]
    if composing and composing_ahead:
        parts.append(f"🧩 Composing — {composing_ahead} ahead")
    elif composing:
        parts.append("🧩 Composing the split image…")
    embed = discord.Embed(title=title, description="\n\n".join(parts), colour=COLOUR_INFO)
    embed.set_footer(text=f"{reserved} reserved · anything that fails is refunded")
    return fit_embed(embed)


def notice_embed(
    title: str, lines: Sequence[str], *, colour: discord.Colour = COLOUR_FAILED
) -> discord.Embed:
    """A short titled notice (no image, refunds, nothing charged)."""
    return fit_embed(discord.Embed(title=title, description="\n".join(lines), colour=colour))
