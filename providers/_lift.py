"""Long base64 strings lifted out of a provider's JSON before it is parsed.

A 2K image answer is ~10 MB of JSON that is almost all one base64 string. ``json.loads`` on it
holds the GIL for ~40 ms and builds a 10 MB ``str`` that base64 then copies again; with two
hundred answers landing at once, those holds were the event loop's longest stalls. Here the
named keys' string values are found with ``bytes.find`` (memchr speed), replaced by short
placeholders, and kept as zero-copy views of the body: ``json.loads`` parses a few hundred
bytes, and the image is decoded straight from the view by a base64 decoder that releases the
GIL (see :func:`providers._images.decode_base64`).

Only a value that is certainly a JSON string is lifted: its key must be a real key (an
unescaped quote, then a colon), and the value must hold no backslash (base64 never needs one),
so the text between its quotes is exactly the string. Anything else stays in place and is
parsed as before.
"""

from __future__ import annotations

import secrets
from typing import Any

#: values shorter than this are left to json.loads (lifting them would save nothing)
MIN_LIFT = 64 * 1024
_WHITESPACE = b" \t\r\n"


class Lifted:
    """A JSON string value kept as raw bytes (ASCII, unescaped) instead of a ``str``."""

    __slots__ = ("raw",)

    def __init__(self, raw: memoryview) -> None:
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw)

    def __bool__(self) -> bool:
        return len(self.raw) > 0

    def __repr__(self) -> str:
        return f"Lifted({len(self.raw)} bytes)"


def _skip_space(body: bytes, at: int) -> int:
    while at < len(body) and body[at] in _WHITESPACE:
        at += 1
    return at


def _spans(body: bytes, keys: tuple[str, ...], min_len: int) -> list[tuple[int, int]]:
    """(start, end) of each liftable value: the text between its quotes."""
    spans: list[tuple[int, int]] = []
    for key in keys:
        needle = b'"' + key.encode() + b'"'
        at = body.find(needle)
        while at >= 0:
            after = at + len(needle)
            # A quote after a backslash is inside a string: that is text, not a key.
            if at == 0 or body[at - 1] != 0x5C:
                colon = _skip_space(body, after)
                if colon < len(body) and body[colon] == 0x3A:  # ':'
                    quote = _skip_space(body, colon + 1)
                    if quote < len(body) and body[quote] == 0x22:  # '"'
                        start = quote + 1
                        end = body.find(b'"', start)
                        if (
                            end - start >= min_len
                            and body.find(b"\\", start, end)
                            < 0  # no escapes: the text is the value
                        ):
                            spans.append((start, end))
                            after = end + 1
            at = body.find(needle, after)
    spans.sort()
    return spans


def lift(
    body: bytes, keys: tuple[str, ...], *, min_len: int = MIN_LIFT
) -> tuple[bytes, dict[str, Lifted]]:
    """``body`` with the named keys' long string values replaced by placeholders, and the
    values by placeholder (the body unchanged and no values when there is nothing to lift)."""
    spans = _spans(body, keys, min_len)
    if not spans:
        return body, {}
    view = memoryview(body)
    nonce = secrets.token_hex(6)
    pieces: list[bytes] = []
    values: dict[str, Lifted] = {}
    last = 0
    for index, (start, end) in enumerate(spans):
        name = f"\x00{nonce}:{index}"
        pieces.append(body[last:start])
        pieces.append(f"\\u0000{nonce}:{index}".encode())
        values[name] = Lifted(view[start:end])
        last = end
    pieces.append(body[last:])
    return b"".join(pieces), values


def restore(value: Any, values: dict[str, Lifted]) -> Any:
    """Put each lifted value back where its placeholder is, as a :class:`Lifted`."""
    if isinstance(value, str):
        return values.get(value, value) if value.startswith("\x00") else value
    if isinstance(value, dict):
        return {key: restore(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [restore(item, values) for item in value]
    return value
