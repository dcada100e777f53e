"""The shared plumbing: backoff, retry hints, caps, download rules, image checks, the limiter."""

from __future__ import annotations

import asyncio
import email.utils
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from providers._errors import malformed, scrub, unavailable
from providers._http import (
    Limits,
    RetryPolicy,
    Upstream,
    download_allowed,
    retry_hint,
    retry_verdict,
    same_origin,
)
from providers._images import ImageProblem, check_image, inspect_image, nearest_aspect
from providers.base import MalformedResponse, ProviderError, TimedOut, Unavailable
from tests.providers.conftest import JPEG, PNG, FakeClock, FakeServer, bomb_png, make_image, target

TARGET = target("m", "Model M", "m-1")
NOISE = make_image("PNG", (48, 48), noise=True)
URL = "https://api.example/v1/thing"


def ok(response: httpx.Response) -> ProviderError | None:
    if response.status_code == 200:
        return None
    if response.status_code >= 500:
        return unavailable("t", TARGET, f"HTTP {response.status_code}")
    return malformed("t", TARGET, f"HTTP {response.status_code}")


def get() -> httpx.Request:
    return httpx.Request("GET", URL)


# ------------------------------------------------------------------ backoff
def test_backoff_doubles_from_half_a_second_to_eight_with_jitter() -> None:
    none = RetryPolicy(rand=lambda: 0.0)
    full = RetryPolicy(rand=lambda: 1.0)
    assert [none.delay(n, None) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert [full.delay(n, None) for n in range(1, 4)] == [0.375, 0.75, 1.5]


def test_hints_win_but_long_ones_mean_do_not_retry() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, 17.0) == 17.0
    assert policy.delay(3, 0.0) == 0.0
    assert policy.delay(1, 121.0) is None


def test_retry_hint_headers() -> None:
    assert retry_hint(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_hint(httpx.Headers({"retry-after": "4"})) == 4.0
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    hint = retry_hint(httpx.Headers({"retry-after": when}))
    assert hint is not None and 58 <= hint <= 60
    assert retry_hint(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_hint(httpx.Headers({"retry-after-ms": "x", "retry-after": "2"})) == 2.0
    assert retry_hint(httpx.Headers()) is None


def test_retry_verdict_headers() -> None:
    assert retry_verdict(httpx.Headers({"x-should-retry": "false"})) is False
    assert retry_verdict(httpx.Headers({"x-should-retry": "true"})) is True
    assert retry_verdict(httpx.Headers({"X-Fal-Retryable": "false"})) is False
    assert retry_verdict(httpx.Headers()) is None


# ------------------------------------------------------------------ small pure rules
@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://v3.fal.media/x.png", True),
        ("https://cdn.example/x.png", True),
        ("http://cdn.example/x.png", False),
        ("http://127.0.0.1:8080/x.png", True),
        ("http://127.0.0.1:9999/x.png", False),
        ("file:///etc/passwd", False),
        ("https:///nohost", False),
    ],
)
def test_download_rule(url: str, allowed: bool) -> None:
    assert download_allowed(url, "http://127.0.0.1:8080") is allowed


def test_same_origin() -> None:
    assert same_origin("https://queue.fal.run/a/requests/1/status", "https://queue.fal.run")
    assert not same_origin("https://queue.fal.run.evil.example/x", "https://queue.fal.run")
    assert not same_origin("http://queue.fal.run/x", "https://queue.fal.run")


def test_scrub_removes_key_shapes_and_given_secrets() -> None:
    text = "sk-proj-abc***wxyz AIzaSyA1234567890abcdef 0f0e0d0c-0b0a-4909-8807-060504030201:abcdef0123456789 my-odd-key"
    cleaned = scrub(text, ("my-odd-key",))
    assert cleaned == "[redacted] [redacted] [redacted] [redacted]"


def test_scrub_removes_credentials_from_urls() -> None:
    text = "could not reach https://relay:hunter2@gateway.example/v1 (ConnectError)"
    assert scrub(text) == "could not reach https://[redacted]@gateway.example/v1 (ConnectError)"
    assert scrub("mail me at ops@example.com") == "mail me at ops@example.com"


def test_nearest_aspect_is_deterministic_on_ties() -> None:
    assert nearest_aspect(1.0, ("4:5", "5:4", "1:1")) == "1:1"
    assert nearest_aspect((4 / 5 * 5 / 4) ** 0.5, ("4:5", "5:4")) == "4:5"  # exact tie: first wins


# ------------------------------------------------------------------ image checks
@pytest.mark.parametrize(
    ("data", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (make_image("WEBP"), "image/webp")]
)
def test_allowed_images_pass_with_their_real_size(data: bytes, mime: str) -> None:
    image = inspect_image(data, max_bytes=10_000, max_pixels=1000)
    assert image.mime_type == mime and image.width * image.height <= 1000


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"hello, world", "not a PNG"),
        (make_image("GIF"), "not a PNG"),
        (make_image("BMP"), "not a PNG"),
        (NOISE[: len(NOISE) // 2], "not a PNG"),
        (bomb_png(), "decompression bomb|over the"),
        (bomb_png(5000, 5000), "over the"),
        (PNG + b"\0" * 20_000, "byte cap"),
    ],
    ids=[
        "empty",
        "text",
        "gif",
        "bmp",
        "truncated",
        "100k-by-100k",
        "just-over-cap",
        "too-many-bytes",
    ],
)
def test_everything_else_is_an_image_problem(data: bytes, why: str) -> None:
    with pytest.raises(ImageProblem, match=why):
        inspect_image(data, max_bytes=10_000, max_pixels=4_000_000)


