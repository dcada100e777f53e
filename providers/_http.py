"""What every adapter shares: one retry policy, a concurrency limit, capped reads, one log line.

Longer than the ~400-line guide on purpose: the one transport and retry policy every adapter uses; its pieces only make sense together.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import ipaddress
import logging
import random
import re
import socket
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from providers._errors import malformed, network_error, scrub, timed_out, unavailable
from providers._images import ImageProblem, check_image, decode_base64
from providers.base import ImageResult, ProviderError, RateLimited, Refused, Target, TimedOut
from providers.limits import before_large_body

#: bytes httpcore asks the socket for per read (its default is 64 KiB)
READ_CHUNK = 1024 * 1024
#: answers from this size up (or of unknown size) are read a few at a time
LARGE_BODY = 1024 * 1024
#: large answers read at once, per event loop
MAX_BODY_READS = 4
#: requests being started at once (connected and written), per host and event loop
MAX_STARTING = 16
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _loop_gate(name: str, size: int) -> asyncio.Semaphore:
    """The running loop's semaphore called ``name`` (made with ``size`` places on first use)."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(name)
    if gate is None:
        gate = gates[name] = asyncio.Semaphore(size)
    return gate


def body_gate() -> asyncio.Semaphore:
    """The running loop's gate for large answer bodies.

    When a burst of image answers lands together, reading all of them at once made every
    turn of the event loop service dozens of sockets (each 2K answer is ~10 MB), so each turn
    took tens of milliseconds and the loop stalled for everything else; it also held every
    half-read answer in memory at once. A few at a time, the same bytes arrive in short turns,
    the rest wait in the kernel's socket buffers, and the loop stays responsive. Waiting here
    counts against the model's deadline like any other part of the request.
    """
    return _loop_gate("body", MAX_BODY_READS)


def start_gate(host: str) -> asyncio.Semaphore:
    """The running loop's gate for requests being started to ``host``.

    When hundreds of comparisons start together, every request's connect and write landed in
    the same few turns of the event loop: 200 × 2 requests made one turn of 120-160 ms on the
    2-core VM. A few at a time, each turn stays short; a place is given back as soon as the
    request is written and its answer awaited, so a slow provider never holds one. One gate
    per host: a host that does not answer its connects holds up only its own requests.
    """
    return _loop_gate(f"start {host}", MAX_STARTING)


def read_in_large_chunks() -> bool:
    """Let httpcore read HTTP/1.1 bodies in 1 MiB pieces instead of 64 KiB.

    A 2K image answer is ~10 MB: at 64 KiB that is 160 trips through httpcore, h11 and an
    anyio timeout scope on the event loop, and asyncio's 256 KiB reads were split (and the
    rest copied) four times over. Measured on loopback: ~27 -> ~21 ms of CPU per answer.
    httpcore keeps the size as a class attribute for this; False when it no longer does.
    """
    import httpcore

    connection = getattr(httpcore, "AsyncHTTP11Connection", None)
    if connection is None or not isinstance(getattr(connection, "READ_NUM_BYTES", None), int):
        return False
    connection.READ_NUM_BYTES = max(connection.READ_NUM_BYTES, READ_CHUNK)
    return True


