"""Benchmark the measured text-accuracy row (bot/measure) on a synthetic set with known text.

Run: ``.venv/bin/python bench/ocr.py`` (about five minutes on 2 cores; needs the ``ocr`` extra).

The set (bot/measure/synthetic.py) is generated with Pillow: correct renders, one-typo renders,
garbled renders and images with no text, at 1K and 2K, in DejaVu/Liberation/Pillow fonts, on
noisy backgrounds, rotated up to 10°, with one to three quoted strings — 120 images by default.

Targets (issue 14):
- verdict (exact / not exact) agrees with the ground truth on >= 95% of images;
- mean absolute error of the score against the true similarity <= 0.03;
- no image without text scores >= 0.5;
- <= 900 ms wall per 1K image on 2 cores; peak RSS <= 1 GB;
- OCR of a 4-model comparison adds <= 2.5 s to the result (panels measured in parallel up to
  the core count, each started as it arrives).
Wall times depend on what else the machine runs; CPU seconds per image are printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/ocr.py` runs with bench/ on the path

from _machine import cpu_line  # noqa: E402

from bot.measure.ocr import TextAccuracy, TextMeter, default_workers, ocr_installed  # noqa: E402
from bot.measure.synthetic import KINDS, Sample, sample, sample_set  # noqa: E402

TARGET_AGREEMENT = 0.95
TARGET_MAE = 0.03
TARGET_NO_TEXT_MAX = 0.5
TARGET_MS_1K = 900.0
TARGET_RSS_GB = 1.0
TARGET_ADDED_S = 2.5

#: one measured image: the sample (image dropped), the result, wall seconds, CPU seconds
Row = tuple[Sample, TextAccuracy, float, float]


def _ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} (1 / 5 min)"


def _peak_rss_gb() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)


async def _comparison(meter: TextMeter, panels: Sequence[Sample], gap_s: float) -> float:
    """Seconds from the last panel's arrival until every panel is measured."""
    started: list[asyncio.Future[TextAccuracy]] = []
    for i, panel in enumerate(panels):
        if i:
            await asyncio.sleep(gap_s)
        started.append(asyncio.ensure_future(meter.measure(panel.image, panel.requested)))
    last_arrival = time.perf_counter()
    await asyncio.gather(*started)
    return time.perf_counter() - last_arrival


def _lazy(samples: Iterator[Sample]) -> Iterator[Sample | float]:
    """Each sample, preceded by the seconds it took to generate."""
    while True:
        t0 = time.perf_counter()
        try:
            s = next(samples)
        except StopIteration:
            return
        yield time.perf_counter() - t0
        yield s


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=15, help="images per kind and size")
    parser.add_argument("--trials", type=int, default=3, help="runs of each 4-panel case")
    parser.add_argument("--show", action="store_true", help="print every image's result")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="skip the accuracy set: time 8 images per size and the 4-panel cases",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not ocr_installed():
        print("The ocr extra is not installed: pip install -e '.[ocr]' (make bench does).")
        return 1

    print(f"Machine: {cpu_line()}")
    print(f"Load average at start: {_load_average()}")
    workers = default_workers()
    meter = TextMeter(workers=workers)
    print(f"Meter: {workers} worker thread(s), RapidOCR default models, Det limit 960 (max side)")

    first = sample(99, "correct", 1024)
    t0 = time.perf_counter()
    meter.measure_sync(first.image, first.requested)
    print(f"Engine ready + first image: {time.perf_counter() - t0:.2f} s")
    if args.speed_only:
        args.per_kind = 2  # 2 per kind and size: 8 images per size

    # One image at a time, as a lone panel arriving would be measured. Images are generated one
    # by one and dropped after use, so the peak RSS is the meter's, not the set's.
    rows: list[Row] = []
    generating = 0.0
    for s in _lazy(sample_set(args.per_kind)):
        if isinstance(s, float):
            generating += s
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        result = meter.measure_sync(s.image, s.requested)
        rows.append(
            (replace(s, image=b""), result, time.perf_counter() - wall, time.process_time() - cpu)
        )
        if args.show:
            print(
                f"  {s.name:<18} {s.font:<22} {s.angle:>5}°  true {s.true_score:.3f}  "
                f"got {result.score or 0:.3f} {'exact' if result.exact else '':<5}  "
                f"read {list(result.read)}"
            )

    samples = [s for s, _, _, _ in rows]
    print(f"Synthetic set: {len(samples)} images ({generating:.1f} s to generate)")
    if not args.speed_only:
        _accuracy(rows)
    _speed(rows)
    print()
    print(f"Load average before the 4-panel runs: {_load_average()}")
    print("A 4-model comparison: seconds OCR adds after the last panel arrives (median of trials)")
    panels = [sample(50 + i, "correct", 1024) for i in range(4)]
    for label, gap in (("all four at once", 0.0), ("arriving 1 s apart", 1.0)):
        added = [asyncio.run(_comparison(meter, panels, gap)) for _ in range(args.trials)]
        worst = statistics.median(added)
        print(
            f"  {label:<20} {worst:.2f} s (runs {', '.join(f'{a:.2f}' for a in added)}; "
            f"target <= {TARGET_ADDED_S} s)  {_ok(worst <= TARGET_ADDED_S)}"
        )
    meter.close()

    rss = _peak_rss_gb()
    print()
    print(f"Peak RSS {rss:.2f} GB (target <= {TARGET_RSS_GB} GB)  {_ok(rss <= TARGET_RSS_GB)}")
    print(f"Load average at end: {_load_average()}")
    return 0


