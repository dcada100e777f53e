"""Export a shoot-out or one comparison: a self-contained HTML page and the same data as JSON.

The HTML embeds every panel image as a data URI and needs nothing else, so it opens offline in
any browser; the JSON carries the same fields (each image by MIME type, size and SHA-256).
A blind comparison is not exported while its vote is open: the file would name the models.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bot.comparisons.records import ComparisonRecord, panel_images
from bot.db import AnyDatabase
from bot.errors import SplitshotError
from bot.shootouts.pool import POOL_USER_ID
from bot.shootouts.report import (
    Report,
    RoundData,
    ShootoutData,
    build_report,
    load,
    load_comparison,
)

Images = Mapping[str, Mapping[int, tuple[str, bytes]]]


class ExportBlocked(SplitshotError):
    """Nothing to export, or not yet; the sentence says why."""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def comparison_json(data: RoundData, images: Mapping[int, tuple[str, bytes]]) -> dict[str, Any]:
    """One comparison: prompt, settings, panels (model ids, cost, latency, image hash), votes."""
    record = data.record
    assert record is not None
    panels = []
    for p in record.panels:
        stored = images.get(p.idx)
        panels.append(
            {
                "letter": p.letter,
                "model_id": p.model_id,
                "label": p.label,
                "adapter": p.adapter,
                "upstream_model": p.upstream_model,
                "status": p.status,
                "reason": p.reason,
                "latency_s": p.latency_s,
                "price": p.price,
                "credits": p.credits,
                "width": p.width,
                "height": p.height,
                "image": None
                if stored is None
                else {
                    "mime_type": stored[0],
                    "bytes": len(stored[1]),
                    "sha256": hashlib.sha256(stored[1]).hexdigest(),
                },
            }
        )
    return {
        "id": record.id,
        "kind": record.kind,
        "parent_id": record.parent_id,
        "prompt": record.prompt,
        "use_case": record.use_case,
        "aspect": record.aspect,
        "quality": record.quality,
        "blind": record.blind,
        "state": record.state,
        "delivery": record.delivery,
        "requested_by": record.user_id,
        "channel_id": record.channel_id,
        "message_id": record.message_id,
        "created_at": _iso(record.created_at),
        "vote_deadline": _iso(record.vote_deadline),
        "charged": record.charged,
        "refunded": record.refunded,
        "panels": panels,
        "votes": [asdict(v) for v in data.votes],
        "counts": data.counts,
    }


def shootout_json(data: ShootoutData, report: Report, images: Images) -> dict[str, Any]:
    """The whole shoot-out: its settings, every round's comparison and the report."""
    s = data.shootout
    return {
        "type": "shootout",
        "id": s.id,
        "name": s.name,
        "use_case": s.use_case,
        "models": list(s.models),
        "blind": s.blind,
        "team_role_id": s.team_role_id,
        "paid_by": "team pool" if s.payer_id == POOL_USER_ID else "member",
        "payer_id": s.payer_id,
        "started_by": s.user_id,
        "state": s.state,
        "created_at": _iso(s.created_at),
        "deadline": _iso(s.deadline),
        "closed_at": _iso(s.closed_at),
        "rounds": [
            {
                "index": r.round.idx,
                "prompt": r.round.prompt,
                "state": r.round.state,
                "note": r.round.note,
                "price": r.round.price,
                "comparison": None
                if r.record is None
                else comparison_json(r, images.get(r.record.id, {})),
            }
            for r in data.rounds
        ],
        "report": asdict(report),
        "exported_at": _iso(datetime.now(UTC)),
    }


def _check_open_blind(record: ComparisonRecord) -> None:
    if record.blind and record.state == "open":
        raise ExportBlocked(
            "This vote is blind and still open: export it once voting closes, or the file "
            "would name the models."
        )


async def _images(
    db: AnyDatabase, records: list[ComparisonRecord]
) -> dict[str, Mapping[int, tuple[str, bytes]]]:
    return {r.id: await panel_images(db, r.id) for r in records}


