"""One policy for both doors: what a server allows and what a comparison costs.

The Discord cog and the command line both build a :class:`Policy` from the same inputs (the
catalog, the provider registry, the process-wide demo switch and, when there is one, the
server's settings), so the same account is charged the same for the same request whichever
door it came through. Each rule lives here once: prompt limits, banned words, "2–4 distinct
models", default models and use case, aspects, reference support, prices and blind names.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from bot.catalog import ASPECT_RE, Catalog, Model
from bot.comparisons.plan import LETTERS, CompareRequest, Plan, PlannedPanel, blind_name
from bot.credits.budget import floored_prices
from bot.credits.rules import OperatorLimits
from bot.errors import BadInput
from bot.guild_settings import DEFAULTS, GuildSettings
from bot.references import MAX_REFERENCE_BYTES
from bot.text_rules import clean_prompt, find_banned
from providers.base import ImageRequest, Quality
from providers.registry import Registry, Route

MIN_MODELS, MAX_MODELS = 2, 4
MAX_PROMPT = 4000


def check_prompt(prompt: str, banned_words: Collection[str] = ()) -> str:
    """The prompt as it will be sent, or BadInput saying what is wrong with it."""
    # Invisible characters go, spaces are tidied, line breaks stay (posters put each line of
    # text on its own line); a prompt of nothing but invisible characters is empty.
    prompt = clean_prompt(prompt)
    if not prompt:
        raise BadInput("The prompt is empty: describe the image you want.")
    if len(prompt) > MAX_PROMPT:
        raise BadInput(f"The prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}.")
    # Matched after folding look-alikes, separators and invisible characters.
    if find_banned(prompt, banned_words) is not None:
        raise BadInput("This server does not allow one of the words in that prompt.")
    return prompt


def check_model_count(model_ids: Sequence[str]) -> None:
    """2–4 models, each once."""
    if len(model_ids) < MIN_MODELS or len(model_ids) > MAX_MODELS:
        raise BadInput(f"Pick {MIN_MODELS} to {MAX_MODELS} models; you picked {len(model_ids)}.")
    if len(set(model_ids)) != len(model_ids):
        raise BadInput("Each model can appear only once in a comparison.")


def names(items: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True, slots=True)
class Policy:
    """What one server (or the command line without one) allows, and at what price."""

    catalog: Catalog
    registry: Registry
    allow_demo: bool = True
    settings: GuildSettings = field(default=DEFAULTS)
    #: the operator's ceilings and price floor (none when not given)
    limits: OperatorLimits | None = None

    @classmethod
    def for_server(
        cls,
        catalog: Catalog,
        registry: Registry,
        *,
        allow_demo: bool,
        settings: GuildSettings | None,
        limits: OperatorLimits | None = None,
    ) -> Policy:
        """The policy for a server's settings; a server's demo switch overrides the process's."""
        settings = settings or DEFAULTS
        demo = allow_demo if settings.demo_mode is None else settings.demo_mode
        return cls(catalog, registry, demo, settings, limits)

    @property
    def price_overrides(self) -> Mapping[str, int]:
        """The server's prices, none below the operator's floor (older saves included)."""
        overrides = self.settings.price_overrides
        if self.limits is None or not overrides:
            return overrides
        return floored_prices(overrides, self.catalog, self.limits)

    # ------------------------------------------------------------ defaults
    @property
    def enabled_models(self) -> tuple[str, ...]:
        """The models this server allows, in catalog order."""
        enabled = self.settings.enabled_models
        return tuple(m for m in self.catalog.models if not enabled or m in enabled)

    @property
    def default_use_case(self) -> str:
        """The use case a request without one gets."""
        return next(iter(self.catalog.use_cases))

    def default_models(self) -> list[str]:
        """The catalog's default pair when the server allows it, else its first enabled models."""
        allowed = self.enabled_models
        preferred = [m for m in self.catalog.default_models if m in allowed]
        return list(dict.fromkeys([*preferred, *allowed]))[:MIN_MODELS]

    def pick_models(
        self,
        model_a: str | None,
        model_b: str | None,
        extra: Sequence[str | None] = (),
    ) -> list[str]:
        """Model A and B fall back to defaults the member did not already pick; C, D only if given."""
        explicit = [m for m in (model_a, model_b, *extra) if m]
        spares = iter(
            [
                m
                for m in dict.fromkeys([*self.default_models(), *self.enabled_models])
                if m not in explicit
            ]
        )
        first = model_a or next(spares, None)
        second = model_b or next(spares, None)
        return [m for m in (first, second, *extra) if m]

    def blind(self, asked: bool | None) -> bool:
        """The member's choice, else the server's default."""
        return self.settings.blind_default if asked is None else asked

    # ---------------------------------------------------------------- plan
    def plan(self, request: CompareRequest, *, plan_id: str | None = None) -> Plan:
        """Validate everything and price it; raises BadInput before anything is spent."""
        prompt = check_prompt(request.prompt, self.settings.banned_words)
        use_case = self.catalog.use_case(request.use_case or self.default_use_case)
        model_ids = list(request.models) or self.default_models()
        check_model_count(model_ids)
        models = [self.catalog.model(mid) for mid in model_ids]
        off = [m.name for m in models if m.id not in self.enabled_models]
        if off:
            raise BadInput(
                f"{names(off)} {'is' if len(off) == 1 else 'are'} turned off on this server."
            )
        aspect = request.aspect or use_case.default_aspect
        if not ASPECT_RE.match(aspect):
            raise BadInput(f"'{aspect}' is not an aspect ratio; use a form like 3:4.")
        unsupported = [m.name for m in models if aspect not in m.aspects]
        # A default the member never picked does not refuse a model with few sizes: its adapter
        # draws the nearest size it has, and the panel caption shows the size it drew.
        if unsupported and request.aspect is not None:
            common = [a for a in models[0].aspects if all(a in m.aspects for m in models)]
            hint = f"; try {names(common).replace(' and ', ' or ')}" if common else ""
            raise BadInput(f"{names(unsupported)} cannot draw {aspect}{hint}.")
        if request.reference is not None:
            if len(request.reference.data) > MAX_REFERENCE_BYTES:
                raise BadInput("The reference image is larger than 20 MB.")
            no_i2i = [m.name for m in models if not m.capabilities.image_to_image]
            if no_i2i:
                raise BadInput(f"{names(no_i2i)} cannot use a reference image.")
        plan_id = plan_id or uuid.uuid4().hex[:12]
        if request.blind:
            # Letters must not follow the option order, or A would always be model_a.
            random.Random(plan_id).shuffle(models)
        panels = []
        for index, model in enumerate(models):
            route = self._route(model, blind=request.blind, index=index)
            price = self.price(model, request.quality, aspect, route)
            # What the image costs the operator (the catalog's price, before any override).
            cost = self.catalog.price(model.id, request.quality, aspect, route.adapter.name)
            panels.append(
                PlannedPanel(index, model, route, price, blind=request.blind, list_price=cost)
            )
        image_request = ImageRequest(
            prompt=prompt,
            aspect=aspect,
            quality=request.quality,
            references=(request.reference,) if request.reference else (),
            seed=request.seed,
            user_hash=request.user_hash,
        )
        return Plan(
            id=plan_id,
            prompt=prompt,
            use_case=use_case,
            aspect=aspect,
            quality=request.quality,
            blind=request.blind,
            panels=tuple(panels),
            request=image_request,
        )

    def price(self, model: Model, quality: Quality, aspect: str, route: Route | None = None) -> int:
        """Credits per image of ``model`` here: the route's cost formula at this size and tier,
        the server's override (never below the operator's floor) scaling it."""
        if route is None:
            route = self.registry.route(
                model.id, model.name, model.adapters, allow_demo=self.allow_demo
            )
        return self.catalog.price(
            model.id,
            quality,
            aspect,
            route.adapter.name,
            standard_override=self.price_overrides.get(model.id),
        )

    def _route(self, model: Model, *, blind: bool, index: int) -> Route:
        route = self.registry.route(
            model.id, model.name, model.adapters, allow_demo=self.allow_demo
        )
        if not blind:
            return route
        # Whatever the adapter writes (a refusal sentence, the demo's caption) must not give the
        # model away before the vote closes.
        return Route(route.adapter, replace(route.target, display_name=blind_name(LETTERS[index])))
