"""fal.ai queue adapter against the documented wire shapes (httpx.MockTransport)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from PIL import Image

from providers._http import Limits, RetryPolicy
from providers._images import decode_base64
from providers.base import (
    BadRequest,
    ConfigError,
    MalformedResponse,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ReferenceImage,
    Refused,
    TimedOut,
)
from providers.fal import (
    MAX_REFERENCE_EDGE,
    FalEndpoint,
    FalImages,
    build_submit,
    fit_references,
)
from providers.families import image_size
from tests.providers.conftest import (
    FAL_KEY,
    JPEG,
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

BASE = "https://queue.fal.run"
NBP = target("nano-banana-pro", "Nano Banana Pro", "fal-ai/nano-banana-pro")
NB2 = target("nano-banana-2", "Nano Banana 2", "fal-ai/nano-banana-2")
GPT2 = target("gpt-image-2", "GPT-Image 2", "openai/gpt-image-2")
GPT15 = target("gpt-image-1.5", "GPT-Image 1.5", "fal-ai/gpt-image-1.5")
ENDPOINT = FalEndpoint(FAL_KEY)
REQ = f"{BASE}/fal-ai/nano-banana-pro/requests/req-1"
MEDIA = "https://v3.fal.media/files/fox.png"


def input_of(req: httpx.Request) -> Any:
    return json.loads(req.content)


def submitted(base: str = BASE, **override: Any) -> httpx.Response:
    req = f"{base}/fal-ai/nano-banana-pro/requests/req-1"
    payload = {
        "request_id": "req-1",
        "status": "IN_QUEUE",
        "queue_position": 3,
        "status_url": f"{req}/status",
        "response_url": req,
        "cancel_url": f"{req}/cancel",
        **override,
    }
    return json_answer(200, payload)


def status(state: str) -> httpx.Response:
    return json_answer(200 if state == "COMPLETED" else 202, {"status": state, "response_url": REQ})


def result(url: str = MEDIA, **extra: Any) -> httpx.Response:
    image = {
        "url": url,
        "content_type": "image/png",
        "file_name": "fox.png",
        "width": 2048,
        "height": 2048,
    }
    return json_answer(200, {"images": [image], "description": "A fox.", **extra})


def happy_path(server: FakeServer, *states: str) -> None:
    server.on("POST", f"{BASE}/fal-ai/", submitted())
    server.on("GET", f"{REQ}/status", *(status(s) for s in (states or ("COMPLETED",))))
    server.on("GET", REQ, result())
    server.on("GET", MEDIA, httpx.Response(200, content=PNG))


def adapter(
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    *,
    endpoint: FalEndpoint = ENDPOINT,
    limits: Limits | None = None,
) -> FalImages:
    return FalImages(http, endpoint, policy=policy, limits=limits, resolve=public_dns)


# ------------------------------------------------------------------ request building
@pytest.mark.parametrize(
    ("tier", "resolution"), [("draft", "1K"), ("standard", "2K"), ("high", "4K")]
)
def test_nano_banana_text_to_image_input(tier: Any, resolution: str) -> None:
    req = build_submit(ENDPOINT, NBP, request(aspect="3:4", quality=tier, seed=11))
    assert req.method == "POST"
    assert str(req.url) == f"{BASE}/fal-ai/nano-banana-pro"
    assert req.headers["authorization"] == f"Key {FAL_KEY}"
    assert input_of(req) == {
        "prompt": "a red fox in snow",
        "num_images": 1,
        "output_format": "png",
        "aspect_ratio": "3:4",
        "resolution": resolution,
        "seed": 11,
    }


def test_nano_banana_edit_sends_references_as_data_uris() -> None:
    refs = (ReferenceImage(PNG, "image/png"), ReferenceImage(JPEG, "image/jpeg"))
    req = build_submit(ENDPOINT, NBP, request(references=refs, aspect="1:8"))
    assert str(req.url) == f"{BASE}/fal-ai/nano-banana-pro/edit"
    body = input_of(req)
    assert body["aspect_ratio"] == "9:16"  # Pro has no 1:8: nearest supported
    assert [u.split(",")[0] for u in body["image_urls"]] == [
        "data:image/png;base64",
        "data:image/jpeg;base64",
    ]
    assert [decode_base64(u) for u in body["image_urls"]] == [PNG, JPEG]


def test_nano_banana_2_keeps_its_extreme_ratios() -> None:
    body = input_of(build_submit(ENDPOINT, NB2, request(aspect="1:8")))
    assert body["aspect_ratio"] == "1:8"
    assert str(build_submit(ENDPOINT, NB2, request()).url) == f"{BASE}/fal-ai/nano-banana-2"


@pytest.mark.parametrize(
    "aspect", ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
)
@pytest.mark.parametrize(
    ("tier", "quality"), [("draft", "low"), ("standard", "medium"), ("high", "high")]
)
def test_gpt_image_2_gets_explicit_pixels_and_quality(aspect: str, tier: Any, quality: str) -> None:
    body = input_of(build_submit(ENDPOINT, GPT2, request(aspect=aspect, quality=tier)))
    w, h = (int(x) for x in aspect.split(":"))
    width, height = image_size(w / h, tier, "gpt-image-2")
    assert body == {
        "prompt": "a red fox in snow",
        "num_images": 1,
        "output_format": "png",
        "image_size": {"width": width, "height": height},
        "quality": quality,
    }


def test_gpt_image_2_edit_with_mask() -> None:
    req = build_submit(ENDPOINT, GPT2, request(references=(ReferenceImage(PNG),), mask=PNG))
    assert str(req.url) == f"{BASE}/openai/gpt-image-2/edit"
    body = input_of(req)
    assert decode_base64(body["mask_url"]) == PNG and body["mask_url"].startswith(
        "data:image/png;base64,"
    )
    assert [decode_base64(u) for u in body["image_urls"]] == [PNG]


def test_gpt_image_1_5_uses_its_preset_strings_and_mask_field() -> None:
    body = input_of(
        build_submit(
            ENDPOINT,
            GPT15,
            request(aspect="16:9", quality="draft", references=(ReferenceImage(PNG),), mask=PNG),
        )
    )
    assert body["image_size"] == "1536x1024" and body["quality"] == "low"
    assert "mask_image_url" in body and "mask_url" not in body


@pytest.mark.parametrize(
    ("model", "bad", "error"),
    [
        (NBP, request(references=tuple(ReferenceImage(PNG) for _ in range(15))), BadRequest),
        (NBP, request(references=(ReferenceImage(PNG),), mask=PNG), BadRequest),
        (GPT2, request(mask=PNG), BadRequest),
        (target("x", "Mystery", "fal-ai/flux/dev"), request(), ConfigError),
    ],
)
async def test_bad_requests_fail_before_any_call(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    model: Any,
    bad: Any,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await adapter(http, policy).generate(model, bad, deadline=deadline)
    assert server.requests == []


# ------------------------------------------------------------------ the queue
async def test_queue_in_queue_in_progress_completed_then_download(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    happy_path(server, "IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    out = await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert [(r.method, str(r.url)) for r in server.requests] == [
        ("POST", f"{BASE}/fal-ai/nano-banana-pro"),
        ("GET", f"{REQ}/status"),
        ("GET", f"{REQ}/status"),
        ("GET", f"{REQ}/status"),
        ("GET", REQ),
        ("GET", MEDIA),
    ]
    assert all(r.headers["authorization"] == f"Key {FAL_KEY}" for r in server.requests[:-1])
    assert "authorization" not in server.requests[-1].headers  # the media CDN never sees the key
    assert clock.sleeps == [1.0, 1.5]
    assert out.image == PNG and (out.width, out.height) == (8, 6)  # decoded, not the echoed 2048
    assert out.echoed["width"] == 2048
    assert out.caption == "A fox."
    assert out.request_id == "req-1"
    assert out.upstream_model == "fal-ai/nano-banana-pro" and out.adapter == "fal"


async def test_edit_reports_the_edit_endpoint(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    happy_path(server)
    out = await adapter(http, policy).generate(
        NBP, request(references=(ReferenceImage(PNG),)), deadline=deadline
    )
    assert str(server.requests[0].url) == f"{BASE}/fal-ai/nano-banana-pro/edit"
    assert out.upstream_model == "fal-ai/nano-banana-pro/edit"


async def test_stuck_queue_is_cancelled_at_the_deadline(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    happy_path(server, "IN_QUEUE")
    server.on("PUT", f"{REQ}/cancel", json_answer(202, {"status": "CANCELLATION_REQUESTED"}))
    start = clock.now
    with pytest.raises(TimedOut) as caught:
        await adapter(http, policy).generate(NBP, request(), deadline=start + 10)
    assert len(server.sent("PUT", f"{REQ}/cancel")) == 1
    assert server.sent("PUT")[0].headers["authorization"] == f"Key {FAL_KEY}"
    assert clock.now < start + 10  # never slept past the deadline
    assert server.sent("GET", REQ + "/status") and not server.sent("GET", MEDIA)
    assert caught.value.message == "Nano Banana Pro took too long and was stopped."


async def test_cancel_failure_still_times_out(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    happy_path(server, "IN_PROGRESS")
    server.on("PUT", f"{REQ}/cancel", httpx.ConnectError("gone"))
    with pytest.raises(TimedOut):
        await adapter(http, policy).generate(NBP, request(), deadline=clock.now + 3)


async def test_queue_urls_on_another_host_are_refused(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", BASE, submitted(status_url="https://evil.example/steal/status"))
    with pytest.raises(MalformedResponse):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert len(server.requests) == 1


async def test_poll_errors_are_retried(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    happy_path(server)
    server.routes[1].answers = [httpx.Response(503, text="busy"), status("COMPLETED")]
    assert (await adapter(http, policy).generate(NBP, request(), deadline=deadline)).image == PNG
    assert clock.sleeps == [0.4375]


async def test_submit_429_retry_after_then_success(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    clock: FakeClock,
    deadline: float,
) -> None:
    happy_path(server)
    server.routes[0].answers = [
        json_answer(429, {"detail": "Too many concurrent requests"}, retry_after="2"),
        submitted(),
    ]
    assert (await adapter(http, policy).generate(NBP, request(), deadline=deadline)).image == PNG
    assert clock.sleeps == [2.0]


async def test_submit_5xx_exhausted(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", BASE, httpx.Response(500, text="oops"))
    with pytest.raises(ProviderError) as caught:
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert caught.value.kind == "upstream" and len(server.requests) == 4


async def test_retryable_header_false_stops_retries(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", BASE, httpx.Response(503, text="no", headers={"x-fal-retryable": "false"}))
    with pytest.raises(ProviderError):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert len(server.requests) == 1


# ------------------------------------------------------------------ refusals
VIOLATION = {
    "detail": [
        {
            "loc": ["body", "prompt"],
            "msg": "The content could not be processed because it contained material flagged by a content checker.",
            "type": "content_policy_violation",
            "url": "https://docs.fal.ai/errors#content_policy_violation",
            "input": "...",
            "categories": ["sexual", "model_moderated"],
        }
    ]
}


async def test_422_content_policy_on_submit(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on("POST", BASE, json_answer(422, VIOLATION))
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert (
        caught.value.message
        == "Nano Banana Pro declined this prompt (content policy: sexual, model_moderated)."
    )
    assert caught.value.categories == ("sexual", "model_moderated")
    assert len(server.requests) == 1


async def test_422_content_policy_on_result(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    happy_path(server)
    server.routes[2].answers = [json_answer(422, VIOLATION)]
    with pytest.raises(Refused):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert len(server.sent("GET", REQ)) == 2  # one status poll, one result fetch: no retry


async def test_completed_with_no_images_is_refused(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    happy_path(server)
    server.routes[2].answers = [
        json_answer(200, {"images": [], "description": "I can't help with that."})
    ]
    with pytest.raises(Refused) as caught:
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert caught.value.message == "Nano Banana Pro declined this prompt (no image returned)."


async def test_other_422_is_a_bad_request(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    detail = {
        "detail": [
            {"loc": ["body", "resolution"], "msg": "unexpected value", "type": "value_error"}
        ]
    }
    server.on("POST", BASE, json_answer(422, detail))
    with pytest.raises(BadRequest):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    ("reply", "error", "advice"),
    [
        (json_answer(401, {"detail": "Unauthorized"}), ConfigError, "FAL_KEY"),
        (
            json_answer(403, {"detail": "User is locked. Reason: Exhausted balance."}),
            QuotaExhausted,
            "top up",
        ),
        (json_answer(404, {"detail": "Application not found"}), ConfigError, "upstream id"),
    ],
)
async def test_auth_balance_and_endpoint_problems(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    reply: httpx.Response,
    error: type[ProviderError],
    advice: str,
) -> None:
    server.on("POST", BASE, reply)
    with pytest.raises(error) as caught:
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert advice in (caught.value.detail or "")
    assert len(server.requests) == 1


# ------------------------------------------------------------------ downloads
@pytest.mark.parametrize(
    "url",
    [
        "http://v3.fal.media/files/fox.png",
        "ftp://v3.fal.media/fox.png",
        "http://127.0.0.1:8080/media/fox.png",
    ],
)
async def test_downloads_need_https_or_the_base_host(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float, url: str
) -> None:
    happy_path(server)
    server.routes[2].answers = [result(url)]
    with pytest.raises(MalformedResponse):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    assert server.requests[-1].method == "GET" and str(server.requests[-1].url) == REQ


async def test_a_local_stand_in_on_the_base_host_works_over_http(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    local = "http://127.0.0.1:8080"
    req = f"{local}/fal-ai/nano-banana-pro/requests/req-1"
    server.on("POST", local, submitted(local))
    server.on("GET", f"{req}/status", status("COMPLETED"))
    server.on("GET", f"{local}/media/fox.png", httpx.Response(200, content=PNG))
    server.on("GET", req, result(f"{local}/media/fox.png"))
    out = await adapter(http, policy, endpoint=FalEndpoint(FAL_KEY, base_url=local)).generate(
        NBP, request(), deadline=deadline
    )
    assert out.image == PNG


async def test_sync_mode_data_uri_results_are_decoded(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    happy_path(server)
    server.routes[2].answers = [result("data:image/jpeg;base64," + b64(JPEG))]
    assert (await adapter(http, policy).generate(NBP, request(), deadline=deadline)).image == JPEG


@pytest.mark.parametrize(
    "media",
    [
        httpx.Response(200, content=b"<html>not an image</html>"),
        httpx.Response(200, content=bomb_png()),
        httpx.Response(404),
        httpx.Response(200, content=PNG + b"\0" * 5000),
    ],
    ids=["not-an-image", "100k-by-100k", "expired", "over-the-cap"],
)
async def test_bad_downloads_are_malformed(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    media: httpx.Response,
) -> None:
    happy_path(server)
    server.routes[3].answers = [media]
    with pytest.raises(MalformedResponse):
        await adapter(http, policy, limits=Limits(max_image_bytes=4096)).generate(
            NBP, request(), deadline=deadline
        )


async def test_malformed_queue_answers(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    happy_path(server)
    server.routes[1].answers = [json_answer(200, {"status": "EXPLODED"})]
    with pytest.raises(MalformedResponse):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)
    server.routes[1].answers = [httpx.Response(200, text="nope")]
    server.routes[1].hits = 0
    with pytest.raises(MalformedResponse):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)


# ------------------------------------------------------------------ secrets
async def test_key_never_reaches_errors_or_logs(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for reply in [
        json_answer(401, {"detail": f"bad key {FAL_KEY}"}),
        json_answer(422, {"detail": [{"type": "content_policy_violation", "msg": FAL_KEY}]}),
        json_answer(403, {"detail": f"locked {FAL_KEY} balance"}),
    ]:
        server.routes.clear()
        server.on("POST", BASE, reply)
        with pytest.raises(ProviderError) as caught:
            await adapter(http, policy).generate(NBP, request(), deadline=deadline)
        assert not leaked(caught.value, FAL_KEY)
    assert not any(FAL_KEY in record.getMessage() for record in caplog.records)


async def test_deadline_hit_mid_retry(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, clock: FakeClock
) -> None:
    happy_path(server)
    server.routes[0].answers = [json_answer(429, {"detail": "busy"}, retry_after="30")]
    with pytest.raises(RateLimited):
        await adapter(http, policy).generate(NBP, request(), deadline=clock.now + 10)
    assert clock.sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        result("data:image/png;base64,@@not-base64@@"),
        httpx.Response(200, text="<html>"),
        json_answer(200, {"images": [{"file_name": "no-url.png"}]}),
    ],
    ids=["bad-base64", "not-json", "no-url"],
)
async def test_malformed_results(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    reply: httpx.Response,
) -> None:
    happy_path(server)
    server.routes[2].answers = [reply]
    with pytest.raises(MalformedResponse):
        await adapter(http, policy).generate(NBP, request(), deadline=deadline)


# ------------------------------------------------------------------ reference sizes
def _sent_image(req: httpx.Request) -> Image.Image:
    uri = input_of(req)["image_urls"][0]
    assert uri.startswith("data:image/")
    return Image.open(io.BytesIO(decode_base64(uri)))


async def test_a_small_reference_travels_unchanged(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    happy_path(server)
    ref = ReferenceImage(JPEG, "image/jpeg", "me.jpg")
    await adapter(http, policy).generate(NBP, request(references=(ref,)), deadline=deadline)
    uri = input_of(server.sent("POST")[0])["image_urls"][0]
    assert uri == f"data:image/jpeg;base64,{b64(JPEG)}"


@pytest.mark.parametrize(
    ("mode", "fmt", "mime"),
    [("RGB", "JPEG", "image/jpeg"), ("RGBA", "PNG", "image/png")],
    ids=["photo-becomes-jpeg", "transparency-stays-png"],
)
async def test_a_large_reference_is_scaled_to_the_models_input_size(
    http: httpx.AsyncClient,
    server: FakeServer,
    policy: RetryPolicy,
    deadline: float,
    mode: str,
    fmt: str,
    mime: str,
) -> None:
    happy_path(server)
    big = Image.new(mode, (4000, 3000), (30, 90, 160, 128)[: len(mode)])
    out = io.BytesIO()
    big.save(out, format="PNG")
    ref = ReferenceImage(out.getvalue(), "image/png", "huge.png")
    await adapter(http, policy).generate(NBP, request(references=(ref,)), deadline=deadline)
    sent = server.sent("POST")[0]
    assert str(sent.url) == f"{BASE}/fal-ai/nano-banana-pro/edit"
    image = _sent_image(sent)
    assert image.format == fmt and max(image.size) == MAX_REFERENCE_EDGE
    assert input_of(sent)["image_urls"][0].startswith(f"data:{mime};base64,")


def test_a_reference_over_the_byte_cap_is_re_encoded_even_when_small_enough() -> None:
    noise = Image.effect_noise((1200, 900), 90).convert("RGB")
    out = io.BytesIO()
    noise.save(out, format="BMP")  # not a reference format: returned as is for fal to judge
    odd = ReferenceImage(out.getvalue(), "image/bmp", "odd.bmp")
    assert fit_references(request(references=(odd,))).references == (odd,)
    out = io.BytesIO()
    noise.save(out, format="PNG")
    ref = ReferenceImage(out.getvalue(), "image/png", "noise.png")
    assert len(ref.data) > 2_000_000
    (fitted,) = fit_references(request(references=(ref,)), max_bytes=2_000_000).references
    assert fitted.mime_type == "image/jpeg" and len(fitted.data) < 2_000_000
