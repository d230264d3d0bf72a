"""Pages for data portability: erase a person, export or delete the whole workspace.

The downloads themselves are the API's GET routes (a logged-in browser may follow
them); these handle the two destructive forms, each behind a typed confirmation.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from orbit.frontend.pages import go, page
from orbit.platform.crm.portability import ContactPortability
from orbit.platform.errors import InvalidInputError, OrbitError
from orbit.platform.ids import parse_id
from orbit.platform.runtime import Runtime
from orbit.tenants import portability
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.roles import Role

AnyRequest = Request[Any, Any, Any]


class PortabilityPages(Controller):
    """``/t/{slug}/contacts/{id}/erase`` and ``/t/{slug}/workspace``."""

    path = "/t/{slug:str}"
    include_in_schema = False

    @post("/contacts/{contact_id:str}/erase")
    async def erase_contact(
        self, request: AnyRequest, tenant: TenantContext, runtime: Runtime, contact_id: str
    ) -> Response[Any]:
        """Forget a person (owners and admins), then back to the contact list."""
        await ContactPortability(runtime.db, runtime.plugins).erase(
            tenant, parse_id(contact_id, "contact")
        )
        return go(request, f"/t/{tenant.tenant_slug}/contacts")

    @get("/workspace")
    async def workspace(self, principal: Principal, tenant: TenantContext) -> Template:
        """The owner's page for the workspace as a whole: export it, delete it."""
        return self._page(principal, tenant)

    @post("/workspace/delete")
    async def delete_workspace(
        self, request: AnyRequest, principal: Principal, tenant: TenantContext, runtime: Runtime
    ) -> Response[Any] | Template:
        """Delete the workspace after its slug was typed again."""
        confirm = str((await request.form()).get("confirm", "")).strip()
        try:
            if tenant.role is not Role.OWNER:
                raise InvalidInputError("only the workspace's owner may delete it")
            if confirm != tenant.tenant_slug:
                reason = f"type {tenant.tenant_slug} to confirm"
                raise InvalidInputError(reason, fields={"confirm": reason})
        except OrbitError as exc:
            return self._page(principal, tenant, error=exc)
        await portability.delete_workspace(runtime.db, tenant.tenant_id)
        return go(request, "/workspaces")

    def _page(
        self, principal: Principal, tenant: TenantContext, error: OrbitError | None = None
    ) -> Template:
        return page(
            "workspace.html",
            principal,
            status_code=422 if error else 200,
            is_owner=tenant.role is Role.OWNER,
            error=error.message if error else None,
        )
