"""The one text normaliser for search, used on write and on query alike.

PostgreSQL's ``lower()`` keeps Greek final ς apart from σ and leaves accents,
so Orbit folds text in Python: NFKC, case-fold, then strip combining marks.
"""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Fold ``text`` so that case, accents and compatibility forms do not matter.

    >>> fold("Παπαδόπουλος") == fold("ΠΑΠΑΔΟΠΟΥΛΟΣ")
    True
    >>> fold("José Müller")
    'jose muller'
    """
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(unicodedata.normalize("NFC", stripped).split())


def search_document(*parts: str | None) -> str:
    """The stored search text of a record: its folded parts joined by spaces."""
    return fold(" ".join(part for part in parts if part))


def like_pattern(query: str) -> str:
    """A ``LIKE`` substring pattern for the folded ``query``, wildcards escaped."""
    folded = fold(query)
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
