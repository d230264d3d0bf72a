"""A list's ``q``: the ids of matching records, through the search definer function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orbit.platform.search.normalize import fold, fuzzy_allowed, like_pattern

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from orbit.platform.db.engine import Database

MAX_LIST_MATCHES = 1000
"""How many matching ids one call returns; a list pages on past them (see ``resume``)."""


@dataclass(frozen=True, slots=True)
class Matches:
    """Matching ids, newest first, and where the next call resumes when there may be more."""

    ids: list[UUID]
    resume: tuple[datetime, UUID] | None


async def matching_ids(
    db: Database,
    owners: list[UUID] | None,
    record_type: str,
    query: str,
    after: tuple[datetime, UUID] | None = None,
    limit: int = MAX_LIST_MATCHES,
) -> Matches:
    """Records of ``record_type`` (``contacts``, ``companies``, ``deals``) matching ``query``.

    Substring matches on the folded search text, and typo-tolerant (trigram) ones
    for queries of four or more characters; most recently updated first, after the
    keyset position ``after``; only owners in ``owners`` unless it is ``None``.
    """
    folded = fold(query)
    rows = await db.fetch(
        "SELECT id, updated_at FROM orbit_search_ids($1, $2, $3, $4, $5, $6, $7, $8)",
        record_type,
        folded,
        like_pattern(query),
        fuzzy_allowed(folded),
        after[0] if after else None,
        after[1] if after else None,
        owners,
        limit,
    )
    resume = (rows[-1]["updated_at"], rows[-1]["id"]) if len(rows) >= limit else None
    return Matches(ids=[row["id"] for row in rows], resume=resume)
