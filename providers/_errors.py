"""How adapter failures are worded: member sentences, operator details without keys."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from providers._lift import Lifted, lift, restore
from providers.base import (
    BadRequest,
    ConfigError,
    MalformedResponse,
    NetworkError,
    NoImage,
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


def network_error(adapter: str, target: Target, detail: str) -> NetworkError:
    """The connection failed before an answer came back."""
    msg = f"{target.display_name} could not be reached right now (a network problem)."
    return NetworkError(msg, adapter=adapter, detail=detail)


def no_image(adapter: str, target: Target, detail: str, *, retry_once: bool = False) -> NoImage:
    """The model finished without drawing, for no reason it would name."""
    error = NoImage(
        f"{target.display_name} did not produce an image this time.", adapter=adapter, detail=detail
    )
    error.retry_once = retry_once
    return error


def timed_out(adapter: str, target: Target, detail: str) -> TimedOut:
    """The model's deadline passed (or would pass before the next try)."""
    msg = f"{target.display_name} took too long and was stopped."
    return TimedOut(msg, adapter=adapter, detail=detail)


def config_error(adapter: str, target: Target, detail: str) -> ConfigError:
    """Something the operator must fix; ``detail`` says exactly what (and how)."""
    msg = (
        f"{target.display_name} is not available on this bot right now"
        ": its provider account needs setting up, and the operator has been told."
    )
    return ConfigError(msg, adapter=adapter, detail=detail)


def quota_exhausted(adapter: str, target: Target, detail: str) -> QuotaExhausted:
    """The provider account is out of quota, credit or budget."""
    msg = (
        f"{target.display_name} is not available on this bot right now"
        ": its provider account is out of credit, and the operator has been told."
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


#: credentials inside a URL (a gateway base URL like https://user:pass@host/v1)
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove anything that looks like a provider key, URL credentials and ``secrets``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _USERINFO.sub(r"\1[redacted]@", text)
    return _KEY_PATTERNS.sub("[redacted]", text)


#: what a provider's JSON may hold before it is called malformed without being parsed; real
#: answers have a few dozen keys and lists (the image is one long string) and nest < 10 deep
MAX_JSON_BYTES = 96 * 1024 * 1024
MAX_JSON_ITEMS = 20_000
MAX_JSON_DEPTH = 64
#: error bodies are a sentence or two; a bigger one is read as text, never parsed
MAX_ERROR_JSON_BYTES = 256 * 1024
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


class JsonRefused(ValueError):
    """JSON not parsed because it is too big, too wide or too deep (or not JSON at all)."""


def load_json(
    body: bytes, *, max_bytes: int = MAX_JSON_BYTES, lift_keys: tuple[str, ...] = ()
) -> Any:
    """Parse a provider's JSON under caps on size, items and depth; JsonRefused otherwise.

    The checks run on the raw bytes before ``json.loads`` builds anything, so a hostile body
    of millions of keys or a 200,000-deep list costs a few scans at C speed, not gigabytes.
    Long string values of ``lift_keys`` (the image's base64) come back as
    :class:`~providers._lift.Lifted` views instead of being parsed (see that module).
    """
    if len(body) > max_bytes:
        raise JsonRefused(f"JSON body of {len(body)} bytes is over the {max_bytes}-byte cap")
    lifted: dict[str, Lifted] = {}
    if lift_keys:
        body, lifted = lift(body, lift_keys)
    # Every key and every list item needs a ',' or ':' (strings may hold some too, so this
    # over-counts, which only makes the cap stricter for text-heavy bodies).
    items = body.count(b",") + body.count(b":")
    if items > MAX_JSON_ITEMS:
        raise JsonRefused(f"JSON with over {MAX_JSON_ITEMS} items")
    brackets = body.count(b"[") + body.count(b"{")
    if brackets > MAX_JSON_DEPTH:
        # Only then is the nesting measured; strings are blanked so '[' inside text is ignored.
        depth = deepest = 0
        for match in _BRACKETS.finditer(_STRING.sub(b'""', body)):
            depth += 1 if match.group() in (b"[", b"{") else -1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise JsonRefused(f"JSON nested over {MAX_JSON_DEPTH} levels deep")
    try:
        parsed = json.loads(body)
    except RecursionError:  # pragma: no cover - the depth check stops this first
        raise JsonRefused("JSON nested too deep to parse") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRefused(f"not JSON ({exc})") from None
    return restore(parsed, lifted) if lifted else parsed


def error_json(response: httpx.Response) -> dict[str, Any]:
    """An error answer's JSON object, or {} when it is not small, well-formed JSON."""
    try:
        body = load_json(response.content, max_bytes=MAX_ERROR_JSON_BYTES)
    except JsonRefused:
        return {}
    return body if isinstance(body, dict) else {}


def json_body(
    adapter: str, target: Target, response: httpx.Response, *, lift_keys: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The response's JSON object, or the 'malformed response' error (``lift_keys``: see
    :func:`load_json`)."""
    try:
        payload = load_json(response.content, lift_keys=lift_keys)
    except JsonRefused as exc:
        if not response.content:
            why = "an empty body"
        elif len(response.content) > 4096:
            why = str(exc)
        else:
            why = repr(scrub(response.text[:120]))
        raise malformed(
            adapter, target, f"HTTP {response.status_code} body is not usable JSON: {why}"
        ) from None
    if not isinstance(payload, dict):
        raise malformed(adapter, target, f"expected a JSON object, got {type(payload).__name__}")
    return payload


#: "… Please try again in 12s." (OpenAI), "Please retry in 17.8s." (Gemini), "… in 340ms"
_TRY_AGAIN = re.compile(
    r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)\b", re.IGNORECASE
)


def try_again_in(message: str) -> float | None:
    """Seconds from a rate-limit message's "try again in 12s" wording, when present."""
    found = _TRY_AGAIN.search(message)
    if not found:
        return None
    value = float(found.group(1))
    return value / 1000 if found.group(2).lower() == "ms" else value


def error_text(response: httpx.Response, limit: int = 300) -> str:
    """A short, key-free excerpt of an error body for operator details."""
    # Only the head is decoded: a hostile error body can be tens of megabytes.
    head = response.content[: limit * 4].decode("utf-8", errors="replace")
    return scrub(head[:limit].strip()) or "(empty body)"
