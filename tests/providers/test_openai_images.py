"""OpenAI Images adapter against the documented wire shapes (httpx.MockTransport)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers._http import RetryPolicy
from providers.base import (
    BadRequest,
    ConfigError,
    MalformedResponse,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ReferenceImage,
    Refused,
    Unavailable,
)
from providers.families import PIXEL_BUDGET, image_size, size_is_valid
from providers.openai_images import OpenAIEndpoint, OpenAIImages, build_request
from tests.providers.conftest import (
    JPEG,
    OPENAI_KEY,
    PNG,
    FakeClock,
    FakeServer,
    b64,
    bomb_png,
    json_answer,
    leaked,
    public_dns,
    request,
    target,
)

BASE = "https://api.openai.com/v1"
GEN = f"{BASE}/images/generations"
GPT2 = target("gpt-image-2", "GPT-Image 2", "gpt-image-2")
GPT15 = target("gpt-image-1.5", "GPT-Image 1.5", "gpt-image-1.5")
ENDPOINT = OpenAIEndpoint(OPENAI_KEY)
ASPECTS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1"]
TIERS = ["draft", "standard", "high"]
#: the mapping, spelled out for the common ratios (width x height per tier)
EXPECTED = {
    "1:1": ("1024x1024", "1536x1536", "1920x1920"),
    "3:2": ("1248x832", "1872x1248", "2336x1552"),
    "2:3": ("832x1248", "1248x1872", "1552x2336"),
    "4:3": ("1168x880", "1776x1328", "2192x1648"),
    "3:4": ("880x1168", "1328x1776", "1648x2192"),
    "16:9": ("1360x768", "2048x1152", "2560x1440"),
    "9:16": ("768x1360", "1152x2048", "1440x2560"),
    "21:9": ("1536x656", "2320x992", "2912x1248"),
}


def success(image: bytes = PNG, **extra: Any) -> httpx.Response:
    payload = {
        "created": 1713833628,
        "data": [{"b64_json": b64(image)}],
        "output_format": "png",
        "quality": "medium",
        "size": "1024x1024",
        "usage": {"input_tokens": 50, "output_tokens": 5488, "total_tokens": 5538},
        **extra,
    }
    return json_answer(200, payload, x_request_id="req_abc123")


def error(
    status: int, code: str | None, message: str, kind: str = "invalid_request_error", **more: Any
) -> httpx.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code, **more}}
    return json_answer(status, body)


def adapter(
    http: httpx.AsyncClient, policy: RetryPolicy, endpoint: OpenAIEndpoint = ENDPOINT
) -> OpenAIImages:
    return OpenAIImages(http, endpoint, policy=policy, resolve=public_dns)


def multipart(req: httpx.Request) -> list[tuple[str, str | None, str, bytes]]:
    """(name, filename, content type, payload) for each multipart part."""
    req.read()
    head = f"Content-Type: {req.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + req.content, policy=email.policy.HTTP)
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts.append((str(name), part.get_filename(), part.get_content_type(), payload))
    return parts


# ------------------------------------------------------------------ request building
def test_generation_request_field_by_field() -> None:
    req = build_request(
        ENDPOINT,
        GPT2,
        request(aspect="3:2", quality="standard", user_hash="h4sh", moderation="low"),
    )
    assert req.method == "POST"
    assert str(req.url) == GEN
    assert req.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "api-key" not in req.headers
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {
        "model": "gpt-image-2",
        "prompt": "a red fox in snow",
        "size": "1872x1248",
        "quality": "medium",
        "output_format": "png",
        "moderation": "low",
        "user": "h4sh",
    }


@pytest.mark.parametrize(
    ("tier", "quality"), [("draft", "low"), ("standard", "medium"), ("high", "high")]
)
def test_quality_tiers_map_to_openai_quality(tier: Any, quality: str) -> None:
    body = json.loads(build_request(ENDPOINT, GPT2, request(quality=tier)).content)
    assert body["quality"] == quality
    assert "user" not in body  # no member hash, no field


@pytest.mark.parametrize("aspect", ASPECTS)
@pytest.mark.parametrize("tier", TIERS)
def test_every_aspect_and_tier_maps_to_a_size_gpt_image_2_accepts(aspect: str, tier: Any) -> None:
    body = json.loads(build_request(ENDPOINT, GPT2, request(aspect=aspect, quality=tier)).content)
    width, height = (int(side) for side in body["size"].split("x"))
    assert size_is_valid(width, height)
    assert width * height <= PIXEL_BUDGET[tier] <= 2560 * 1440  # never "experimental"
    if aspect in EXPECTED:
        assert body["size"] == EXPECTED[aspect][TIERS.index(tier)]
    w, h = (int(x) for x in aspect.split(":"))
    wanted = min(max(w / h, 1 / 3), 3)
    assert abs(width / height - wanted) / wanted < 0.02


@pytest.mark.parametrize(
    ("aspect", "size"),
    [
        ("1:1", "1024x1024"),
        ("5:4", "1536x1024"),
        ("16:9", "1536x1024"),
        ("4:5", "1024x1536"),
        ("9:16", "1024x1536"),
        ("21:9", "1536x1024"),
    ],
)
@pytest.mark.parametrize("tier", TIERS)
def test_gpt_image_1_5_gets_only_its_three_sizes(aspect: str, size: str, tier: Any) -> None:
    body = json.loads(build_request(ENDPOINT, GPT15, request(aspect=aspect, quality=tier)).content)
    assert body["size"] == size
    assert body["model"] == "gpt-image-1.5"


@given(ratio=st.floats(min_value=0.02, max_value=50), tier=st.sampled_from(TIERS))
def test_any_ratio_maps_to_a_valid_size(ratio: float, tier: Any) -> None:
    width, height = image_size(ratio, tier, "gpt-image-2")
    assert size_is_valid(width, height)


def test_edits_are_multipart_with_repeated_image_parts_and_a_png_mask() -> None:
    refs = (ReferenceImage(PNG, "image/png", "a.png"), ReferenceImage(JPEG, "image/jpeg", "b.jpg"))
    req = build_request(
        ENDPOINT, GPT2, request(references=refs, mask=PNG, user_hash="h4sh", quality="draft")
    )
    assert str(req.url) == f"{BASE}/images/edits"
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = multipart(req)
    files = [(name, filename, ctype, data) for name, filename, ctype, data in parts if filename]
    assert files == [
        ("image[]", "a.png", "image/png", PNG),
        ("image[]", "b.jpg", "image/jpeg", JPEG),
        ("mask", "mask.png", "image/png", PNG),
    ]
    fields = {name: data.decode() for name, filename, _, data in parts if not filename}
    assert fields == {
        "model": "gpt-image-2",
        "prompt": "a red fox in snow",
        "size": "1024x1024",
        "quality": "low",
        "output_format": "png",
        "user": "h4sh",
    }  # the multipart schema lists no `moderation`


def test_a_low_moderation_edit_goes_as_json_so_the_setting_is_sent() -> None:
    refs = (ReferenceImage(PNG, "image/png", "a.png"), ReferenceImage(JPEG, "image/jpeg", "b.jpg"))
    req = build_request(
        ENDPOINT, GPT2, request(references=refs, mask=PNG, moderation="low", quality="draft")
    )
    assert str(req.url) == f"{BASE}/images/edits"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {
        "model": "gpt-image-2",
        "prompt": "a red fox in snow",
        "size": "1024x1024",
        "quality": "low",
        "output_format": "png",
        "moderation": "low",
        "images": [
            {"image_url": f"data:image/png;base64,{b64(PNG)}"},
            {"image_url": f"data:image/jpeg;base64,{b64(JPEG)}"},
        ],
        "mask": {"image_url": f"data:image/png;base64,{b64(PNG)}"},
    }


def test_a_low_moderation_edit_too_big_for_a_data_url_falls_back_to_multipart() -> None:
    huge = ReferenceImage(PNG + b"\0" * 16_000_000, "image/png", "huge.png")
    req = build_request(ENDPOINT, GPT2, request(references=(huge,), moderation="low"))
    assert req.headers["content-type"].startswith("multipart/form-data")


def test_gpt_image_1_5_edits_ask_for_high_input_fidelity_and_2_does_not() -> None:
    refs = (ReferenceImage(PNG, "image/png", "a.png"),)
    legacy = {
        n: d
        for n, f, _, d in multipart(build_request(ENDPOINT, GPT15, request(references=refs)))
        if not f
    }
    assert legacy["input_fidelity"] == b"high"
    current = {
        n: d
        for n, f, _, d in multipart(build_request(ENDPOINT, GPT2, request(references=refs)))
        if not f
    }
    assert "input_fidelity" not in current
    low = json.loads(
        build_request(ENDPOINT, GPT15, request(references=refs, moderation="low")).content
    )
    assert low["input_fidelity"] == "high" and low["moderation"] == "low"


def test_azure_variant_uses_api_key_header_and_deployment_name() -> None:
    endpoint = OpenAIEndpoint(
        OPENAI_KEY,
        base_url="https://res.openai.azure.com/openai/v1/",
        auth="azure",
        deployments={"gpt-image-2": "img2-prod"},
    )
    req = build_request(endpoint, GPT2, request())
    assert str(req.url) == "https://res.openai.azure.com/openai/v1/images/generations"
    assert req.headers["api-key"] == OPENAI_KEY
    assert "authorization" not in req.headers
    assert json.loads(req.content)["model"] == "img2-prod"


@pytest.mark.parametrize(
    "bad",
    [
        request(references=tuple(ReferenceImage(PNG) for _ in range(17))),
        request(references=(ReferenceImage(PNG),), mask=JPEG),
        request(mask=PNG),
        request(aspect="wide"),
        request(prompt="x" * 32_001),
    ],
)
async def test_bad_requests_fail_before_any_call(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float, bad: Any
) -> None:
    with pytest.raises(BadRequest):
        await adapter(http, policy).generate(GPT2, bad, deadline=deadline)
    assert server.requests == []


# ------------------------------------------------------------------ success
async def test_success_decodes_the_image_and_keeps_usage_and_request_id(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", GEN, success(JPEG, output_format="jpeg", size="1536x1024"))
    result = await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert result.image == JPEG
    assert result.mime_type == "image/jpeg"
    assert (result.width, result.height) == (10, 7)  # decoded, not the echoed 1536x1024
    assert result.echoed["size"] == "1536x1024"
    assert result.usage["output_tokens"] == 5488
    assert result.request_id == "req_abc123"
    assert result.adapter == "openai" and result.upstream_model == "gpt-image-2"
    assert result.latency_s >= 0


async def test_gateway_shapes_data_uri_prefix_and_url(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    prefixed = json_answer(200, {"data": [{"b64_json": "data:image/png;base64," + b64(PNG)}]})
    linked = json_answer(200, {"data": [{"url": "https://cdn.example/out.png"}]})
    server.on("POST", GEN, prefixed, linked)
    server.on("GET", "https://cdn.example/out.png", httpx.Response(200, content=PNG))
    openai = adapter(http, policy)
    assert (await openai.generate(GPT2, request(), deadline=deadline)).image == PNG
    assert (await openai.generate(GPT2, request(), deadline=deadline)).image == PNG
    assert "authorization" not in server.sent("GET")[0].headers  # the key stays with OpenAI


# ------------------------------------------------------------------ refusals
MODERATION = (
    "Your request was rejected by the safety system. request ID req_1. safety_violations=[sexual]."
)


@pytest.mark.parametrize(
    ("answer", "stage", "categories"),
    [
        (
            error(
                400,
                "moderation_blocked",
                MODERATION,
                "image_generation_user_error",
                moderation_details={"moderation_stage": "input", "categories": ["sexual"]},
            ),
            "input",
            ("sexual",),
        ),
        (
            error(
                400,
                "moderation_blocked",
                MODERATION,
                "image_generation_user_error",
                moderation_details={
                    "moderation_stage": "output",
                    "categories": ["violence", "gore"],
                },
            ),
            "output",
            ("violence", "gore"),
        ),
        (
            error(
                400,
                "content_policy_violation",
                "Your request was rejected as a result of our safety system.",
            ),
            None,
            (),
        ),
        (
            error(400, "moderation_blocked", MODERATION, "image_generation_user_error"),
            None,
            ("sexual",),
        ),
        (
            error(
                400,
                "content_filter",
                "The response was filtered.",
                innererror={
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "sexual": {"filtered": True, "severity": "high"},
                        "violence": {"filtered": False},
                    },
                },
            ),
            None,
            ("sexual",),
        ),
    ],
)
async def test_refusals_are_typed_and_never_retried(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    answer: httpx.Response,
    stage: str | None,
    categories: tuple[str, ...],
) -> None:
    server.on("POST", GEN, answer, success())
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.stage == stage
    assert caught.value.categories == categories
    why = f"safety: {', '.join(categories)}" if categories else "safety"
    assert caught.value.message == f"GPT-Image 2 declined this prompt ({why})."
    assert caught.value.detail and "OpenAI answered 400" in caught.value.detail
    assert len(server.requests) == 1


# ------------------------------------------------------------------ rate limits and retries
def in_30s() -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({}, 4.375),  # no hint: a rate limit waits longer than a server hiccup (5 s less jitter)
    ],
)
async def test_429_honours_each_retry_hint_then_succeeds(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
    headers: dict[str, str],
    expected: float,
) -> None:
    limited = error(
        429, "rate_limit_exceeded", "Rate limit reached for images per minute", "requests"
    )
    limited.headers.update(headers)
    server.on("POST", GEN, limited, success())
    result = await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert result.image == PNG
    assert clock.sleeps == [expected]


async def test_429_honours_an_http_date_retry_after(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    limited = error(429, "rate_limit_exceeded", "slow down")
    limited.headers["retry-after"] = in_30s()
    server.on("POST", GEN, limited, success())
    await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert len(clock.sleeps) == 1 and 28 <= clock.sleeps[0] <= 30


async def test_insufficient_quota_is_not_retried(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on(
        "POST",
        GEN,
        error(429, "insufficient_quota", "You exceeded your current quota.", "insufficient_quota"),
    )
    with pytest.raises(QuotaExhausted) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert "out of credit" in caught.value.message
    assert "insufficient_quota" in (caught.value.detail or "")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "first",
    [
        error(500, None, "boom", "server_error"),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(408),
        httpx.ConnectError("refused"),
    ],
)
async def test_server_errors_and_dropped_connections_are_retried(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
    first: Any,
) -> None:
    server.on("POST", GEN, first, success())
    assert (await adapter(http, policy).generate(GPT2, request(), deadline=deadline)).image == PNG
    assert clock.sleeps == [0.4375]  # 0.5 s base, jitter fixed at 0.5 -> x0.875


async def test_retries_are_bounded(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    server.on("POST", GEN, httpx.Response(503, text="overloaded"))
    with pytest.raises(Unavailable) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert len(server.requests) == policy.max_attempts
    assert clock.sleeps == [0.4375, 0.875, 1.75]
    assert "gave up after 4 attempts" in (caught.value.detail or "")


async def test_rate_limit_exhausted_says_rate_limited(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", GEN, error(429, "rate_limit_exceeded", "slow down"))
    with pytest.raises(RateLimited) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.message == "GPT-Image 2 is rate limited right now."


async def test_deadline_hit_mid_retry_stops_without_sleeping_and_says_rate_limited(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    limited = error(429, "rate_limit_exceeded", "slow down")
    limited.headers["retry-after"] = "10"
    server.on("POST", GEN, limited, success())
    with pytest.raises(RateLimited) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=clock.now + 5)
    assert clock.sleeps == []
    assert len(server.requests) == 1
    assert "would pass the deadline" in (caught.value.detail or "")


async def test_should_retry_false_stops_retries(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    answer = httpx.Response(503, text="no", headers={"x-should-retry": "false"})
    server.on("POST", GEN, answer, success())
    with pytest.raises(Unavailable):
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert len(server.requests) == 1


# ------------------------------------------------------------------ configuration errors
@pytest.mark.parametrize(
    ("answer", "advice"),
    [
        (
            error(401, "invalid_api_key", "Incorrect API key provided: sk-test-***cdef."),
            "OPENAI_API_KEY",
        ),
        (
            error(
                403,
                None,
                "Your organization must be verified to use the model `gpt-image-2`. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate.",
            ),
            "organization must be verified to use gpt-image-2: verify it at",
        ),
        (
            error(403, None, "Project does not have access to model gpt-image-2"),
            "image write permission",
        ),
        (
            error(404, "model_not_found", "The model `gpt-image-2` does not exist."),
            "OPENAI_DEPLOYMENTS",
        ),
    ],
)
async def test_auth_and_model_problems_are_config_errors(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    answer: httpx.Response,
    advice: str,
) -> None:
    server.on("POST", GEN, answer)
    with pytest.raises(ConfigError) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert (
        caught.value.message
        == "GPT-Image 2 is not available on this bot right now: its provider account needs setting up, and the operator has been told."
    )
    assert advice in (caught.value.detail or "")
    assert len(server.requests) == 1


async def test_unknown_400_is_a_bad_request(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", GEN, error(400, "invalid_value", "Invalid size '4000x4000'."))
    with pytest.raises(BadRequest) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert "Invalid size" in (caught.value.detail or "")


# ------------------------------------------------------------------ malformed answers
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>gateway</html>"),
        json_answer(200, {"data": []}),
        json_answer(200, {"data": [{"b64_json": "%%%not base64%%%"}]}),
        json_answer(200, {"data": [{"b64_json": b64(b"definitely not an image")}]}),
        json_answer(200, {"data": [{"b64_json": b64(bomb_png())}]}),
        json_answer(200, {"data": [{"b64_json": b64(PNG[:40])}]}),
    ],
    ids=["not-json", "no-data", "bad-base64", "not-an-image", "100k-by-100k", "truncated"],
)
async def test_malformed_answers(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    answer: httpx.Response,
) -> None:
    server.on("POST", GEN, answer)
    with pytest.raises(MalformedResponse) as caught:
        await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.message == "GPT-Image 2 sent back something that is not a usable image."
    assert len(server.requests) == 1


# ------------------------------------------------------------------ secrets and logging
async def test_key_never_reaches_errors_or_logs(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = error(401, "invalid_api_key", f"Incorrect API key provided: {OPENAI_KEY}.")
    answers = [
        echo,
        error(403, None, f"key {OPENAI_KEY} must be verified"),
        httpx.ConnectError(f"failed {OPENAI_KEY}"),
        error(400, "moderation_blocked", f"blocked {OPENAI_KEY}"),
    ]
    for answer in answers:
        server.routes.clear()
        server.on("POST", GEN, answer)
        with pytest.raises(ProviderError) as caught:
            await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
        assert not leaked(caught.value, OPENAI_KEY)
    assert caplog.records
    assert not any(OPENAI_KEY in record.getMessage() for record in caplog.records)


async def test_one_info_line_per_call(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="providers")
    server.on("POST", GEN, httpx.Response(500), success())
    await adapter(http, policy).generate(GPT2, request(), deadline=deadline)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("providers") and r.levelno >= logging.INFO
    ]
    assert len(lines) == 1
    for part in (
        "model=gpt-image-2",
        "adapter=openai",
        "outcome=ok",
        "status=200",
        "requests=2",
        "request_id=req_abc123",
        "latency=",
    ):
        assert part in lines[0]
