"""What an operator and a member learn from a failure: a stable kind, a fix in the detail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from providers import base
from providers._errors import try_again_in
from providers._http import RetryPolicy, parse_duration, rate_limit_reset
from providers.base import (
    KINDS,
    BadRequest,
    ConfigError,
    NoImage,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Refused,
)
from providers.gemini import GeminiEndpoint, GeminiImages
from providers.openai_images import OpenAIEndpoint, OpenAIImages
from tests.providers.conftest import (
    GEMINI_KEY,
    JPEG,
    OPENAI_KEY,
    PNG,
    FakeClock,
    FakeServer,
    b64,
    json_answer,
    public_dns,
    request,
    target,
)

GEN = "https://api.openai.com/v1/images/generations"
GEMINI_URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image:generateContent"
)
GPT2 = target("gpt-image-2", "GPT-Image 2", "gpt-image-2")
PRO = target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image")


def openai(http: httpx.AsyncClient, policy: RetryPolicy) -> OpenAIImages:
    return OpenAIImages(http, OpenAIEndpoint(OPENAI_KEY), policy=policy, resolve=public_dns)


def gemini(http: httpx.AsyncClient, policy: RetryPolicy) -> GeminiImages:
    return GeminiImages(http, GeminiEndpoint(GEMINI_KEY), policy=policy, resolve=public_dns)


def openai_error(status: int, code: str | None, message: str, kind: str, **more: Any) -> Any:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code, **more}}
    return json_answer(status, body)


def openai_image() -> httpx.Response:
    return json_answer(200, {"created": 1, "data": [{"b64_json": b64(PNG)}]})


def gemini_answer(parts: list[dict[str, Any]], finish: str = "STOP") -> httpx.Response:
    return json_answer(
        200,
        {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}]},
    )


def test_every_error_class_has_a_documented_kind() -> None:
    classes = [
        obj
        for obj in vars(base).values()
        if isinstance(obj, type) and issubclass(obj, ProviderError)
    ]
    assert len(classes) >= 10
    assert {cls.kind for cls in classes} <= set(KINDS)
    assert {cls.kind for cls in classes} >= set(KINDS)


# ------------------------------------------------------------------ account failures
async def test_unverified_openai_organisation_is_auth_with_the_fix(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    message = (
        "Your organization must be verified to use the model `gpt-image-2`. Please go to: "
        "https://platform.openai.com/settings/organization/general and click on Verify "
        "Organization. If you just verified, it can take up to 15 minutes for access to propagate."
    )
    server.on("POST", GEN, openai_error(403, None, message, "invalid_request_error"))
    with pytest.raises(ConfigError) as caught:
        await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    error = caught.value
    assert error.kind == "auth"
    assert error.message == (
        "GPT-Image 2 is not available on this bot right now"
        ": its provider account needs setting up, and the operator has been told."
    )
    assert "verify it at platform.openai.com/settings/organization/general" in (error.detail or "")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (429, "insufficient_quota", "insufficient_quota"),
        (400, "billing_hard_limit_reached", "billing_limit_user_error"),
        (400, "billing_hard_limit_reached", "invalid_request_error"),
        (429, "spend_limit_reached", "requests"),
    ],
)
async def test_billing_and_spend_limits_are_quota_and_not_retried(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    deadline: float,
    status: int,
    code: str,
    kind: str,
) -> None:
    server.on("POST", GEN, openai_error(status, code, "Billing hard limit has been reached", kind))
    with pytest.raises(QuotaExhausted) as caught:
        await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.kind == "quota"
    assert "not available on this bot right now" in caught.value.message
    assert "settings/organization/billing" in (caught.value.detail or "")
    assert len(server.requests) == 1


async def test_gemini_key_without_billing_is_quota_with_the_fix(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        "Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_"
        "requests, limit: 0, model: gemini-3-pro-image"
    )
    body = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}
    server.on("POST", GEMINI_URL, json_answer(429, body))
    with pytest.raises(QuotaExhausted) as caught:
        await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.kind == "quota" and "enable billing" in (caught.value.detail or "")
    assert len(server.requests) == 1


# ------------------------------------------------------------------ what is a refusal
@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("invalid_image_mask", "Invalid mask image: the mask must be the same size as the image."),
        ("invalid_size", "Invalid size '1000x1000'. Both sides must be multiples of 16."),
        (None, "Invalid input image - format must be in ['image/png', 'image/jpeg']."),
    ],
)
async def test_a_user_error_that_is_not_moderation_is_a_bad_request(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    deadline: float,
    code: str | None,
    message: str,
) -> None:
    server.on("POST", GEN, openai_error(400, code, message, "image_generation_user_error"))
    with pytest.raises(BadRequest) as caught:
        await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.kind == "bad_request"


async def test_moderation_without_a_code_is_still_a_refusal(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    message = "Your request was rejected by the safety system. safety_violations=[violence]."
    server.on("POST", GEN, openai_error(400, None, message, "image_generation_user_error"))
    with pytest.raises(Refused) as caught:
        await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.categories == ("violence",)


async def test_gemini_no_image_is_a_failure_retried_once(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    image = {"inlineData": {"mimeType": "image/jpeg", "data": b64(JPEG)}}
    server.on("POST", GEMINI_URL, gemini_answer([], "NO_IMAGE"), gemini_answer([image]))
    result = await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert result.mime_type == "image/jpeg" and len(server.requests) == 2


async def test_gemini_no_image_twice_is_an_upstream_failure(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", GEMINI_URL, gemini_answer([], "NO_IMAGE"))
    with pytest.raises(NoImage) as caught:
        await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert caught.value.kind == "upstream"
    assert caught.value.message == "Nano Banana Pro did not produce an image this time."
    assert len(server.requests) == 2


async def test_gemini_other_is_a_failure_not_retried(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", GEMINI_URL, gemini_answer([{"text": "…", "thought": True}], "OTHER"))
    with pytest.raises(NoImage):
        await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert len(server.requests) == 1


async def test_gemini_only_image_marked_as_thought_on_stop_is_the_result(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    parts = [
        {"text": "planning", "thought": True},
        {"inlineData": {"mimeType": "image/jpeg", "data": b64(JPEG)}, "thought": True},
    ]
    server.on("POST", GEMINI_URL, gemini_answer(parts, "STOP"))
    result = await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert (result.width, result.height) == (10, 7)


# ------------------------------------------------------------------ rate limits
@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        (
            "Rate limit reached for gpt-image-2 on images per min (IPM): Please try again in 12s.",
            12,
        ),
        ("… Please try again in 1.5s. Visit https://platform.openai.com/account/rate-limits", 1.5),
        ("Please try again in 340ms.", 0.34),
        ("Resource exhausted. Please retry in 17.812s.", 17.812),  # Gemini's wording
        ("Rate limit reached.", None),
    ],
)
def test_try_again_in(message: str, seconds: float | None) -> None:
    assert try_again_in(message) == seconds


def test_reset_headers_of_the_exhausted_limit() -> None:
    assert parse_duration("6m0s") == 360 and parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("soon") is None and parse_duration("") is None
    headers = httpx.Headers(
        {
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-reset-requests": "1m0s",
            "x-ratelimit-remaining-images": "0",
            "x-ratelimit-reset-images": "8s",
        }
    )
    assert rate_limit_reset(headers) == 8
    assert rate_limit_reset(httpx.Headers({"x-ratelimit-reset-images": "8s"})) is None


async def test_images_per_minute_429_waits_as_long_as_openai_says(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    message = "Rate limit reached for gpt-image-2 on images per min (IPM): Please try again in 12s."
    server.on("POST", GEN, openai_error(429, "rate_limit_exceeded", message, "requests"))
    server.routes[0].answers.append(openai_image())
    await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert clock.sleeps == [12.0]


async def test_reset_header_is_honoured_when_the_message_has_no_hint(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    limited = openai_error(429, "rate_limit_exceeded", "Rate limit reached.", "requests")
    limited.headers.update({"x-ratelimit-remaining-images": "0", "x-ratelimit-reset-images": "9s"})
    server.on("POST", GEN, limited, openai_image())
    await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert clock.sleeps == [9.0]


async def test_a_429_without_a_hint_backs_off_longer_than_a_5xx(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    limited = openai_error(429, "rate_limit_exceeded", "Rate limit reached.", "requests")
    server.on("POST", GEN, limited, limited, limited, openai_image())
    await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert clock.sleeps == [4.375, 8.75, 17.5]
    assert sum(clock.sleeps) > 25  # a per-minute limit gets a real chance to clear

    server.requests.clear()
    server.routes.clear()
    clock.sleeps.clear()
    server.on("POST", GEN, httpx.Response(503), openai_image())
    await openai(http, policy).generate(GPT2, request(), deadline=clock.now + 120)
    assert clock.sleeps == [0.4375]


async def test_a_rate_limit_never_waits_past_the_deadline(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, clock: FakeClock
) -> None:
    message = "Please try again in 50s."
    server.on("POST", GEN, openai_error(429, "rate_limit_exceeded", message, "requests"))
    with pytest.raises(RateLimited) as caught:
        await openai(http, policy).generate(GPT2, request(), deadline=clock.now + 30)
    assert clock.sleeps == [] and len(server.requests) == 1
    assert caught.value.kind == "rate_limited"
    assert "would pass the deadline" in (caught.value.detail or "")


async def test_a_dropped_connection_is_a_network_failure(
    server: FakeServer, http: httpx.AsyncClient, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", GEN, httpx.ConnectError("connection refused"))
    with pytest.raises(ProviderError) as caught:
        await openai(http, policy).generate(GPT2, request(), deadline=deadline)
    assert caught.value.kind == "network" and len(server.requests) == 4


async def test_gemini_429_without_retry_info_honours_the_message(
    server: FakeServer,
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    message = "Resource has been exhausted (e.g. check quota). Please retry in 17.5s."
    body = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}
    image = {"inlineData": {"mimeType": "image/jpeg", "data": b64(JPEG)}}
    server.on("POST", GEMINI_URL, json_answer(429, body), gemini_answer([image]))
    await gemini(http, policy).generate(PRO, request(), deadline=deadline)
    assert clock.sleeps == [17.5]
