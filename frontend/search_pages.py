"""The search box in the header and the search results page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template  # noqa: TC002 - Litestar reads the return type

from orbit.frontend.pages import page
from orbit.platform.errors import InvalidInputError
from orbit.platform.search.service import MAX_PER_TYPE, SearchService
from orbit.tenants.context import Principal, TenantContext  # noqa: TC001 - injected

DROPDOWN_PER_TYPE = 5


class SearchPages(Controller):
    """``/t/{slug}/search``: the whole page, or (for htmx) the header's drop-down."""

    path = "/t/{slug:str}/search"
    include_in_schema = False

    @get("/")
    async def search_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        tenant: TenantContext,
        search: SearchService,
        q: str = "",
    ) -> Template:
        """Contacts, companies, deals and notes matching ``q``, grouped by type."""
        dropdown = bool(request.headers.get("hx-request")) and not request.headers.get(
            "hx-history-restore-request"
        )
        notice = None
        try:
            results = await search.search(
                tenant, q, limit=DROPDOWN_PER_TYPE if dropdown else MAX_PER_TYPE
            )
        except InvalidInputError as exc:
            results, notice = None, exc.message
        response = page(
            "search/_results.html" if dropdown else "search/page.html",
            principal,
            q=q.strip(),
            results=results,
            notice=notice,
            dropdown=dropdown,
        )
        response.headers["Vary"] = "HX-Request, HX-History-Restore-Request"
        return response
