"""Shared pieces for the comparison engine's tests: a catalog, a fake-served registry, jobs."""

from __future__ import annotations

from typing import Any

import pytest

from bot.catalog import Catalog, load_catalog
from bot.comparisons.job import ComparisonJob, Requester
from bot.comparisons.plan import CompareRequest, Plan
from bot.comparisons.policy import Policy
from bot.comparisons.service import ComparisonService
from bot.guild_settings import GuildSettings
from providers.registry import Registry
from tests.conftest import FakeAdapter


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def registry_with(adapter: Any) -> Registry:
    return Registry({"openai": adapter, "gemini": adapter, "fal": adapter})


def service_with(catalog: Catalog, adapter: FakeAdapter, **kwargs: Any) -> ComparisonService:
    return ComparisonService(catalog, registry_with(adapter), **kwargs)


def policy_with(
    catalog: Catalog, registry: Registry, *, allow_demo: bool = True, **settings: Any
) -> Policy:
    return Policy(catalog, registry, allow_demo, GuildSettings(**settings))


def plan_with(service: ComparisonService, request: CompareRequest, **settings: Any) -> Plan:
    return policy_with(service.catalog, service.registry, **settings).plan(request)


def job_for(service: ComparisonService, plan: Plan, **kwargs: Any) -> ComparisonJob:
    kwargs.setdefault("requester", Requester(1, 2, 3))
    return ComparisonJob(plan, service=service, catalog=service.catalog, **kwargs)
