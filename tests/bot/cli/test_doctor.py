"""`splitshot doctor` against fake provider APIs, and with no keys at all."""

from __future__ import annotations

import argparse
import base64
import io

import httpx
import pytest
from PIL import Image

from bot.catalog import load_catalog
from bot.cli import doctor as cli_doctor
from bot.cli.doctor import doctor
from providers.registry import ProvidersConfig

OPENAI_KEY = "sk-test-DOCTORLEAK-0123456789"
GEMINI_KEY = "AIzaDOCTORLEAK-0123456789"
FAL_KEY = "doctor-LEAK-key:0123456789abcdef"
KEYS = ProvidersConfig(openai_api_key=OPENAI_KEY, gemini_api_key=GEMINI_KEY, fal_key=FAL_KEY)


class Fake:
    """Answers by URL prefix and remembers every request."""

    def __init__(self, answers: dict[str, httpx.Response | Exception]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for prefix, answer in self.answers.items():
            if str(request.url).startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise AssertionError(f"unexpected request {request.url}")


def google_404() -> httpx.Response:
    body = {"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}
    return httpx.Response(404, json=body)


HEALTHY = {
    "https://api.openai.com/v1/models/gpt-image-2": httpx.Response(200, json={"id": "gpt-image-2"}),
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image": httpx.Response(
        200, json={"name": "models/gemini-3-pro-image"}
    ),
    "https://queue.fal.run/fal-ai/nano-banana-pro/requests/": httpx.Response(
        404, json={"detail": "Request not found"}
    ),
}


async def run(config: ProvidersConfig, fake: Fake) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await doctor(config, transport=httpx.MockTransport(fake), out=lines.append)
    return code, lines


async def test_every_key_works() -> None:
    fake = Fake(HEALTHY)
    code, lines = await run(KEYS, fake)
    assert code == 0
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "openai  ok",
        "gemini  ok",
        "fal     ok",
    ]
    openai, google, fal = fake.requests
    assert openai.method == google.method == fal.method == "GET"
    assert openai.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert google.headers["x-goog-api-key"] == GEMINI_KEY
    assert fal.headers["authorization"] == f"Key {FAL_KEY}"
    assert str(fal.url).endswith("/requests/00000000-0000-0000-0000-000000000000/status")


async def test_failures_say_what_to_fix_and_never_print_a_key() -> None:
    fake = Fake(
        {
            "https://api.openai.com/": httpx.Response(
                401,
                json={
                    "error": {
                        "message": f"Incorrect API key provided: {OPENAI_KEY}",
                        "code": "invalid_api_key",
                    }
                },
            ),
            "https://generativelanguage.googleapis.com/": google_404(),
            "https://queue.fal.run/": httpx.Response(401, json={"detail": "Unauthorized"}),
        }
    )
    code, lines = await run(KEYS, fake)
    assert code == 1
    text = "\n".join(lines)
    assert "openai  FAILED: OpenAI rejected the API key (401)" in text
    assert "gemini  FAILED: Gemini model id gemini-3-pro-image does not exist (404)" in text
    assert "fal     FAILED: fal rejected FAL_KEY (401)" in text
    for key in (OPENAI_KEY, GEMINI_KEY, FAL_KEY):
        assert key not in text


async def test_unreachable_api_is_a_failure() -> None:
    fake = Fake({"https://queue.fal.run/": httpx.ConnectError("no route")})
    code, lines = await run(ProvidersConfig(fal_key=FAL_KEY), fake)
    assert code == 1
    assert lines[-1] == "  fal     FAILED: could not reach https://queue.fal.run (ConnectError)"


async def test_credentials_in_a_base_url_are_never_printed() -> None:
    config = ProvidersConfig(
        openai_api_key=OPENAI_KEY,
        openai_base_url="https://gateway-user:hunter2@gw.example/v1",
        fal_key=FAL_KEY,
        fal_base_url="https://fal-user:s3cret@fal.example",
    )
    fake = Fake(
        {
            "https://gateway-user:hunter2@gw.example/v1/models": httpx.Response(200, json={}),
            "https://gw.example/v1/models": httpx.Response(200, json={}),
            "https://fal-user:s3cret@fal.example/": httpx.ConnectError("no route"),
        }
    )
    code, lines = await run(config, fake)
    text = "\n".join(lines)
    assert "hunter2" not in text and "s3cret" not in text and "gateway-user" not in text
    assert "https://[redacted]@gw.example/v1" in text
    assert "could not reach https://[redacted]@fal.example (ConnectError)" in text
    assert code == 1


async def test_azure_lists_models_with_the_api_key_header() -> None:
    config = ProvidersConfig(
        openai_api_key=OPENAI_KEY,
        openai_base_url="https://res.openai.azure.com/openai/v1",
        openai_auth="azure",
    )
    fake = Fake(
        {"https://res.openai.azure.com/openai/v1/models": httpx.Response(200, json={"data": []})}
    )
    code, _ = await run(config, fake)
    assert code == 0
    assert fake.requests[0].headers["api-key"] == OPENAI_KEY
    assert "authorization" not in fake.requests[0].headers


