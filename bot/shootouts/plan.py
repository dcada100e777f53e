"""What a shoot-out is before anything is spent: 1–5 prompts, each a planned comparison.

Every round is planned by the same :class:`~bot.comparisons.policy.Policy` as /compare (prompt
limits, banned words, enabled models, prices, blind letters), so a shoot-out costs exactly what
its rounds would cost one by one; a prompt the policy refuses is named in the refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.catalog import UseCase
from bot.comparisons.plan import CompareRequest, Plan
from bot.comparisons.policy import Policy, check_model_count, names
from bot.errors import BadInput

KIND = "shootout"
MIN_PROMPTS, MAX_PROMPTS = 1, 5
MAX_NAME = 80
MIN_HOURS, MAX_HOURS, DEFAULT_HOURS = 1, 168, 24


def new_id() -> str:
    """A shoot-out's id: hex, like a comparison's, so it fits the same button templates."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True, slots=True)
class ShootoutRequest:
    """What the starter asked for, before validation."""

    name: str
    use_case: str | None
    models: Sequence[str]
    prompts: Sequence[str]
    blind: bool = True
    team_role_id: int | None = None
    hours: int = DEFAULT_HOURS


@dataclass(frozen=True, slots=True)
class ShootoutPlan:
    """A validated, priced shoot-out: one comparison plan per prompt, nothing spent yet."""

    id: str
    name: str
    use_case: UseCase
    models: tuple[str, ...]
    blind: bool
    team_role_id: int | None
    hours: int
    rounds: tuple[Plan, ...]

    @property
    def total(self) -> int:
        """Credits for every round."""
        return sum(r.total for r in self.rounds)

    def price_lines(self) -> list[str]:
        """The price itemised per model: 'GPT-Image 2: 3 prompts × 8 = 24 credits'."""
        per_model: dict[str, tuple[str, list[int]]] = {}
        for round_plan in self.rounds:
            for panel in round_plan.panels:
                label, prices = per_model.setdefault(panel.model.id, (panel.label, []))
                prices.append(panel.credits)
        lines = []
        for label, prices in per_model.values():
            unit = prices[0] if len(set(prices)) == 1 else None
            count = len(prices)
            noun = "prompt" if count == 1 else "prompts"
            each = f" × {unit}" if unit is not None else ""
            lines.append(f"{label}: {count} {noun}{each} = {sum(prices)} credits")
        return lines

    @property
    def price_text(self) -> str:
        """'3 prompts × 2 models = 90 credits'."""
        prompts = len(self.rounds)
        models = len(self.models)
        return (
            f"{prompts} prompt{'s' if prompts != 1 else ''} × {models} models = "
            f"{self.total} credits"
        )


def check_name(name: str) -> str:
    """The shoot-out's name, tidied, or BadInput."""
    name = " ".join(name.split())
    if not name:
        raise BadInput("Give the shoot-out a name, e.g. “Event posters”.")
    if len(name) > MAX_NAME:
        raise BadInput(f"The name is {len(name)} characters; the limit is {MAX_NAME}.")
    return name


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """The non-empty prompts (1–5), or BadInput saying what is wrong."""
    given = [p for p in prompts if p.strip()]
    if len(given) < MIN_PROMPTS:
        raise BadInput("A shoot-out needs at least one prompt: write one in the first field.")
    if len(given) > MAX_PROMPTS:
        raise BadInput(f"A shoot-out takes at most {MAX_PROMPTS} prompts; you gave {len(given)}.")
    return given


def plan_shootout(
    policy: Policy, request: ShootoutRequest, *, shootout_id: str | None = None
) -> ShootoutPlan:
    """Validate every prompt and price every round; raises BadInput before anything is spent."""
    name = check_name(request.name)
    prompts = check_prompts(request.prompts)
    models = list(dict.fromkeys(request.models))
    check_model_count(list(request.models))
    off = [policy.catalog.model(m).name for m in models if m not in policy.enabled_models]
    if off:
        verb = "is" if len(off) == 1 else "are"
        raise BadInput(f"{names(off)} {verb} turned off on this server. Nothing was spent.")
    if not MIN_HOURS <= request.hours <= MAX_HOURS:
        raise BadInput(f"Voting can stay open {MIN_HOURS} to {MAX_HOURS} hours.")
    sid = shootout_id or new_id()
    rounds = []
    for number, prompt in enumerate(prompts, start=1):
        compare = CompareRequest(
            prompt=prompt, use_case=request.use_case, models=models, blind=request.blind
        )
        try:
            planned = policy.plan(compare, plan_id=uuid.uuid4().hex[:12])
        except BadInput as exc:
            raise BadInput(f"Prompt {number}: {exc} Nothing was spent.") from None
        rounds.append(replace(planned, kind=KIND, parent_id=sid))
    return ShootoutPlan(
        id=sid,
        name=name,
        use_case=rounds[0].use_case,
        models=tuple(models),
        blind=request.blind,
        team_role_id=request.team_role_id,
        hours=request.hours,
        rounds=tuple(rounds),
    )
