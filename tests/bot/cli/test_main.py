"""The command line end to end on the demo provider, including every bad-input exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.cli.main import main
from bot.settings import Settings
from tests.conftest import png_bytes

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"SPLITSHOT_DEMO_LATENCY": "0", "SPLITSHOT_DB": str(tmp_path / "x.db")}
    )


def run(
    argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(argv, settings=settings)
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_json_documents_everything(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "split"
    code, out, err = run(
        ["compare", "--example", "boardwalk", "--out", str(out_file), "--json"], settings, capsys
    )
    assert code == 0, err
    data = json.loads(out)
    image = Path(data["image"])
    assert image.exists() and image.name.startswith("split.")
    with Image.open(image) as opened:
        assert opened.size == (data["image_width"], data["image_height"])
        assert opened.format.lower() == data["image_format"]
    assert data["price"]["total"] == 30
    assert [i["credits"] for i in data["price"]["items"]] == [8, 22]
    assert data["demo"] is True
    assert [p["label"] for p in data["panels"]] == ["GPT-Image 2 · demo", "Nano Banana Pro · demo"]
    for panel in data["panels"]:
        assert panel["status"] == "ok" and panel["adapter"] == "demo" and panel["reason"] is None
        assert panel["kind"] is None and panel["detail"] is None
        assert panel["width"] == 768 and panel["height"] == 1024 and panel["latency_s"] >= 0
    verdict = data["verdict"]
    assert verdict["quick_verdict"].startswith("Short answer: GPT-Image 2 · demo leads on")
    realism = next(c for c in verdict["criteria"] if c["id"] == "realism")
    assert realism["dots"] == {"GPT-Image 2 · demo": "●●●●●", "Nano Banana Pro · demo": "●●●●●"}
    assert realism["winner"] == "Tie"
    assert "DEMO MODE" in err


def test_compare_text_output_prints_verdict_and_tables(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "compare",
            "a red fox in snow",
            "--use-case",
            "landscape",
            "--model",
            "nano-banana-2",
            "--model",
            "gpt-image-2",
            "--model",
            "gpt-image-1.5",
            "--aspect",
            "1:1",
            "--out",
            str(tmp_path / "fox.png"),
        ],
        settings,
        capsys,
    )
    assert code == 0, err
    assert (
        "Split image:" in out
        and "Criteria" in out
        and "Best first test" in out
        and "Measured" in out
    )
    assert (tmp_path / "fox.png").exists()
    assert "generating" in err and "done" in err


def test_compare_with_db_charges_the_account(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "credits.db"
    code, out, _ = run(
        ["compare", "a fox", "--db", str(db), "--user", "7", "--out", str(tmp_path / "a")],
        settings,
        capsys,
    )
    assert code == 0
    assert "Charged 30 credits · balance 30" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["compare", "a fox", "--model", "dall-e-3", "--model", "gpt-image-2"],
            "Unknown model 'dall-e-3'",
        ),
        (["compare", ""], "prompt is empty"),
        (["compare", "x" * 4001], "limit is 4000"),
        (["compare", "a fox", "--model", "gpt-image-2"], "Pick 2 to 4 models"),
        (["compare", "a fox", "--model", "gpt-image-2", "--model", "gpt-image-2"], "only once"),
        (
            ["compare", "a fox"]
            + [
                a
                for m in [
                    "gpt-image-2",
                    "nano-banana-pro",
                    "nano-banana-2",
                    "gpt-image-1.5",
                    "gpt-image-2",
                ]
                for a in ("--model", m)
            ],
            "Pick 2 to 4",
        ),
        (["compare", "a fox", "--aspect", "7:1"], "cannot draw 7:1"),
        (
            ["compare", "a fox", "--reference", "/nonexistent/ref.png"],
            "Cannot read the reference file",
        ),
        (["compare", "a fox", "--quality", "ultra"], "invalid choice"),
        (["versus", "gpt-image-2"], "Pick 2 to 4 models"),
        (["compare", "--example", "nope"], "Unknown example"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, _, err = run(argv, settings, capsys)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
        err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_non_image_reference_exits_2(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    code, _, err = run(["compare", "a fox", "--reference", str(bogus)], settings, capsys)
    assert code == 2 and "must be a PNG, JPEG or WebP image; notes.png is not" in err
    good = tmp_path / "ref.png"
    good.write_bytes(png_bytes())
    code, _, err = run(
        ["compare", "a fox", "--reference", str(good), "--out", str(tmp_path / "o")],
        settings,
        capsys,
    )
    assert code == 0, err


def test_every_model_failing_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A zero timeout makes every demo model miss its deadline.
    settings = Settings.from_env({"SPLITSHOT_DEMO_LATENCY": "1", "SPLITSHOT_MODEL_TIMEOUT": "0.01"})
    code, out, err = run(
        ["compare", "a fox", "--json", "--out", str(tmp_path / "x")], settings, capsys
    )
    assert code == 1
    assert "No model produced an image" in err
    panels = json.loads(out)["panels"]
    assert [p["status"] for p in panels] == ["failed", "failed"]
    assert [p["kind"] for p in panels] == ["timeout", "timeout"]
    assert all(p["detail"] for p in panels)
    assert not list(tmp_path.glob("x*"))


def test_models_usecases_versus(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models"], settings, capsys)
    assert code == 0 and "gpt-image-2" in out and "Nano Banana Pro" in out and "8/11/52" in out
    code, out, _ = run(["usecases"], settings, capsys)
    assert code == 0 and "social-ad" in out and "Character consistency" in out
    code, out, _ = run(
        ["versus", "gpt-image-2", "nano-banana-pro", "--use-case", "portrait"], settings, capsys
    )
    assert code == 0
    for text in (
        "If you need…",
        "Starting price",
        "8 credits",
        "22 credits",
        "Google (Gemini 3 Pro)",
        "GPT-Image 2 strengths:",
        "Last updated December 5, 2026",
        "Verdict",
    ):
        assert text in out, text


def test_console_script_runs_in_a_fresh_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "FAL_KEY"))}
    env |= {"SPLITSHOT_DEMO_LATENCY": "0"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "compare",
            "--example",
            "boardwalk",
            "--out",
            str(tmp_path / "b"),
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["panels"][0]["label"] == "GPT-Image 2 · demo"


def test_edit_compares_edits_and_json_says_kind_and_parent(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "cat.png"
    Image.new("RGB", (96, 128), (200, 80, 40)).save(source)
    code, out, err = run(
        ["edit", str(source), "a red hat", "--out", str(tmp_path / "e"), "--json"],
        settings,
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "edit" and data["parent"] is None
    assert len(data["panels"]) == 2 and all(p["status"] == "ok" for p in data["panels"])
    with Image.open(data["image"]) as image:
        assert image.height > image.width * 0.8, "the panels plus the Original strip"

    code, out, err = run(
        ["compare", "a fox", "--out", str(tmp_path / "c"), "--json"], settings, capsys
    )
    assert code == 0 and json.loads(out)["kind"] == "compare"


def test_edit_refuses_a_bad_mask_with_one_line(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "cat.png"
    Image.new("RGB", (96, 128), (200, 80, 40)).save(source)
    mask = tmp_path / "mask.png"
    Image.new("RGB", (96, 128)).save(mask)
    code, _, err = run(["edit", str(source), "a hat", "--mask", str(mask)], settings, capsys)
    assert code == 2 and "no transparency" in err and err.count("\n") == 1