def test_no_keys_skips_every_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "FAL_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    cli_doctor.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor"])
    fake = Fake({})
    assert cli_doctor.run(args, transport=httpx.MockTransport(fake)) == 0
    assert args.func is cli_doctor.run
    out = capsys.readouterr().out
    assert "openai  skipped: OPENAI_API_KEY (or AZURE_OPENAI_API_KEY) is not set" in out
    assert "gemini  skipped: GEMINI_API_KEY (or GOOGLE_API_KEY) is not set" in out
    assert "fal     skipped: FAL_KEY is not set" in out
    assert "only the offline demo provider" in out
    assert fake.requests == []


# ------------------------------------------------------------------ --generate
def _png_b64() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


UNVERIFIED = httpx.Response(
    403,
    json={
        "error": {
            "message": "Your organization must be verified to use the model `gpt-image-2`.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    },
)
GEMINI_IMAGE = httpx.Response(
    200,
    json={
        "candidates": [
            {
                "content": {
                    "parts": [{"inlineData": {"mimeType": "image/png", "data": _png_b64()}}]
                },
                "finishReason": "STOP",
            }
        ]
    },
)
NO_BILLING = httpx.Response(
    429,
    json={
        "error": {
            "code": 429,
            "message": "Quota exceeded for metric: generate_content_free_tier_requests, limit: 0",
            "status": "RESOURCE_EXHAUSTED",
        }
    },
)
TWO_KEYS = ProvidersConfig(openai_api_key=OPENAI_KEY, gemini_api_key=GEMINI_KEY)


async def generate(fake: Fake, *, answer: bool = True) -> tuple[int, list[str], list[str]]:
    lines: list[str] = []
    asked: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    code = await doctor(
        TWO_KEYS,
        transport=httpx.MockTransport(fake),
        out=lines.append,
        catalog=load_catalog(),
        confirm=confirm,
    )
    return code, lines, asked


async def test_a_listed_key_is_accepted_but_generation_is_not_proven() -> None:
    code, lines = await run(TWO_KEYS, Fake(HEALTHY))
    assert code == 0
    assert all("key accepted" in line and "generation not proven" in line for line in lines[1:3])


async def test_generate_prints_the_price_asks_then_proves_each_account() -> None:
    fake = Fake(
        {
            **HEALTHY,
            "https://api.openai.com/v1/images/generations": httpx.Response(
                200, json={"created": 1, "data": [{"b64_json": _png_b64()}]}
            ),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-3.1-flash-image:": (
                GEMINI_IMAGE
            ),
        }
    )
    code, lines, asked = await generate(fake)
    assert code == 0
    text = "\n".join(lines)
    catalog = load_catalog()
    gemini_usd = catalog.cost_usd("nano-banana-2", "draft", "1:1", "gemini")
    assert gemini_usd is not None
    assert f"gemini  Nano Banana 2 1:1: about ${gemini_usd:.3f}" in text
    assert "openai  GPT-Image 2" in text
    (question,) = asked
    assert question.startswith("Spend about $") and "on 2 image(s)?" in question
    assert "openai  generated: GPT-Image 2 drew 64x48" in text
    assert "gemini  generated: Nano Banana 2 drew 64x48" in text
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 2
    assert '"quality":"low"' in posts[0].content.decode().replace(" ", "")


async def test_generate_names_the_account_problem_and_its_fix() -> None:
    fake = Fake(
        {
            **HEALTHY,
            "https://api.openai.com/v1/images/generations": UNVERIFIED,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-3.1-flash-image:": (
                NO_BILLING
            ),
        }
    )
    code, lines, _ = await generate(fake)
    assert code == 1
    text = "\n".join(lines)
    assert "openai  GENERATION FAILED [auth]: OpenAI says the organization must be verified" in text
    assert "platform.openai.com/settings/organization/general" in text
    assert "gemini  GENERATION FAILED [quota]:" in text and "enable billing" in text
    assert OPENAI_KEY not in text and GEMINI_KEY not in text


async def test_declining_spends_nothing() -> None:
    fake = Fake(HEALTHY)
    code, lines, asked = await generate(fake, answer=False)
    assert code == 0 and asked
    assert "Generation skipped: nothing was spent." in lines
    assert all(r.method == "GET" for r in fake.requests)


def test_yes_skips_the_question(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    parser = argparse.ArgumentParser()
    cli_doctor.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--generate", "--yes"])
    media = f"data:image/png;base64,{_png_b64()}"  # fal's sync_mode shape: nothing to download
    req = "https://queue.fal.run/fal-ai/nano-banana-2/requests/r1"
    fake = Fake(
        {
            "https://queue.fal.run/fal-ai/nano-banana-pro/requests/": HEALTHY[
                "https://queue.fal.run/fal-ai/nano-banana-pro/requests/"
            ],
            f"{req}/status": httpx.Response(200, json={"status": "COMPLETED"}),
            req: httpx.Response(200, json={"images": [{"url": media}]}),
            "https://queue.fal.run/": httpx.Response(
                200, json={"request_id": "r1", "status_url": f"{req}/status", "response_url": req}
            ),
        }
    )

    def never(question: str) -> bool:
        raise AssertionError("--yes must not ask")

    code = cli_doctor.run(args, transport=httpx.MockTransport(fake), confirm=never)
    assert code == 0
    assert [r.method for r in fake.requests] == ["GET", "POST", "GET", "GET"]
