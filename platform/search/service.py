"""Global search over contacts, companies, deals and notes of one workspace.

Matching and ranking run in ``SECURITY DEFINER`` functions (see the crm migration
``m20261125_1830_search``): under RLS PostgreSQL would not use the trigram and
full-text indexes. They return ids and scores only; the records themselves are
then read the ordinary way, under RLS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from orbit.platform.crm.service import checked_query, visible_owner_list
from orbit.platform.errors import InvalidInputError
from orbit.platform.search.highlight import highlight, snippet
from orbit.platform.search.normalize import fold, fulltext_query, fuzzy_allowed, like_pattern
from orbit.platform.search.schemas import SearchGroup, SearchHit, SearchResults, SearchType
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

TYPES: tuple[SearchType, ...] = get_args(SearchType)
MAX_PER_TYPE = 20
DEFAULT_PER_TYPE = 5
_SCOPES = {
    "contacts": Scope.CONTACTS_READ,
    "companies": Scope.COMPANIES_READ,
    "deals": Scope.DEALS_READ,
    "notes": Scope.ACTIVITIES_READ,
}


def checked_types(raw: str | None) -> list[SearchType] | None:
    """``contacts,deals`` as a list of types (``None``: not given); a 400 naming ``types``."""
    if not raw or not raw.strip():
        return None
    wanted = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [part for part in wanted if part not in TYPES]
    if unknown:
        reason = f"unknown type {unknown[0]!r}; use any of {', '.join(TYPES)}"
        raise InvalidInputError(f"types: {reason}", fields={"types": reason})
    return [t for t in TYPES if t in wanted]


class SearchService:
    """The search box: the best matches of each record type the caller may read."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(
        self,
        ctx: TenantContext,
        q: str | None,
        *,
        types: Sequence[SearchType] | None = None,
        limit: int = DEFAULT_PER_TYPE,
    ) -> SearchResults:
        """Hits grouped by type; types the caller may not read are left out unless asked for."""
        query = checked_query(q)
        if not 1 <= limit <= MAX_PER_TYPE:
            reason = f"must be between 1 and {MAX_PER_TYPE}"
            raise InvalidInputError(f"limit {reason}", fields={"limit": reason})
        if types is None:
            wanted = [t for t in TYPES if _SCOPES[t] in ctx.scopes]
        else:
            for record_type in types:
                ctx.require(_SCOPES[record_type])
            wanted = list(types)
        groups: list[SearchGroup] = []
        folded = fold(query)
        if not folded:
            return SearchResults(query=query, groups=groups)
        for record_type in wanted:  # one connection per transaction: one query at a time
            if record_type == "notes":
                hits = await self._notes(ctx, query, limit)
            else:
                hits = await self._records(ctx, record_type, query, folded, limit)
            if hits:
                groups.append(SearchGroup(type=record_type, label=_label(record_type), items=hits))
        return SearchResults(query=query, groups=groups)

    async def _records(
        self, ctx: TenantContext, record_type: SearchType, query: str, folded: str, limit: int
    ) -> list[SearchHit]:
        ranked = await self.db.fetch(
            "SELECT id, score FROM orbit_search_ranked($1, $2, $3, $4, $5, $6)",
            record_type,
            folded,
            like_pattern(query),
            fuzzy_allowed(folded),
            limit,
            visible_owner_list(ctx),
        )
        if not ranked:
            return []
        scores = {row["id"]: row["score"] for row in ranked}
        rows = await self.db.fetch(_DETAILS[record_type], ctx.tenant_id, list(scores))
        base = f"/t/{ctx.tenant_slug}/{record_type}/"
        hits = [
            _hit(record_type, row["id"], row["title"], row["subtitle"], base, scores, query)
            for row in rows
        ]
        return sorted(hits, key=lambda hit: -hit.score)

    async def _notes(self, ctx: TenantContext, query: str, limit: int) -> list[SearchHit]:
        tsquery = fulltext_query(query)
        if tsquery is None:
            return []
        ranked = await self.db.fetch(
            "SELECT id, score FROM orbit_search_notes($1, $2, $3)",
            tsquery,
            limit,
            visible_owner_list(ctx),
        )
        if not ranked:
            return []
        scores = {row["id"]: row["score"] for row in ranked}
        rows = await self.db.fetch(
            """
            SELECT id, kind, subject, body, contact_id, company_id, deal_id FROM activities
            WHERE tenant_id = $1 AND id = ANY($2::uuid[])
            """,
            ctx.tenant_id,
            list(scores),
        )
        hits = []
        for row in rows:
            title = row["subject"] or _label(row["kind"])
            linked = next(
                (
                    f"/t/{ctx.tenant_slug}/{table}/{row[column]}"
                    for column, table in (
                        ("deal_id", "deals"),
                        ("contact_id", "contacts"),
                        ("company_id", "companies"),
                    )
                    if row[column] is not None
                ),
                f"/t/{ctx.tenant_slug}/",
            )
            body = snippet(row["body"], query)
            hits.append(_hit("notes", row["id"], title, body, linked, scores, query, link=linked))
        return sorted(hits, key=lambda hit: -hit.score)


def _hit(
    record_type: SearchType,
    record_id: UUID,
    title: str,
    subtitle: str | None,
    base: str,
    scores: dict[UUID, float],
    query: str,
    *,
    link: str | None = None,
) -> SearchHit:
    return SearchHit(
        type=record_type,
        id=record_id,
        title=title,
        title_html=str(highlight(title, query)),
        subtitle=subtitle or "",
        subtitle_html=str(highlight(subtitle, query)),
        url=link or f"{base}{record_id}",
        score=round(float(scores[record_id]), 4),
    )


def _label(record_type: str) -> str:
    # English, like the API's error messages; the pages translate by type.
    labels = {
        "contacts": "Contacts",
        "companies": "Companies",
        "deals": "Deals",
        "notes": "Notes",
        "note": "Note",
        "call": "Call",
        "meeting": "Meeting",
        "email": "Email",
    }
    return labels.get(record_type, record_type)


_DETAILS = {
    "contacts": """
        SELECT c.id,
               coalesce(nullif(btrim(c.first_name || ' ' || c.last_name), ''), c.email, '—')
                   AS title,
               concat_ws(' · ', CASE WHEN btrim(c.first_name || ' ' || c.last_name) <> ''
                                     THEN c.email END, co.name) AS subtitle
        FROM contacts c
        LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
        WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[])
    """,
    "companies": """
        SELECT id, name AS title, concat_ws(' · ', domain, industry) AS subtitle
        FROM companies WHERE tenant_id = $1 AND id = ANY($2::uuid[])
    """,
    "deals": """
        SELECT d.id, d.title,
               concat_ws(' · ', d.amount::numeric(18, 2) || ' ' || d.currency, s.name, co.name)
                   AS subtitle
        FROM deals d
        JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
        LEFT JOIN companies co ON co.tenant_id = d.tenant_id AND co.id = d.company_id
        WHERE d.tenant_id = $1 AND d.id = ANY($2::uuid[])
    """,
}
"""Each type's title and subtitle for the ids the ranking returned."""
