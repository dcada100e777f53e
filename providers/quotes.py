"""The text a prompt asks to see written: its quoted strings.

It lives beside the adapters because two sides read prompts the same way: the offline demo
draws the quoted text, and the engine measures whether each model wrote it. One parser keeps
them from disagreeing about what was asked for.

Rules: straight double quotes, curly double quotes (“…”, „…“, „…”), guillemets («…», »…«,
‹…›) and curly single quotes (‘…’) delimit text; a straight single quote does only when it
stands at word edges ('OPEN', not don't or rock 'n' roll). A backslash-escaped quote is a
literal character: it never opens or closes a string. Unclosed quotes and empty strings are
ignored, and so is a one-character string in single quotes; repeats are kept once, in
order.
"""

from __future__ import annotations

#: opening mark → the marks that may close it
_PAIRS: dict[str, str] = {
    '"': '"',
    "\u201c": "\u201d\u201c",  # “…” (and “…“ as some keyboards type it)
    "\u201e": "\u201c\u201d",  # „…“ and „…”
    "\u00ab": "\u00bb",  # «…»
    "\u00bb": "\u00ab",  # »…« (Danish, German)
    "\u2039": "\u203a",  # ‹…›
    "\u2018": "\u2019",  # ‘…’
    "'": "'",
}
#: marks that also serve as apostrophes, so they delimit only at word edges
_EDGE_ONLY = frozenset("'\u2018\u2019")


def _escaped(text: str, index: int) -> bool:
    """Whether the character at ``index`` follows an odd run of backslashes."""
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _opens(text: str, index: int) -> bool:
    if _escaped(text, index):
        return False
    if text[index] not in _EDGE_ONLY:
        return True
    before = text[index - 1] if index > 0 else " "
    after = text[index + 1] if index + 1 < len(text) else " "
    return not before.isalnum() and not after.isspace()


def _closes(text: str, index: int) -> bool:
    if _escaped(text, index):
        return False
    if text[index] not in _EDGE_ONLY:
        return True
    before = text[index - 1]
    after = text[index + 1] if index + 1 < len(text) else " "
    return not before.isspace() and not after.isalnum()


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _PAIRS.keys() | {"\\"}:
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def quoted_strings(prompt: str) -> tuple[str, ...]:
    """The prompt's quoted strings in order, unescaped, trimmed and without repeats."""
    found: list[str] = []
    i = 0
    while i < len(prompt):
        mark = prompt[i]
        if mark in _PAIRS and _opens(prompt, i):
            closers = _PAIRS[mark]
            j = i + 1
            while j < len(prompt) and not (prompt[j] in closers and _closes(prompt, j)):
                j += 1
            if j < len(prompt):
                text = " ".join(_unescape(prompt[i + 1 : j]).split())
                # 'n' in rock 'n' roll is an elision, not a sign to write.
                too_short = mark in _EDGE_ONLY and len(text) < 2
                if text and not too_short and text not in found:
                    found.append(text)
                i = j + 1
                continue
        i += 1
    return tuple(found)
