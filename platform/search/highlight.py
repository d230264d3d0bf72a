"""Highlighting a search query in a record's text, with everything else HTML-escaped.

The match is found on folded text (case, accents and compatibility forms do not
matter, as in the search itself) and mapped back to the original characters, so
"PAPADÓPOUL" marks "Papadopoulou" and "παπαδοπουλ" marks "Παπαδόπουλος".
"""

from __future__ import annotations

import difflib
import re

from markupsafe import Markup, escape

from orbit.platform.search.normalize import fold

_WORD = re.compile(r"\w+")
_TYPO_RATIO = 0.6
"""How alike (difflib ratio of folded words) a word must be to a query word to be
marked when the query matched by typo tolerance, not as a substring."""


def _folded_with_positions(text: str) -> tuple[str, list[int]]:
    """``text`` folded character by character, and each folded character's origin."""
    folded: list[str] = []
    origin: list[int] = []
    for position, char in enumerate(text):
        piece = " " if char.isspace() else fold(char)
        folded.append(piece)
        origin.extend([position] * len(piece))
    return "".join(folded), origin


def _spans(text: str, query: str) -> list[tuple[int, int]]:
    needle = fold(query)
    if not needle or not text:
        return []
    folded, origin = _folded_with_positions(text)
    spans = []
    start = folded.find(needle)
    while start != -1:
        spans.append((origin[start], origin[start + len(needle) - 1] + 1))
        start = folded.find(needle, start + len(needle))
    if spans:
        return spans
    words = needle.split()
    for match in _WORD.finditer(text):
        word = fold(match.group())
        if any(difflib.SequenceMatcher(None, word, w).ratio() >= _TYPO_RATIO for w in words):
            spans.append(match.span())
    return spans


def highlight(text: str | None, query: str) -> Markup:
    """``text`` HTML-escaped, with the parts that match ``query`` in ``<mark>``."""
    text = text or ""
    out: list[str] = []
    end = 0
    for start, stop in sorted(_spans(text, query)):
        if start < end:
            continue
        out += [escape(text[end:start]), Markup("<mark>"), escape(text[start:stop])]
        out.append(Markup("</mark>"))
        end = stop
    out.append(escape(text[end:]))
    return Markup("").join(out)


def snippet(text: str, query: str, width: int = 160) -> str:
    """About ``width`` characters of ``text`` around the first match of ``query``."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    spans = _spans(text, query)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - width // 3, len(text) - width))
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")