async def test_declared_type_must_be_an_image() -> None:
    with pytest.raises(ImageProblem, match="declared type"):
        await check_image(PNG, declared_mime="text/html", max_bytes=10_000, max_pixels=1000)
    assert (
        await check_image(PNG, declared_mime="image/png; q=1", max_bytes=10_000, max_pixels=1000)
    ).width == 8


# ------------------------------------------------------------------ the Upstream wrapper
async def test_connection_errors_are_retried_then_succeed(
    server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    server.on(
        "GET",
        URL,
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.Response(200, text="ok"),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        up = Upstream("t", http, secret="s3cret", policy=policy)
        async with up.call(TARGET, clock.now + 60) as call:
            response = await up.send(call, get, ok)
    assert response.text == "ok" and call.requests == 3 and call.status == 200
    assert clock.sleeps == [0.4375, 0.875]


async def test_read_timeout_is_a_timeout_and_not_retried(
    server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    server.on("GET", URL, httpx.ReadTimeout("slow"), httpx.Response(200))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        up = Upstream("t", http, secret="s3cret", policy=policy)
        with pytest.raises(TimedOut):
            async with up.call(TARGET, clock.now + 60) as call:
                await up.send(call, get, ok)
    assert len(server.requests) == 1


async def test_each_request_carries_a_timeout_within_the_time_left(
    server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    server.on("GET", URL, httpx.Response(200))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        up = Upstream("t", http, secret="", policy=policy, limits=Limits(connect_timeout=5))
        async with up.call(TARGET, clock.now + 42) as call:
            await up.send(call, get, ok)
    timeout = server.requests[0].extensions["timeout"]
    assert timeout["read"] == 42 and timeout["connect"] == 5


async def test_response_size_is_capped(
    server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    server.on("GET", URL, httpx.Response(200, content=b"x" * 5000))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        up = Upstream("t", http, secret="", policy=policy, limits=Limits(max_response_bytes=1000))
        with pytest.raises(MalformedResponse, match="not a usable image"):
            async with up.call(TARGET, clock.now + 60) as call:
                await up.send(call, get, ok)


async def test_past_deadline_fails_without_a_request(
    server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        up = Upstream("t", http, secret="", policy=policy)
        with pytest.raises(TimedOut):
            async with up.call(TARGET, clock.now - 1):
                pass
    assert server.requests == []


async def test_extra_requests_wait_their_turn(server: FakeServer) -> None:
    gate = asyncio.Event()
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()
        in_flight -= 1
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        up = Upstream("t", http, secret="", concurrency=2)
        deadline = asyncio.get_running_loop().time() + 30

        async def one() -> int:
            async with up.call(TARGET, deadline) as call:
                return (await up.send(call, get, ok)).status_code

        tasks = [asyncio.create_task(one()) for _ in range(5)]
        for _ in range(20):
            await asyncio.sleep(0)
        assert in_flight == 2
        gate.set()
        assert await asyncio.gather(*tasks) == [200] * 5
    assert peak == 2


async def test_waiting_for_a_slot_ends_at_the_deadline() -> None:
    gate = asyncio.Event()

    async def stuck(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(stuck)) as http:
        up = Upstream("t", http, secret="", concurrency=1)
        loop = asyncio.get_running_loop()

        async def first() -> None:
            async with up.call(TARGET, loop.time() + 30) as call:
                await up.send(call, get, ok)

        holder = asyncio.create_task(first())
        await asyncio.sleep(0)
        with pytest.raises(TimedOut, match="took too long") as caught:
            async with up.call(TARGET, loop.time() + 0.05):
                pass
        assert "slots" in (caught.value.detail or "")
        gate.set()
        await holder


async def test_one_log_line_per_call_with_outcome(
    server: FakeServer, policy: RetryPolicy, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="providers")
    server.on("GET", URL, httpx.Response(503, headers={"x-request-id": "r-9"}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as http:
        up = Upstream("t", http, secret="", policy=policy)
        with pytest.raises(Unavailable):
            async with up.call(TARGET, clock.now + 60) as call:
                await up.send(call, get, ok)
    infos = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(infos) == 1
    assert (
        "outcome=upstream status=503" in infos[0]
        and "request_id=r-9" in infos[0]
        and "requests=4" in infos[0]
    )


# ------------------------------------------------------------------ reading large answers
async def test_large_answers_are_read_in_large_pieces_and_arrive_intact() -> None:
    import asyncio
    import os

    import httpcore

    from providers._http import READ_CHUNK, read_in_large_chunks

    assert read_in_large_chunks()
    assert httpcore.AsyncHTTP11Connection.READ_NUM_BYTES == READ_CHUNK
    body = os.urandom(5 * 1024 * 1024 + 17)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.content == body
    finally:
        server.close()
        await server.wait_closed()