log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Classify = Callable[[httpx.Response], ProviderError | None]
#: host, port -> the addresses a connection would go to
Resolve = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (without blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def public_address(address: str) -> bool:
    """False for loopback, link-local, private, shared, reserved and multicast addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    return ip.is_global and not ip.is_multicast


def loop_clock() -> float:
    """The running loop's clock, the one deadlines are measured on."""
    return asyncio.get_running_loop().time()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded, jittered exponential backoff that never sleeps past a deadline (as the OpenAI SDK)."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    #: a 429 without a hint starts here: per-minute image limits (5 a minute at OpenAI's tier 1)
    #: do not clear in the half second a server hiccup does
    rate_limit_delay: float = 5.0
    max_rate_limit_delay: float = 30.0
    #: a provider hint longer than this means "not worth waiting for"
    max_hint: float = 120.0
    sleep: Sleep = asyncio.sleep
    rand: Callable[[], float] = random.random
    clock: Clock = loop_clock

    def delay(
        self, attempt: int, hint: float | None, *, rate_limited: bool = False
    ) -> float | None:
        """Seconds to wait after failed attempt number ``attempt``; None means do not retry."""
        if hint is not None:
            return max(float(hint), 0.0) if hint <= self.max_hint else None
        base, cap = (
            (self.rate_limit_delay, self.max_rate_limit_delay)
            if rate_limited
            else (self.base_delay, self.max_delay)
        )
        backoff = min(cap, base * 2.0 ** (attempt - 1))
        return backoff * (1 - 0.25 * self.rand())


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what a provider may send us and how long one transfer may take."""

    max_response_bytes: int = 96 * 1024 * 1024
    max_image_bytes: int = 48 * 1024 * 1024
    #: decompression-bomb guard; the largest real output (Gemini 4K 16:9) is ~17 MP
    max_pixels: int = 40_000_000
    connect_timeout: float = 10.0
    download_timeout: float = 60.0


# ------------------------------------------------------------------ small pure helpers
def retry_hint(headers: httpx.Headers) -> float | None:
    """Seconds from `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Seconds in OpenAI's reset format: '1s', '6m0s', '340ms', '1h2m3.5s'; None otherwise."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(value + unit for value, unit in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(value) * scale[unit] for value, unit in parts)


def rate_limit_reset(headers: httpx.Headers) -> float | None:
    """When the exhausted limit resets, from `x-ratelimit-remaining-*` / `-reset-*` pairs."""
    waits = []
    for limit in ("requests", "tokens", "images"):
        remaining = headers.get(f"x-ratelimit-remaining-{limit}", "").strip()
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{limit}", ""))
        if remaining == "0" and reset is not None:
            waits.append(reset)
    return max(waits) if waits else None


def retry_verdict(headers: httpx.Headers) -> bool | None:
    """The provider's own 'retry or not' header (OpenAI `x-should-retry`, fal `x-fal-retryable`)."""
    for name in ("x-should-retry", "x-fal-retryable", "x-fal-needs-retry"):
        value = headers.get(name)
        if value is not None:
            return value.strip().lower() in ("true", "1", "yes")
    return None


def download_allowed(url: str, base_url: str) -> bool:
    """Result links are fetched over https, or over http only from the base URL's own host.

    Where an https link points is checked separately (``Upstream.download`` resolves it).
    """
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    if target.scheme == "https" and target.host:
        return True
    return target.scheme in ("http", "https") and same_host(url, base_url)


def same_host(url: str, base_url: str) -> bool:
    """True when ``url`` names the base URL's host and port (the operator chose that one)."""
    try:
        target, base = httpx.URL(url), httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        return False
    return bool(target.host) and (target.host, target.port) == (base.host, base.port)


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` has the base URL's scheme, host and port (safe to send the key to)."""
    try:
        target, base = httpx.URL(url), httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        return False
    return (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)


@dataclass(frozen=True, slots=True)
class Output:
    """What a parse function found: image bytes or a link to fetch, and what the provider said."""

    data: bytes | None = None
    url: str | None = None
    mime_type: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    echoed: Mapping[str, Any] = field(default_factory=dict)
    caption: str | None = None
    request_id: str | None = None


@dataclass(slots=True)
class Call:
    """Bookkeeping for one generate() call, for its deadline and its one log line."""

    target: Target
    deadline: float
    queued: float = field(default_factory=time.monotonic)
    started: float | None = None
    status: int | None = None
    request_id: str | None = None
    requests: int = 0


# ------------------------------------------------------------------ the shared client wrapper
class Upstream:
    """One adapter's link to its API: client, key (to redact), retry policy, slots, caps."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        secret: str,
        concurrency: int = 4,
        policy: RetryPolicy | None = None,
        limits: Limits | None = None,
        resolve: Resolve = system_resolve,
    ) -> None:
        self.name = name
        self.http = http
        self.resolve = resolve
        self.policy = policy or RetryPolicy()
        self.limits = limits or Limits()
        self._secrets = (secret,) if secret else ()
        self._concurrency = max(1, concurrency)
        self._slots = asyncio.Semaphore(self._concurrency)

    def clean(self, text: str) -> str:
        """``text`` without this adapter's key or anything key-shaped."""
        return scrub(text, self._secrets)

    @asynccontextmanager
    async def call(self, target: Target, deadline: float) -> AsyncIterator[Call]:
        """Hold a concurrency slot for one generate() call and log one line when it ends."""
        call = Call(target, deadline)
        outcome, detail = "crash", ""
        try:
            await self._acquire(call)
            try:
                yield call
                outcome = "ok"
            finally:
                self._slots.release()
        except ProviderError as exc:
            self._redact(exc)
            outcome, detail = exc.kind, exc.detail or ""
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            now = time.monotonic()
            started = call.started if call.started is not None else now
            level = logging.WARNING if outcome in ("auth", "quota") else logging.INFO
            log.log(
                level,
                "provider call model=%s adapter=%s upstream=%s outcome=%s status=%s "
                "latency=%.2fs waited=%.2fs requests=%d request_id=%s%s",
                target.model_id,
                self.name,
                target.upstream_id,
                outcome,
                call.status,
                now - started,
                started - call.queued,
                call.requests,
                call.request_id,
                f" detail={detail!r}" if detail else "",
            )

    async def _acquire(self, call: Call) -> None:
        remaining = call.deadline - self.policy.clock()
        if remaining <= 0:
            raise timed_out(self.name, call.target, "the deadline had passed before the call began")
        try:
            async with asyncio.timeout(remaining):
                await self._slots.acquire()
        except TimeoutError:
            detail = f"waited for one of {self._concurrency} {self.name} slots until the deadline"
            raise timed_out(self.name, call.target, detail) from None
        call.started = time.monotonic()

    def _redact(self, exc: ProviderError) -> None:
        exc.message = self.clean(exc.message)
        exc.args = (exc.message,)
        if exc.detail is not None:
            exc.detail = self.clean(exc.detail)
        if isinstance(exc, Refused):
            exc.reason = exc.message

    async def send(
        self,
        call: Call,
        build: Callable[[], httpx.Request],
        classify: Classify,
        *,
        max_bytes: int | None = None,
        timeout_cap: float | None = None,
        record: bool = True,
    ) -> httpx.Response:
        """Send with the shared retry policy; return the first response ``classify`` accepts."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._fetch(call, build(), max_bytes, timeout_cap, record)
                error = classify(response)
                if error is None:
                    return response
                self._apply_hints(error, response.headers)
                raise error
            except ProviderError as err:
                if not err.retryable or isinstance(err, TimedOut):
                    raise
                if attempt >= self.policy.max_attempts:
                    err.detail = f"{err.detail} (gave up after {attempt} attempts)"
                    raise
                limited = isinstance(err, RateLimited)
                wait = self.policy.delay(attempt, err.retry_after, rate_limited=limited)
                if wait is None:
                    err.detail = (
                        f"{err.detail} (asked to wait {err.retry_after:.0f}s; not retrying)"
                    )
                    raise
                if self.policy.clock() + wait >= call.deadline:
                    detail = f"{err.detail}; the next try in {wait:.1f}s would pass the deadline"
                    if limited:  # the cause the member and operator should see is the limit
                        err.detail = detail
                        raise
                    raise timed_out(self.name, call.target, detail) from err
                log.debug(
                    "%s: retrying %s in %.2fs (%s)", self.name, call.target.model_id, wait, err.kind
                )
                await self.policy.sleep(wait)

    @staticmethod
    def _apply_hints(error: ProviderError, headers: httpx.Headers) -> None:
        if not error.retryable:
            return
        hint = retry_hint(headers)
        if hint is None and isinstance(error, RateLimited):
            hint = rate_limit_reset(headers)
        if hint is not None:
            error.retry_after = hint
        if retry_verdict(headers) is False:
            error.retryable = False

    async def _fetch(
        self,
        call: Call,
        request: httpx.Request,
        max_bytes: int | None,
        timeout_cap: float | None,
        record: bool,
    ) -> httpx.Response:
        remaining = call.deadline - self.policy.clock()
        if remaining <= 0:
            raise timed_out(
                self.name, call.target, "the deadline passed before the request was sent"
            )
        budget = remaining if timeout_cap is None else min(remaining, timeout_cap)
        connect = min(budget, self.limits.connect_timeout)
        request.extensions["timeout"] = httpx.Timeout(budget, connect=connect).as_dict()
        cap = max_bytes if max_bytes is not None else self.limits.max_response_bytes
        where = f"{request.method} {request.url.host}{request.url.path}"
        call.requests += 1
        try:
            async with asyncio.timeout(budget):
                response = await self._send_paced(request)
                try:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) < LARGE_BODY:
                        body = await self._read_capped(call, response, cap)
                    else:
                        room = before_large_body.get()
                        if room is not None and response.is_success:  # an image, not an error
                            await room()
                        async with body_gate():
                            body = await self._read_capped(call, response, cap)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout):
            raise timed_out(
                self.name, call.target, f"no complete answer to {where} in {budget:.1f}s"
            ) from None
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__} on {where}: {self.clean(str(exc))}"
            raise network_error(self.name, call.target, detail) from None
        if record:  # result downloads come from a CDN whose ids mean nothing to the provider
            call.status = response.status_code
            call.request_id = response.headers.get("x-request-id") or call.request_id
        headers = response.headers.copy()
        for name in ("content-encoding", "content-length", "transfer-encoding"):
            headers.pop(name, None)
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    async def _send_paced(self, request: httpx.Request) -> httpx.Response:
        """Send under the start gate, held until the request is written (httpcore's trace)."""
        gate = start_gate(request.url.host)
        await gate.acquire()
        held = True

        def written() -> None:
            nonlocal held
            if held:
                held = False
                gate.release()

        earlier = request.extensions.get("trace")

        async def trace(name: str, info: Mapping[str, Any]) -> None:
            if name.endswith(".receive_response_headers.started"):
                written()
            if earlier is not None:
                again = earlier(name, info)
                if inspect.isawaitable(again):
                    await again

        request.extensions["trace"] = trace
        try:
            return await self.http.send(request, stream=True)
        finally:
            written()

    async def _read_capped(self, call: Call, response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise malformed(
                self.name, call.target, f"response of {declared} bytes is over the {cap}-byte cap"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise malformed(self.name, call.target, f"response is over the {cap}-byte cap")
            chunks.append(chunk)
        if size < LARGE_BODY:
            return b"".join(chunks)
        # Joining 10 MB releases the GIL for the copy; on the loop's thread, taking it back
        # meant queueing behind every busy worker (~27 ms per answer under a burst). A worker
        # thread can wait for it instead.
        return await asyncio.to_thread(b"".join, chunks)

    async def download(self, call: Call, url: str, *, base_url: str) -> bytes:
        """Fetch a result link (no key sent) under the image size cap and the download timeout."""
        if url.startswith("data:"):
            try:
                return decode_base64(url)
            except ImageProblem as exc:
                raise malformed(self.name, call.target, f"result data URI: {exc}") from None
        if not download_allowed(url, base_url):
            host = httpx.URL(url).host if url.startswith(("http:", "https:")) else url[:16]
            detail = (
                f"refused to download the result from {host!r}: only https, or http from the "
                "base URL's own host"
            )
            raise malformed(self.name, call.target, detail)
        if not same_host(url, base_url):
            await self._check_public(call, httpx.URL(url))

        def classify(response: httpx.Response) -> ProviderError | None:
            if response.status_code == 200:
                return None
            detail = f"result download answered HTTP {response.status_code}"
            if response.status_code in (408, 409, 429) or response.status_code >= 500:
                return unavailable(self.name, call.target, detail)
            return malformed(self.name, call.target, detail)

        response = await self.send(
            call,
            lambda: httpx.Request("GET", url),
            classify,
            max_bytes=self.limits.max_image_bytes,
            timeout_cap=self.limits.download_timeout,
            record=False,
        )
        return response.content

    async def _check_public(self, call: Call, url: httpx.URL) -> None:
        """Refuse a link that resolves to this machine or its network (blind SSRF).

        A provider (or whoever tampered with its answer) must not make the bot fetch
        http://169.254.169.254/ or an admin page on the LAN. The base URL's own host is exempt:
        the operator configured it, and a local gateway is legitimately on 127.0.0.1.
        """
        host = url.host
        try:
            addresses = await self.resolve(host, url.port or 443)
        except (OSError, UnicodeError) as exc:
            detail = f"could not resolve the result host {host!r} ({type(exc).__name__})"
            raise network_error(self.name, call.target, detail) from None
        private = [a for a in addresses if not public_address(a)]
        if private or not addresses:
            detail = (
                f"refused to download the result from {host!r}: it resolves to a non-public "
                f"address ({', '.join(private) or 'none'})"
            )
            raise malformed(self.name, call.target, detail)

    async def finish(
        self, call: Call, output: Output, *, base_url: str, upstream: str | None = None
    ) -> ImageResult:
        """Fetch (if needed) and validate the image, then build the result."""
        data = output.data
        if data is None:
            if not output.url:
                raise malformed(
                    self.name, call.target, "the answer held neither image data nor a link"
                )
            data = await self.download(call, output.url, base_url=base_url)
        try:
            image = await check_image(
                data,
                declared_mime=output.mime_type,
                max_bytes=self.limits.max_image_bytes,
                max_pixels=self.limits.max_pixels,
            )
        except ImageProblem as exc:
            raise malformed(self.name, call.target, str(exc)) from None
        call.request_id = call.request_id or output.request_id
        started = call.started if call.started is not None else call.queued
        return ImageResult(
            image=image.data,
            mime_type=image.mime_type,
            width=image.width,
            height=image.height,
            latency_s=time.monotonic() - started,
            adapter=self.name,
            upstream_model=upstream or call.target.upstream_id,
            usage=dict(output.usage),
            request_id=call.request_id,
            caption=output.caption,
            echoed=dict(output.echoed),
        )
