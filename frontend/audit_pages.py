"""The audit log page for owners and admins: ``/t/{slug}/audit``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.response import Template

from orbit.frontend.pages import page
from orbit.platform.audit.log import ACTIONS, RECORD_TYPES
from orbit.platform.audit.service import FILTERS, AuditFilters, AuditService, checked_filters
from orbit.platform.errors import InvalidInputError
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.roles import Scope


class AuditPages(Controller):
    """Filters (who, record type, action, dates) and older entries page by page."""

    path = "/t/{slug:str}/audit"
    include_in_schema = False

    @get("/")
    async def audit_log(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        tenant: TenantContext,
        audit: AuditService,
    ) -> Template:
        """The newest entries matching the filters; a bad filter is named on the page (400)."""
        tenant.require(Scope.AUDIT_READ)
        form = {key: request.query_params.get(key, "") for key in FILTERS}
        cursor = request.query_params.get("cursor") or None
        errors: dict[str, str] = {}
        message = ""
        try:
            filters = checked_filters(form, principal.time_zone)
            found = await audit.find(tenant, filters, cursor=cursor)
        except InvalidInputError as exc:
            errors, message = exc.fields or {"form": exc.message}, exc.message
            found = await audit.find(tenant, AuditFilters())
        next_url = None
        if found.next_cursor and not errors:
            query = {key: value for key, value in form.items() if value}
            next_url = f"?{urlencode(query | {'cursor': found.next_cursor})}"
        return page(
            "audit.html",
            principal,
            status_code=400 if errors else 200,
            entries=found.items,
            next_url=next_url,
            form=form,
            errors=errors,
            message=message,
            actors=await _actors(audit, tenant),
            record_types=RECORD_TYPES,
            actions=ACTIONS,
        )


async def _actors(audit: AuditService, tenant: TenantContext) -> list[tuple[str, str]]:
    """Who can appear in the log: the workspace's people and API keys."""
    rows = await audit.db.fetch(
        """
        SELECT u.id, CASE WHEN u.name <> '' THEN u.name || ' <' || u.email || '>'
                          ELSE u.email END AS label
        FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1
        UNION ALL
        SELECT k.id, 'API key ' || k.name FROM api_keys k WHERE k.tenant_id = $1
        ORDER BY 2
        """,
        tenant.tenant_id,
    )
    return [(str(row["id"]), row["label"]) for row in rows]
