"""Loads and validates the catalog of models, use cases and criteria (catalog.toml).

Longer than the ~400-line guide on purpose: the catalog's schema, loading and validation, which reports every problem of a file at once.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from bot.errors import SplitshotError
from bot.pricing import RouteCost, credits_for, parse_cost
from providers.base import QUALITIES, Quality
from providers.families import aspects_drawn

KNOWN_ADAPTERS = frozenset({"openai", "gemini", "fal"})
#: criteria whose dots are computed, never rated by hand
DERIVED_CRITERIA = frozenset({"cost_efficiency", "best_first_test"})
REQUIRED_CRITERIA = (
    "realism",
    "text_accuracy",
    "editing_flexibility",
    "cost_efficiency",
    "final_polish",
    "consistency",
    "best_first_test",
)
ASPECT_RE = re.compile(r"^([1-9][0-9]?):([1-9][0-9]?)$")
#: the aspect the catalog's "credits per image" table is quoted at
LIST_ASPECT = "1:1"
DEFAULT_CREDITS_PER_DOLLAR = 130.0


class CatalogError(SplitshotError):
    """The catalog file is unusable; ``problems`` lists every problem found, one per line."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"The catalog {source} has {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One row of the criterion table."""

    id: str
    name: str
    need: str
    derived: bool = False


@dataclass(frozen=True, slots=True)
class UseCase:
    """A use case with its default aspect ratio and how much each criterion matters."""

    id: str
    name: str
    description: str
    default_aspect: str
    weights: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model can do."""

    text_to_image: bool = True
    image_to_image: bool = False
    mask: bool = False
    max_references: int = 0
    mode_2k: bool = False
    mode_4k: bool = False


@dataclass(frozen=True, slots=True)
class Model:
    """One image model as the catalog describes it."""

    id: str
    name: str
    provider: str
    summary: str
    adapters: tuple[tuple[str, str], ...]
    credits: Mapping[Quality, int]
    modes: tuple[str, ...]
    capabilities: Capabilities
    aspects: tuple[str, ...]
    image_sizes: tuple[str, ...]
    quality_options: tuple[str, ...]
    safety: str
    strengths: tuple[str, ...]
    best_for: str
    avoid_if: str
    ratings: Mapping[str, int]
    overrides: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: upstream cost formula per adapter name; empty for a catalog with fixed ``credits``
    costs: Mapping[str, RouteCost] = field(default_factory=dict)
    #: no image of this model costs fewer credits (the advertised starting price)
    min_credits: int = 1

    def upstream(self, route: str) -> str:
        """The upstream model id on ``route`` (the first route's for the demo stand-in)."""
        return dict(self.adapters).get(route, self.adapters[0][1] if self.adapters else self.id)

    def cost(self, route: str) -> tuple[str, RouteCost] | None:
        """The route whose bill applies and its formula (the preferred one for the demo)."""
        if route in self.costs:
            return route, self.costs[route]
        for name, _ in self.adapters:  # the demo is priced as the real model it stands in for
            if name in self.costs:
                return name, self.costs[name]
        return None

    @property
    def starting_price(self) -> int:
        """The cheapest tier's credits per image."""
        return min(self.credits.values())

    def rating(self, criterion: str, use_case: str | None = None) -> int:
        """Editorial rating for a criterion, with the use case's override when there is one."""
        if use_case is not None:
            override = self.overrides.get(use_case, {})
            if criterion in override:
                return override[criterion]
        return self.ratings[criterion]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Models, use cases and criteria, validated; look-ups by id are dictionary hits."""

    models: Mapping[str, Model]
    use_cases: Mapping[str, UseCase]
    criteria: tuple[Criterion, ...]
    default_models: tuple[str, ...]
    source: str
    updated: date
    #: example prompts by id: (use case id, prompt)
    examples: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: the one rate turning upstream dollars into credits
    credits_per_dollar: float = DEFAULT_CREDITS_PER_DOLLAR

    def cost_usd(self, model_id: str, quality: Quality, aspect: str, route: str) -> float | None:
        """What the provider bills for one image on ``route`` (None without a cost formula)."""
        model = self.model(model_id)
        found = model.cost(route)
        if found is None:
            return None
        name, cost = found
        return cost.usd_for(quality, aspect, model.upstream(name))

    def price(
        self,
        model_id: str,
        quality: Quality,
        aspect: str,
        route: str,
        *,
        standard_override: int | None = None,
    ) -> int:
        """Credits for one image of ``model_id`` at this quality and aspect, served by ``route``.

        A server's override is its standard-tier price; the other tiers keep the formula's ratio.
        """
        model = self.model(model_id)
        usd = self.cost_usd(model_id, quality, aspect, route)
        own = (
            model.credits[quality]
            if usd is None
            else credits_for(usd, self.credits_per_dollar, model.min_credits)
        )
        if standard_override is None:
            return own
        standard = self.price(model_id, "standard", aspect, route)
        return max(1, round(standard_override * own / standard))

    def formula(self, model_id: str) -> list[tuple[str, str, str]]:
        """(route, formula in words, source) per route, for `/models info` and the README."""
        model = self.model(model_id)
        return [(name, cost.describe(), cost.source) for name, cost in model.costs.items()]

    def model(self, model_id: str) -> Model:
        """The model with this id, or a BadInput naming the known ones."""
        try:
            return self.models[model_id]
        except KeyError:
            known = ", ".join(self.models)
            raise CatalogLookupError(
                f"Unknown model '{model_id}'. Known models: {known}."
            ) from None

    def use_case(self, use_case_id: str) -> UseCase:
        """The use case with this id, or a BadInput naming the known ones."""
        try:
            return self.use_cases[use_case_id]
        except KeyError:
            known = ", ".join(self.use_cases)
            raise CatalogLookupError(
                f"Unknown use case '{use_case_id}'. Known use cases: {known}."
            ) from None

    @property
    def min_price(self) -> int:
        """The cheapest standard-tier price in the catalog (the cost-efficiency anchor)."""
        return min(m.credits["standard"] for m in self.models.values())


class CatalogLookupError(SplitshotError):
    """An id that is not in the catalog."""


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load the shipped catalog, or the file at ``path``; validate everything at once."""
    if path is None:
        text = resources.files("bot").joinpath("catalog.toml").read_text(encoding="utf-8")
        source = "bot/catalog.toml"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(source, [f"cannot be read: {exc.strerror or exc}"]) from None
    return parse_catalog(text, source=source)


def parse_catalog(text: str, *, source: str = "catalog") -> Catalog:
    """Parse and validate catalog TOML text; every problem is reported, not just the first."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(source, [f"is not valid TOML: {exc}"]) from None
    return _Validator(raw, source).build()


class _Validator:
    def __init__(self, raw: Mapping[str, Any], source: str) -> None:
        self.raw = raw
        self.source = source
        self.problems: list[str] = []

    def build(self) -> Catalog:
        criteria = self._criteria()
        criterion_ids = {c.id for c in criteria}
        use_cases = self._use_cases(criterion_ids)
        models = self._models(criterion_ids, set(use_cases))
        meta = self.raw.get("meta", {})
        updated = self._date(meta.get("updated"))
        rate = self.raw.get("pricing", {}).get("credits_per_dollar", DEFAULT_CREDITS_PER_DOLLAR)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
            self.problems.append(
                f"pricing.credits_per_dollar must be a positive number, got {rate!r}"
            )
            rate = DEFAULT_CREDITS_PER_DOLLAR
        defaults = tuple(meta.get("default_models", ()))[:2] or tuple(models)[:2]
        for model_id in defaults:
            if model_id not in models:
                self.problems.append(f"meta.default_models names unknown model '{model_id}'")
        if len(models) < 2:
            self.problems.append("at least two models are needed to compare anything")
        examples: dict[str, tuple[str, str]] = {}
        for i, entry in enumerate(self.raw.get("examples", [])):
            eid, uc, prompt = entry.get("id"), entry.get("use_case"), entry.get("prompt")
            if not isinstance(eid, str) or not isinstance(prompt, str) or not prompt.strip():
                self.problems.append(f"examples[{i}] needs an id and a prompt")
            elif uc not in use_cases:
                self.problems.append(f"example '{eid}': unknown use case {uc!r}")
            else:
                examples[eid] = (uc, prompt.strip())
        if self.problems:
            raise CatalogError(self.source, self.problems)
        catalog = Catalog(
            models=models,
            use_cases=use_cases,
            criteria=criteria,
            default_models=defaults,
            source=str(meta.get("source", "")),
            updated=updated,
            examples=examples,
            credits_per_dollar=float(rate),
        )
        return self._with_list_prices(catalog)

    def _with_list_prices(self, catalog: Catalog) -> Catalog:
        """Fill each formula-priced model's ``credits`` with its list price (first route, 1:1)."""
        models = {}
        for model in catalog.models.values():
            if model.costs and model.adapters:
                route = model.adapters[0][0]
                credits = {q: catalog.price(model.id, q, LIST_ASPECT, route) for q in QUALITIES}
                model = replace(model, credits=credits)
            models[model.id] = model
        return replace(catalog, models=models)

    def _date(self, value: object) -> date:
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.problems.append(f"meta.updated must be a date like 2026-12-05, got {value!r}")
        return date(1970, 1, 1)

    def _criteria(self) -> tuple[Criterion, ...]:
        out: list[Criterion] = []
        seen: set[str] = set()
        for i, entry in enumerate(self.raw.get("criteria", [])):
            cid = entry.get("id")
            if not isinstance(cid, str) or not cid:
                self.problems.append(f"criteria[{i}] has no id")
                continue
            if cid in seen:
                self.problems.append(f"duplicate criterion id '{cid}'")
                continue
            seen.add(cid)
            out.append(
                Criterion(
                    id=cid,
                    name=str(entry.get("name", cid)),
                    need=str(entry.get("need", "")),
                    derived=cid in DERIVED_CRITERIA,
                )
            )
        for cid in REQUIRED_CRITERIA:
            if cid not in seen:
                self.problems.append(f"criterion '{cid}' is missing")
        return tuple(out)

    def _use_cases(self, criteria: set[str]) -> dict[str, UseCase]:
        out: dict[str, UseCase] = {}
        rated = criteria - {"best_first_test"}
        for i, entry in enumerate(self.raw.get("use_cases", [])):
            uid = entry.get("id")
            if not isinstance(uid, str) or not uid:
                self.problems.append(f"use_cases[{i}] has no id")
                continue
            if uid in out:
                self.problems.append(f"duplicate use case id '{uid}'")
                continue
            where = f"use case '{uid}'"
            aspect = entry.get("default_aspect")
            if not isinstance(aspect, str) or not ASPECT_RE.match(aspect):
                self.problems.append(
                    f"{where}: default_aspect must look like '3:4', got {aspect!r}"
                )
                aspect = "1:1"
            weights = dict(entry.get("weights", {}))
            for name, weight in weights.items():
                if name not in rated:
                    self.problems.append(f"{where}: weight for unknown criterion '{name}'")
                elif (
                    not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 5
                ):
                    self.problems.append(
                        f"{where}: weight for '{name}' must be 0-5, got {weight!r}"
                    )
            if not any(isinstance(w, int) and w > 0 for w in weights.values()):
                self.problems.append(f"{where}: needs at least one positive criterion weight")
            out[uid] = UseCase(
                id=uid,
                name=str(entry.get("name", uid)),
                description=str(entry.get("description", "")),
                default_aspect=aspect,
                weights={k: int(v) for k, v in weights.items() if k in rated},
            )
        if not out:
            self.problems.append("no use cases are defined")
        return out

    def _rating_table(self, where: str, table: object, criteria: set[str]) -> dict[str, int]:
        if not isinstance(table, Mapping):
            self.problems.append(f"{where} must be a table of criterion = 1-5")
            return {}
        out: dict[str, int] = {}
        for name, value in table.items():
            if name not in criteria:
                self.problems.append(f"{where}: unknown criterion '{name}'")
            elif name in DERIVED_CRITERIA:
                self.problems.append(f"{where}: '{name}' is computed, not rated")
            elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
                self.problems.append(f"{where}: rating for '{name}' must be 1-5, got {value!r}")
            else:
                out[name] = value
        return out

    def _models(self, criteria: set[str], use_cases: set[str]) -> dict[str, Model]:
        out: dict[str, Model] = {}
        rated = criteria - DERIVED_CRITERIA
        for i, entry in enumerate(self.raw.get("models", [])):
            mid = entry.get("id")
            if not isinstance(mid, str) or not mid:
                self.problems.append(f"models[{i}] has no id")
                continue
            if mid in out:
                self.problems.append(f"duplicate model id '{mid}'")
                continue
            where = f"model '{mid}'"
            for key in ("name", "provider", "best_for", "avoid_if", "safety"):
                if not isinstance(entry.get(key), str) or not entry.get(key):
                    self.problems.append(f"{where}: '{key}' is missing")
            adapters: list[tuple[str, str]] = []
            for spec in entry.get("adapters", []):
                name, upstream = spec.get("adapter"), spec.get("upstream")
                if name not in KNOWN_ADAPTERS:
                    known = ", ".join(sorted(KNOWN_ADAPTERS))
                    self.problems.append(f"{where}: unknown adapter {name!r} (known: {known})")
                elif not isinstance(upstream, str) or not upstream:
                    self.problems.append(f"{where}: adapter '{name}' has no upstream model id")
                else:
                    adapters.append((name, upstream))
            if not adapters:
                self.problems.append(f"{where}: needs at least one adapter")
            costs = self._costs(where, entry.get("costs"), adapters)
            if costs and "credits" in entry:
                self.problems.append(f"{where}: give costs or fixed credits, not both")
            credits = (
                dict.fromkeys(QUALITIES, 1) if costs else self._credits(where, entry.get("credits"))
            )
            min_credits = entry.get("min_credits", 1)
            if (
                not isinstance(min_credits, int)
                or isinstance(min_credits, bool)
                or not 1 <= min_credits <= 10_000
            ):
                self.problems.append(f"{where}: min_credits must be 1-10000, got {min_credits!r}")
                min_credits = 1
            ratings = self._rating_table(f"{where} ratings", entry.get("ratings", {}), criteria)
            for cid in sorted(rated - set(ratings)):
                self.problems.append(f"{where}: rating for '{cid}' is missing")
            overrides: dict[str, dict[str, int]] = {}
            for uc, table in dict(entry.get("overrides", {})).items():
                if uc not in use_cases:
                    self.problems.append(f"{where}: override for unknown use case '{uc}'")
                    continue
                overrides[uc] = self._rating_table(f"{where} override '{uc}'", table, criteria)
            aspects = self._aspects(where, entry.get("aspects"), adapters)
            caps = dict(entry.get("capabilities", {}))
            try:
                capabilities = Capabilities(**caps)
            except TypeError as exc:
                self.problems.append(f"{where}: bad capabilities ({exc})")
                capabilities = Capabilities()
            out[mid] = Model(
                id=mid,
                name=str(entry.get("name", mid)),
                provider=str(entry.get("provider", "")),
                summary=str(entry.get("summary", "")),
                adapters=tuple(adapters),
                credits=credits,
                modes=tuple(entry.get("modes", ())),
                capabilities=capabilities,
                aspects=aspects,
                image_sizes=tuple(entry.get("image_sizes", ())),
                quality_options=tuple(entry.get("quality_options", ())),
                safety=str(entry.get("safety", "")),
                strengths=tuple(entry.get("strengths", ())),
                best_for=str(entry.get("best_for", "")),
                avoid_if=str(entry.get("avoid_if", "")),
                ratings=ratings,
                overrides=overrides,
                costs=costs,
                min_credits=min_credits,
            )
        return out

    def _aspects(
        self, where: str, listed: object, adapters: list[tuple[str, str]]
    ) -> tuple[str, ...]:
        """What every route draws (from the family rules), narrowed by ``aspects`` if given."""
        drawn = aspects_drawn(tuple(upstream for _, upstream in adapters))
        if listed is None:
            if adapters and not drawn:
                self.problems.append(f"{where}: its routes share no aspect ratio")
            return drawn
        if not isinstance(listed, list) or not listed:
            self.problems.append(f"{where}: aspects, when given, must be a list of ratios")
            return drawn
        for aspect in listed:
            if not isinstance(aspect, str) or not ASPECT_RE.match(aspect):
                self.problems.append(f"{where}: aspect {aspect!r} must look like '3:4'")
            elif aspect not in drawn:
                self.problems.append(f"{where}: its routes cannot draw {aspect}")
        return tuple(a for a in listed if a in drawn)

    def _costs(
        self, where: str, table: object, adapters: list[tuple[str, str]]
    ) -> dict[str, RouteCost]:
        if table is None:
            return {}
        if not isinstance(table, Mapping):
            self.problems.append(f"{where}: costs must be a table of adapter = formula")
            return {}
        out: dict[str, RouteCost] = {}
        for name, spec in table.items():
            if name not in {adapter for adapter, _ in adapters}:
                self.problems.append(f"{where}: cost for adapter '{name}' that does not serve it")
                continue
            cost = parse_cost(f"{where} costs.{name}", spec, self.problems)
            if cost is not None:
                out[name] = cost
        for adapter, _ in adapters:
            if adapter not in table:
                self.problems.append(f"{where}: no cost formula for its '{adapter}' route")
        return out

    def _credits(self, where: str, table: object) -> dict[Quality, int]:
        if not isinstance(table, Mapping):
            self.problems.append(f"{where}: price (credits per quality tier) is missing")
            return dict.fromkeys(QUALITIES, 1)
        out: dict[Quality, int] = {}
        for tier in QUALITIES:
            value = table.get(tier)
            if value is None:
                self.problems.append(f"{where}: price for quality '{tier}' is missing")
            elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10_000:
                self.problems.append(
                    f"{where}: price for '{tier}' must be 1-10000 credits, got {value!r}"
                )
            else:
                out[tier] = value
        for tier in table:
            if tier not in QUALITIES:
                self.problems.append(f"{where}: unknown quality tier '{tier}' in credits")
        for tier in QUALITIES:
            out.setdefault(tier, 1)
        return out
