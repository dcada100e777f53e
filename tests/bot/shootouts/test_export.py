"""The export page is inert: whatever a member typed is text, never markup."""

from __future__ import annotations

from bot.shootouts.export import render_html


def test_prompts_and_labels_are_escaped() -> None:
    document = {
        "type": "comparison",
        "id": "abc",
        "prompt": "<script>alert(1)</script>",
        "use_case": "poster",
        "aspect": "3:4",
        "quality": "standard",
        "created_at": "2026-01-01T00:00:00+00:00",
        "state": "closed",
        "vote_deadline": None,
        "charged": 8,
        "refunded": 0,
        "panels": [
            {
                "letter": "A",
                "label": "<b>x</b>",
                "model_id": "m",
                "upstream_model": None,
                "status": "ok",
                "reason": None,
                "latency_s": 1.0,
                "price": 8,
                "credits": 8,
                "image": None,
            },
        ],
        "votes": [],
        "counts": {"A": 0},
        "exported_at": None,
    }
    page = render_html(document, {"abc": {0: ("image/png", b"\x89PNG")}})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>x</b>" not in page
    assert "data:image/png;base64,iVBORw==" in page
