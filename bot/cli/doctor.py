"""`splitshot doctor`: which image providers are configured, one cheap call each to prove the key,
and with ``--generate`` one cheapest real image per provider to prove the account can draw."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.catalog import Catalog, load_catalog
from bot.render.terminal import terminal_safe
from bot.settings import Settings
from providers import fal, gemini, openai_images
from providers._errors import scrub
from providers.base import ImageRequest, ProviderError, Target
from providers.registry import ProvidersConfig, build_registry

EXIT_OK, EXIT_FAILED = 0, 1
PROBE_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
#: a request id that cannot exist: fal checks the key (401) before it looks the request up (404)
MISSING_REQUEST = "00000000-0000-0000-0000-000000000000"
OPENAI = Target("gpt-image-2", "GPT-Image 2", "gpt-image-2")
GEMINI = Target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image")
FAL = Target("nano-banana-pro", "Nano Banana Pro", "fal-ai/nano-banana-pro")

#: what listing a model cannot show: OpenAI organisation verification, Gemini billing
NOT_PROVEN = "generation not proven (run `splitshot doctor --generate` to make one image)"
#: the probe image: small, harmless, cheapest tier
PROBE_PROMPT = "A plain red circle centred on a white background."
GENERATE_TIMEOUT = 240.0

Verdict = tuple[bool, str]
Probe = Callable[[httpx.AsyncClient, ProvidersConfig], Awaitable[Verdict]]
Confirm = Callable[[str], bool]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `doctor` sub-command."""
    parser = subparsers.add_parser(
        "doctor", help="list the configured image providers and check each key with one cheap call"
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="also make one cheapest image per configured provider (costs money; asks first)",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --generate: do not ask before spending"
    )
    parser.set_defaults(func=run)


def ask(question: str) -> bool:
    """Ask on the terminal; without one, the answer is no (scripts pass --yes)."""
    if not sys.stdin.isatty():
        print(f"{question} [y/N] no (not a terminal; pass --yes to spend without asking)")
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run(
    args: argparse.Namespace,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    confirm: Confirm = ask,
) -> int:
    """Run the checks; 0 when every configured provider answered as expected."""
    settings = Settings.from_env()
    catalog = load_catalog(settings.catalog_path) if getattr(args, "generate", False) else None
    return asyncio.run(
        doctor(
            settings.providers,
            transport=transport,
            catalog=catalog,
            confirm=(lambda _: True) if getattr(args, "yes", False) else confirm,
        )
    )


@dataclass(frozen=True, slots=True)
class ProbeImage:
    """The cheapest image an adapter can make from the catalog, and what it costs."""

    adapter: str
    target: Target
    aspect: str
    usd: float


def cheapest(catalog: Catalog, adapter: str) -> ProbeImage | None:
    """The cheapest draft image ``adapter`` serves in the catalog (None when it serves none)."""
    best: ProbeImage | None = None
    for model in catalog.models.values():
        upstream = dict(model.adapters).get(adapter)
        if upstream is None:
            continue
        for aspect in model.aspects:
            usd = catalog.cost_usd(model.id, "draft", aspect, adapter)
            if usd is not None and (best is None or usd < best.usd):
                best = ProbeImage(adapter, Target(model.id, model.name, upstream), aspect, usd)
    return best


async def doctor(
    config: ProvidersConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    out: Callable[[str], None] = print,
    catalog: Catalog | None = None,
    confirm: Confirm = ask,
) -> int:
    """Print one line per adapter; make one authenticated GET for each adapter with a key.

    With a ``catalog`` (``--generate``), then make the cheapest image each keyed adapter serves,
    after printing the price and getting ``confirm``.
    """
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
        if catalog is not None:
            keyed = [name for name, key, *_ in checks if key]
            failed += await _generate(config, http, catalog, keyed, out, confirm)
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


async def _generate(
    config: ProvidersConfig,
    http: httpx.AsyncClient,
    catalog: Catalog,
    adapters: list[str],
    out: Callable[[str], None],
    confirm: Confirm,
) -> int:
    """Make one cheapest image per adapter; the number that failed."""
    probes = [p for p in (cheapest(catalog, name) for name in adapters) if p is not None]
    if not probes:
        out("Nothing to generate: no provider key is set.")
        return 0
    out("One image per provider (draft quality), at list price:")
    for p in probes:
        out(f"  {p.adapter:<7} {p.target.display_name} {p.aspect}: about ${p.usd:.3f}")
    total = sum(p.usd for p in probes)
    if not confirm(f"Spend about ${total:.3f} on {len(probes)} image(s)?"):
        out("Generation skipped: nothing was spent.")
        return 0
    registry = build_registry(config, http, demo_enabled=False)
    failed = 0
    for p in probes:
        adapter = registry.adapter(p.adapter)
        if adapter is None:  # pragma: no cover - a key was set, so the adapter exists
            continue
        request = ImageRequest(prompt=PROBE_PROMPT, aspect=p.aspect, quality="draft")
        began = time.monotonic()
        try:
            deadline = asyncio.get_running_loop().time() + GENERATE_TIMEOUT
            result = await adapter.generate(p.target, request, deadline=deadline)
        except ProviderError as exc:
            failed += 1
            out(f"  {p.adapter:<7} GENERATION FAILED [{exc.kind}]: {exc.detail or exc.message}")
            continue
        took = time.monotonic() - began
        out(
            f"  {p.adapter:<7} generated: {p.target.display_name} drew "
            f"{result.width}x{result.height} in {took:.1f}s; this account can make images"
        )
    return failed


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
        return True, f"key accepted {where}; {model} is visible to it; {NOT_PROVEN}"
    return False, f"{_explain(openai_images.error_for(OPENAI, response), response)} {where}"


async def _gemini(http: httpx.AsyncClient, config: ProvidersConfig) -> Verdict:
    base = config.gemini_base_url.rstrip("/")
    url = f"{base}/v1beta/models/{GEMINI.upstream_id}"
    response = await http.get(url, headers={"x-goog-api-key": config.gemini_api_key or ""})
    if response.status_code == 200:
        # A free-tier key lists image models too; only generating shows billing is on.
        return True, f"key accepted ({base}); {GEMINI.upstream_id} is listed; {NOT_PROVEN}"
    return False, f"{_explain(gemini.error_for(GEMINI, response), response)} ({base})"


async def _fal(http: httpx.AsyncClient, config: ProvidersConfig) -> Verdict:
    endpoint = fal.FalEndpoint(config.fal_key or "", base_url=config.fal_base_url)
    base = config.fal_base_url.rstrip("/")
    url = f"{base}/{FAL.upstream_id}/requests/{MISSING_REQUEST}/status"
    response = await http.get(url, headers=endpoint.headers())
    # Past the key check, fal answers "no such request": that is the answer we want.
    if response.status_code in (200, 202, 400, 404, 422):
        return True, (
            f"key accepted ({base}; HTTP {response.status_code} for a made-up request); {NOT_PROVEN}"
        )
    return False, f"{_explain(fal.error_for(FAL, response, stage='status'), response)} ({base})"
