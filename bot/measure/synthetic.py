"""Synthetic images with known text, to check the text measurement offline (bench and tests).

Each sample says what was requested, what was actually drawn, and so the true similarity the
measurement should report: correct renders, one-typo renders, garbled renders and images with
no text at all, at 1K and 2K, in several fonts and colours, on noisy backgrounds (half of them
cluttered with strokes and rings that look like letters), rotated up to 10°, with one to three
quoted strings.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bot.measure.quotes import Requested
from bot.measure.textmatch import edit_distance, normalise

Kind = Literal["correct", "typo", "garbled", "none"]
KINDS: tuple[Kind, ...] = ("correct", "typo", "garbled", "none")

PHRASES = (
    "OPEN 24/7",
    "Midnight Ride",
    "FRESH COFFEE",
    "Grand Opening",
    "SALE 50% OFF",
    "Bakery & Café",
    "Summer Tour 2026",
    "No Parking",
    "Hotel Paradiso",
    "Live Music Tonight",
    "Fresh Bread Daily",
    "Welcome Home",
    "Pizza Napoli",
    "Route 66",
    "Books & Beans",
    "The Blue Door",
    "ICE COLD DRINKS",
    "Farmers Market",
    "Crème Brûlée",
    "STAY WILD",
    "Moonlight Cinema",
    "Harbor View",
    "Best Tacos in Town",
    "GAME OVER",
    "Vintage Records",
    "Night Shift",
    "Golden Hour",
    "Sunday Brunch",
    "Ocean Drive",
    "SPEED LIMIT 40",
)
#: letters and digits that never fold into one another under the measurement's look-alike rule
_SAFE_LETTERS = "ABDEFGHKMNPRSTUVWXYZ"
_SAFE_DIGITS = "2345689"
#: fonts tried, when installed (the bundled Pillow font is always there as well)
_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationMono-Regular.ttf",
)
_FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts", "/opt/homebrew/share/fonts")


@dataclass(frozen=True, slots=True)
class Sample:
    """One synthetic image and its ground truth."""

    name: str
    kind: Kind
    size: int
    requested: Requested
    drawn: tuple[str, ...]
    image: bytes
    font: str
    angle: float

    @property
    def true_score(self) -> float:
        """Similarity of what was drawn to what was requested, by the measurement's own rule."""
        total = sum(len(normalise(t)) for t in self.requested.texts)
        edits = sum(
            edit_distance(normalise(req), normalise(drawn))
            for req, drawn in zip(self.requested.texts, self.drawn, strict=True)
        )
        return max(0.0, 1.0 - edits / total) if total else 1.0

    @property
    def truly_exact(self) -> bool:
        """Whether what was drawn is exactly what was requested."""
        return self.kind == "correct"


@cache
def fonts() -> tuple[str, ...]:
    """Paths of the installed fonts the set uses, plus "" for Pillow's bundled font."""
    found: list[str] = []
    for name in _FONT_FILES:
        for root in _FONT_ROOTS:
            hit = next(iter(Path(root).rglob(name)), None) if Path(root).is_dir() else None
            if hit is not None:
                found.append(str(hit))
                break
    return (*found, "")


