"""The audit log over JSON: ``GET /api/v1/audit`` and one record's history."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter

from orbit.platform.audit.schemas import AuditPage
from orbit.platform.audit.service import AuditService, checked_filters
from orbit.platform.crm.service import DEFAULT_PAGE, MAX_PAGE
from orbit.platform.ids import parse_id
from orbit.tenants.context import TenantContext

Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE)]
Cursor = Annotated[str | None, Parameter(description="next_cursor of the previous page")]


class AuditController(Controller):
    """Who changed what, when and from where."""

    path = "/api/v1/audit"
    tags = ["audit"]

    @get("/")
    async def list_entries(
        self,
        tenant: TenantContext,
        audit: AuditService,
        actor: Annotated[str | None, Parameter(description="A user's or API key's id")] = None,
        record_type: Annotated[str | None, Parameter(description="contact, deal, …")] = None,
        record_id: str | None = None,
        action: Annotated[str | None, Parameter(description="create, update, delete, …")] = None,
        since: Annotated[str | None, Parameter(description="A date or ISO time (UTC)")] = None,
        until: Annotated[str | None, Parameter(description="Exclusive; a date: its end")] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> AuditPage:
        """The workspace's audit log, newest first; needs ``audit:read`` (owners, admins, keys).

        A bad filter gets a 400 naming it.
        """
        filters = checked_filters(
            {
                "actor": actor,
                "record_type": record_type,
                "record_id": record_id,
                "action": action,
                "since": since,
                "until": until,
            }
        )
        return await audit.find(tenant, filters, cursor=cursor, limit=limit)

    @get("/{record_type:str}/{record_id:str}")
    async def record_history(
        self,
        tenant: TenantContext,
        audit: AuditService,
        record_type: Literal["contact", "company", "deal"],
        record_id: str,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> AuditPage:
        """A contact's, company's or deal's history, for anyone who may see the record."""
        return await audit.history(
            tenant, record_type, parse_id(record_id, record_type), cursor=cursor, limit=limit
        )
