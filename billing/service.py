"""What the billing page does: show the plan and the bill, change plans, cancel, trial.

Owners and admins only. Every Stripe call goes through :class:`StripeGateway`, with an
idempotency key made of the workspace and the command id the page's form carried (a
double submit of one form is one change in Stripe). Without a gateway, paid plans are
unavailable and the page says so; the free tier is untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import stripe

from orbit.billing.catalog import Interval, Plan, TierCharge, breakdown, catalog, plan
from orbit.billing.gateway import BillingUnavailableError, InvoiceSummary
from orbit.billing.seats import active_seats
from orbit.billing.webhooks import mirror_subscription
from orbit.platform.errors import ConflictError, InvalidInputError, PermissionDeniedError
from orbit.tenants.roles import Role

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.billing.gateway import StripeGateway
    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

log = logging.getLogger(__name__)

TRIAL = timedelta(days=14)
TRIAL_OFFER = timedelta(days=14)
"""A workspace may ask for the trial within this long of its creation."""
UNAVAILABLE = "Paid plans are unavailable: Stripe is not configured on this Orbit."


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the billing page shows."""

    plan: Plan
    status: str
    interval: str
    seats_used: int
    seat_limit: int
    estimate: list[TierCharge]
    estimate_total: Any
    paid_plans_available: bool
    has_subscription: bool
    cancel_at_period_end: bool
    trial_ends_at: datetime | None
    trial_offered: bool
    next_invoice: InvoiceSummary | None = None
    invoices: list[InvoiceSummary] = field(default_factory=list)
    stripe_error: str | None = None


def require_billing_admin(ctx: TenantContext) -> None:
    """Only a workspace's owner or admins (people, not API keys) see and change billing."""
    if ctx.api_key_id is not None or ctx.role not in {Role.OWNER, Role.ADMIN}:
        raise PermissionDeniedError("billing is for the workspace's owner and admins")


def _interval(value: str) -> Interval:
    if value not in {"month", "year"}:
        raise InvalidInputError(
            "interval must be month or year", fields={"interval": "month or year"}
        )
    return cast("Interval", value)


