"""The real OCR engine, offline, on generated images with known text (slow: ~10 s on 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.measure.ocr import TextMeter, ocr_installed
from bot.measure.quotes import requested_text
from bot.measure.synthetic import sample
from bot.settings import Settings
from providers.base import ImageRequest, Target
from providers.demo import demo_text, render_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ocr_installed(), reason="the ocr extra is not installed"),
]


@pytest.fixture(scope="module")
def meter() -> TextMeter:
    return TextMeter(workers=1)


@pytest.mark.parametrize("kind", ["correct", "typo", "none"])
def test_generated_images_read_back_as_drawn(meter: TextMeter, kind: str) -> None:
    s = sample(0, kind, 1024)  # type: ignore[arg-type]
    result = meter.measure_sync(s.image, s.requested)
    assert result.measured
    assert result.exact == s.truly_exact
    assert result.score == pytest.approx(s.true_score, abs=0.05)
    if kind == "none":
        assert (result.score or 0.0) < 0.5


def test_the_demo_sign_is_measured_typo_and_all(meter: TextMeter) -> None:
    prompt = 'a neon sign that reads "OPEN 24/7" in a diner window'
    requested = requested_text(prompt)
    assert requested is not None
    seen = set()
    for seed in range(8):
        target = Target("nano-banana-pro", "Nano Banana Pro", "x")
        request = ImageRequest(prompt, aspect="1:1", quality="draft", seed=seed)
        drawn = demo_text(target, request)
        result = meter.measure_sync(render_demo(target, request), requested)
        assert result.exact == (drawn == requested.texts), (seed, drawn, result)
        seen.add(result.exact)
        if len(seen) == 2:
            break
    assert seen == {True, False}, "the demo draws some signs right and some with a typo"


def test_compare_json_carries_text_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {"SPLITSHOT_DEMO_LATENCY": "0", "SPLITSHOT_DB": str(tmp_path / "x.db")}
    )
    argv = ["compare", 'a poster titled "GRAND OPENING"', "--use-case", "poster", "--json"]
    argv += ["--quality", "draft", "--out", str(tmp_path / "split")]
    assert main(argv, settings=settings) == 0
    data = json.loads(capsys.readouterr().out)
    for panel in data["panels"]:
        text = panel["text_accuracy"]
        assert text["requested"] == ["GRAND OPENING"] and text["status"] == "measured"
        assert 0.0 <= text["score"] <= 1.0 and text["exact"] == (text["score"] == 1.0)
    row = next(c for c in data["verdict"]["criteria"] if c["id"] == "text_measured")
    assert row["basis"] == "measured" and set(row["cells"]) == {p["label"] for p in data["panels"]}
