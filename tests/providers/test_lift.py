"""Long base64 values lifted out of provider JSON: same answers as a full parse, never a wrong one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from providers._errors import JsonRefused, load_json
from providers._http import LARGE_BODY, MAX_BODY_READS, MAX_STARTING, RetryPolicy, body_gate
from providers._images import ImageProblem, decode_base64
from providers._lift import MIN_LIFT, Lifted, lift
from providers.base import MalformedResponse
from providers.gemini import GeminiEndpoint, GeminiImages
from providers.openai_images import OpenAIEndpoint, OpenAIImages
from tests.providers.conftest import (
    GEMINI_KEY,
    OPENAI_KEY,
    FakeServer,
    b64,
    json_answer,
    make_image,
    public_dns,
    request,
    target,
)

#: a noisy PNG whose base64 is well over the lifting threshold
BIG = make_image("PNG", (256, 256), noise=True)
#: one whose answer is a large body
LARGE = make_image("PNG", (700, 700), noise=True)
PRO = target("nano-banana-pro", "Nano Banana Pro", "gemini-3-pro-image")
GPT = target("gpt-image-2", "GPT-Image 2", "gpt-image-2")
GEMINI_URL = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image:generateContent"
)


def test_the_test_image_is_big_enough_to_be_lifted() -> None:
    assert len(b64(BIG)) > MIN_LIFT


def test_a_lifted_value_is_a_view_that_decodes_to_the_same_image() -> None:
    body = json.dumps({"data": [{"b64_json": b64(BIG)}], "size": "256x256"}).encode()
    parsed = load_json(body, lift_keys=("b64_json",))
    value = parsed["data"][0]["b64_json"]
    assert isinstance(value, Lifted) and len(value) == len(b64(BIG))
    assert parsed["size"] == "256x256"
    assert decode_base64(value) == BIG
    # The whole answer without lifting parses to the same thing.
    assert decode_base64(json.loads(body)["data"][0]["b64_json"]) == BIG


def test_space_around_the_colon_is_allowed() -> None:
    body = b'{"b64_json" :\n  "' + b64(BIG).encode() + b'" }'
    assert isinstance(load_json(body, lift_keys=("b64_json",))["b64_json"], Lifted)


def test_short_values_and_other_keys_stay_ordinary_strings() -> None:
    body = json.dumps({"data": "QUJD", "other": b64(BIG)}).encode()
    parsed = load_json(body, lift_keys=("data",))
    assert parsed == {"data": "QUJD", "other": b64(BIG)}


def test_a_key_quoted_inside_text_is_text_not_a_key() -> None:
    text = 'he said "data": "' + "A" * (MIN_LIFT + 8) + '"'
    body = json.dumps({"text": text, "data": b64(BIG)}).encode()
    _, values = lift(body, ("data",))
    assert len(values) == 1  # only the real key's value
    parsed = load_json(body, lift_keys=("data",))
    assert parsed["text"] == text
    assert decode_base64(parsed["data"]) == BIG


def test_an_escaped_value_is_left_to_the_json_parser() -> None:
    # Some encoders write "/" as "\/": that text is not the value, so it is not lifted.
    escaped = b64(BIG).replace("/", "\\/")
    assert escaped != b64(BIG)
    body = ('{"b64_json": "' + escaped + '"}').encode()
    assert lift(body, ("b64_json",)) == (body, {})
    value = load_json(body, lift_keys=("b64_json",))["b64_json"]
    assert isinstance(value, str) and decode_base64(value) == BIG


def test_a_string_that_looks_like_a_placeholder_is_left_alone() -> None:
    body = json.dumps({"note": "\x000:0", "b64_json": b64(BIG)}).encode()
    parsed = load_json(body, lift_keys=("b64_json",))
    assert parsed["note"] == "\x000:0"
    assert isinstance(parsed["b64_json"], Lifted)


def test_a_data_uri_prefix_and_line_breaks_are_tolerated_in_lifted_values() -> None:
    encoded = b64(BIG)
    body = json.dumps({"data": f"data:image/png;base64,{encoded}"}).encode()
    assert decode_base64(load_json(body, lift_keys=("data",))["data"]) == BIG
    # A value with a real space inside (no JSON escape needed) is cleaned, then decoded.
    spaced = json.dumps({"data": encoded[:1000] + " " + encoded[1000:]}).encode()
    assert decode_base64(load_json(spaced, lift_keys=("data",))["data"]) == BIG


def test_invalid_base64_in_a_lifted_value_is_an_image_problem() -> None:
    body = json.dumps({"data": "#" * (MIN_LIFT + 4)}).encode()
    value = load_json(body, lift_keys=("data",))["data"]
    assert isinstance(value, Lifted)
    with pytest.raises(ImageProblem, match="invalid base64"):
        decode_base64(value)


def test_the_size_cap_applies_to_the_whole_body_not_the_lifted_skeleton() -> None:
    body = json.dumps({"data": b64(BIG)}).encode()
    with pytest.raises(JsonRefused, match="over the"):
        load_json(body, max_bytes=len(body) - 1, lift_keys=("data",))


async def test_openai_adapter_delivers_a_large_image_through_the_lifted_path(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    server.on(
        "POST",
        "https://api.openai.com/v1/images/generations",
        json_answer(200, {"created": 1, "data": [{"b64_json": b64(BIG)}], "output_format": "png"}),
    )
    adapter = OpenAIImages(http, OpenAIEndpoint(OPENAI_KEY), policy=policy, resolve=public_dns)
    result = await adapter.generate(GPT, request(), deadline=deadline)
    assert result.image == BIG and (result.width, result.height) == (256, 256)


async def test_gemini_adapter_delivers_a_large_image_and_reads_the_rest_of_the_answer(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    parts = [
        {"text": 'a caption that quotes "data": "x"'},
        {"inlineData": {"mimeType": "image/png", "data": b64(BIG)}},
    ]
    payload = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
        "modelVersion": "gemini-3-pro-image",
        "responseId": "resp-big",
    }
    server.on("POST", GEMINI_URL, json_answer(200, payload))
    adapter = GeminiImages(http, GeminiEndpoint(GEMINI_KEY), policy=policy, resolve=public_dns)
    result = await adapter.generate(PRO, request(), deadline=deadline)
    assert result.image == BIG and result.mime_type == "image/png"
    assert result.caption == 'a caption that quotes "data": "x"'
    assert result.request_id == "resp-big"


async def test_a_truncated_lifted_image_is_a_malformed_answer(
    http: httpx.AsyncClient, server: FakeServer, policy: RetryPolicy, deadline: float
) -> None:
    cut = b64(BIG)[: MIN_LIFT + 1000]  # a multiple of 4, valid base64, but half a PNG
    server.on(
        "POST",
        "https://api.openai.com/v1/images/generations",
        json_answer(200, {"created": 1, "data": [{"b64_json": cut}]}),
    )
    adapter = OpenAIImages(http, OpenAIEndpoint(OPENAI_KEY), policy=policy, resolve=public_dns)
    with pytest.raises(MalformedResponse):
        await adapter.generate(GPT, request(), deadline=deadline)


# ------------------------------------------------------------------ a burst of large answers
async def test_a_burst_of_large_answers_is_read_a_few_at_a_time_and_all_arrive(
    policy: RetryPolicy, deadline: float
) -> None:
    reading = 0
    most = 0

    class Body(httpx.AsyncByteStream):
        def __init__(self, data: bytes) -> None:
            self.data = data

        async def __aiter__(self) -> AsyncIterator[bytes]:
            nonlocal reading, most
            reading += 1
            most = max(most, reading)
            try:
                for start in range(0, len(self.data), 256 * 1024):
                    await asyncio.sleep(0)
                    yield self.data[start : start + 256 * 1024]
            finally:
                reading -= 1

    payload = json.dumps({"created": 1, "data": [{"b64_json": b64(LARGE)}]}).encode()
    assert len(payload) >= LARGE_BODY

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-length": str(len(payload)), "content-type": "application/json"}
        return httpx.Response(200, headers=headers, stream=Body(payload))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        adapter = OpenAIImages(http, OpenAIEndpoint(OPENAI_KEY), policy=policy, concurrency=32)
        results = await asyncio.gather(
            *(adapter.generate(GPT, request(), deadline=deadline) for _ in range(12))
        )
    assert all(r.image == LARGE for r in results)
    assert most == MAX_BODY_READS, "never more than a few large answers read at once"


async def test_small_answers_are_not_held_back_by_large_ones(
    policy: RetryPolicy, deadline: float
) -> None:
    gate = body_gate()
    for _ in range(MAX_BODY_READS):
        await gate.acquire()  # every large-answer read is taken
    try:
        small = json.dumps({"data": [{"b64_json": b64(make_image())}]}).encode()
        assert len(small) < LARGE_BODY

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=small, headers={"content-type": "application/json"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            adapter = OpenAIImages(http, OpenAIEndpoint(OPENAI_KEY), policy=policy)
            result = await asyncio.wait_for(adapter.generate(GPT, request(), deadline=deadline), 5)
        assert result.width == 8
    finally:
        for _ in range(MAX_BODY_READS):
            gate.release()


async def test_a_burst_of_requests_starts_a_few_at_a_time_and_none_waits_on_a_slow_provider(
    policy: RetryPolicy, deadline: float
) -> None:
    # The handler plays httpcore: the request is written once its trace says the answer's
    # headers are awaited; then the provider takes its time.
    starting = most = waiting = 0
    everyone_waits = asyncio.Event()
    provider_done = asyncio.Event()
    burst = 3 * MAX_STARTING
    payload = json.dumps({"created": 1, "data": [{"b64_json": b64(make_image())}]}).encode()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal starting, most, waiting
        starting += 1
        most = max(most, starting)
        await asyncio.sleep(0)  # connecting and writing take a turn or two
        await asyncio.sleep(0)
        starting -= 1
        await request.extensions["trace"]("http11.receive_response_headers.started", {})
        waiting += 1
        if waiting == burst:
            everyone_waits.set()
        await provider_done.wait()
        return httpx.Response(200, content=payload, headers={"content-type": "application/json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        adapter = OpenAIImages(http, OpenAIEndpoint(OPENAI_KEY), policy=policy, concurrency=burst)
        calls = asyncio.gather(
            *(adapter.generate(GPT, request(), deadline=deadline) for _ in range(burst))
        )
        await asyncio.wait_for(everyone_waits.wait(), 5)  # all written while none has answered
        provider_done.set()
        results = await asyncio.wait_for(calls, 5)
    assert len(results) == burst and all(r.width == 8 for r in results)
    assert most == MAX_STARTING, "never more than a few requests being started at once"
