"""Shoot-outs planned with the real policy and round comparisons written as the job stores them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.catalog import load_catalog
from bot.db import AnyDatabase
from bot.shootouts.plan import ShootoutPlan, ShootoutRequest, plan_shootout
from bot.shootouts.store import ShootoutStore
from tests.bot.comparisons.conftest import policy_with, registry_with
from tests.conftest import FakeAdapter
from tests.pg import run_script, stamp

START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
DEADLINE = START + timedelta(hours=24)
GUILD, CHANNEL, STARTER, MODERATOR = 1, 10, 7, 9
MODELS = ("gpt-image-2", "nano-banana-pro")
LABELS = ("GPT-Image 2", "Nano Banana Pro")

SQL_ADD_COMPARISON = """
INSERT INTO comparisons (id, guild_id, channel_id, message_id, user_id, prompt, use_case, aspect,
    quality, blind, demo, charged, refunded, state, vote_deadline, created_at, delivery, kind,
    parent_id, hold_id)
VALUES (?, ?, ?, ?, ?, ?, 'poster', '3:4', 'standard', ?, ?, ?, 0, 'open', ?, ?, ?, 'shootout', ?, ?)
"""
SQL_ADD_PANEL = """
INSERT INTO panels (comparison_id, idx, letter, model_id, label, adapter, status, latency_s,
    price, credits)
VALUES (?, ?, ?, ?, ?, 'fake', 'ok', ?, ?, ?)
"""
SQL_ADD_VOTE = """
INSERT INTO votes (comparison_id, user_id, choice, emoji, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
EMOJI = {"A": "🇦", "B": "🇧", "tie": "🤝", "bad": "👎"}


def plan(*prompts: str, shootout_id: str = "s1", **changes: Any) -> ShootoutPlan:
    fields: dict[str, Any] = {"name": "Event posters", "use_case": "poster", "models": MODELS}
    fields.update(changes)
    request = ShootoutRequest(prompts=prompts or ("a fair poster",), **fields)
    policy = policy_with(load_catalog(), registry_with(FakeAdapter()))
    return plan_shootout(policy, request, shootout_id=shootout_id)


async def create(
    store: ShootoutStore,
    shootout: ShootoutPlan,
    *,
    channel: int = CHANNEL,
    payer: int = STARTER,
    deadline: datetime = DEADLINE,
    now: datetime = START,
) -> None:
    await store.create(
        shootout, guild_id=GUILD, channel_id=channel, user_id=STARTER, payer_id=payer,
        deadline=deadline, now=now,
    )  # fmt: skip


async def post_round(
    db: AnyDatabase,
    shootout: ShootoutPlan,
    idx: int,
    *,
    message: int | None,
    delivery: str = "posted",
    hold_id: int | None = None,
    votes: tuple[str, ...] = (),
) -> str:
    """Store round ``idx``'s comparison as the job does (panels, then votes by members 100+)."""
    round_plan = shootout.rounds[idx]
    prices = [panel.credits for panel in round_plan.panels]
    statements: list[tuple[str, tuple[object, ...]]] = [
        (
            SQL_ADD_COMPARISON,
            (round_plan.id, GUILD, CHANNEL, message, STARTER, round_plan.prompt, shootout.blind,
             False, sum(prices), stamp(db, DEADLINE), stamp(db, START), delivery, shootout.id,
             hold_id),
        )
    ]  # fmt: skip
    for n, (model, label, price) in enumerate(zip(MODELS, LABELS, prices, strict=True)):
        statements.append(
            (SQL_ADD_PANEL, (round_plan.id, n, "AB"[n], model, label, 2.0 + n, price, price))
        )
    for n, choice in enumerate(votes):
        at = stamp(db, START + timedelta(minutes=n))
        statements.append((SQL_ADD_VOTE, (round_plan.id, 100 + n, choice, EMOJI[choice], at, at)))
    await run_script(db, statements)
    return round_plan.id
