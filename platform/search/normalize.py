"""The one text normaliser for search, used on write and on query alike.

PostgreSQL's ``lower()`` keeps Greek final ς apart from σ and leaves accents,
so Orbit folds text in Python: NFKC, case-fold, strip combining marks, then
spell out the few Latin letters whose accent is part of the letter itself.
"""

from __future__ import annotations

import re
import unicodedata

# Letters with a stroke, a ligature or no dot have no Unicode decomposition, so
# stripping combining marks leaves them alone; "Łódź" must still match "lodz".
# Keys are case-folded letters (Ł, Ø, Æ… fold to these first); values are ASCII,
# so folding twice changes nothing. ``ŀ`` is not here: NFKC already spells it ``l·``.
_LETTERS = str.maketrans(
    {
        "æ": "ae",  # Danish, Norwegian, Icelandic, Old English
        "đ": "d",  # Croatian, Serbian Latin, Vietnamese
        "ð": "d",  # Icelandic, Faroese eth
        "ħ": "h",  # Maltese
        "ı": "i",  # Turkish, Azerbaijani dotless i
        "ł": "l",  # Polish
        "ø": "o",  # Danish, Norwegian, Faroese
        "œ": "oe",  # French
        "þ": "th",  # Icelandic thorn
        "ŧ": "t",  # Northern Sami
    }
)
# Catalan writes its geminate l as "l·l" (or with ``ŀ``, which NFKC turns into "l·").
_CATALAN_MIDDLE_DOT = re.compile("l\u00b7+")


def fold(text: str) -> str:
    """Fold ``text`` so that case, accents and compatibility forms do not matter.

    >>> fold("Παπαδόπουλος") == fold("ΠΑΠΑΔΟΠΟΥΛΟΣ")
    True
    >>> fold("José Müller")
    'jose muller'
    >>> fold("Łódź Ærø")
    'lodz aero'
    """
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    letters = _CATALAN_MIDDLE_DOT.sub(
        "l", unicodedata.normalize("NFC", stripped).translate(_LETTERS)
    )
    return " ".join(letters.split())


def search_document(*parts: str | None) -> str:
    """The stored search text of a record: its folded parts joined by spaces."""
    return fold(" ".join(part for part in parts if part))


_CJK_NAME = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")


def contact_search_document(
    first_name: str | None, last_name: str | None, email: str | None, company: str | None
) -> str:
    """A contact's stored search text.

    Chinese, Japanese and Korean names are written without a space, family name
    first (王伟 is 王 + 伟), and people file the family name as the last name or, as
    it comes first, as the first name: when both parts are CJK the text also holds
    them joined both ways, so "王伟" finds the contact either way.
    """
    if first_name and last_name and _CJK_NAME.fullmatch(first_name + last_name):
        return search_document(
            first_name, last_name, email, company, last_name + first_name, first_name + last_name
        )
    return search_document(first_name, last_name, email, company)


def like_pattern(query: str) -> str:
    """A ``LIKE`` substring pattern for the folded ``query``, wildcards escaped."""
    folded = fold(query)
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


FUZZY_MIN_LENGTH = 4
"""Shorter queries match as substrings only: a 2-character Chinese name or "ana" has
too few trigrams for a similarity to mean anything."""


_IDENTIFIER = re.compile(r"[\d@]")


def fuzzy_allowed(folded: str) -> bool:
    """Whether the folded query gets typo-tolerant (trigram) matching.

    Names of four or more characters do. Identifiers (a digit or an ``@``: emails,
    phone numbers, deal numbers) match as substrings only: a near miss is somebody
    else, and looking for similar ones read far more of the index than the exact
    match (1M contacts: 63 ms p95 for a rare email; 100,000: 6.5 ms against 1.0).
    """
    return len(folded.replace(" ", "")) >= FUZZY_MIN_LENGTH and not _IDENTIFIER.search(folded)


def fulltext_query(query: str) -> str | None:
    """A ``to_tsquery('simple', …)`` prefix query: each folded word must start a word.

    Words keep only letters and digits, so the result is always valid tsquery syntax.
    """
    words = re.findall(r"\w+", fold(query))
    if not words:
        return None
    return " & ".join(f"'{word}':*" for word in words)
