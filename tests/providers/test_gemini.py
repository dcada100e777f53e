"""Gemini (Nano Banana) adapter against the documented wire shapes (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest

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
)
from providers.families import NB2_ASPECTS, PRO_ASPECTS
from providers.gemini import GeminiEndpoint, GeminiImages, build_request
from tests.providers.conftest import (
    GEMINI_KEY,
    JPEG,
    PNG,
    FakeClock,
    FakeServer,
    b64,
    bomb_png,
    json_answer,
    leaked,
    make_image,
    public_dns,
    request,
    target,
)

BASE = "https://generativelanguage.googleapis.com"
PRO = target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image")
NB2 = target("nano-banana-2", "Nano Banana 2", "gemini-3.1-flash-image")
URL = f"{BASE}/v1beta/models/gemini-3-pro-image:generateContent"
ENDPOINT = GeminiEndpoint(GEMINI_KEY)
THOUGHT_IMAGE = make_image("PNG", (4, 4))


def body(req: httpx.Request) -> Any:
    return json.loads(req.content)


def answer(parts: list[dict[str, Any]], finish: str = "STOP", **extra: Any) -> httpx.Response:
    payload = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish,
                "index": 0,
                **extra,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 531,
            "candidatesTokenCount": 1120,
            "totalTokenCount": 1944,
        },
        "modelVersion": "gemini-3-pro-image",
        "responseId": "resp-42",
    }
    return json_answer(200, payload)


def image_part(data: bytes = JPEG, mime: str = "image/jpeg", **extra: Any) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": b64(data)}, **extra}


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> httpx.Response:
    return json_answer(
        code,
        {"error": {"code": code, "message": message, "status": status, "details": list(details)}},
    )


def adapter(http: httpx.AsyncClient, policy: RetryPolicy) -> GeminiImages:
    return GeminiImages(http, ENDPOINT, policy=policy, resolve=public_dns)


# ------------------------------------------------------------------ request building
def test_request_field_by_field() -> None:
    refs = (ReferenceImage(PNG, "image/png"), ReferenceImage(JPEG, "image/jpeg"))
    req = build_request(
        ENDPOINT, PRO, request(aspect="16:9", quality="standard", references=refs, seed=7)
    )
    assert req.method == "POST"
    assert str(req.url) == URL
    assert req.headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in req.headers
    assert GEMINI_KEY not in str(req.url)
    assert body(req) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "a red fox in snow"},
                    {"inline_data": {"mime_type": "image/png", "data": b64(PNG)}},
                    {"inline_data": {"mime_type": "image/jpeg", "data": b64(JPEG)}},
                ],
            }
        ],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
            "seed": 7,
        },
    }


@pytest.mark.parametrize(("tier", "size"), [("draft", "1K"), ("standard", "2K"), ("high", "4K")])
def test_quality_tiers_map_to_uppercase_image_sizes(tier: Any, size: str) -> None:
    config = body(build_request(ENDPOINT, PRO, request(quality=tier)))["generationConfig"]
    assert config["imageConfig"]["imageSize"] == size
    assert "seed" not in config


@pytest.mark.parametrize("aspect", PRO_ASPECTS)
@pytest.mark.parametrize("tier", ["draft", "standard", "high"])
def test_every_supported_ratio_is_sent_as_is(aspect: str, tier: Any) -> None:
    config = body(build_request(ENDPOINT, PRO, request(aspect=aspect, quality=tier)))[
        "generationConfig"
    ]
    assert config["imageConfig"]["aspectRatio"] == aspect


@pytest.mark.parametrize(
    ("model", "aspect", "sent"),
    [
        (PRO, "1:4", "9:16"),
        (PRO, "1:8", "9:16"),
        (PRO, "8:1", "21:9"),
        (PRO, "2:1", "16:9"),
        (PRO, "7:5", "4:3"),
        (PRO, "1000:1001", "1:1"),
        (NB2, "1:4", "1:4"),
        (NB2, "8:1", "8:1"),
        (NB2, "1:5", "1:4"),
        (NB2, "16:10", "3:2"),
    ],
)
def test_unsupported_ratios_map_to_the_nearest_supported_one(
    model: Any, aspect: str, sent: str
) -> None:
    config = body(build_request(ENDPOINT, model, request(aspect=aspect)))["generationConfig"]
    assert config["imageConfig"]["aspectRatio"] == sent
    assert sent in (PRO_ASPECTS if model is PRO else NB2_ASPECTS)


@pytest.mark.parametrize(
    "bad",
    [
        request(references=tuple(ReferenceImage(PNG) for _ in range(15))),
        request(references=(ReferenceImage(PNG),), mask=PNG),
        request(aspect="0:1"),
    ],
)
async def test_bad_requests_fail_before_any_call(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float, bad: Any
) -> None:
    with pytest.raises(BadRequest):
        await adapter(http, policy).generate(PRO, bad, deadline=deadline)
    assert server.requests == []


# ------------------------------------------------------------------ success
async def test_success_skips_thoughts_takes_the_last_image_and_honours_its_mime_type(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    parts = [
        {"text": "thinking about foxes", "thought": True},
        image_part(THOUGHT_IMAGE, "image/png", thought=True),
        image_part(PNG, "image/png"),
        {"text": "Here is your fox."},
        image_part(JPEG, "image/jpeg", thoughtSignature="opaque"),
        image_part(THOUGHT_IMAGE, "image/png", thought=True),
    ]
    server.on("POST", URL, answer(parts))
    result = await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert result.image == JPEG and result.mime_type == "image/jpeg"
    assert (result.width, result.height) == (10, 7)
    assert result.caption == "Here is your fox."
    assert result.request_id == "resp-42"
    assert result.usage["candidatesTokenCount"] == 1120
    assert result.echoed == {"modelVersion": "gemini-3-pro-image", "finishReason": "STOP"}
    assert result.adapter == "gemini" and result.upstream_model == "gemini-3-pro-image"


async def test_snake_case_inline_data_is_accepted(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", URL, answer([{"inline_data": {"mime_type": "image/png", "data": b64(PNG)}}]))
    assert (await adapter(http, policy).generate(PRO, request(), deadline=deadline)).image == PNG


# ------------------------------------------------------------------ refusals
async def test_blocked_prompt_is_refused_at_input(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    blocked = json_answer(
        200,
        {
            "promptFeedback": {
                "blockReason": "PROHIBITED_CONTENT",
                "blockReasonMessage": "The prompt was blocked.",
            }
        },
    )
    server.on("POST", URL, blocked)
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert (
        caught.value.message
        == "Nano Banana Pro declined this prompt (prohibited content: PROHIBITED_CONTENT)."
    )
    assert caught.value.stage == "input" and caught.value.categories == ("PROHIBITED_CONTENT",)
    assert "The prompt was blocked." in (caught.value.detail or "")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("finish", "label"),
    [
        ("IMAGE_SAFETY", "safety"),
        ("IMAGE_PROHIBITED_CONTENT", "prohibited content"),
        ("PROHIBITED_CONTENT", "prohibited content"),
        ("SAFETY", "safety"),
        ("IMAGE_RECITATION", "too close to existing work"),
        ("IMAGE_OTHER", "image policy"),
    ],
)
async def test_finish_reason_refusals(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    finish: str,
    label: str,
) -> None:
    parts = [{"text": "draft", "thought": True}, image_part(THOUGHT_IMAGE, thought=True)]
    server.on(
        "POST", URL, answer(parts, finish, finishMessage="Unable to show the generated image.")
    )
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.message == f"Nano Banana Pro declined this prompt ({label}: {finish})."
    assert caught.value.categories == (finish,)
    assert "Unable to show the generated image." in (caught.value.detail or "")
    assert len(server.requests) == 1


async def test_stop_with_text_only_is_a_refusal_in_the_models_words(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on(
        "POST", URL, answer([{"text": "I can't create images of real people in that situation."}])
    )
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.message == (
        'Nano Banana Pro declined this prompt: "I can\'t create images of real people in that situation."'
    )
    assert len(server.requests) == 1


# ------------------------------------------------------------------ rate limits and retries
RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
QUOTA_FAILURE = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{"quotaMetric": "generate_requests_per_model"}],
}


async def test_429_with_retry_info_waits_the_retry_delay(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    limited = google_error(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        QUOTA_FAILURE,
        RETRY_INFO,
    )
    server.on("POST", URL, limited, answer([image_part()]))
    assert (await adapter(http, policy).generate(PRO, request(), deadline=deadline)).image == JPEG
    assert clock.sleeps == [17.0]


async def test_429_with_retry_after_header_prefers_the_header(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    limited = google_error(429, "RESOURCE_EXHAUSTED", "slow down", RETRY_INFO)
    limited.headers["retry-after"] = "3"
    server.on("POST", URL, limited, answer([image_part()]))
    await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert clock.sleeps == [3.0]


async def test_free_tier_limit_zero_is_quota_not_retried(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    message = "Quota exceeded for metric: generate_content_free_tier_requests, limit: 0, model: gemini-3-pro-image"
    server.on("POST", URL, google_error(429, "RESOURCE_EXHAUSTED", message, RETRY_INFO))
    with pytest.raises(QuotaExhausted) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert "enable billing" in (caught.value.detail or "")
    assert len(server.requests) == 1


async def test_503_then_success(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    busy = google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    server.on("POST", URL, busy, answer([image_part()]))
    assert (await adapter(http, policy).generate(PRO, request(), deadline=deadline)).image == JPEG
    assert clock.sleeps == [0.4375]


async def test_retries_exhausted(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on(
        "POST",
        URL,
        google_error(429, "RESOURCE_EXHAUSTED", "slow down", {**RETRY_INFO, "retryDelay": "1.5s"}),
    )
    with pytest.raises(RateLimited) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.message == "Nano Banana Pro is rate limited right now."
    assert len(server.requests) == 4


async def test_deadline_hit_mid_retry(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    server.on(
        "POST",
        URL,
        google_error(503, "UNAVAILABLE", "busy"),
        google_error(429, "RESOURCE_EXHAUSTED", "slow", RETRY_INFO),
    )
    with pytest.raises(RateLimited):
        await adapter(http, policy).generate(PRO, request(), deadline=clock.now + 10)
    assert clock.sleeps == [0.4375]  # the 17 s RetryInfo wait would cross the deadline
    assert len(server.requests) == 2


async def test_long_retry_delay_is_not_waited_for(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy
) -> None:
    server.on(
        "POST",
        URL,
        google_error(429, "RESOURCE_EXHAUSTED", "daily", {**RETRY_INFO, "retryDelay": "3600s"}),
    )
    with pytest.raises(RateLimited):
        await adapter(http, policy).generate(PRO, request(), deadline=policy.clock() + 7200)
    assert len(server.requests) == 1


# ------------------------------------------------------------------ configuration errors
async def test_retired_model_id_says_what_to_use(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    retired = target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image-preview")
    server.on(
        "POST",
        BASE,
        google_error(
            404,
            "NOT_FOUND",
            "models/gemini-3-pro-image-preview is not found for API version v1beta",
        ),
    )
    with pytest.raises(ConfigError) as caught:
        await adapter(http, policy).generate(retired, request(), deadline=deadline)
    assert (
        caught.value.detail
        == "Gemini model id gemini-3-pro-image-preview was retired (404); use gemini-3-pro-image"
    )
    assert (
        caught.value.message
        == "Nano Banana Pro is not available on this bot right now: its provider account needs setting up, and the operator has been told."
    )


@pytest.mark.parametrize(
    "failure",
    [
        google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
        ),
        google_error(
            403,
            "PERMISSION_DENIED",
            "Generative Language API has not been used in project 123 before or it is disabled.",
        ),
        google_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
    ],
)
async def test_key_and_project_problems_are_config_errors(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    failure: httpx.Response,
) -> None:
    server.on("POST", URL, failure)
    with pytest.raises(ConfigError) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.detail and (
        "GEMINI_API_KEY" in caught.value.detail or "billing" in caught.value.detail
    )
    assert len(server.requests) == 1


async def test_bad_argument_is_a_bad_request(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on(
        "POST",
        URL,
        google_error(
            400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.image_config.image_size'"
        ),
    )
    with pytest.raises(BadRequest):
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)


# ------------------------------------------------------------------ malformed answers
@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="{not json"),
        json_answer(200, {"candidates": []}),
        json_answer(200, ["a list"]),
        answer([{"inlineData": {"mimeType": "image/png", "data": "@@@@"}}]),
        answer([image_part(b"GIF89a not really", "image/png")]),
        answer([image_part(PNG, "text/plain")]),
        answer([image_part(bomb_png(), "image/png")]),
        answer([], "MAX_TOKENS"),
    ],
    ids=[
        "not-json",
        "no-candidates",
        "not-an-object",
        "bad-base64",
        "not-an-image",
        "wrong-mime",
        "100k-by-100k",
        "max-tokens",
    ],
)
async def test_malformed_answers(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    reply: httpx.Response,
) -> None:
    server.on("POST", URL, reply)
    with pytest.raises(MalformedResponse):
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert len(server.requests) == 1


# ------------------------------------------------------------------ secrets
async def test_key_never_reaches_errors_or_logs(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    failures = [
        google_error(400, "INVALID_ARGUMENT", f"API key not valid: {GEMINI_KEY}"),
        google_error(403, "PERMISSION_DENIED", f"denied for {GEMINI_KEY}"),
        answer([{"text": f"echo {GEMINI_KEY}"}]),
        httpx.ReadError(f"reset {GEMINI_KEY}"),
    ]
    for failure in failures:
        server.routes.clear()
        server.on("POST", URL, failure)
        with pytest.raises(ProviderError) as caught:
            await adapter(http, policy).generate(PRO, request(), deadline=deadline)
        assert not leaked(caught.value, GEMINI_KEY)
    assert not any(GEMINI_KEY in record.getMessage() for record in caplog.records)
    assert base64.b64encode(GEMINI_KEY.encode()).decode() not in caplog.text


async def test_block_reason_wins_when_a_candidate_has_no_image(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    reply = answer([{"text": "…", "thought": True}], "OTHER")
    payload = reply.json() | {"promptFeedback": {"blockReason": "IMAGE_SAFETY"}}
    server.on("POST", URL, json_answer(200, payload))
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.message == "Nano Banana Pro declined this prompt (safety: IMAGE_SAFETY)."