class BillingService:
    """The billing page's operations, in the caller's transaction."""

    def __init__(self, db: Database, gateway: StripeGateway | None) -> None:
        self.db = db
        self.gateway = gateway

    async def _account(self, tenant_id: UUID) -> dict[str, Any]:
        row = await self.db.fetchrow(
            """
            SELECT t.plan, t.subscription_status, t.trial_ends_at, t.created_at,
                   a.stripe_customer_id, a.stripe_subscription_id, a.cancel_at_period_end,
                   a.plan_interval
            FROM tenants t LEFT JOIN billing_accounts a ON a.tenant_id = t.id
            WHERE t.id = $1
            """,
            tenant_id,
        )
        if row is None:
            raise PermissionDeniedError("unknown workspace")
        return dict(row)

    async def overview(self, ctx: TenantContext) -> Overview:
        """Plan, status, seats, the next bill's arithmetic, and Stripe's invoices."""
        require_billing_admin(ctx)
        account = await self._account(ctx.tenant_id)
        current = plan(account["plan"])
        seats = await active_seats(self.db, ctx.tenant_id)
        interval = account["plan_interval"] or "month"
        priced = current if not current.is_free else plan("starter")
        rows = breakdown(priced, seats, cast("Interval", interval))
        subscribed = bool(account["stripe_subscription_id"]) and (
            account["subscription_status"] != "canceled"
        )
        overview = Overview(
            plan=current,
            status=account["subscription_status"],
            interval=interval,
            seats_used=seats,
            seat_limit=current.seats,
            estimate=rows,
            estimate_total=sum((row.amount for row in rows), start=priced.price(0)),
            paid_plans_available=self.gateway is not None,
            has_subscription=subscribed,
            cancel_at_period_end=bool(account["cancel_at_period_end"]),
            trial_ends_at=account["trial_ends_at"],
            trial_offered=self._trial_offered(account),
        )
        if self.gateway is None or not account["stripe_customer_id"]:
            return overview
        try:
            upcoming = (
                await self.gateway.next_invoice(
                    account["stripe_customer_id"], account["stripe_subscription_id"]
                )
                if subscribed
                else None
            )
            invoices = await self.gateway.invoices(account["stripe_customer_id"])
        except stripe.StripeError as exc:
            log.warning("billing page of tenant %s: Stripe failed: %s", ctx.tenant_id, exc)
            return _replace(overview, stripe_error="Stripe cannot be reached right now.")
        return _replace(overview, next_invoice=upcoming, invoices=invoices)

    @staticmethod
    def _trial_offered(account: dict[str, Any]) -> bool:
        created: datetime = account["created_at"]
        return (
            account["plan"] == "free"
            and account["trial_ends_at"] is None
            and not account["stripe_subscription_id"]
            and datetime.now(UTC) - created < TRIAL_OFFER
        )

    async def start_trial(self, ctx: TenantContext) -> datetime:
        """14 days of Pro without a card, once, for a new workspace on Free."""
        require_billing_admin(ctx)
        account = await self._account(ctx.tenant_id)
        if not self._trial_offered(account):
            raise ConflictError(
                "the Pro trial is for new workspaces on Free that have not had it",
                fields={"trial": "not available"},
            )
        ends = datetime.now(UTC) + TRIAL
        await self.db.execute(
            "UPDATE tenants SET plan = 'pro', subscription_status = 'trialing', "
            "trial_ends_at = $2 WHERE id = $1",
            ctx.tenant_id,
            ends,
        )
        return ends

    def _gateway(self) -> StripeGateway:
        if self.gateway is None:
            raise BillingUnavailableError(UNAVAILABLE)
        return self.gateway

    async def change_plan(
        self,
        ctx: TenantContext,
        plan_key: str,
        interval_value: str,
        command_id: str,
        *,
        success_url: str,
        cancel_url: str,
    ) -> str | None:
        """Upgrade, downgrade or change interval; a Checkout URL when the customer must pay."""
        require_billing_admin(ctx)
        interval = _interval(interval_value)
        if plan_key not in catalog():
            raise InvalidInputError(f"unknown plan {plan_key!r}", fields={"plan": "unknown"})
        account = await self._account(ctx.tenant_id)
        subscribed = bool(account["stripe_subscription_id"]) and (
            account["subscription_status"] != "canceled"
        )
        if catalog()[plan_key].is_free:
            if subscribed:
                await self.cancel(ctx, command_id, cancel=True)
            return None
        gateway = self._gateway()
        seats = await active_seats(self.db, ctx.tenant_id)
        key = f"plan:{ctx.tenant_id}:{command_id[:64]}"
        if subscribed:
            changed = await gateway.change_plan(
                account["stripe_subscription_id"], plan_key, interval, seats, idempotency_key=key
            )
            await mirror_subscription(self.db, ctx.tenant_id, changed)
            return None
        customer = await gateway.customer_for(self.db, ctx.tenant_id, ctx.tenant_name)
        if gateway.localstripe:
            # localstripe has no Checkout: subscribe directly (its customers have a test card).
            created = await gateway.subscribe(
                ctx.tenant_id,
                customer,
                plan_key,
                interval,
                seats,
                idempotency_key=f"subscribe:{ctx.tenant_id}:{command_id[:64]}",
            )
            await mirror_subscription(self.db, ctx.tenant_id, created)
            return None
        return await gateway.checkout_url(
            ctx.tenant_id,
            customer,
            plan_key,
            interval,
            seats,
            success_url=success_url,
            cancel_url=cancel_url,
            idempotency_key=f"checkout:{ctx.tenant_id}:{command_id[:64]}",
        )

    async def cancel(self, ctx: TenantContext, command_id: str, *, cancel: bool) -> None:
        """Cancel at the end of the paid period, or resume before it ends."""
        require_billing_admin(ctx)
        account = await self._account(ctx.tenant_id)
        if not account["stripe_subscription_id"] or account["subscription_status"] == "canceled":
            raise ConflictError("there is no subscription to cancel or resume")
        action = "cancel" if cancel else "resume"
        updated = await self._gateway().cancel_at_period_end(
            account["stripe_subscription_id"],
            cancel=cancel,
            idempotency_key=f"{action}:{ctx.tenant_id}:{command_id[:64]}",
        )
        await mirror_subscription(self.db, ctx.tenant_id, updated)

    async def portal_url(self, ctx: TenantContext, return_url: str) -> str:
        """Stripe's Billing Portal for payment methods and invoices."""
        require_billing_admin(ctx)
        gateway = self._gateway()
        account = await self._account(ctx.tenant_id)
        if gateway.localstripe or not account["stripe_customer_id"]:
            raise ConflictError("the billing portal needs a Stripe customer (and real Stripe)")
        return await gateway.portal_url(account["stripe_customer_id"], return_url)


def _replace(overview: Overview, **changes: Any) -> Overview:
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(overview, **changes)


async def end_expired_trials(db: Database, limit: int = 100) -> int:
    """Put workspaces whose card-less Pro trial is over back on Free (the worker calls this).

    Nothing is deleted: a workspace over Free's limits keeps its data and members, and
    only new additions are refused until it upgrades.
    """
    async with db.transaction():
        # tenants is readable across workspaces (names and plans only); updates are per tenant.
        rows = await db.fetch(
            "SELECT id FROM tenants WHERE subscription_status = 'trialing' "
            "AND trial_ends_at <= now() LIMIT $1",
            limit,
        )
    ended = 0
    for row in rows:
        async with db.transaction(row["id"]):
            changed = await db.fetchval(
                """
                UPDATE tenants SET plan = 'free', subscription_status = 'active'
                WHERE id = $1 AND subscription_status = 'trialing' AND trial_ends_at <= now()
                  AND NOT EXISTS (SELECT 1 FROM billing_accounts a WHERE a.tenant_id = $1
                                  AND a.stripe_subscription_id IS NOT NULL)
                RETURNING id
                """,
                row["id"],
            )
        if changed is not None:
            ended += 1
            log.info("the Pro trial of tenant %s ended: back on Free", row["id"])
    return ended
