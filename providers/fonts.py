"""Fonts for rendered images: DejaVu Sans when installed, else Pillow's bundled font."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_REGULAR = "DejaVuSans.ttf"
_BOLD = "DejaVuSans-Bold.ttf"

# Where distributions put DejaVu, so no fontconfig (fc-match) is needed.
_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu",  # Alpine, older Fedora
    "/usr/share/fonts/dejavu-sans-fonts",  # Fedora, RHEL
    "/usr/share/fonts/TTF",  # Arch
    "/usr/share/fonts/truetype",
    "/usr/local/share/fonts",
    "/usr/local/share/fonts/dejavu",
    "/opt/homebrew/share/fonts",  # macOS with Homebrew
)

# Symbols the renderers use, each with a plain stand-in for fonts that lack it
# (Pillow's bundled Aileron has "·" but none of the others).
FALLBACKS: dict[str, str] = {
    "·": "-",
    "—": "-",
    "–": "-",
    "●": "*",
    "○": "o",
    "×": "x",
    "✕": "x",
    "…": "...",
    "→": "->",
    "✓": "v",
}

# A private-use code point no real font maps, so it renders as the font's ".notdef" box.
_MISSING_PROBE = "\U0010fffd"


def load_font(size: int, *, bold: bool = False) -> Font:
    """Return the UI font at ``size`` pixels, cached; DejaVu Sans when found, else Pillow's."""
    return _load(bold, max(1, int(size)))


@functools.lru_cache(maxsize=128)
def _load(bold: bool, size: int) -> Font:
    wanted = _BOLD if bold else _REGULAR
    for directory in _FONT_DIRS:
        path = Path(directory, wanted)
        if path.is_file():
            try:
                return ImageFont.truetype(str(path), size)
            except OSError:
                log.warning("Font %s exists but could not be loaded", path)
    try:
        # A bare name makes Pillow search the XDG font directories itself.
        return ImageFont.truetype(wanted, size)
    except OSError:
        pass
    _log_fallback_once()
    return ImageFont.load_default(size=size)


@functools.cache
def _log_fallback_once() -> None:
    log.warning("DejaVu Sans not found; rendering text with Pillow's bundled font")


def has_bold_face(font: Font) -> bool:
    """Whether ``font`` is a real bold face (otherwise callers may embolden with a stroke)."""
    if not isinstance(font, ImageFont.FreeTypeFont):
        return False
    style = font.getname()[1] or ""
    return "bold" in style.lower()


def has_glyph(font: Font, char: str) -> bool:
    """Whether ``font`` draws ``char`` itself rather than a missing-glyph box."""
    if not isinstance(font, ImageFont.FreeTypeFont):
        return char.isascii()
    return _has_glyph(font, char)


@functools.lru_cache(maxsize=1024)
def _has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    # FreeType exposes no coverage query through Pillow, but a missing glyph renders
    # as ".notdef", which is identical to the rendering of a code point nobody maps.
    return _rendering(font, char) != _rendering(font, _MISSING_PROBE)


def _rendering(
    font: ImageFont.FreeTypeFont, text: str
) -> tuple[tuple[int, int], tuple[int, int], bytes]:
    mask, offset = font.getmask2(text)
    return offset, mask.size, bytes(mask)


def displayable(font: Font, text: str) -> str:
    """Return ``text`` with every symbol ``font`` lacks replaced by a plain stand-in."""
    if text.isascii():
        return text
    return "".join(
        FALLBACKS[char] if char in FALLBACKS and not has_glyph(font, char) else char
        for char in text
    )
