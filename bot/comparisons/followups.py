"""Follow-ups: keep the winner and build on it. Each is a comparison of its own with a parent.

- **variants**: the same model draws ``count`` new images from one panel (image-to-image with
  the panel as reference, the original prompt, a new seed each); charged per image.
- **reroll**: one panel's model runs again on the same prompt with a new seed; the other panels
  are carried over from the parent (shown again, not paid again).
- **swap**: one panel is replaced by a model not in the comparison; only that model is paid.
- **edit**: not a child of a comparison but of an uploaded image: 2–4 edit-capable models edit
  the same source (optionally inside a mask).

Every follow-up runs through the same job as /compare (reserve → run → settle + record →
deliver or refund); this module only builds its plan and says why one cannot be made.
Panel images come from the database (``panel_images``), never from Discord's expiring
attachment URLs, so buttons on a result weeks old still work after restarts.

Longer than the ~400-line guide on purpose: the four follow-up kinds share loading the parent, checking a panel and building a planned panel.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from PIL import Image, UnidentifiedImageError

from bot.comparisons.plan import LETTERS, Plan, PlannedPanel, blind_name
from bot.comparisons.policy import MAX_MODELS, MIN_MODELS, Policy, check_prompt, names
from bot.comparisons.records import ComparisonRecord, PanelRecord, get_comparison, panel_images
from bot.db import AnyDatabase
from bot.errors import BadInput, SplitshotError
from providers.base import ImageRequest, ImageResult, Quality, ReferenceImage

KINDS = ("compare", "variants", "reroll", "swap", "edit")
VARIANTS = 2
#: a mask is at most this big (OpenAI's own limit for /images/edits masks)
MAX_MASK_BYTES = 4 * 1024 * 1024


class FollowUpBlocked(SplitshotError):
    """A follow-up cannot be made; the sentence says why. Nothing was spent."""


@dataclass(frozen=True, slots=True)
class Parent:
    """A stored comparison with the images of its delivered panels."""

    record: ComparisonRecord
    images: dict[int, tuple[str, bytes]]

    @property
    def quality(self) -> Quality:
        """The parent's quality tier (follow-ups keep it)."""
        return cast("Quality", self.record.quality)

    @property
    def hidden(self) -> bool:
        """True while the parent's vote is blind and open: its follow-ups keep the letters."""
        return self.record.blind and self.record.state != "closed"

    def shown(self, panel: PanelRecord) -> str:
        """How a panel may be named to anyone: its letter while hidden, else letter and model."""
        if self.hidden:
            return blind_name(panel.letter)
        return f"{panel.letter} · {panel.label}"

    def usable(self) -> list[PanelRecord]:
        """Panels with an image to build on."""
        return [p for p in self.record.panels if p.status == "ok" and p.idx in self.images]


def check_parent(record: ComparisonRecord | None) -> ComparisonRecord:
    """The parent, or why no follow-up can be made from it."""
    if record is None or record.state == "deleted":
        raise FollowUpBlocked("This comparison was deleted, so nothing can be built on it.")
    if record.delivery == "failed":
        raise FollowUpBlocked("This comparison never reached its channel; run it again.")
    return record


def _panel(parent: Parent, letter: str) -> PanelRecord:
    panel = next((p for p in parent.record.panels if p.letter == letter), None)
    if panel is None:
        raise FollowUpBlocked(f"This comparison has no panel {letter}.")
    if panel.status != "ok":
        verb = "declined this prompt" if panel.status == "refused" else "failed"
        raise FollowUpBlocked(
            f"{parent.shown(panel)} {verb} in this comparison: there is no image to build on."
        )
    if panel.idx not in parent.images:
        raise FollowUpBlocked(f"The image of {parent.shown(panel)} is no longer stored.")
    return panel


def _enabled(policy: Policy, model_id: str) -> None:
    if model_id not in policy.enabled_models:
        name = policy.catalog.model(model_id).name
        raise FollowUpBlocked(f"{name} is turned off on this server.")


