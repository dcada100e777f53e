"""Benchmark the compositor (bot/compose.py) against the cost of merely decoding its inputs.

Run: ``.venv/bin/python bench/compose.py`` (about a minute on 2 cores).

For each case it prints the median compose time, the median time to decode the same
inputs one after another on one thread (the "serial decode" floor a naive compositor
could not beat), their ratio, and the output format and size. Then it measures how late
a 5 ms ticker on the event loop runs while compose() runs via asyncio.to_thread, and
the peak extra memory of one compose in a fresh subprocess.

Targets: 2 x 4096² PNG <= 0.9x serial decode; 2 x 1024² <= 100 ms; every output under
10 MiB; event-loop stall <= 50 ms; extra memory <= 256 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/compose.py` runs with bench/ on the path

import PIL  # noqa: E402
from _machine import cpu_line  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter, features  # noqa: E402

from bot.compose import MAX_UPLOAD_BYTES, Composite, Panel, compose  # noqa: E402

MiB = 1024 * 1024
TARGET_RATIO_4096 = 0.9
TARGET_MS_1024 = 100.0
TARGET_STALL_MS = 50.0
TARGET_EXTRA_MIB = 256.0
TICK_S = 0.005
CASE_BUDGET_S = 15.0


# --- inputs ----------------------------------------------------------------------------


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """Return a deterministic picture with a photo's mix of smooth areas, edges and grain."""
    rng = random.Random(seed)

    def noise(w: int, h: int, mode: str = "RGB") -> Image.Image:
        bands = len(mode)
        return Image.frombytes(mode, (w, h), rng.randbytes(w * h * bands))

    # Low frequencies (sky, lighting) and mid frequencies (texture, foliage).
    light = noise(5, 5).resize((width, height), Image.Resampling.BICUBIC)
    texture = noise(max(2, width // 40), max(2, height // 40)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    picture = Image.blend(light, texture, 0.35)
    texture.close()

    # Hard-edged objects, softened a little like a lens would.
    shapes = Image.new("RGB", (width, height))
    mask = Image.new("L", (width, height))
    draw_shapes, draw_mask = ImageDraw.Draw(shapes), ImageDraw.Draw(mask)
    for _ in range(14):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = x0 + rng.randrange(width // 10, width // 3)
        y1 = y0 + rng.randrange(height // 10, height // 3)
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw_shapes.ellipse((x0, y0, x1, y1), fill=fill)
            draw_mask.ellipse((x0, y0, x1, y1), fill=200)
        else:
            draw_shapes.rectangle((x0, y0, x1, y1), fill=fill)
            draw_mask.rectangle((x0, y0, x1, y1), fill=200)
    mask = mask.filter(ImageFilter.BoxBlur(max(1, width // 1024)))
    picture.paste(shapes, (0, 0), mask)
    shapes.close()
    mask.close()

    # Sensor grain, mostly in luminance.
    grain = noise(width, height, "L").convert("RGB")
    result = Image.blend(picture, grain, 0.08)
    grain.close()
    picture.close()
    return result


def encode(image: Image.Image, fmt: str) -> bytes:
    """Encode like a provider would: default PNG compression, JPEG quality 92."""
    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, "PNG")  # zlib level 6, Pillow's default
    else:
        image.save(out, "JPEG", quality=92)
    return out.getvalue()


class Inputs:
    """Generates each input once; the 4-panel cases reuse the 2-panel ones plus two more."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, str, int], bytes] = {}

    def get(self, width: int, height: int, fmt: str, seed: int) -> bytes:
        key = (width, height, fmt, seed)
        if key not in self._cache:
            image = photo_like(width, height, seed)
            self._cache[key] = encode(image, fmt)
            image.close()
        return self._cache[key]


MODELS = ("GPT-Image 2", "Nano Banana Pro", "Nano Banana 2", "GPT-Image 1.5")


def panels_for(blobs: Sequence[bytes], sizes: Sequence[tuple[int, int]]) -> list[Panel]:
    """Label the blobs like the comparison service would."""
    return [
        Panel(MODELS[i], f"{12.3 + i:.1f} s · {w}×{h}", blob)
        for i, (blob, (w, h)) in enumerate(zip(blobs, sizes, strict=True))
    ]


# --- measurements ----------------------------------------------------------------------


def serial_decode(blobs: Sequence[bytes]) -> None:
    """Decode every input fully, one after another: the floor a compositor is compared to."""
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    # user + nice + system + irq + softirq over all CPUs, from /proc/stat's first line.
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[0] + fields[1] + fields[2] + fields[5] + fields[6]


@dataclass
class Sample:
    ms: float
    others_ms: float  # CPU time other processes used meanwhile

    @property
    def quiet(self) -> bool:
        # Tick accounting is coarse (10 ms), so allow two ticks of noise.
        return self.others_ms <= max(2 * _TICK_MS, 0.1 * self.ms)


def sample(fn: Callable[[], object]) -> Sample:
    """Time ``fn`` and note how much CPU other processes took while it ran."""
    busy, own = _busy_ticks(), os.times()
    ms = timed(fn)
    after = os.times()
    own_ms = (after.user - own.user + after.system - own.system) * 1000
    return Sample(ms, (_busy_ticks() - busy) * _TICK_MS - own_ms)


@dataclass
class CaseResult:
    name: str
    runs: int
    quiet: bool
    compose_ms: float
    decode_ms: float
    result: Composite

    @property
    def ratio(self) -> float:
        return self.compose_ms / self.decode_ms


def run_case(name: str, panels: list[Panel], runs: int) -> CaseResult:
    """Median of ``runs`` interleaved decode/compose pairs taken while no one else was busy.

    Other processes on a 2-core box steal one of the two cores compose decodes on, while
    the single-threaded serial decode barely notices, so contended pairs are retried
    (up to 3x, within CASE_BUDGET_S) and only used when too few quiet ones turn up.
    """
    blobs = [p.image for p in panels if p.image is not None]
    result = compose(panels)  # warm-up: fonts, plugins, allocator
    serial_decode(blobs)
    pairs: list[tuple[Sample, Sample]] = []
    deadline = time.monotonic() + CASE_BUDGET_S
    for attempt in range(3 * runs):
        if attempt >= runs and time.monotonic() > deadline:
            break
        # Interleaved so that any drift in the machine hits both measurements alike.
        pairs.append((sample(lambda: serial_decode(blobs)), sample(lambda: compose(panels))))
        if sum(d.quiet and c.quiet for d, c in pairs) >= runs:
            break
    quiet = [(d, c) for d, c in pairs if d.quiet and c.quiet]
    used = quiet if len(quiet) >= runs else pairs
    return CaseResult(
        name,
        len(used),
        used is quiet,
        statistics.median(c.ms for _, c in used),
        statistics.median(d.ms for d, _ in used),
        result,
    )


async def loop_lateness(panels: list[Panel], runs: int) -> tuple[float, float]:
    """Return the worst ticker lateness (ms) while idle and while composing in a thread."""
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            start = loop.time()
            await asyncio.sleep(TICK_S)
            lateness.append(loop.time() - start - TICK_S)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.5)
    idle = max(lateness)
    lateness.clear()
    for _ in range(runs):
        await asyncio.to_thread(compose, panels)
    running = False
    await task
    return idle * 1000, max(lateness) * 1000


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(paths: Sequence[str]) -> None:
    """Subprocess entry: print baseline RSS and peak RSS around one compose, in KiB."""
    blobs = [Path(p).read_bytes() for p in paths]
    sizes = []
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as image:
            sizes.append(image.size)
    panels = panels_for(blobs, sizes)
    baseline = _status_kib("VmRSS")
    try:
        # Writing 5 resets VmHWM to the current RSS, so the peak below is compose's own.
        Path("/proc/self/clear_refs").write_text("5")
        method = "VmHWM after clear_refs reset"
    except OSError:
        method = "VmHWM (not resettable; import peak may mask a smaller compose peak)"
    compose(panels)
    peak = _status_kib("VmHWM")
    print(baseline, peak, method, sep="\t")


def measure_memory(blobs: Sequence[bytes]) -> tuple[float, str]:
    """Run one compose in a fresh interpreter and return its peak extra RSS in MiB."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for index, blob in enumerate(blobs):
            path = Path(tmp, f"panel{index}")
            path.write_bytes(blob)
            paths.append(str(path))
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", *paths],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    baseline, peak, method = out.strip().split("\t")
    return (int(peak) - int(baseline)) / 1024, method


# --- report ----------------------------------------------------------------------------


def machine() -> str:
    jpeg = features.version("jpg") or "?"
    zlib = features.version("zlib") or "?"
    return (
        f"{cpu_line()}\n"
        f"Python {platform.python_version()}, Pillow {PIL.__version__} "
        f"(libjpeg {jpeg}, zlib {zlib})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer runs (smoke test)")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return 0

    started = time.perf_counter()
    print(machine())
    print(f"CPU affinity: {sorted(os.sched_getaffinity(0))}\n")
    inputs = Inputs()

    print("Generating photo-like inputs (smooth light, texture, hard edges, grain)...", flush=True)
    cases: list[tuple[str, list[Panel], int]] = []
    for side in (1024, 2048, 4096):
        runs = 3 if args.quick else {1024: 9, 2048: 5, 4096: 5}[side]
        for fmt in ("PNG", "JPEG"):
            for count in (2, 4):
                sizes = [(side, side)] * count
                blobs = [inputs.get(side, side, fmt, seed) for seed in range(count)]
                cases.append((f"{count} x {side}² {fmt}", panels_for(blobs, sizes), runs))
    for fmt in ("PNG", "JPEG"):
        sizes = [(1024, 1536), (1536, 1024)]
        blobs = [inputs.get(w, h, fmt, 10 + i) for i, (w, h) in enumerate(sizes)]
        cases.append((f"mixed 1024×1536 + 1536×1024 {fmt}", panels_for(blobs, sizes), 9))
    print(f"  inputs ready in {time.perf_counter() - started:.0f} s\n", flush=True)

    header = (
        f"{'case':34} {'runs':>5} {'compose ms':>10} {'decode ms':>10} {'ratio':>6}"
        f" {'output':>5} {'bytes':>10} {'size':>10}"
    )
    print(header)
    print("-" * len(header))
    contended = False
    results: list[CaseResult] = []
    for name, panels, runs in cases:
        r = run_case(name, panels, runs)
        results.append(r)
        print(
            f"{r.name:34} {r.runs:>4}{' ' if r.quiet else '*'} {r.compose_ms:>10.0f}"
            f" {r.decode_ms:>10.0f}"
            f" {r.ratio:>6.2f} {r.result.format:>5} {len(r.result.data):>10,}"
            f" {r.result.width}×{r.result.height}",
            flush=True,
        )
        contended = contended or not r.quiet
    if contended:
        print("* other processes kept the CPUs busy during too many runs; medians include them")

    print("\nEvent loop: 5 ms ticker while compose(2 x 4096² PNG) runs via asyncio.to_thread")
    big_pair = next(p for n, p, _ in cases if n == "2 x 4096² PNG")
    idle_ms, busy_ms = asyncio.run(loop_lateness(big_pair, runs=3))
    print(f"  worst lateness idle {idle_ms:.1f} ms, during 3 composes {busy_ms:.1f} ms")

    print("\nPeak extra memory of one compose, fresh subprocess per row")
    print("  (tracemalloc only sees Python's allocator, not Pillow's C pixel buffers, so this")
    print("  reads the kernel's peak RSS, VmHWM, minus the RSS just before compose)")
    memory: dict[str, float] = {}
    for name in ("2 x 4096² PNG", "2 x 4096² JPEG", "4 x 4096² PNG"):
        panels = next(p for n, p, _ in cases if n == name)
        extra, method = measure_memory([p.image for p in panels if p.image is not None])
        memory[name] = extra
        print(f"  {name:16} {extra:7.1f} MiB   [{method}]")

    by_name = {r.name: r for r in results}
    checks = [
        (
            f"2 x 4096² PNG compose <= {TARGET_RATIO_4096}x serial decode",
            by_name["2 x 4096² PNG"].ratio <= TARGET_RATIO_4096,
            f"{by_name['2 x 4096² PNG'].ratio:.2f}x",
        ),
        (
            f"2 x 1024² compose <= {TARGET_MS_1024:.0f} ms (PNG and JPEG inputs)",
            max(by_name[f"2 x 1024² {f}"].compose_ms for f in ("PNG", "JPEG")) <= TARGET_MS_1024,
            " / ".join(f"{by_name[f'2 x 1024² {f}'].compose_ms:.0f} ms" for f in ("PNG", "JPEG")),
        ),
        (
            "every output under 10 MiB",
            all(len(r.result.data) < MAX_UPLOAD_BYTES for r in results),
            f"largest {max(len(r.result.data) for r in results) / MiB:.2f} MiB",
        ),
        (
            f"event-loop stall <= {TARGET_STALL_MS:.0f} ms",
            busy_ms <= TARGET_STALL_MS,
            f"{busy_ms:.1f} ms",
        ),
        (
            f"extra memory per compose <= {TARGET_EXTRA_MIB:.0f} MiB",
            max(memory.values()) <= TARGET_EXTRA_MIB,
            ", ".join(f"{k}: {v:.0f} MiB" for k, v in memory.items()),
        ),
    ]
    print("\nTargets")
    for label, ok, detail in checks:
        print(f"  [{'met ' if ok else 'MISS'}] {label}: {detail}")
    print(f"\nTotal bench time {time.perf_counter() - started:.0f} s")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
