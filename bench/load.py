"""Load: N comparisons at once through the real OpenAI and Gemini adapters, ledger on.

Longer than the ~400-line guide on purpose: the provider stand-in, one measured run and the
parent that runs and reports them are one bench and read best together.

Run: ``.venv/bin/python bench/load.py [--n 200] [--latency 2] [--size 2048] [--runs 3]``.

A stand-in for both providers listens on loopback in this process (its own thread and event
loop) and answers every request after a fixed latency with a ``size``² PNG, base64 in the
providers' documented JSON shapes; its request slots are set high enough that the provider is
never the limit. The bot side is the real thing: settings, resources (shared httpx client,
request slots, CPU pools, compose budget), the real adapters, comparison jobs with the ledger
and database, settle and record.

Each run is a fresh process (so peak RSS is that run's); the parent prints every run and the
medians. Printed, with the machine:
  - wall vs the ideal ``latency + CPU per comparison × N / cores`` (target ≤ 1.2×), where the
    CPU per comparison is this process's CPU time for a comparison run alone first (the median of
    six, after a warm-up);
  - the event loop's worst stall and p99, from a 10 ms ticker (targets ≤ 100 ms, ≤ 20 ms);
  - peak RSS (target ≤ 1 GiB), and the RSS before the burst (imports, the stand-in's answers);
  - time to the first result (target ≤ latency + 2 s); timeouts (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/load.py` runs with bench/ on the path

from _machine import cpu_line  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from bot.comparisons.job import ComparisonJob, Requester  # noqa: E402
from bot.comparisons.plan import CompareRequest  # noqa: E402
from bot.comparisons.policy import Policy  # noqa: E402
from bot.comparisons.service import AllModelsFailed  # noqa: E402
from bot.guild_settings import update_guild_settings  # noqa: E402
from bot.resources import open_resources  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.workers import usable_cores  # noqa: E402
from providers.base import Quality  # noqa: E402

MODELS = ("gpt-image-2", "nano-banana-pro")
FUNDS = 1_000_000
GUILDS = 10
#: comparisons run one at a time before the burst: one warm-up, then the median of the rest
CALIBRATION = 7


# ------------------------------------------------------------------ the provider stand-in
def answer_png(size: int, seed: int) -> bytes:
    """A photo-like PNG: smooth gradients under fine noise (about what models send per pixel)."""
    noise = Image.effect_noise((size, size), 32 + seed).convert("L")
    grad = Image.linear_gradient("L").resize((size, size))
    channels = (
        Image.blend(grad, noise, 0.25),
        Image.blend(grad.rotate(90), noise.transpose(Image.Transpose.ROTATE_90), 0.2),
        Image.blend(grad.rotate(180 if seed else 270), noise.filter(ImageFilter.BoxBlur(2)), 0.3),
    )
    out = io.BytesIO()
    Image.merge("RGB", channels).save(out, "PNG", compress_level=6)
    return out.getvalue()


def openai_body(png: bytes, size: int) -> bytes:
    """An Images API answer (b64_json) as documented."""
    return json.dumps(
        {
            "created": 1,
            "data": [{"b64_json": base64.b64encode(png).decode()}],
            "output_format": "png",
            "size": f"{size}x{size}",
            "usage": {"total_tokens": 1},
        }
    ).encode()


def gemini_body(png: bytes) -> bytes:
    """A generateContent answer with one inline image as documented."""
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
    return json.dumps(
        {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}],
            "modelVersion": "gemini-3-pro-image",
            "responseId": "bench",
        }
    ).encode()


class StandIn:
    """A minimal HTTP/1.1 server on loopback, on its own thread and event loop.

    It answers from files with ``sendfile``, as a web server would: the kernel copies the
    body, and the thread holds the GIL only to start each answer. Written through asyncio's
    stream buffer instead, each 10 MB answer was copied under the GIL: the stand-in took
    ~17% of the process's GIL time in a 200-comparison burst, time a remote provider never
    takes from the bot, and the bot's event loop waited for it.
    """

    def __init__(self, latency: float, bodies: dict[str, Path]) -> None:
        self.latency = latency
        self.bodies = bodies
        self.sizes = {kind: path.stat().st_size for kind, path in bodies.items()}
        self.port = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stand-in", daemon=True)

    def start(self) -> int:
        self._thread.start()
        self._ready.wait()
        return self.port

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=2048)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                await asyncio.sleep(self.latency)
                kind = "gemini" if ":generateContent" in path else "openai"
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n" % self.sizes[kind]
                )
                with self.bodies[kind].open("rb") as body:
                    await loop.sendfile(writer.transport, body, fallback=False)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


# ------------------------------------------------------------------ one run
def rss_mib() -> float:
    """This process's resident memory now (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def ticker(
    samples: list[tuple[float, float]], stop: asyncio.Event, interval: float = 0.010
) -> None:
    """How late each 10 ms tick wakes (the event loop's stalls), and when."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    expected = start + interval
    while not stop.is_set():
        await asyncio.sleep(interval)
        now = loop.time()
        samples.append((max(0.0, now - expected), now - start))
        expected = now + interval


def make_bodies(size: int) -> dict[str, bytes]:
    """Both providers' answers (slow to make: made once and shared by the runs)."""
    return {
        "openai": openai_body(answer_png(size, 0), size),
        "gemini": gemini_body(answer_png(size, 1)),
    }


