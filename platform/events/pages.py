"""The webhooks settings page: ``/t/{slug}/webhooks`` (admins: ``webhooks:write``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from orbit.frontend.pages import go, page
from orbit.platform.errors import OrbitError
from orbit.platform.events.deps import WEBHOOK_DEPENDENCIES
from orbit.platform.events.outbox import EVENT_TYPES
from orbit.platform.events.schemas import WebhookCreate, WebhookPatch
from orbit.platform.events.service import WebhookService
from orbit.platform.ids import parse_id
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.roles import Scope

RECENT_ATTEMPTS = 10


class WebhookPages(Controller):
    """List endpoints with their recent attempts; create, pause, delete, redeliver."""

    path = "/t/{slug:str}/webhooks"
    include_in_schema = False
    dependencies = WEBHOOK_DEPENDENCIES

    @get("/")
    async def webhooks_page(
        self, principal: Principal, tenant: TenantContext, webhooks: WebhookService
    ) -> Template:
        """The workspace's endpoints and what happened to their latest deliveries."""
        return await _render(principal, tenant, webhooks)

    @post("/")
    async def create_webhook(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        tenant: TenantContext,
        webhooks: WebhookService,
    ) -> Template:
        """Register an endpoint and show its secret once."""
        form = await request.form()
        events = [str(value) for value in form.getall("events", [])]
        values = {"url": str(form.get("url", "")), "description": str(form.get("description", ""))}
        try:
            created = await webhooks.create(
                tenant,
                WebhookCreate(url=values["url"], events=events, description=values["description"]),
            )
        except OrbitError as exc:
            return await _render(
                principal,
                tenant,
                webhooks,
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
                errors=exc.fields or {"form": exc.message},
                form={**values, "events": events},
            )
        return await _render(
            principal, tenant, webhooks, new_secret=created.secret, new_url=created.url
        )

    @post("/{webhook_id:str}/active")
    async def toggle_webhook(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        webhooks: WebhookService,
        webhook_id: str,
    ) -> Response[Any]:
        """Pause or resume an endpoint."""
        endpoint_id = parse_id(webhook_id, "webhook")
        current = await webhooks.get(tenant, endpoint_id)
        await webhooks.update(tenant, endpoint_id, WebhookPatch(active=not current.active))
        return go(request, f"/t/{tenant.tenant_slug}/webhooks")

    @post("/{webhook_id:str}/delete")
    async def delete_webhook(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        webhooks: WebhookService,
        webhook_id: str,
    ) -> Response[Any]:
        """Delete an endpoint."""
        await webhooks.delete(tenant, parse_id(webhook_id, "webhook"))
        return go(request, f"/t/{tenant.tenant_slug}/webhooks")

    @post("/{webhook_id:str}/deliveries/{event_id:str}/redeliver")
    async def redeliver(
        self,
        principal: Principal,
        tenant: TenantContext,
        webhooks: WebhookService,
        webhook_id: str,
        event_id: str,
    ) -> Template:
        """Queue the event for the endpoint again and say so."""
        await webhooks.redeliver(
            tenant, parse_id(webhook_id, "webhook"), parse_id(event_id, "event")
        )
        return await _render(principal, tenant, webhooks, message="redelivery queued")


async def _render(
    principal: Principal,
    tenant: TenantContext,
    webhooks: WebhookService,
    status_code: int = 200,
    **context: Any,
) -> Template:
    tenant.require(Scope.WEBHOOKS_WRITE)
    context.setdefault("errors", {})
    context.setdefault("form", {"events": []})
    endpoints = await webhooks.list(tenant)
    attempts = {
        endpoint.id: await webhooks.attempts(tenant, endpoint.id, limit=RECENT_ATTEMPTS)
        for endpoint in endpoints
    }
    return page(
        "webhooks.html",
        principal,
        status_code=status_code,
        endpoints=endpoints,
        attempts=attempts,
        event_types=sorted(EVENT_TYPES),
        **context,
    )