async def export_shootout(
    db: AnyDatabase, shootout_id: str, use_case_name: str, *, guild_id: int | None = None
) -> tuple[str, dict[str, Any]]:
    """(HTML, JSON data) of a shoot-out; ExportBlocked while its blind vote is open."""
    data = await load(db, shootout_id)
    if data is None or (guild_id is not None and data.shootout.guild_id != guild_id):
        raise ExportBlocked(f"There is no shoot-out `{shootout_id}` in this server.")
    if data.shootout.blind and data.shootout.state != "closed":
        raise ExportBlocked(
            "This shoot-out is blind and still open: export it once it closes, or the file "
            "would name the models."
        )
    report = build_report(data, use_case_name)
    records = [r.record for r in data.rounds if r.record is not None]
    images = await _images(db, records)
    document = shootout_json(data, report, images)
    return render_html(document, images), document


async def export_comparison(
    db: AnyDatabase, comparison_id: str, *, guild_id: int | None = None
) -> tuple[str, dict[str, Any]]:
    """(HTML, JSON data) of one comparison; ExportBlocked while its blind vote is open."""
    data = await load_comparison(db, comparison_id)
    record = None if data is None else data.record
    if data is None or record is None or (guild_id is not None and record.guild_id != guild_id):
        raise ExportBlocked(f"There is no comparison `{comparison_id}` in this server.")
    if record.state == "deleted":
        raise ExportBlocked("That comparison was deleted.")
    _check_open_blind(record)
    images = await _images(db, [record])
    document = {"type": "comparison", **comparison_json(data, images[record.id])}
    document["exported_at"] = _iso(datetime.now(UTC))
    return render_html(document, images), document


def to_json(document: Mapping[str, Any]) -> str:
    """The JSON file's text."""
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)


