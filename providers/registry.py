"""One explicit registry of adapters, built once at start from configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from providers.base import Adapter, Target
from providers.demo import DemoAdapter
from providers.errors import SplitshotError
from providers.fal import FalEndpoint, FalImages
from providers.gemini import GeminiEndpoint, GeminiImages
from providers.openai_images import OpenAIEndpoint, OpenAIImages

log = logging.getLogger(__name__)

DEMO = "demo"
#: simultaneous requests per adapter when settings do not say
DEFAULT_CONCURRENCY = 4


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

    def slots(name: str) -> int:
        return max(1, config.concurrency.get(name, DEFAULT_CONCURRENCY))

    if config.openai_api_key:
        auth: Literal["bearer", "azure"] = "azure" if config.openai_auth == "azure" else "bearer"
        endpoint = OpenAIEndpoint(
            config.openai_api_key,
            base_url=config.openai_base_url,
            auth=auth,
            deployments=dict(config.openai_deployments),
            output_format=config.openai_output_format,
        )
        adapters["openai"] = OpenAIImages(http, endpoint, concurrency=slots("openai"))
    else:
        log.info("OpenAI adapter disabled: OPENAI_API_KEY is not set (nor AZURE_OPENAI_API_KEY)")
    if config.gemini_api_key:
        gemini = GeminiEndpoint(config.gemini_api_key, base_url=config.gemini_base_url)
        adapters["gemini"] = GeminiImages(http, gemini, concurrency=slots("gemini"))
    else:
        log.info("Gemini adapter disabled: GEMINI_API_KEY (or GOOGLE_API_KEY) is not set")
    if config.fal_key:
        fal = FalEndpoint(config.fal_key, base_url=config.fal_base_url)
        adapters["fal"] = FalImages(http, fal, concurrency=slots("fal"))
    else:
        log.info("fal adapter disabled: FAL_KEY is not set")
    for name in adapters:
        log.info("%s adapter enabled (%d at a time)", name, slots(name))
    demo = DemoAdapter(latency=config.demo_latency) if demo_enabled else None
    return Registry(adapters, demo=demo)
