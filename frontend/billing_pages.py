"""The billing page for owners and admins: ``/t/{slug}/billing``."""

from __future__ import annotations

import secrets
from typing import Any

import stripe
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from orbit.billing.catalog import catalog
from orbit.billing.gateway import BillingUnavailableError
from orbit.billing.service import BillingService, require_billing_admin
from orbit.frontend.pages import Form, go, page
from orbit.platform.errors import OrbitError
from orbit.platform.runtime import Runtime
from orbit.tenants.context import Principal, TenantContext

AnyRequest = Request[Any, Any, Any]


class BillingPages(Controller):
    """Plan, seats, the next invoice's arithmetic, invoices; change plan, cancel, resume, trial."""

    path = "/t/{slug:str}/billing"
    include_in_schema = False

    @get("/")
    async def billing(
        self, principal: Principal, tenant: TenantContext, runtime: Runtime
    ) -> Template:
        """The billing page."""
        return await _page(principal, tenant, runtime)

    @post("/plan")
    async def change_plan(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        data: Form,
    ) -> Response[Any]:
        """Upgrade, downgrade or switch monthly/yearly (Checkout when a card is needed)."""
        here = f"{runtime.settings.public_url}/t/{tenant.tenant_slug}/billing"
        service = BillingService(runtime.db, runtime.billing)
        try:
            checkout = await service.change_plan(
                tenant,
                str(data.get("plan", "")),
                str(data.get("interval", "month")),
                str(data.get("command_id") or secrets.token_hex(8)),
                success_url=f"{here}?checkout=done",
                cancel_url=here,
            )
        except (OrbitError, BillingUnavailableError, stripe.StripeError) as exc:
            return await _failed(principal, tenant, runtime, exc)
        if checkout:
            return Redirect(checkout, status_code=303)
        return go(request, f"/t/{tenant.tenant_slug}/billing")

    @post("/cancel")
    async def cancel(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        data: Form,
    ) -> Response[Any]:
        """Cancel at the end of the paid period."""
        return await _cancel(request, principal, tenant, runtime, data, cancel=True)

    @post("/resume")
    async def resume(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        data: Form,
    ) -> Response[Any]:
        """Undo a cancellation before the period ends."""
        return await _cancel(request, principal, tenant, runtime, data, cancel=False)

    @post("/trial")
    async def trial(
        self, request: AnyRequest, principal: Principal, tenant: TenantContext, runtime: Runtime
    ) -> Response[Any]:
        """Start the 14-day Pro trial (no card)."""
        try:
            await BillingService(runtime.db, runtime.billing).start_trial(tenant)
        except OrbitError as exc:
            return await _failed(principal, tenant, runtime, exc)
        return go(request, f"/t/{tenant.tenant_slug}/billing")

    @post("/portal")
    async def portal(
        self, principal: Principal, tenant: TenantContext, runtime: Runtime
    ) -> Response[Any]:
        """Stripe's Billing Portal (payment methods, invoices)."""
        here = f"{runtime.settings.public_url}/t/{tenant.tenant_slug}/billing"
        try:
            url = await BillingService(runtime.db, runtime.billing).portal_url(tenant, here)
        except (OrbitError, BillingUnavailableError, stripe.StripeError) as exc:
            return await _failed(principal, tenant, runtime, exc)
        return Redirect(url, status_code=303)


async def _cancel(
    request: AnyRequest,
    principal: Principal,
    tenant: TenantContext,
    runtime: Runtime,
    data: Form,
    *,
    cancel: bool,
) -> Response[Any]:
    try:
        await BillingService(runtime.db, runtime.billing).cancel(
            tenant, str(data.get("command_id") or secrets.token_hex(8)), cancel=cancel
        )
    except (OrbitError, BillingUnavailableError, stripe.StripeError) as exc:
        return await _failed(principal, tenant, runtime, exc)
    return go(request, f"/t/{tenant.tenant_slug}/billing")


async def _failed(
    principal: Principal, tenant: TenantContext, runtime: Runtime, exc: Exception
) -> Template:
    if isinstance(exc, OrbitError) and exc.status_code in {403, 404}:
        raise exc
    message = exc.message if isinstance(exc, OrbitError) else str(exc)
    if isinstance(exc, stripe.StripeError):
        message = f"Stripe refused or could not be reached: {exc.user_message or exc}"
    return await _page(principal, tenant, runtime, HTTP_422_UNPROCESSABLE_ENTITY, message)


async def _page(
    principal: Principal,
    tenant: TenantContext,
    runtime: Runtime,
    status_code: int = 200,
    error: str = "",
) -> Template:
    require_billing_admin(tenant)
    overview = await BillingService(runtime.db, runtime.billing).overview(tenant)
    return page(
        "billing.html",
        principal,
        status_code=status_code,
        overview=overview,
        plans=[p for p in catalog().values() if not p.is_free],
        command_id=secrets.token_hex(16),
        error=error,
    )
