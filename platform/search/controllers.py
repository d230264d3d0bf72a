"""The search box over JSON: ``GET /api/v1/search``."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from orbit.platform.search.schemas import SearchResults
from orbit.platform.search.service import (
    DEFAULT_PER_TYPE,
    MAX_PER_TYPE,
    SearchService,
    checked_types,
)
from orbit.tenants.context import TenantContext


class SearchController(Controller):
    """Global search."""

    path = "/api/v1/search"
    tags = ["search"]

    @get("/")
    async def search(
        self,
        tenant: TenantContext,
        search: SearchService,
        q: Annotated[str, Parameter(description="What to look for (any script, any case)")],
        types: Annotated[
            str | None,
            Parameter(description="Comma-separated: contacts, companies, deals, notes (all)"),
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_PER_TYPE, description="Hits per type")
        ] = DEFAULT_PER_TYPE,
    ) -> SearchResults:
        """The best matches per type, grouped, highlighted; case, accents and typos forgiven.

        Contacts, companies and deals match as substrings of their names (and email,
        domain, company) or, for four characters or more, with a typo; notes match
        by full-text word prefixes. Types the caller may not read are left out
        unless named in ``types`` (then a 403).
        """
        return await search.search(tenant, q, types=checked_types(types), limit=limit)
