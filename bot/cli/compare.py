"""`splitshot compare` and `splitshot edit`: plan under the server's policy, run the job with
terminal progress, write the split image, print the verdict or the documented JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

from bot.catalog import Catalog, load_catalog
from bot.comparisons.events import Event, PanelChanged
from bot.comparisons.followups import check_mask, image_aspect, nearest_aspect, plan_edit
from bot.comparisons.job import ComparisonJob, Requester
from bot.comparisons.plan import CompareRequest, Plan, State
from bot.comparisons.policy import Policy
from bot.comparisons.service import AllModelsFailed, ComparisonResult
from bot.errors import BadInput
from bot.guild_settings import GuildSettings, get_guild_settings
from bot.measure.ocr import TextAccuracy
from bot.references import MAX_REFERENCE_BYTES, reference_image
from bot.render.terminal import (
    demo_banner,
    render_verdict,
    terminal_safe,
)
from bot.resources import Resources, open_resources
from bot.settings import Settings
from bot.verdict import dots
from providers.base import ReferenceImage

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _catalog(args: argparse.Namespace) -> Catalog:
    settings: Settings = args.settings
    return load_catalog(settings.catalog_path)


def _read_reference(path: Path) -> ReferenceImage:
    try:
        with path.open("rb") as file:
            # One byte past the limit is enough to refuse it; /dev/zero never ends.
            data = file.read(MAX_REFERENCE_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"Cannot read the reference file {path}: {exc.strerror or exc}.") from None
    return reference_image(data, path.name)


def compare_command(args: argparse.Namespace) -> int:
    """`splitshot compare`."""
    return asyncio.run(_compare_async(args))


async def _compare_async(args: argparse.Namespace) -> int:
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
        use_case=use_case,
        models=args.models,
        aspect=args.aspect,
        quality=args.quality,
        reference=reference,
        blind=args.blind,
        seed=args.seed,
    )

    async def plan_for_compare(policy: Policy) -> Plan:
        blind = policy.blind(True if args.blind else None)
        return policy.plan(dataclasses.replace(request, blind=blind))

    return await _execute(args, plan_for_compare)


def edit_command(args: argparse.Namespace) -> int:
    """`splitshot edit`."""
    return asyncio.run(_edit_async(args))


async def _edit_async(args: argparse.Namespace) -> int:
    source = _read_reference(args.image)
    mask = None
    if args.mask is not None:
        try:
            mask = args.mask.read_bytes()
        except OSError as exc:
            raise BadInput(f"Cannot read the mask {args.mask}: {exc.strerror or exc}.") from None
        mask = check_mask(mask, source)
    size = image_aspect(source)

    async def plan_for_edit(policy: Policy) -> Plan:
        models = list(args.models) or _edit_defaults(policy, mask is not None)
        if len(models) < 2:
            raise BadInput("Pick 2 to 4 models that can edit (--model ID, repeated).")
        catalog = policy.catalog
        common = [
            a
            for a in catalog.model(models[0]).aspects
            if all(a in catalog.model(m).aspects for m in models)
        ]
        if not common:
            raise BadInput("Those models share no aspect ratio; pick others.")
        return plan_edit(
            policy,
            source,
            args.prompt,
            models,
            aspect=nearest_aspect(size, common),
            use_case=args.use_case,
            mask=mask,
            quality=args.quality,
            blind=policy.blind(True if args.blind else None),
        )

    return await _execute(args, plan_for_edit)


def _edit_defaults(policy: Policy, masked: bool) -> list[str]:
    """The first two enabled models that can edit (inside a mask, when there is one)."""
    need = "mask" if masked else "image_to_image"
    able = [
        m.id
        for m in policy.catalog.models.values()
        if m.id in policy.enabled_models and getattr(m.capabilities, need)
    ]
    return able[:2]


async def _execute(args: argparse.Namespace, plan_for: Callable[[Policy], Awaitable[Plan]]) -> int:
    """Plan under the server's policy, run the job with terminal progress, write the image."""
    settings: Settings = args.settings
    async with AsyncExitStack() as stack:
        resources: Resources = await stack.enter_async_context(
            open_resources(
                settings, for_discord=False, with_db=args.db is not None, db_path=args.db
            )
        )
        server: GuildSettings | None = None
        if resources.db is not None:
            # The same server's prices, enabled models, banned words and defaults as the bot.
            server = await get_guild_settings(resources.db, args.guild)
        policy = Policy.for_server(
            resources.catalog,
            resources.registry,
            allow_demo=resources.service.allow_demo,
            settings=server,
            limits=settings.limits,
        )
        plan = await plan_for(policy)
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
        charging = resources.ledger is not None
        if resources.ledger is not None:
            await resources.ledger.ensure_account(args.guild, args.user)
        job = ComparisonJob(
            plan,
            service=resources.service,
            catalog=resources.catalog,
            ledger=resources.ledger,
            db=resources.db,
            requester=Requester(args.guild, args.user) if charging else None,
        )
        job.events.subscribe(progress.on_event)
        try:
            result = await job.produce()
        except AllModelsFailed as exc:
            progress.finish()
            if args.json:
                print(json.dumps(_failed_json(plan, exc), ensure_ascii=False, indent=2))
            print(f"splitshot: {terminal_safe(str(exc))}", file=err)
            return EXIT_FAILED
        progress.finish()
        path = (
            out_path if out_path.suffix else out_path.with_suffix("." + result.composite.extension)
        )
        try:
            await asyncio.to_thread(_write_image, path, result.composite.data)
        except OSError as exc:
            # The image never reached the member: what the job kept is given back.
            await job.undelivered(f"the image could not be written to {path}")
            raise BadInput(
                f"Cannot write the split image to {path}: {exc.strerror or exc}; "
                "nothing was charged."
            ) from None
        await job.delivered()
        balance_after = job.balance_after
    if args.json:
        print(json.dumps(result_json(result, path, balance_after), ensure_ascii=False, indent=2))
        return EXIT_OK
    print(
        f"\nSplit image: {path} ({result.composite.width}×{result.composite.height}, "
        f"{len(result.composite.data) / 1024:.0f} KiB)"
    )
    if not charging:
        print(
            f"Price: {result.charged} credits for the images delivered "
            "(no account charged; pass --db to charge one)"
        )
    else:
        line = f"Charged {result.charged} credits"
        if result.refunded:
            line += f", refunded {result.refunded}"
        print(f"{line} · balance {balance_after}")
    for o in result.outcomes:
        if not o.ok:
            print(f"  {terminal_safe(o.refund_reason())}.")
    print()
    print(render_verdict(result.verdict))
    return EXIT_OK


