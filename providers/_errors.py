"""How adapter failures are worded: member sentences, operator details without keys."""

from __future__ import annotations

import re
from typing import Any

import httpx

from providers.base import (
    BadRequest,
    ConfigError,
    MalformedResponse,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Refused,
    Target,
    TimedOut,
    Unavailable,
)


# ------------------------------------------------------------------ member-facing errors
def rate_limited(adapter: str, target: Target, detail: str) -> RateLimited:
    """The provider asked us to slow down."""
    return RateLimited(
        f"{target.display_name} is rate limited right now.", adapter=adapter, detail=detail
    )


def unavailable(adapter: str, target: Target, detail: str) -> Unavailable:
    """Server error, overload or a dropped connection."""
    msg = f"{target.display_name} is unavailable right now (the provider had a problem)."
    return Unavailable(msg, adapter=adapter, detail=detail)


def timed_out(adapter: str, target: Target, detail: str) -> TimedOut:
    """The model's deadline passed (or would pass before the next try)."""
    msg = f"{target.display_name} took too long and was stopped."
    return TimedOut(msg, adapter=adapter, detail=detail)


def config_error(adapter: str, target: Target, detail: str) -> ConfigError:
    """Something the operator must fix; ``detail`` says exactly what."""
    msg = f"{target.display_name} is not set up correctly on this bot (the operator has been told)."
    return ConfigError(msg, adapter=adapter, detail=detail)


def quota_exhausted(adapter: str, target: Target, detail: str) -> QuotaExhausted:
    """The provider account is out of quota or credit."""
    msg = (
        f"{target.display_name} is out of quota on this bot's account (the operator has been told)."
    )
    return QuotaExhausted(msg, adapter=adapter, detail=detail)


def bad_request(adapter: str, target: Target, detail: str) -> BadRequest:
    """The provider rejected the parameters we sent."""
    msg = f"{target.display_name} rejected this request's settings."
    return BadRequest(msg, adapter=adapter, detail=detail)


def malformed(adapter: str, target: Target, detail: str) -> MalformedResponse:
    """The answer was not a usable image."""
    msg = f"{target.display_name} sent back something that is not a usable image."
    return MalformedResponse(msg, adapter=adapter, detail=detail)


def refused(
    adapter: str,
    target: Target,
    *,
    label: str,
    codes: tuple[str, ...] = (),
    stage: str | None = None,
    detail: str | None = None,
) -> Refused:
    """A refusal worded for members, e.g. 'X declined this prompt (safety: IMAGE_SAFETY).'."""
    why = f"{label}: {', '.join(codes)}" if codes else label
    return Refused(
        f"{target.display_name} declined this prompt ({why}).",
        adapter=adapter,
        stage=stage,
        categories=codes,
        detail=detail,
    )


def status_error(
    adapter: str, target: Target, response: httpx.Response, detail: str
) -> ProviderError:
    """The shared fallback for a status an adapter has no special meaning for."""
    status = response.status_code
    if status == 429:
        return rate_limited(adapter, target, detail)
    if status in (408, 409) or status >= 500:
        return unavailable(adapter, target, detail)
    if status in (401, 403):
        return config_error(adapter, target, detail)
    return bad_request(adapter, target, detail)


_KEY_PATTERNS = re.compile(
    r"sk-[A-Za-z0-9_\-*.]{6,}"  # OpenAI keys, including the masked ones its 401s echo
    r"|AIza[0-9A-Za-z_\-]{10,}"  # Google API keys
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9a-f]{8,}"  # fal keys
)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove anything that looks like a provider key (and the given secrets) from ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERNS.sub("[redacted]", text)


def json_body(adapter: str, target: Target, response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or the 'malformed response' error."""
    try:
        payload = response.json()
    except ValueError:
        snippet = scrub(response.text[:120]) if response.content else "an empty body"
        raise malformed(
            adapter, target, f"HTTP {response.status_code} body is not JSON: {snippet!r}"
        ) from None
    if not isinstance(payload, dict):
        raise malformed(adapter, target, f"expected a JSON object, got {type(payload).__name__}")
    return payload


def error_text(response: httpx.Response, limit: int = 300) -> str:
    """A short, key-free excerpt of an error body for operator details."""
    return scrub(response.text[:limit].strip()) or "(empty body)"
