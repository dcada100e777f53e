"""build_registry: real adapters for the keys that are set, one log line for each that is not."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from providers.fal import FalImages
from providers.gemini import GeminiImages
from providers.openai_images import OpenAIImages
from providers.registry import ModelUnavailable, ProvidersConfig, build_registry
from tests.providers.conftest import (
    FAL_KEY,
    GEMINI_KEY,
    OPENAI_KEY,
    PNG,
    FakeServer,
    b64,
    json_answer,
    request,
)

NANO_BANANA_PRO = [("gemini", "gemini-3-pro-image"), ("fal", "fal-ai/nano-banana-pro")]
GPT_IMAGE_2 = [("openai", "gpt-image-2"), ("fal", "openai/gpt-image-2")]
ALL_KEYS = ProvidersConfig(openai_api_key=OPENAI_KEY, gemini_api_key=GEMINI_KEY, fal_key=FAL_KEY)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "providers.registry"]


async def test_no_keys_disables_every_adapter_with_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient() as http:
        registry = build_registry(ProvidersConfig(), http, demo_enabled=False)
    assert registry.configured == ()
    assert messages(caplog) == [
        "OpenAI adapter disabled: OPENAI_API_KEY is not set (nor AZURE_OPENAI_API_KEY)",
        "Gemini adapter disabled: GEMINI_API_KEY (or GOOGLE_API_KEY) is not set",
        "fal adapter disabled: FAL_KEY is not set",
    ]
    with pytest.raises(ModelUnavailable, match="no provider key"):
        registry.route("nano-banana-pro", "Nano Banana Pro", NANO_BANANA_PRO, allow_demo=False)


async def test_no_keys_with_demo_routes_to_the_demo() -> None:
    async with httpx.AsyncClient() as http:
        registry = build_registry(ProvidersConfig(), http, demo_enabled=True)
    route = registry.route("gpt-image-2", "GPT-Image 2", GPT_IMAGE_2, allow_demo=True)
    assert route.is_demo


async def test_every_key_builds_every_adapter_and_logs_no_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        registry = build_registry(ALL_KEYS, http, demo_enabled=False)
    assert registry.configured == ("openai", "gemini", "fal")
    assert isinstance(registry.adapter("openai"), OpenAIImages)
    assert isinstance(registry.adapter("gemini"), GeminiImages)
    assert isinstance(registry.adapter("fal"), FalImages)
    assert not any("disabled" in m for m in messages(caplog))
    for key in (OPENAI_KEY, GEMINI_KEY, FAL_KEY):
        assert key not in caplog.text
        assert key not in repr(ALL_KEYS)


@pytest.mark.parametrize(
    ("config", "adapter", "upstream"),
    [
        (ALL_KEYS, "gemini", "gemini-3-pro-image"),
        (ProvidersConfig(fal_key=FAL_KEY), "fal", "fal-ai/nano-banana-pro"),
        (
            ProvidersConfig(fal_key=FAL_KEY, openai_api_key=OPENAI_KEY),
            "fal",
            "fal-ai/nano-banana-pro",
        ),
    ],
)
async def test_first_adapter_with_a_key_serves_the_model(
    config: ProvidersConfig, adapter: str, upstream: str
) -> None:
    async with httpx.AsyncClient() as http:
        route = build_registry(config, http, demo_enabled=True).route(
            "nano-banana-pro", "Nano Banana Pro", NANO_BANANA_PRO, allow_demo=True
        )
    assert route.adapter.name == adapter and route.target.upstream_id == upstream
    assert not route.is_demo


async def test_azure_settings_reach_the_openai_adapter(server: FakeServer) -> None:
    config = ProvidersConfig(
        openai_api_key=OPENAI_KEY,
        openai_base_url="https://res.openai.azure.com/openai/v1",
        openai_auth="azure",
        openai_deployments={"gpt-image-2": "img2"},
        concurrency={"openai": 1},
    )
    server.on(
        "POST",
        "https://res.openai.azure.com/",
        json_answer(200, {"data": [{"b64_json": b64(PNG)}]}),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        route = build_registry(config, http, demo_enabled=False).route(
            "gpt-image-2", "GPT-Image 2", GPT_IMAGE_2, allow_demo=False
        )
        deadline = asyncio.get_running_loop().time() + 60
        result = await route.adapter.generate(route.target, request(), deadline=deadline)
    sent = server.requests[0]
    assert str(sent.url) == "https://res.openai.azure.com/openai/v1/images/generations"
    assert sent.headers["api-key"] == OPENAI_KEY and b'"model":"img2"' in sent.content
    assert result.image == PNG
