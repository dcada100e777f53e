"""`splitshot doctor` against fake provider APIs, and with no keys at all."""

from __future__ import annotations

import argparse

import httpx
import pytest

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
    assert "https://***@gw.example/v1" in text
    assert "could not reach https://***@fal.example (ConnectError)" in text
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
