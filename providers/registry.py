"""One explicit registry of adapters, built once at start from configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from bot.errors import SplitshotError
from providers.base import Adapter, Target
from providers.demo import DemoAdapter

log = logging.getLogger(__name__)

DEMO = "demo"


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    """Everything the adapters need from settings; adapters never read the environment."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    #: "bearer" for OpenAI and most gateways, "azure" for the `api-key` header variant
    openai_auth: str = "bearer"
    #: Azure/gateway deployment names by upstream model id (the deployment is sent as `model`)
    openai_deployments: Mapping[str, str] = field(default_factory=dict)
    openai_output_format: str = "png"
    gemini_api_key: str | None = field(default=None, repr=False)
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    fal_key: str | None = field(default=None, repr=False)
    fal_base_url: str = "https://queue.fal.run"
    #: simultaneous requests per adapter name (extra requests wait inside their deadline)
    concurrency: Mapping[str, int] = field(default_factory=dict)
    demo_latency: tuple[float, float] = (1.0, 3.0)


class ModelUnavailable(SplitshotError):
    """No configured adapter can serve a model and demo stand-ins are off."""


@dataclass(frozen=True, slots=True)
class Route:
    """How one model will be served in this process."""

    adapter: Adapter
    target: Target

    @property
    def is_demo(self) -> bool:
        """True when the offline demo adapter stands in for the real model."""
        return self.adapter.name == DEMO


class Registry:
    """Adapters by name, plus the demo stand-in; built once, looked up many times."""

    def __init__(self, adapters: Mapping[str, Adapter], *, demo: Adapter | None = None) -> None:
        self._adapters = dict(adapters)
        self._demo = demo

    @property
    def configured(self) -> tuple[str, ...]:
        """Names of the real adapters that have credentials."""
        return tuple(self._adapters)

    def adapter(self, name: str) -> Adapter | None:
        """The adapter registered under ``name`` (the demo one included), if any."""
        if name == DEMO:
            return self._demo
        return self._adapters.get(name)

    def route(
        self,
        model_id: str,
        display_name: str,
        preferences: Sequence[tuple[str, str]],
        *,
        allow_demo: bool,
    ) -> Route:
        """Pick the first configured adapter in the catalog's preference order, else demo."""
        for adapter_name, upstream in preferences:
            adapter = self._adapters.get(adapter_name)
            if adapter is not None:
                return Route(adapter, Target(model_id, display_name, upstream))
        if allow_demo and self._demo is not None:
            return Route(self._demo, Target(model_id, display_name, f"demo/{model_id}"))
        names = ", ".join(name for name, _ in preferences) or "none"
        raise ModelUnavailable(
            f"{display_name} is not available here: no provider key is configured for it "
            f"(it can be served by: {names})."
        )


def build_registry(
    config: ProvidersConfig, http: httpx.AsyncClient, *, demo_enabled: bool
) -> Registry:
    """Build every adapter whose key is present; log one line for each that is not."""
    adapters: dict[str, Adapter] = {}
    # Real adapters are added here as they land; a missing key disables its adapter only.
    demo = DemoAdapter(latency=config.demo_latency) if demo_enabled else None
    return Registry(adapters, demo=demo)
