"""A hostile (or broken) provider: oversized JSON, links into the bot's own network, odd JPEGs."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

from providers._errors import JsonRefused, load_json
from providers._http import RetryPolicy, public_address
from providers._images import inspect_image
from providers.base import MalformedResponse, Unavailable
from providers.fal import FalEndpoint, FalImages
from providers.gemini import GeminiEndpoint, GeminiImages
from tests.providers.conftest import (
    FAL_KEY,
    GEMINI_KEY,
    PNG,
    FakeServer,
    b64,
    json_answer,
    public_dns,
    request,
    target,
)

GEMINI = "https://generativelanguage.googleapis.com"
GEMINI_URL = f"{GEMINI}/v1beta/models/gemini-3-pro-image:generateContent"
PRO = target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image")
FAL_PRO = target("nano-banana-pro", "Nano Banana Pro", "fal-ai/nano-banana-pro")


def mpo(size: tuple[int, int] = (16, 12)) -> bytes:
    """A multi-picture JPEG (what Ultra HDR phones and gain-mapped photos are)."""
    out = io.BytesIO()
    first = Image.new("RGB", size, (10, 120, 200))
    first.save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (8, 6), (0, 0, 0))])
    return out.getvalue()


def gemini_image(data: bytes, mime: str = "image/jpeg") -> httpx.Response:
    part = {"inlineData": {"mimeType": mime, "data": b64(data)}}
    return json_answer(
        200, {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
    )


def gemini(http: httpx.AsyncClient, policy: RetryPolicy) -> GeminiImages:
    return GeminiImages(http, GeminiEndpoint(GEMINI_KEY), policy=policy, resolve=public_dns)


# ------------------------------------------------------------------ multi-picture JPEG
def test_a_multi_picture_jpeg_is_accepted_as_jpeg() -> None:
    checked = inspect_image(mpo(), max_bytes=100_000, max_pixels=10_000)
    assert (checked.mime_type, checked.width, checked.height) == ("image/jpeg", 16, 12)


async def test_a_provider_answering_with_a_multi_picture_jpeg_delivers_it(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    data = mpo((20, 10))
    server.on("POST", GEMINI_URL, gemini_image(data))
    result = await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert (result.mime_type, result.width, result.height, result.image) == (
        "image/jpeg",
        20,
        10,
        data,
    )


# ------------------------------------------------------------------ JSON caps
def many_keys(count: int) -> bytes:
    return b"{" + b",".join(b'"k%d":0' % i for i in range(count)) + b"}"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (many_keys(100_000), "items"),
        (b"[" * 200_000, "nested"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "nested"),
        (b"not json", "not JSON"),
    ],
    ids=["many-keys", "deep-list", "deep-object", "text"],
)
def test_load_json_refuses_wide_deep_or_broken_bodies(body: bytes, why: str) -> None:
    with pytest.raises(JsonRefused, match=why):
        load_json(body)


def test_load_json_reads_brackets_inside_strings_as_text() -> None:
    text = "[" * 5000
    assert load_json(b'{"caption": "' + text.encode() + b'", "n": [1, 2]}') == {
        "caption": text,
        "n": [1, 2],
    }


def test_load_json_is_quick_on_a_huge_hostile_body() -> None:
    body = b'{"k":0,' * 4_000_000 + b'"end":0}'  # ~28 MB of keys
    began = time.perf_counter()
    with pytest.raises(JsonRefused):
        load_json(body)
    assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize(
    "body", [many_keys(50_000), b"[" * 200_000], ids=["many-keys", "deeply-nested"]
)
async def test_a_hostile_success_body_is_malformed_not_a_crash(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float, body: bytes
) -> None:
    server.on("POST", GEMINI_URL, httpx.Response(200, content=body))
    with pytest.raises(MalformedResponse) as caught:
        await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert "not usable JSON" in (caught.value.detail or "")


async def test_a_server_error_with_a_hostile_body_is_still_retried(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    server.on(
        "POST",
        GEMINI_URL,
        httpx.Response(503, content=b"[" * 200_000),
        httpx.Response(500, content=many_keys(50_000)),
        gemini_image(PNG, "image/png"),
    )
    result = await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert result.width == 8 and len(server.requests) == 3


# ------------------------------------------------------------------ links a provider returns
@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::6810:84e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_public_address(address: str, public: bool) -> None:
    assert public_address(address) is public


def fal(
    http: httpx.AsyncClient, policy: RetryPolicy, dns: dict[str, list[str]], base: str
) -> FalImages:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in dns:
            raise OSError("no such host")
        return dns[host]

    return FalImages(http, FalEndpoint(FAL_KEY, base_url=base), policy=policy, resolve=resolve)


def fal_job(server: FakeServer, base: str, image_url: str) -> None:
    req = f"{base}/fal-ai/nano-banana-pro/requests/r1"
    server.on(
        "POST",
        f"{base}/fal-ai/",
        json_answer(200, {"request_id": "r1", "status_url": f"{req}/status", "response_url": req}),
    )
    server.on("GET", f"{req}/status", json_answer(200, {"status": "COMPLETED"}))
    server.on("GET", req, json_answer(200, {"images": [{"url": image_url}]}))
    server.on("GET", image_url, httpx.Response(200, content=PNG))


@pytest.mark.parametrize(
    ("url", "dns"),
    [
        ("https://metadata.internal/latest/meta-data", {"metadata.internal": ["169.254.169.254"]}),
        ("https://cdn.example/x.png", {"cdn.example": ["93.184.215.14", "10.0.0.7"]}),
        ("https://127.0.0.1/x.png", {"127.0.0.1": ["127.0.0.1"]}),
        ("https://[::1]/x.png", {"::1": ["::1"]}),
        ("https://router.lan/x.png", {"router.lan": ["192.168.0.1"]}),
        ("http://cdn.example/x.png", {"cdn.example": ["93.184.215.14"]}),
    ],
    ids=["link-local", "one-private-address", "loopback", "ipv6-loopback", "lan", "plain-http"],
)
async def test_links_into_private_networks_are_never_fetched(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    deadline: float,
    url: str,
    dns: dict[str, list[str]],
) -> None:
    base = "https://queue.fal.run"
    fal_job(server, base, url)
    with pytest.raises(MalformedResponse) as caught:
        await fal(http, policy, dns, base).generate(FAL_PRO, request(), deadline=deadline)
    assert "refused to download" in (caught.value.detail or "")
    assert not server.sent("GET", url)


async def test_a_public_https_link_is_fetched(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    base, url = "https://queue.fal.run", "https://v3.fal.media/files/x.png"
    fal_job(server, base, url)
    dns = {"v3.fal.media": ["151.101.1.91"]}
    result = await fal(http, policy, dns, base).generate(FAL_PRO, request(), deadline=deadline)
    assert result.width == 8 and len(server.sent("GET", url)) == 1


async def test_the_base_urls_own_host_may_be_local_and_plain_http(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    base = "http://127.0.0.1:8080"
    url = f"{base}/media/x.png"
    fal_job(server, base, url)
    # No resolver answer is needed: the operator chose this host.
    result = await fal(http, policy, {}, base).generate(FAL_PRO, request(), deadline=deadline)
    assert result.width == 8


async def test_an_unresolvable_link_is_unavailable(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    base, url = "https://queue.fal.run", "https://gone.example/x.png"
    fal_job(server, base, url)
    with pytest.raises(Unavailable):
        await fal(http, policy, {}, base).generate(FAL_PRO, request(), deadline=deadline)
