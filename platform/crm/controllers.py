"""Contacts over JSON: ``/api/v1/contacts``."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from orbit.platform.crm.schemas import ContactCreate, ContactOut, ContactPage, ContactPatch
from orbit.platform.crm.service import DEFAULT_PAGE, MAX_PAGE, ContactService
from orbit.platform.ids import parse_id
from orbit.tenants.context import TenantContext


class ContactController(Controller):
    """Create, list, search, read, change and delete contacts."""

    path = "/api/v1/contacts"
    tags = ["contacts"]

    @get("/")
    async def list_contacts(
        self,
        tenant: TenantContext,
        contacts: ContactService,
        q: Annotated[str | None, Parameter(description="Search names, email, company")] = None,
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> ContactPage:
        """Contacts, most recently updated first; ``q`` matches case- and accent-insensitively."""
        return await contacts.list(tenant, q=q, cursor=cursor, limit=limit)

    @post("/")
    async def create_contact(
        self, tenant: TenantContext, contacts: ContactService, data: ContactCreate
    ) -> ContactOut:
        """Create a contact."""
        return await contacts.create(tenant, data)

    @get("/{contact_id:str}")
    async def get_contact(
        self, tenant: TenantContext, contacts: ContactService, contact_id: str
    ) -> ContactOut:
        """One contact."""
        return await contacts.get(tenant, parse_id(contact_id, "contact"))

    @patch("/{contact_id:str}")
    async def update_contact(
        self, tenant: TenantContext, contacts: ContactService, contact_id: str, data: ContactPatch
    ) -> ContactOut:
        """Change some fields of a contact."""
        return await contacts.update(tenant, parse_id(contact_id, "contact"), data)

    @delete("/{contact_id:str}")
    async def delete_contact(
        self, tenant: TenantContext, contacts: ContactService, contact_id: str
    ) -> None:
        """Delete a contact."""
        await contacts.delete(tenant, parse_id(contact_id, "contact"))