def _write_image(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class _Progress:
    """Live per-model progress: redrawn lines on a terminal, one line per change otherwise."""

    def __init__(self, plan: Plan, stream: TextIO) -> None:
        self.plan = plan
        self.stream = stream
        self.tty = stream.isatty()
        self.states = {p.index: (State.QUEUED, 0.0) for p in plan.panels}
        self.drawn = False

    def on_event(self, event: Event) -> None:
        if isinstance(event, PanelChanged):
            self.update(event)

    def update(self, event: PanelChanged) -> None:
        self.states[event.index] = (event.state, event.elapsed)
        if self.tty:
            self._redraw()
        elif event.state is not State.QUEUED:
            label = self.plan.panels[event.index].label
            extra = f" — {terminal_safe(event.reason)}" if event.reason else ""
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
        "kind": plan.kind,
        "parent": plan.parent_id,
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
        "panels": [
            _panel_json(o, text)
            for o, text in zip(
                result.outcomes, result.verdict.text or (None,) * len(result.outcomes), strict=True
            )
        ],
        "verdict": _verdict_json(result),
    }


def _panel_json(o: Any, text: TextAccuracy | None = None) -> dict[str, Any]:
    extra = {} if text is None else {"text_accuracy": text.as_json()}
    return {
        "model": o.panel.model.id,
        "label": o.panel.label,
        "letter": o.panel.letter,
        "adapter": o.panel.route.adapter.name,
        "status": o.status,
        "reason": o.reason,
        "kind": o.error_kind,
        "detail": o.detail,
        "latency_s": round(o.seconds, 3),
        "credits": o.panel.credits if o.ok else 0,
        "width": o.result.width if o.result else None,
        "height": o.result.height if o.result else None,
        **extra,
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
                **({"cells": dict(zip(v.labels, row.cells, strict=True))} if row.cells else {}),
                "winner": row.winner,
            }
            for row in v.rows
        ],
        "next_step": v.next_step,
        **({"text_note": v.text_note} if v.text_note else {}),
    }


def _failed_json(plan: Plan, exc: AllModelsFailed) -> dict[str, Any]:
    return {
        "id": plan.id,
        "image": None,
        "kind": plan.kind,
        "parent": plan.parent_id,
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