def _font(path: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def typo(text: str, rng: random.Random) -> str:
    """``text`` with one letter or digit swapped for one that is not a look-alike."""
    spots = [i for i, ch in enumerate(text) if ch.isascii() and ch.isalnum()]
    at = rng.choice(spots)
    old = text[at]
    pool = _SAFE_DIGITS if old.isdigit() else _SAFE_LETTERS
    new = rng.choice([c for c in pool if c != old.upper() and c.lower() != normalise(old)])
    return text[:at] + (new.lower() if old.islower() else new) + text[at + 1 :]


def garble(text: str, rng: random.Random) -> str:
    """``text`` with about half its letters and digits replaced, as a model that cannot spell."""
    chars = list(text)
    spots = [i for i, ch in enumerate(chars) if ch.isascii() and ch.isalnum()]
    for at in rng.sample(spots, max(2, len(spots) // 2)):
        old = chars[at]
        pool = _SAFE_DIGITS if old.isdigit() else _SAFE_LETTERS
        new = rng.choice([c for c in pool if c != old.upper()])
        chars[at] = new.lower() if old.islower() else new
    return "".join(chars)


def _background(size: int, rng: random.Random) -> Image.Image:
    top = tuple(rng.randint(0, 255) for _ in range(3))
    bottom = tuple(rng.randint(0, 255) for _ in range(3))
    mask = Image.linear_gradient("L").resize((size, size))
    image = Image.composite(
        Image.new("RGB", (size, size), bottom), Image.new("RGB", (size, size), top), mask
    )
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(rng.randint(4, 14)):
        r = rng.uniform(0.03, 0.25) * size
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        fill = (*(rng.randint(0, 255) for _ in range(3)), rng.randint(40, 140))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    if rng.random() < 0.5:
        # Clutter: thin strokes, bars and rings, the shapes an OCR is most tempted to read as
        # l, I, o or - on a picture that has no words.
        for _ in range(rng.randint(6, 20)):
            x, y = rng.uniform(0, size), rng.uniform(0, size)
            ink = (*(rng.randint(0, 255) for _ in range(3)), rng.randint(120, 230))
            width = max(2, int(size * rng.uniform(0.002, 0.012)))
            shape = rng.randrange(3)
            if shape == 0:
                length = size * rng.uniform(0.02, 0.12)
                draw.line((x, y, x + rng.uniform(-0.3, 0.3) * length, y + length), ink, width)
            elif shape == 1:
                draw.rectangle((x, y, x + size * rng.uniform(0.03, 0.2), y + width), fill=ink)
            else:
                r = size * rng.uniform(0.01, 0.04)
                draw.ellipse((x - r, y - r, x + r, y + r), outline=ink, width=width)
    image = image.filter(ImageFilter.GaussianBlur(size / 300))
    # Grain: per-pixel noise blended in at a random strength.
    noise = Image.effect_noise((size, size), rng.uniform(20, 70)).convert("RGB")
    return Image.blend(image, noise, rng.uniform(0.08, 0.3))


def _luma(rgb: Sequence[float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _draw_texts(
    image: Image.Image, texts: Sequence[str], font_path: str, angle: float, rng: random.Random
) -> None:
    size = image.width
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    slot = size / (len(texts) + 1)
    for i, text in enumerate(texts):
        px = int(size * rng.uniform(0.045, 0.09))
        font = _font(font_path, px)
        while font.getlength(text) > size * 0.85 and px > 12:
            px -= 4
            font = _font(font_path, px)
        width = font.getlength(text)
        x = rng.uniform(size * 0.06, max(size * 0.06, size * 0.94 - width))
        y = slot * (i + 1) + rng.uniform(-0.2, 0.2) * slot - px / 2
        # Contrast with what lies under the text, as a designer would pick the colour.
        box = (int(x), int(max(0, y)), int(min(size, x + width)), int(min(size, y + px)))
        under = image.crop(box).resize((1, 1)).getpixel((0, 0))
        assert isinstance(under, tuple)
        light = _luma(under) < 128
        colour = tuple(rng.randint(200, 255) if light else rng.randint(0, 60) for _ in range(3))
        if rng.random() < 0.35:  # a plate behind the words, as on a sign
            plate = (0, 0, 0, 170) if light else (255, 255, 255, 170)
            pad = px // 3
            draw.rounded_rectangle(
                (x - pad, y - pad, x + width + pad, y + px + pad), pad, fill=plate
            )
        draw.text((x, y), text, font=font, fill=(*colour, 255))
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(size / 2, size / 2))
    image.paste(layer, (0, 0), layer)


def sample(index: int, kind: Kind, size: int, *, seed: int = 14) -> Sample:
    """The ``index``-th synthetic image of a kind and size (deterministic)."""
    rng = random.Random(f"{seed}:{kind}:{size}:{index}")
    texts = tuple(rng.sample(PHRASES, rng.randint(1, 3)))
    if kind == "correct":
        drawn = texts
    elif kind == "typo":
        which = rng.randrange(len(texts))
        drawn = tuple(typo(t, rng) if i == which else t for i, t in enumerate(texts))
    elif kind == "garbled":
        drawn = tuple(garble(t, rng) for t in texts)
    else:
        drawn = tuple("" for _ in texts)
    font_path = rng.choice(fonts())
    angle = round(rng.uniform(-10, 10), 1) if rng.random() < 0.6 else 0.0
    image = _background(size, rng)
    if kind != "none":
        _draw_texts(image, drawn, font_path, angle, rng)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return Sample(
        name=f"{kind}-{size}-{index:02d}",
        kind=kind,
        size=size,
        requested=Requested(texts),
        drawn=drawn,
        image=out.getvalue(),
        font=Path(font_path).stem if font_path else "pillow-default",
        angle=angle,
    )


def sample_set(
    per_kind_and_size: int = 15, sizes: Sequence[int] = (1024, 2048)
) -> Iterator[Sample]:
    """Every kind at every size: 4 kinds × 2 sizes × 15 = 120 images by default."""
    for size in sizes:
        for kind in KINDS:
            for index in range(per_kind_and_size):
                yield sample(index, kind, size)
