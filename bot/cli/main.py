"""The command line: the same engine as the bot, no Discord.

Exit codes: 0 success, 1 every model failed, 2 bad input (one readable line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

from bot.catalog import Catalog, load_catalog
from bot.comparisons.service import (
    AllModelsFailed,
    CompareRequest,
    ComparisonResult,
    Payer,
    Plan,
    ProgressEvent,
    State,
)
from bot.errors import BadInput, SplitshotError
from bot.references import reference_image
from bot.render.terminal import (
    demo_banner,
    render_models,
    render_use_cases,
    render_verdict,
)
from bot.resources import Resources, open_resources
from bot.settings import Settings
from bot.verdict import build_verdict, dots
from providers.base import QUALITIES, ReferenceImage

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one readable line (its default already uses 2)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_BAD_INPUT, f"splitshot: {message}\n")


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The `splitshot` argument parser with every sub-command."""
    parser = _Parser(prog="splitshot", description="Compare image models on one prompt.")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    compare = sub.add_parser("compare", help="run one prompt through 2-4 models")
    compare.add_argument("prompt", nargs="?", help="what to draw (or use --example)")
    compare.add_argument(
        "--example", metavar="ID", help="use a catalog example prompt, e.g. boardwalk"
    )
    compare.add_argument("--use-case", help="use case id (default: portrait, or the example's)")
    compare.add_argument(
        "--model",
        action="append",
        dest="models",
        default=[],
        metavar="ID",
        help="model id (repeat 2-4 times; default GPT-Image 2 and Nano Banana Pro)",
    )
    compare.add_argument("--aspect", help="aspect ratio such as 3:4 (default: the use case's)")
    compare.add_argument("--quality", choices=QUALITIES, default="standard")
    compare.add_argument("--reference", type=Path, help="reference image for image-to-image")
    compare.add_argument("--blind", action="store_true", help="label panels A/B/C/D")
    compare.add_argument("--seed", type=int)
    compare.add_argument("--out", type=Path, help="where to write the split image")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.add_argument(
        "--db", help="charge an account in this credits database (a file or a postgresql:// URL)"
    )
    compare.add_argument("--guild", type=int, default=0, help="account's server id (with --db)")
    compare.add_argument("--user", type=int, default=0, help="account's user id (with --db)")
    compare.set_defaults(func=_compare)

    versus = sub.add_parser("versus", help="the comparison page for 2-4 models (free)")
    versus.add_argument("models", nargs="+", metavar="MODEL")
    versus.add_argument("--use-case", default="portrait")
    versus.set_defaults(func=_versus)

    sub.add_parser("models", help="list the catalog's models").set_defaults(func=_models)
    sub.add_parser("usecases", help="list the use cases").set_defaults(func=_use_cases)

    run = sub.add_parser("run", help="run the Discord bot (no token: the local playground)")
    run.add_argument("--no-browser-hint", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)
    run.set_defaults(func=_run)

    from bot.cli import credits as cli_credits
    from bot.cli import db as cli_db
    from bot.cli import doctor as cli_doctor

    cli_credits.register(sub, default_db=settings.db_target if settings else None)
    cli_doctor.register(sub)
    cli_db.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """Parse arguments and run one command; returns the exit code."""
    try:
        settings = settings or Settings.from_env()
    except SplitshotError as exc:
        print(f"splitshot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = build_parser(settings).parse_args(argv)
    try:
        args.settings = settings
        return int(args.func(args))
    except SplitshotError as exc:
        print(f"splitshot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


# ----------------------------------------------------------------------- commands
def _catalog(args: argparse.Namespace) -> Catalog:
    settings: Settings = args.settings
    return load_catalog(settings.catalog_path)


def _models(args: argparse.Namespace) -> int:
    print(render_models(_catalog(args)))
    return EXIT_OK


def _use_cases(args: argparse.Namespace) -> int:
    print(render_use_cases(_catalog(args)))
    return EXIT_OK


def _versus(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    ids: list[str] = args.models
    if not 2 <= len(ids) <= 4:
        raise BadInput(f"Pick 2 to 4 models; you picked {len(ids)}.")
    if len(set(ids)) != len(ids):
        raise BadInput("Each model can appear only once in a comparison.")
    models = [catalog.model(m) for m in ids]
    verdict = build_verdict(catalog, models, catalog.use_case(args.use_case))
    title = " vs ".join(m.name for m in models)
    print(f"{title} — {verdict.use_case.name}\n")
    print(render_verdict(verdict, full=True))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from bot.__main__ import run_bot_or_playground

    return run_bot_or_playground(args.settings, stop_after=args.stop_after)


def _read_reference(path: Path) -> ReferenceImage:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"Cannot read the reference file {path}: {exc.strerror or exc}.") from None
    return reference_image(data, path.name)


def _compare(args: argparse.Namespace) -> int:
    return asyncio.run(_compare_async(args))


async def _compare_async(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    reference = _read_reference(args.reference) if args.reference else None
    prompt, use_case = args.prompt, args.use_case
    if args.example:
        catalog = _catalog(args)
        if args.example not in catalog.examples:
            known = ", ".join(catalog.examples) or "none"
            raise BadInput(f"Unknown example '{args.example}'. Known examples: {known}.")
        example_use_case, example_prompt = catalog.examples[args.example]
        prompt = prompt or example_prompt
        use_case = use_case or example_use_case
    if prompt is None:
        raise BadInput("Give a prompt (or --example ID).")
    request = CompareRequest(
        prompt=prompt,
        use_case=use_case or "portrait",
        models=args.models,
        aspect=args.aspect,
        quality=args.quality,
        reference=reference,
        blind=args.blind,
        seed=args.seed,
    )
    async with AsyncExitStack() as stack:
        resources: Resources = await stack.enter_async_context(
            open_resources(
                settings, for_discord=False, with_db=args.db is not None, db_path=args.db
            )
        )
        service = resources.service
        plan = service.plan(request)
        labels = [p.label for p in plan.panels]
        err = sys.stderr
        if plan.uses_demo:
            print(
                "!" * 78
                + "\n"
                + demo_banner([p.label for p in plan.panels if p.route.is_demo])
                + "\n"
                + "!" * 78,
                file=err,
            )
        print(
            f"Comparing {' vs '.join(labels)} for {plan.use_case.name.lower()} "
            f"({plan.aspect}, {plan.quality}) — {plan.price_text}",
            file=err,
        )
        progress = _Progress(plan, err)
        out_path: Path = args.out or Path(f"splitshot-{plan.id}")

        async def deliver(result: ComparisonResult, balance_after: int | None) -> Path:
            path = (
                out_path
                if out_path.suffix
                else out_path.with_suffix("." + result.composite.extension)
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(path.write_bytes, result.composite.data)
            return path

        payer = None
        if resources.ledger is not None:
            payer = Payer(resources.ledger, args.guild, args.user)
            await resources.ledger.ensure_account(args.guild, args.user)
        try:
            done = await service.execute(plan, deliver, payer=payer, on_progress=progress.update)
        except AllModelsFailed as exc:
            progress.finish()
            if args.json:
                print(json.dumps(_failed_json(plan, exc), ensure_ascii=False, indent=2))
            print(f"splitshot: {exc}", file=err)
            return EXIT_FAILED
        progress.finish()
    result = done.result
    if args.json:
        print(
            json.dumps(
                result_json(result, done.delivery, done.balance_after), ensure_ascii=False, indent=2
            )
        )
        return EXIT_OK
    print(
        f"\nSplit image: {done.delivery} ({result.composite.width}×{result.composite.height}, "
        f"{len(result.composite.data) / 1024:.0f} KiB)"
    )
    if payer is None:
        print(
            f"Price: {result.charged} credits for the images delivered "
            "(no account charged; pass --db to charge one)"
        )
    else:
        line = f"Charged {result.charged} credits"
        if result.refunded:
            line += f", refunded {result.refunded}"
        print(f"{line} · balance {done.balance_after}")
    for o in result.outcomes:
        if not o.ok:
            print(f"  {o.refund_reason()}.")
    print()
    print(render_verdict(result.verdict))
    return EXIT_OK


class _Progress:
    """Live per-model progress: redrawn lines on a terminal, one line per change otherwise."""

    def __init__(self, plan: Plan, stream: TextIO) -> None:
        self.plan = plan
        self.stream = stream
        self.tty = stream.isatty()
        self.states = {p.index: (State.QUEUED, 0.0) for p in plan.panels}
        self.drawn = False

    def update(self, event: ProgressEvent) -> None:
        self.states[event.index] = (event.state, event.elapsed)
        if self.tty:
            self._redraw()
        elif event.state is not State.QUEUED:
            label = self.plan.panels[event.index].label
            extra = f" — {event.reason}" if event.reason else ""
            print(
                f"  {label}: {event.state.value} ({event.elapsed:.1f} s){extra}", file=self.stream
            )

    def _redraw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{len(self.states)}F")
        for panel in self.plan.panels:
            state, elapsed = self.states[panel.index]
            self.stream.write(f"\x1b[2K  {panel.label:<28} {state.value:<10} {elapsed:5.1f} s\n")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        self.stream.flush()


def result_json(
    result: ComparisonResult, image_path: Path, balance_after: int | None
) -> dict[str, Any]:
    """The documented `--json` object for a finished comparison."""
    plan = result.plan
    return {
        "id": plan.id,
        "image": str(image_path),
        "image_format": result.composite.format.lower(),
        "image_width": result.composite.width,
        "image_height": result.composite.height,
        "prompt": plan.prompt,
        "use_case": plan.use_case.id,
        "aspect": plan.aspect,
        "quality": plan.quality,
        "blind": plan.blind,
        "demo": plan.uses_demo,
        "price": {
            "items": [
                {"model": p.model.id, "label": p.label, "credits": p.credits} for p in plan.panels
            ],
            "total": plan.total,
            "text": plan.price_text,
        },
        "charged": result.charged,
        "refunded": result.refunded,
        "balance_after": balance_after,
        "panels": [_panel_json(o) for o in result.outcomes],
        "verdict": _verdict_json(result),
    }


def _panel_json(o: Any) -> dict[str, Any]:
    return {
        "model": o.panel.model.id,
        "label": o.panel.label,
        "letter": o.panel.letter,
        "adapter": o.panel.route.adapter.name,
        "status": o.status,
        "reason": o.reason,
        "latency_s": round(o.seconds, 3),
        "credits": o.panel.credits if o.ok else 0,
        "width": o.result.width if o.result else None,
        "height": o.result.height if o.result else None,
    }


def _verdict_json(result: ComparisonResult) -> dict[str, Any]:
    v = result.verdict
    return {
        "quick_verdict": v.quick_verdict,
        "criteria": [
            {
                "id": row.criterion_id,
                "name": row.name,
                "basis": row.basis,
                "dots": {label: dots(s) for label, s in zip(v.labels, row.scores, strict=True)},
                "scores": dict(zip(v.labels, row.scores, strict=True)),
                "winner": row.winner,
            }
            for row in v.rows
        ],
        "next_step": v.next_step,
    }


def _failed_json(plan: Plan, exc: AllModelsFailed) -> dict[str, Any]:
    return {
        "id": plan.id,
        "image": None,
        "price": {
            "items": [
                {"model": p.model.id, "label": p.label, "credits": p.credits} for p in plan.panels
            ],
            "total": plan.total,
            "text": plan.price_text,
        },
        "charged": 0,
        "refunded": exc.refunded,
        "panels": [_panel_json(o) for o in exc.outcomes],
        "error": str(exc),
    }