def _accuracy(rows: Sequence[Row]) -> None:
    agree = sum(r.exact == s.truly_exact for s, r, _, _ in rows) / len(rows)
    mae = statistics.fmean(abs((r.score or 0.0) - s.true_score) for s, r, _, _ in rows)
    no_text = [r.score or 0.0 for s, r, _, _ in rows if s.kind == "none"]
    print()
    print("Accuracy")
    for kind in KINDS:
        of_kind = [(s, r) for s, r, _, _ in rows if s.kind == kind]
        kind_agree = sum(r.exact == s.truly_exact for s, r in of_kind) / len(of_kind)
        kind_mae = statistics.fmean(abs((r.score or 0.0) - s.true_score) for s, r in of_kind)
        print(
            f"  {kind:<8} n={len(of_kind):<3} verdict agreement {kind_agree:6.1%}  "
            f"MAE {kind_mae:.3f}"
        )
    print(
        f"  verdict agreement {agree:.1%} (target >= {TARGET_AGREEMENT:.0%})  {_ok(agree >= TARGET_AGREEMENT)}"
    )
    print(f"  MAE {mae:.3f} (target <= {TARGET_MAE})  {_ok(mae <= TARGET_MAE)}")
    top = max(no_text)
    print(
        f"  highest score on an image without text {top:.3f} (target < {TARGET_NO_TEXT_MAX})  "
        f"{_ok(top < TARGET_NO_TEXT_MAX)}"
    )
    misses = [(s, r) for s, r, _, _ in rows if r.exact != s.truly_exact]
    for s, r in misses[:10]:
        print(f"    miss {s.name}: drew {list(s.drawn)}, read {list(r.read)} ({r.score or 0:.3f})")


def _speed(rows: Sequence[Row]) -> None:
    samples = [s for s, _, _, _ in rows]
    print()
    print("Speed (one image at a time)")
    for size in sorted({s.size for s in samples}):
        walls = [w for s, _, w, _ in rows if s.size == size]
        cpus = [c for s, _, _, c in rows if s.size == size]
        line = (
            f"  {size}²: wall median {statistics.median(walls) * 1000:.0f} ms, "
            f"p90 {statistics.quantiles(walls, n=10)[-1] * 1000:.0f} ms; "
            f"CPU {statistics.median(cpus):.2f} s/image"
        )
        if size == 1024:
            median_ms = statistics.median(walls) * 1000
            line += f"  (target <= {TARGET_MS_1K:.0f} ms)  {_ok(median_ms <= TARGET_MS_1K)}"
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())