def write_bodies(size: int, directory: Path) -> dict[str, Path]:
    """Both answers as files in ``directory`` (the stand-in sends them from there)."""
    paths = {}
    for kind, body in make_bodies(size).items():
        paths[kind] = directory / f"{kind}.json"
        paths[kind].write_bytes(body)
    return paths


def load_bodies(size: int, cache: Path | None, scratch: Path) -> dict[str, Path]:
    """The answers' files: in ``cache`` when the parent made them, else made now in ``scratch``."""
    if cache is None:
        return write_bodies(size, scratch)
    return {kind: cache / f"{kind}.json" for kind in ("openai", "gemini")}


async def one_run(
    n: int,
    latency: float,
    size: int,
    budget_mb: int | None,
    cache: Path | None = None,
    compose_slots: int | None = None,
) -> dict[str, Any]:
    """Everything measured in one run of N comparisons at once."""
    scratch = Path(tempfile.mkdtemp(prefix="splitshot-load-run-"))
    bodies = load_bodies(size, cache, scratch)
    # What the bot is told to expect (its output budget reserves by quality): 2K or 4K.
    quality: Quality = "high" if size > 2048 else "standard"
    server = StandIn(0.0, bodies)
    port = server.start()
    base = f"http://127.0.0.1:{port}"
    slots = str(max(n, CALIBRATION) + 8)  # enough provider capacity: the provider is not the limit
    env = {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"{base}/v1",
        "GEMINI_API_KEY": "bench",
        "GEMINI_BASE_URL": base,
        "SPLITSHOT_DEMO": "0",
        "SPLITSHOT_MAX_REQUESTS_OPENAI": slots,
        "SPLITSHOT_MAX_REQUESTS_GEMINI": slots,
        "SPLITSHOT_MAX_RUNNING": str(n + 8),
        "SPLITSHOT_MAX_GRANT": "off",  # the bench funds its members in one grant each
        "SPLITSHOT_MOD_DAILY_CAP": "off",
        "SPLITSHOT_LOG_LEVEL": "WARNING",
    }
    if budget_mb is not None:
        env["SPLITSHOT_OUTPUT_BUDGET_MB"] = str(budget_mb)
    if compose_slots is not None:
        env["SPLITSHOT_COMPOSE_SLOTS"] = str(compose_slots)
    settings = Settings.from_env(env)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_resources(
            settings, for_discord=True, with_db=True, db_path=Path(tmp) / "bench.db"
        ) as res:
            assert res.db is not None and res.ledger is not None
            db, ledger = res.db, res.ledger
            for guild in range(1, GUILDS + 1):
                await update_guild_settings(db, guild, max_grant=FUNDS, mod_daily_cap=0)
            for i in range(n + CALIBRATION):
                await ledger.grant(1 + i % GUILDS, 1000 + i, FUNDS, "benchmark", actor_id=0)
            policy = Policy.for_server(res.catalog, res.registry, allow_demo=False, settings=None)

            def job(i: int) -> ComparisonJob:
                request = CompareRequest(
                    f"a lighthouse at dusk, take {i}", models=MODELS, aspect="1:1", quality=quality
                )
                return ComparisonJob(
                    policy.plan(request),
                    service=res.service,
                    catalog=res.catalog,
                    ledger=ledger,
                    db=db,
                    requester=Requester(1 + i % GUILDS, 1000 + i, channel_id=1),
                )

            # CPU per comparison, one at a time, with an instant provider: the first is a warm-up
            # (first imports, first connections), the median of the others is the figure. The
            # host's speed wanders; a mean of three with the warm-up in moved the ratio by 0.15.
            cpus: list[float] = []
            walls: list[float] = []
            for i in range(CALIBRATION):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                calibration = job(n + i)
                await calibration.produce()
                await calibration.delivered(channel_id=1, message_id=10**9 + i)
                cpus.append(time.process_time() - cpu0)
                walls.append(time.perf_counter() - wall0)
            cpu_each = statistics.median(cpus[1:])
            overhead = statistics.median(walls[1:])

            server.latency = latency
            rss_before = rss_mib()
            samples: list[tuple[float, float]] = []
            stop = asyncio.Event()
            tick = asyncio.create_task(ticker(samples, stop))
            first: list[float] = []
            timeouts = failed = 0
            start = time.perf_counter()
            cpu_start = time.process_time()

            async def run(i: int) -> None:
                nonlocal timeouts, failed
                one = job(i)
                try:
                    result = await one.produce()
                except AllModelsFailed as exc:
                    failed += 1
                    timeouts += sum(1 for o in exc.outcomes if o.error_kind == "timeout")
                    return
                first.append(time.perf_counter() - start)
                timeouts += sum(1 for o in result.outcomes if o.error_kind == "timeout")
                failed += sum(1 for o in result.outcomes if not o.ok)
                await one.delivered(channel_id=1, message_id=i + 1)

            await asyncio.gather(*(run(i) for i in range(n)))
            wall = time.perf_counter() - start
            cpu_burst = time.process_time() - cpu_start
            stop.set()
            await tick
            audit = await ledger.audit()
    server.stop()
    openai_answer = bodies["openai"].read_bytes()
    shutil.rmtree(scratch)
    worst = max(samples) if samples else (0.0, 0.0)
    lateness = sorted(late for late, _ in samples)
    cores = usable_cores()
    ideal = latency + cpu_each * n / cores
    return {
        "n": n,
        "latency": latency,
        "answer_mib": len(openai_answer) / 2**20,
        "png_mib": len(base64.b64decode(json.loads(openai_answer)["data"][0]["b64_json"])) / 2**20,
        "cpu_each": cpu_each,
        "cpu_burst_each": cpu_burst / n,
        "overhead": overhead,
        "cores_used": cpu_burst / wall,
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal,
        "stall_max": worst[0],
        "stall_at": worst[1],
        "stall_p99": lateness[int(0.99 * (len(lateness) - 1))] if lateness else 0.0,
        "stall_p50": lateness[len(lateness) // 2] if lateness else 0.0,
        "rss_before": rss_before,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "first": min(first) if first else float("nan"),
        "timeouts": timeouts,
        "failed": failed,
        "requests": server.requests,
        "audit_clean": not audit,
    }


# ------------------------------------------------------------------ the parent
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="comparisons at once (default 200)")
    parser.add_argument("--latency", type=float, default=2.0, help="provider latency, seconds")
    parser.add_argument("--size", type=int, default=2048, help="answer edge in pixels")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes; medians reported")
    parser.add_argument("--budget-mb", type=int, default=None, help="SPLITSHOT_OUTPUT_BUDGET_MB")
    parser.add_argument("--compose-slots", type=int, default=None, help="SPLITSHOT_COMPOSE_SLOTS")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = asyncio.run(
            one_run(
                args.n, args.latency, args.size, args.budget_mb, args.bodies, args.compose_slots
            )
        )
        print(json.dumps(result))
        return

    print(f"Machine: {cpu_line()}; Python {sys.version.split()[0]}")
    print(f"Load average before: {os.getloadavg()[0]:.2f} (1 min)")
    print(
        f"{args.n} comparisons at once × 2 models ({', '.join(MODELS)}), {args.size}² PNG "
        f"answers, provider latency {args.latency:g} s, ledger on; {args.runs} fresh runs\n"
    )
    runs = []
    cache = Path(tempfile.mkdtemp(prefix="splitshot-load-"))
    write_bodies(args.size, cache)
    cmd = [sys.executable, __file__, "--one", "--n", str(args.n), "--latency", str(args.latency)]
    cmd += ["--size", str(args.size), "--bodies", str(cache)]
    if args.budget_mb is not None:
        cmd += ["--budget-mb", str(args.budget_mb)]
    if args.compose_slots is not None:
        cmd += ["--compose-slots", str(args.compose_slots)]
    header = (
        f"{'run':>3} {'wall':>7} {'ideal':>7} {'ratio':>6} {'stall':>7} {'p99':>6} "
        f"{'RSS pk':>7} {'before':>7} {'first':>6} {'t/o':>4} {'fail':>4} {'cores':>5}"
    )
    print(header)
    for index in range(args.runs):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        run = json.loads(out.strip().splitlines()[-1])
        runs.append(run)
        print(_row(str(index + 1), run))
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "audit_clean"}
    print("worst stall at (s into the burst): " + ", ".join(f"{r['stall_at']:.1f}" for r in runs))
    print(_row("med", medians))
    first = runs[0]
    cores = usable_cores()
    print(
        f"\nanswer: {first['png_mib']:.1f} MiB PNG, {first['answer_mib']:.1f} MiB JSON; "
        f"CPU per comparison: {medians['cpu_each'] * 1000:.0f} ms one at a time, "
        f"{medians['cpu_burst_each'] * 1000:.0f} ms in the burst, so the ideal from the "
        f"burst's own CPU is {args.latency + medians['cpu_burst_each'] * args.n / cores:.1f} s"
        f"\none comparison alone (instant provider, median of {CALIBRATION - 1} after a warm-up): "
        f"{medians['overhead'] * 1000:.0f} ms wall; "
        f"ledger audit clean in every run: {all(r['audit_clean'] for r in runs)}"
    )
    print(
        "targets: ratio ≤ 1.2, stall ≤ 100 ms, p99 ≤ 20 ms, RSS ≤ 1024 MiB, "
        f"first ≤ {args.latency + 2:g} s, timeouts 0"
    )
    print(
        "cores = this process's CPU time during the burst / wall: the share of the machine it got"
    )
    print(f"Load average after: {os.getloadavg()[0]:.2f} (1 min)")
    for kind in ("openai", "gemini"):
        (cache / f"{kind}.json").unlink()
    cache.rmdir()


def _row(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:>3} {r['wall']:6.1f}s {r['ideal']:6.1f}s {r['ratio']:6.2f} "
        f"{r['stall_max'] * 1000:5.0f}ms {r['stall_p99'] * 1000:4.0f}ms "
        f"{r['rss_peak']:5.0f}Mi {r['rss_before']:5.0f}Mi {r['first']:5.1f}s "
        f"{r['timeouts']:4.0f} {r['failed']:4.0f} {r['cores_used']:5.2f}"
    )


if __name__ == "__main__":
    main()