# -------------------------------------------------------------------------- HTML
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1e1f22;padding:0 1rem}h1{margin-bottom:.2rem}.meta{color:#5c5e66}table{border-collapse:collapse;
margin:1rem 0;width:100%}th,td{border:1px solid #d0d3d8;padding:.35rem .6rem;text-align:left;
vertical-align:top}th{background:#f2f3f5}.panels{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;max-width:260px}figure img{max-width:260px;border:1px solid #d0d3d8}
.verdict{font-size:1.2rem;font-weight:600;margin:1rem 0}.round{border-top:2px solid #e3e5e8;
margin-top:2rem;padding-top:1rem}pre{white-space:pre-wrap;background:#f7f7f8;padding:.5rem}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _comparison_html(c: Mapping[str, Any], images: Mapping[int, tuple[str, bytes]]) -> str:
    figures = []
    for index, p in enumerate(c["panels"]):
        stored = images.get(index)
        if stored is None:
            picture = f"<p>No image ({_e(p['status'])}: {_e(p['reason'])})</p>"
        else:
            data = base64.b64encode(stored[1]).decode("ascii")
            picture = f'<img alt="{_e(p["label"])}" src="data:{_e(stored[0])};base64,{data}">'
        figures.append(
            f"<figure>{picture}<figcaption>{_e(p['letter'])} · {_e(p['label'])}"
            f" <code>{_e(p['model_id'])}</code></figcaption></figure>"
        )
    panel_rows = [
        [
            p["letter"],
            p["label"],
            p["model_id"],
            p["upstream_model"],
            p["status"],
            p["reason"] or "",
            p["latency_s"],
            p["price"],
            p["credits"],
            (p["image"] or {}).get("sha256", ""),
        ]
        for p in c["panels"]
    ]
    votes = [[v["user_id"], v["choice"], v["created_at"]] for v in c["votes"]]
    counts = ", ".join(f"{k}: {n}" for k, n in c["counts"].items())
    return (
        f"<p class='meta'>Comparison <code>{_e(c['id'])}</code> · {_e(c['use_case'])} · "
        f"{_e(c['aspect'])} · {_e(c['quality'])} · created {_e(c['created_at'])} · voting "
        f"{_e(c['state'])} (deadline {_e(c['vote_deadline'])}) · charged {_e(c['charged'])}, "
        f"refunded {_e(c['refunded'])}</p>"
        f"<pre>{_e(c['prompt'])}</pre><div class='panels'>{''.join(figures)}</div>"
        + _table(
            [
                "Panel",
                "Model",
                "Model id",
                "Upstream",
                "Status",
                "Reason",
                "Seconds",
                "Price",
                "Credits kept",
                "Image SHA-256",
            ],
            panel_rows,
        )
        + f"<p>Votes — {_e(counts) or 'none'}</p>"
        + (_table(["Voter", "Choice", "At"], votes) if votes else "")
    )


def render_html(document: Mapping[str, Any], images: Images) -> str:
    """The self-contained page (no scripts, no links out)."""
    if document["type"] == "comparison":
        title = f"Splitshot comparison {document['id']}"
        body = f"<h1>{_e(title)}</h1>" + _comparison_html(document, images[document["id"]])
    else:
        report = document["report"]
        title = f"Shoot-out: {document['name']}"
        models = [
            [
                m["label"],
                m["model_id"],
                _rating(m),
                m["votes"],
                m["wins"],
                m["credits"],
                _num(m["credits_per_win"]),
                _num(m["median_seconds"]),
                m["refusals"],
                m["failures"],
                "—" if m["text_accuracy"] is None else f"{m['text_accuracy']:.0%}",
            ]
            for m in report["models"]
        ]
        rounds_table = [
            [r["number"], r["prompt"], r["winner"], r["votes"], "; ".join(r["refusals"])]
            for r in report["rounds"]
        ]
        sections = []
        for r in document["rounds"]:
            c = r["comparison"]
            inner = (
                _comparison_html(c, images.get(c["id"], {}))
                if c is not None
                else f"<pre>{_e(r['prompt'])}</pre><p>Did not run: {_e(r['note'])}</p>"
            )
            sections.append(
                f"<section class='round'><h2>Round {r['index'] + 1}</h2>{inner}</section>"
            )
        notes = "".join(f"<li>{_e(n)}</li>" for n in report["notes"])
        body = (
            f"<h1>{_e(title)}</h1><p class='meta'>Shoot-out <code>{_e(document['id'])}</code> · "
            f"use case {_e(report['use_case'])} · models {_e(', '.join(document['models']))} · "
            f"{'blind' if document['blind'] else 'named'} · paid by {_e(document['paid_by'])} · "
            f"started {_e(document['created_at'])} · closed {_e(document['closed_at'])}</p>"
            f"<p class='verdict'>{_e(report['conclusion'])}</p>"
            + _table(
                [
                    "Model",
                    "Model id",
                    "Rating (95% interval)",
                    "Votes",
                    "Wins",
                    "Credits",
                    "Credits per win",
                    "Median seconds",
                    "Refusals",
                    "Failures",
                    "Text accuracy",
                ],
                models,
            )
            + _table(["Round", "Prompt", "Winner", "Votes", "Refusals"], rounds_table)
            + (f"<ul>{notes}</ul>" if notes else "")
            + f"<p>Total cost: {_e(report['total_credits'])} credits · {_e(report['votes'])} votes</p>"
            + "".join(sections)
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}"
        f"<p class='meta'>Exported {_e(document.get('exported_at'))} by Splitshot.</p>"
        "</body></html>"
    )


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _rating(m: Mapping[str, Any]) -> str:
    if m["rating"] is None:
        return "—"
    if m["low"] is None or m["high"] is None:
        return f"{m['rating']:,.0f} (interval unknown)"
    return f"{m['rating']:,.0f} ({m['low']:,.0f}–{m['high']:,.0f})"
