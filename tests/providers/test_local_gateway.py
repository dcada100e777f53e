"""With keys and base URLs set, `splitshot compare` uses the real adapters with no code change.

A stand-in server on 127.0.0.1 speaks the documented OpenAI Images and Gemini wire formats;
the CLI runs in a fresh process against it, exactly as an operator's gateway would be used.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


class Gateway(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str], dict[str, object]]]] = []

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.seen.append((self.path, dict(self.headers), body))
        if self.path == "/v1/images/generations":
            width, height = (int(x) for x in body["size"].split("x"))
            answer: dict[str, object] = {
                "created": 1, "data": [{"b64_json": _png((width // 8, height // 8), (200, 60, 60))}],
                "size": body["size"], "usage": {"input_tokens": 10, "output_tokens": 100},
            }  # fmt: skip
        elif self.path == "/v1beta/models/gemini-3-pro-image:generateContent":
            if "forbidden" in json.dumps(body):
                answer = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}
            else:
                answer = {"candidates": [{"content": {"role": "model", "parts": [
                    {"text": "thinking", "thought": True},
                    {"inlineData": {"mimeType": "image/png", "data": _png((96, 128), (60, 60, 200))}},
                ]}, "finishReason": "STOP"}]}  # fmt: skip
        elif self.path.startswith(("/fal-ai/", "/openai/")):  # fal's queue: submit
            req = f"http://{self.headers['Host']}{self.path}/requests/r-{len(Gateway.seen)}"
            answer = {"request_id": "r-1", "status": "IN_QUEUE", "status_url": f"{req}/status",
                      "response_url": req, "cancel_url": f"{req}/cancel"}  # fmt: skip
        else:
            self.send_response(404)
            self.end_headers()
            return
        self._json(answer)

    def do_GET(self) -> None:
        Gateway.seen.append((self.path, dict(self.headers), {}))
        if self.path.startswith("/media/"):
            data = base64.b64decode(_png((64, 48), (60, 160, 60)))
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path.endswith("/status"):
            self._json({"status": "COMPLETED"})
        elif "/requests/" in self.path:
            # The result links to the gateway's own host over plain http: allowed (base URL).
            media = f"http://{self.headers['Host']}/media/out.png"
            self._json({"images": [{"url": media, "content_type": "image/png"}]})
        else:
            self.send_response(404)
            self.end_headers()

    def _json(self, answer: dict[str, object]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-request-id", "req_local_1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(
    gateway: str, tmp_path: Path, prompt: str, *extra: str, fal: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "FAL_KEY"))}
    if fal:
        env |= {"FAL_KEY": "fal-local-test-key", "FAL_BASE_URL": gateway, "SPLITSHOT_DEMO": "0"}
    else:
        env |= {
            "OPENAI_API_KEY": "sk-local-test-key", "OPENAI_BASE_URL": f"{gateway}/v1",
            "GEMINI_API_KEY": "g-local-test-key", "GEMINI_BASE_URL": gateway,
            "SPLITSHOT_DEMO": "0",
        }  # fmt: skip
    out = str(tmp_path / "real")
    return subprocess.run(
        [sys.executable, "-m", "bot", "compare", prompt, "--out", out, "--json", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_compare_uses_the_real_adapters_through_a_gateway(gateway: str, tmp_path: Path) -> None:
    proc = run_cli(gateway, tmp_path, "a lighthouse at dusk")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["demo"] is False and "DEMO MODE" not in proc.stderr
    assert [(p["adapter"], p["status"], p["label"]) for p in data["panels"]] == [
        ("openai", "ok", "GPT-Image 2"),
        ("gemini", "ok", "Nano Banana Pro"),
    ]
    openai = next(s for s in Gateway.seen if s[0] == "/v1/images/generations")
    assert openai[1]["Authorization"] == "Bearer sk-local-test-key"
    assert openai[2]["model"] == "gpt-image-2" and openai[2]["quality"] == "medium"
    gemini = next(s for s in Gateway.seen if "generateContent" in s[0])
    assert gemini[1]["x-goog-api-key"] == "g-local-test-key"
    assert gemini[2]["generationConfig"]["imageConfig"] == {"aspectRatio": "3:4", "imageSize": "2K"}
    assert "local-test-key" not in proc.stderr + proc.stdout


def test_a_gateway_refusal_reaches_the_member_in_plain_words(gateway: str, tmp_path: Path) -> None:
    proc = run_cli(gateway, tmp_path, "something forbidden")
    assert proc.returncode == 0, proc.stderr
    panels = json.loads(proc.stdout)["panels"]
    assert panels[0]["status"] == "ok"
    assert panels[1]["status"] == "refused"
    assert "Nano Banana Pro declined this prompt" in panels[1]["reason"]
    assert json.loads(proc.stdout)["charged"] == 8


def _sent_reference(path: str) -> Image.Image:
    body = next(s[2] for s in Gateway.seen if s[0] == path)
    uri = body["image_urls"][0]
    assert isinstance(uri, str) and uri.startswith("data:image/")
    return Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2])))


@pytest.mark.parametrize(
    ("size", "sent"), [((640, 480), (640, 480)), ((3000, 2250), (2048, 1536))],
    ids=["small-reference-unchanged", "large-reference-scaled"],
)  # fmt: skip
def test_fal_references_through_a_local_queue(
    gateway: str, tmp_path: Path, size: tuple[int, int], sent: tuple[int, int]
) -> None:
    reference = tmp_path / "ref.png"
    Image.new("RGB", size, (120, 80, 40)).save(reference)
    proc = run_cli(gateway, tmp_path, "the same scene", "--reference", str(reference), fal=True)
    assert proc.returncode == 0, proc.stderr
    panels = json.loads(proc.stdout)["panels"]
    assert [(p["adapter"], p["status"]) for p in panels] == [("fal", "ok"), ("fal", "ok")]
    for path in ("/openai/gpt-image-2/edit", "/fal-ai/nano-banana-pro/edit"):
        assert _sent_reference(path).size == sent
    polls = [s for s in Gateway.seen if s[0].endswith("/status")]
    assert polls and all(s[1]["Authorization"] == "Key fal-local-test-key" for s in polls)
    media = [s for s in Gateway.seen if s[0].startswith("/media/")]
    assert len(media) == 2 and all("Authorization" not in s[1] for s in media)
    assert "local-test-key" not in proc.stderr + proc.stdout