def _request(
    parent: Parent, policy: Policy, user_hash: str | None, **changes: object
) -> ImageRequest:
    record = parent.record
    base = ImageRequest(
        prompt=check_prompt(record.prompt, policy.settings.banned_words),
        aspect=record.aspect,
        quality=parent.quality,
        user_hash=user_hash,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _reused(parent: Parent, panel: PanelRecord) -> ImageResult:
    mime, data = parent.images[panel.idx]
    return ImageResult(
        image=data,
        mime_type=mime,
        width=panel.width or 0,
        height=panel.height or 0,
        latency_s=panel.latency_s or 0.0,
        adapter=panel.adapter,
        upstream_model=panel.upstream_model or panel.model_id,
    )


def _planned(
    policy: Policy,
    index: int,
    model_id: str,
    quality: Quality,
    *,
    aspect: str,
    blind: bool,
    request: ImageRequest | None = None,
    reused: ImageResult | None = None,
    note: str = "",
) -> PlannedPanel:
    model = policy.catalog.model(model_id)
    route = policy.registry.route(
        model.id, model.name, model.adapters, allow_demo=policy.allow_demo
    )
    if blind:
        route = type(route)(
            route.adapter, replace(route.target, display_name=blind_name(LETTERS[index]))
        )
    price = policy.price(model, quality, aspect, route)
    cost = policy.catalog.price(model.id, quality, aspect, route.adapter.name)
    return PlannedPanel(
        index,
        model,
        route,
        0 if reused is not None else price,
        blind=blind,
        request=request,
        reused=reused,
        note=note,
        list_price=cost,
    )


def _plan(
    parent: Parent, policy: Policy, kind: str, panels: Sequence[PlannedPanel], request: ImageRequest
) -> Plan:
    record = parent.record
    return Plan(
        id=_new_id(),
        prompt=request.prompt,
        use_case=policy.catalog.use_case(record.use_case),
        aspect=record.aspect,
        quality=request.quality,
        blind=parent.hidden,
        panels=tuple(panels),
        request=request,
        kind=kind,
        parent_id=record.id,
    )


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


def plan_variants(
    policy: Policy,
    parent: Parent,
    letter: str,
    *,
    count: int = VARIANTS,
    user_hash: str | None = None,
    rng: random.Random | None = None,
) -> Plan:
    """``count`` new images by the same model, each from the chosen panel as its reference."""
    panel = _panel(parent, letter)
    _enabled(policy, panel.model_id)
    model = policy.catalog.model(panel.model_id)
    if not model.capabilities.image_to_image:
        raise FollowUpBlocked(f"{model.name} cannot draw from a reference image.")
    mime, data = parent.images[panel.idx]
    reference = ReferenceImage(data, mime, f"panel-{letter.lower()}.{mime.rpartition('/')[2]}")
    base = _request(parent, policy, user_hash, references=(reference,))
    rng = rng or random.Random()
    panels = [
        _planned(
            policy,
            n,
            panel.model_id,
            base.quality,
            aspect=base.aspect,
            blind=parent.hidden,
            request=replace(base, seed=rng.randrange(2**31)),
            note=f"variant {n + 1}",
        )
        for n in range(count)
    ]
    return _plan(parent, policy, "variants", panels, base)


def plan_reroll(
    policy: Policy,
    parent: Parent,
    letter: str,
    *,
    user_hash: str | None = None,
    rng: random.Random | None = None,
) -> Plan:
    """The chosen panel's model again with a new seed; the other panels carried over."""
    chosen = _panel(parent, letter)
    _enabled(policy, chosen.model_id)
    request = _request(parent, policy, user_hash, seed=(rng or random.Random()).randrange(2**31))
    panels = _rebuilt(policy, parent, chosen, chosen.model_id, request)
    return _plan(parent, policy, "reroll", panels, request)


def plan_swap(
    policy: Policy,
    parent: Parent,
    letter: str,
    model_id: str,
    *,
    user_hash: str | None = None,
) -> Plan:
    """A model not in the comparison in place of the chosen panel; only it is paid for."""
    chosen = next((p for p in parent.record.panels if p.letter == letter), None)
    if chosen is None:
        raise FollowUpBlocked(f"This comparison has no panel {letter}.")
    model = policy.catalog.model(model_id)
    if model_id in {p.model_id for p in parent.record.panels}:
        raise FollowUpBlocked(f"{model.name} is already in this comparison.")
    _enabled(policy, model_id)
    if parent.record.aspect not in model.aspects:
        raise FollowUpBlocked(f"{model.name} cannot draw {parent.record.aspect}.")
    request = _request(parent, policy, user_hash)
    panels = _rebuilt(policy, parent, chosen, model_id, request)
    return _plan(parent, policy, "swap", panels, request)


def _rebuilt(
    policy: Policy, parent: Parent, chosen: PanelRecord, model_id: str, request: ImageRequest
) -> list[PlannedPanel]:
    panels = []
    for stored in parent.record.panels:
        if stored.idx == chosen.idx:
            panels.append(
                _planned(
                    policy,
                    stored.idx,
                    model_id,
                    request.quality,
                    aspect=request.aspect,
                    blind=parent.hidden,
                )
            )
        elif stored.status == "ok" and stored.idx in parent.images:
            panels.append(
                _planned(
                    policy,
                    stored.idx,
                    stored.model_id,
                    request.quality,
                    aspect=request.aspect,
                    blind=parent.hidden,
                    reused=_reused(parent, stored),
                )
            )
        # A panel that refused or failed in the parent has nothing to show again: left out.
    return [replace(p, index=n) for n, p in enumerate(panels)]


# --------------------------------------------------------------------------- /edit
def check_mask(mask: bytes, image: ReferenceImage) -> bytes:
    """A mask must be a PNG with an alpha channel, exactly the image's size (blocking)."""
    if len(mask) > MAX_MASK_BYTES:
        raise BadInput(
            f"The mask is {len(mask) / 1024 / 1024:.1f} MB; the limit is "
            f"{MAX_MASK_BYTES // (1024 * 1024)} MB."
        )
    try:
        with Image.open(io.BytesIO(mask)) as opened:
            fmt, mode, size = opened.format, opened.mode, opened.size
            has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        with Image.open(io.BytesIO(image.data)) as source:
            source_size = source.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise BadInput(
            "The mask must be a PNG with transparency where the image may change."
        ) from None
    if fmt != "PNG":
        raise BadInput(f"The mask must be a PNG (with transparency); this one is a {fmt}.")
    if not has_alpha:
        raise BadInput(
            "The mask has no transparency: make the area to change transparent and keep the "
            "rest opaque."
        )
    if size != source_size:
        raise BadInput(
            f"The mask is {size[0]}×{size[1]} but the image is {source_size[0]}×{source_size[1]}; "
            "they must be the same size."
        )
    return mask


def image_aspect(image: ReferenceImage) -> tuple[int, int]:
    """The source image's size (blocking)."""
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            return opened.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise BadInput("The image could not be read; send a PNG, JPEG or WebP.") from None


def plan_edit(
    policy: Policy,
    source: ReferenceImage,
    prompt: str,
    model_ids: Sequence[str],
    *,
    aspect: str,
    use_case: str | None = None,
    mask: bytes | None = None,
    quality: Quality = "standard",
    blind: bool = False,
    user_hash: str | None = None,
) -> Plan:
    """The same source edited by 2–4 edit-capable models; refused before anything is spent."""
    prompt = check_prompt(prompt, policy.settings.banned_words)
    if not MIN_MODELS <= len(model_ids) <= MAX_MODELS or len(set(model_ids)) != len(model_ids):
        raise BadInput(f"Pick {MIN_MODELS} to {MAX_MODELS} different models to edit with.")
    models = [policy.catalog.model(m) for m in model_ids]
    for model in models:
        _enabled(policy, model.id)
    need = "mask" if mask is not None else "image_to_image"
    able = [m for m in policy.catalog.models.values() if getattr(m.capabilities, need)]
    unable = [m.name for m in models if not getattr(m.capabilities, need)]
    if unable:
        what = "edit inside a mask" if mask is not None else "edit an image"
        who = names([m.name for m in able if m.id in policy.enabled_models]) or "none here"
        raise BadInput(f"{names(unable)} cannot {what}; models that can: {who}.")
    request = ImageRequest(
        prompt=prompt,
        aspect=aspect,
        quality=quality,
        references=(source,),
        mask=mask,
        user_hash=user_hash,
    )
    plan_id = _new_id()
    if blind:
        random.Random(plan_id).shuffle(models)
    panels = [
        _planned(policy, n, m.id, quality, aspect=aspect, blind=blind) for n, m in enumerate(models)
    ]
    return Plan(
        id=plan_id,
        prompt=prompt,
        use_case=policy.catalog.use_case(use_case or policy.default_use_case),
        aspect=aspect,
        quality=quality,
        blind=blind,
        panels=tuple(panels),
        request=request,
        kind="edit",
    )


def nearest_aspect(size: tuple[int, int], aspects: Sequence[str]) -> str:
    """The listed aspect closest to a picture's own shape."""
    import math

    ratio = size[0] / size[1]

    def distance(aspect: str) -> float:
        w, _, h = aspect.partition(":")
        return abs(math.log(int(w) / int(h)) - math.log(ratio))

    return min(aspects, key=distance)


async def load_parent(db: AnyDatabase, comparison_id: str) -> Parent:
    """The stored comparison and its panel images, or FollowUpBlocked saying why not."""
    record = check_parent(await get_comparison(db, comparison_id))
    return Parent(record, await panel_images(db, comparison_id))
