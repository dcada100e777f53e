"""Shared fakes for the provider tests: real tiny images, a fake clock, a scripted HTTP server."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image

from providers._http import RetryPolicy
from providers.base import ImageRequest, ProviderError, Target

# Recognisable fake keys: the leak tests look for these anywhere they must not be.
OPENAI_KEY = "sk-test-LEAKCHECK-openai-0123456789abcdef"
GEMINI_KEY = "AIzaLEAKCHECK-gemini-0123456789abcdef"
FAL_KEY = "0f0e0d0c-0b0a-4909-8807-060504030201:LEAKCHECKfal0123456789abcdef"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def make_image(fmt: str = "PNG", size: tuple[int, int] = (8, 6), *, noise: bool = False) -> bytes:
    """Real image bytes made with Pillow (noise makes them big enough to truncate mid-data)."""
    buffer = io.BytesIO()
    image = (
        Image.effect_noise(size, 80).convert("RGB")
        if noise
        else Image.new("RGB", size, (200, 40, 90))
    )
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


PNG = make_image()
JPEG = make_image("JPEG", (10, 7))


class FakeClock:
    """A loop-time stand-in: ``sleep`` records the wait and moves time forward instantly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Route:
    method: str
    prefix: str
    answers: list[Answer]
    hits: int = 0


@dataclass
class FakeServer:
    """Scripted answers per method and URL prefix; the last answer repeats. Records every request."""

    requests: list[httpx.Request] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)

    def on(self, method: str, prefix: str, *answers: Answer) -> None:
        self.routes.append(Route(method, prefix, list(answers)))

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        for route in self.routes:
            if request.method == route.method and str(request.url).startswith(route.prefix):
                answer = route.answers[min(route.hits, len(route.answers) - 1)]
                route.hits += 1
                if isinstance(answer, Exception):
                    raise answer
                if isinstance(answer, httpx.Response):
                    return answer
                return answer(request)
        return httpx.Response(599, text=f"no fake route for {request.method} {request.url}")

    def sent(self, method: str | None = None, prefix: str = "") -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and str(r.url).startswith(prefix)
        ]


def json_answer(status: int, payload: Any, **headers: str) -> httpx.Response:
    """A JSON response with optional headers (underscores become dashes)."""
    return httpx.Response(
        status, json=payload, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def leaked(error: ProviderError, secret: str) -> bool:
    """True when ``secret`` shows in anything an error carries."""
    texts = [str(error), error.message, error.detail or "", repr(error), *map(str, error.args)]
    return any(secret in text for text in texts)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy(clock: FakeClock) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, rand=lambda: 0.5, clock=clock)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
async def http(server: FakeServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler)) as client:
        yield client


@pytest.fixture
def deadline(clock: FakeClock) -> float:
    return clock.now + 120.0


async def public_dns(host: str, port: int) -> list[str]:
    """A resolver that puts every fake CDN host on a public address (tests have no DNS)."""
    return ["93.184.215.14"]


def target(model_id: str, display: str, upstream: str) -> Target:
    """A routing target."""
    return Target(model_id, display, upstream)


def request(prompt: str = "a red fox in snow", **kwargs: Any) -> ImageRequest:
    """An image request with test defaults."""
    return ImageRequest(prompt=prompt, **kwargs)
