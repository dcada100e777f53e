"""`splitshot doctor`: which image providers are configured, and one cheap call each to prove the key."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.render.terminal import terminal_safe
from bot.settings import Settings
from providers import fal, gemini, openai_images
from providers._errors import scrub
from providers.base import ProviderError, Target
from providers.registry import ProvidersConfig

EXIT_OK, EXIT_FAILED = 0, 1
PROBE_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
#: a request id that cannot exist: fal checks the key (401) before it looks the request up (404)
MISSING_REQUEST = "00000000-0000-0000-0000-000000000000"
OPENAI = Target("gpt-image-2", "GPT-Image 2", "gpt-image-2")
GEMINI = Target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image")
FAL = Target("nano-banana-pro", "Nano Banana Pro", "fal-ai/nano-banana-pro")

Verdict = tuple[bool, str]
Probe = Callable[[httpx.AsyncClient, ProvidersConfig], Awaitable[Verdict]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `doctor` sub-command."""
    parser = subparsers.add_parser(
        "doctor", help="list the configured image providers and check each key with one cheap call"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Run the checks; 0 when every configured provider answered as expected."""
    settings = Settings.from_env()
    return asyncio.run(doctor(settings.providers, transport=transport))


async def doctor(
    config: ProvidersConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Print one line per adapter; make one authenticated GET for each adapter with a key."""
    checks: list[tuple[str, str | None, str, str, Probe]] = [
        (
            "openai",
            config.openai_api_key,
            "OPENAI_API_KEY (or AZURE_OPENAI_API_KEY)",
            config.openai_base_url,
            _openai,
        ),
        (
            "gemini",
            config.gemini_api_key,
            "GEMINI_API_KEY (or GOOGLE_API_KEY)",
            config.gemini_base_url,
            _gemini,
        ),
        ("fal", config.fal_key, "FAL_KEY", config.fal_base_url, _fal),
    ]
    failed = 0
    out("Image providers:")
    async with httpx.AsyncClient(
        transport=transport, timeout=PROBE_TIMEOUT, follow_redirects=False
    ) as http:
        for name, key, env, base, probe in checks:
            if not key:
                out(f"  {name:<7} skipped: {env} is not set, so this adapter is off")
                continue
            try:
                ok, line = await probe(http, config)
            except httpx.HTTPError as exc:
                ok, line = False, f"could not reach {base} ({type(exc).__name__})"
            failed += not ok
            line = line.replace(base.rstrip("/"), shown_url(base.rstrip("/")))
            out(f"  {name:<7} {'ok' if ok else 'FAILED'}: {terminal_safe(scrub(line, (key,)))}")
    if not any(check[1] for check in checks):
        out("No provider keys are set: only the offline demo provider can answer.")
    return EXIT_FAILED if failed else EXIT_OK


def shown_url(url: str) -> str:
    """A base URL as it may be printed: never the ``user:password@`` some gateways put in it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _explain(error: ProviderError | None, response: httpx.Response) -> str:
    if error is not None and error.detail:
        return error.detail
    return f"unexpected HTTP {response.status_code}"


async def _openai(http: httpx.AsyncClient, config: ProvidersConfig) -> Verdict:
    key = config.openai_api_key or ""
    auth: Literal["bearer", "azure"] = "azure" if config.openai_auth == "azure" else "bearer"
    endpoint = openai_images.OpenAIEndpoint(key, base_url=config.openai_base_url, auth=auth)
    base = config.openai_base_url.rstrip("/")
    model = config.openai_deployments.get(OPENAI.upstream_id, OPENAI.upstream_id)
    # Azure v1 lists models, not deployments: listing proves the key without naming one.
    url = f"{base}/models" if auth == "azure" else f"{base}/models/{model}"
    response = await http.get(url, headers=endpoint.headers())
    where = f"({auth} auth, {base})"
    if response.status_code == 200:
        # Organization verification is only checked when an image is generated.
        return True, f"key works {where}; {model} is visible to it"
    return False, f"{_explain(openai_images.error_for(OPENAI, response), response)} {where}"


async def _gemini(http: httpx.AsyncClient, config: ProvidersConfig) -> Verdict:
    base = config.gemini_base_url.rstrip("/")
    url = f"{base}/v1beta/models/{GEMINI.upstream_id}"
    response = await http.get(url, headers={"x-goog-api-key": config.gemini_api_key or ""})
    if response.status_code == 200:
        return True, f"key works ({base}); {GEMINI.upstream_id} is available"
    return False, f"{_explain(gemini.error_for(GEMINI, response), response)} ({base})"


async def _fal(http: httpx.AsyncClient, config: ProvidersConfig) -> Verdict:
    endpoint = fal.FalEndpoint(config.fal_key or "", base_url=config.fal_base_url)
    base = config.fal_base_url.rstrip("/")
    url = f"{base}/{FAL.upstream_id}/requests/{MISSING_REQUEST}/status"
    response = await http.get(url, headers=endpoint.headers())
    # Past the key check, fal answers "no such request": that is the answer we want.
    if response.status_code in (200, 202, 400, 404, 422):
        return True, f"key accepted ({base}; HTTP {response.status_code} for a made-up request)"
    return False, f"{_explain(fal.error_for(FAL, response, stage='status'), response)} ({base})"
