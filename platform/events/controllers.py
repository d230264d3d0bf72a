"""Outgoing webhooks over JSON: ``/api/v1/webhooks`` (admins only: ``webhooks:write``)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from orbit.platform.events.deps import WEBHOOK_DEPENDENCIES
from orbit.platform.events.schemas import (
    AttemptList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from orbit.platform.events.service import MAX_ATTEMPTS_PAGE, WebhookService
from orbit.platform.ids import parse_id
from orbit.tenants.context import TenantContext


class WebhookController(Controller):
    """Register endpoints, read their attempts, redeliver an event."""

    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    dependencies = WEBHOOK_DEPENDENCIES

    @post("/")
    async def create_webhook(
        self, tenant: TenantContext, webhooks: WebhookService, data: WebhookCreate
    ) -> WebhookCreated:
        """Register an endpoint. The response carries its signing secret, shown only this once."""
        return await webhooks.create(tenant, data)

    @get("/")
    async def list_webhooks(self, tenant: TenantContext, webhooks: WebhookService) -> WebhookList:
        """Every endpoint of the workspace."""
        return WebhookList(items=await webhooks.list(tenant))

    @get("/{webhook_id:str}")
    async def get_webhook(
        self, tenant: TenantContext, webhooks: WebhookService, webhook_id: str
    ) -> WebhookOut:
        """One endpoint (without its secret)."""
        return await webhooks.get(tenant, parse_id(webhook_id, "webhook"))

    @patch("/{webhook_id:str}")
    async def update_webhook(
        self, tenant: TenantContext, webhooks: WebhookService, webhook_id: str, data: WebhookPatch
    ) -> WebhookOut:
        """Change the URL, the event types, the description or the active flag."""
        return await webhooks.update(tenant, parse_id(webhook_id, "webhook"), data)

    @delete("/{webhook_id:str}")
    async def delete_webhook(
        self, tenant: TenantContext, webhooks: WebhookService, webhook_id: str
    ) -> None:
        """Delete an endpoint with its pending deliveries and attempts log."""
        await webhooks.delete(tenant, parse_id(webhook_id, "webhook"))

    @get("/{webhook_id:str}/attempts")
    async def list_attempts(
        self,
        tenant: TenantContext,
        webhooks: WebhookService,
        webhook_id: str,
        limit: Annotated[int, Parameter(ge=1, le=MAX_ATTEMPTS_PAGE)] = 50,
    ) -> AttemptList:
        """The endpoint's delivery attempts, newest first."""
        items = await webhooks.attempts(tenant, parse_id(webhook_id, "webhook"), limit=limit)
        return AttemptList(items=items)

    @post("/{webhook_id:str}/deliveries/{event_id:str}/redeliver", status_code=HTTP_202_ACCEPTED)
    async def redeliver(
        self, tenant: TenantContext, webhooks: WebhookService, webhook_id: str, event_id: str
    ) -> DeliveryOut:
        """Send an event to the endpoint again (now, with a fresh 24-hour retry window)."""
        return await webhooks.redeliver(
            tenant, parse_id(webhook_id, "webhook"), parse_id(event_id, "event")
        )
