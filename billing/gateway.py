"""The one module that talks to Stripe (through the official SDK's ``StripeClient``).

Everything Orbit asks of Stripe goes through :class:`StripeGateway`: a customer per
workspace (created on first need and linked with :func:`link_customer`), one
subscription per workspace with a single per-seat item whose quantity is the number
of active memberships, Checkout and Billing Portal sessions, cancel at period end and
resume, the next invoice's preview, past invoices, and the catalog sync.

Every mutating call carries an idempotency key derived from the command that caused
it (``seats:{tenant}:{sync row}:{quantity}``, ``customer:{tenant}``, ...), so a retry of
the same command can never charge or change twice.

``ORBIT_STRIPE_API_BASE`` pointing anywhere but Stripe means localstripe (development
and tests). localstripe knows Plans but not Prices, Checkout or the Portal, and
rejects some parameters; :attr:`StripeGateway.localstripe` switches to what it
supports, each place saying why.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import stripe

from orbit.billing.catalog import Interval, Plan, Tier, catalog
from orbit.billing.webhooks import link_customer

if TYPE_CHECKING:
    from decimal import Decimal
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.platform.settings import Settings

log = logging.getLogger(__name__)

STRIPE_API = "https://api.stripe.com"
TIMEOUT = 20.0
"""Seconds one Stripe call may take (the worker retries later)."""
_LOCALSTRIPE_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


class BillingUnavailableError(RuntimeError):
    """Stripe is not configured on this Orbit: paid plans are unavailable."""


def lookup_key(plan_key: str, interval: Interval) -> str:
    """The Stripe lookup key of a plan's price: ``starter_monthly``, ``pro_yearly``."""
    return f"{plan_key}_{interval}ly"


def cents(amount: Decimal) -> int:
    """Dollars (as in plans.toml) in Stripe's smallest unit."""
    return int((amount * 100).to_integral_value())


def stripe_tiers(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    """The catalog's tiers in Stripe's form (``flat_amount`` 0: localstripe needs the key)."""
    return [
        {
            "up_to": "inf" if tier.up_to is None else tier.up_to,
            "unit_amount": cents(tier.unit_amount),
            "flat_amount": 0,
        }
        for tier in tiers
    ]


def _same_tiers(remote: Any, wanted: list[dict[str, Any]]) -> bool:
    """Whether Stripe's tiers (``up_to`` None or a number; strings in localstripe) are ours."""
    have = [
        (
            "inf" if t.get("up_to") in {None, "inf"} else int(t["up_to"]),
            int(t.get("unit_amount") or 0),
        )
        for t in remote or []
    ]
    return have == [(t["up_to"], t["unit_amount"]) for t in wanted]


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of an invoice as the billing page shows it."""

    description: str
    quantity: int | None
    amount_cents: int


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    """A past or upcoming invoice."""

    id: str | None
    status: str | None
    total_cents: int
    currency: str
    created: int | None
    url: str | None
    lines: tuple[InvoiceLine, ...]


def _summary(invoice: Any) -> InvoiceSummary:
    lines = tuple(
        InvoiceLine(
            description=str(line.get("description") or ""),
            quantity=line.get("quantity"),
            amount_cents=int(line.get("amount") or 0),
        )
        for line in (invoice.get("lines") or {}).get("data", [])
    )
    return InvoiceSummary(
        id=invoice.get("id"),
        status=invoice.get("status"),
        total_cents=int(invoice.get("total") or 0),
        currency=str(invoice.get("currency") or "usd"),
        created=invoice.get("created"),
        url=invoice.get("hosted_invoice_url") or invoice.get("invoice_pdf"),
        lines=lines,
    )


class StripeGateway:
    """Orbit's calls to Stripe; build one with :func:`gateway_from_settings`."""

    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        self.api_base = api_base or STRIPE_API
        self.localstripe = not self.api_base.startswith(STRIPE_API)
        """localstripe: Plans instead of Prices, no Checkout, no Portal, fewer parameters."""
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": self.api_base},
            http_client=stripe.HTTPXClient(timeout=TIMEOUT),
            # Retries belong to Orbit's job queue (which keeps the same idempotency key).
            max_network_retries=0,
        )

    # -- customers ---------------------------------------------------------------------

    async def customer_for(
        self, db: Database, tenant_id: UUID, name: str, email: str | None = None
    ) -> str:
        """The workspace's Stripe customer, created (once: idempotency key) and linked."""
        existing = await db.fetchval(
            "SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = $1", tenant_id
        )
        if existing:
            return str(existing)
        params: dict[str, Any] = {"name": name, "metadata": {"tenant_id": str(tenant_id)}}
        if email:
            params["email"] = email
        if self.localstripe:
            # localstripe has no Checkout page to collect a card: give the customer the
            # standard test card so its subscriptions get paid as in Stripe's test mode.
            token = await self.client.v1.tokens.create_async(
                cast("Any", {"card": _LOCALSTRIPE_CARD})
            )
            params["source"] = token.id
        customer = await self.client.v1.customers.create_async(
            cast("Any", params), {"idempotency_key": f"customer:{tenant_id}"}
        )
        await link_customer(db, tenant_id, customer.id)
        return customer.id

    # -- catalog -----------------------------------------------------------------------

    async def price_id(self, plan_key: str, interval: Interval) -> str:
        """The active price (a Plan's id in localstripe) of a plan and interval."""
        key = lookup_key(plan_key, interval)
        if self.localstripe:
            return key
        prices = await self.client.v1.prices.list_async({"lookup_keys": [key], "active": True})
        if not prices.data:
            raise BillingUnavailableError(
                f"no Stripe price {key}: run `orbit billing sync-catalog`"
            )
        return prices.data[0].id

    async def sync_catalog(self, plans: dict[str, Plan] | None = None) -> list[str]:
        """Make Stripe's Products and graduated Prices match plans.toml; what it did.

        Idempotent by lookup key: an unchanged price is left alone. Stripe prices are
        immutable, so a changed one becomes a new Price that takes over the lookup key
        (``transfer_lookup_key``) and the old one is archived; existing subscriptions
        keep their price until they change plan.
        """
        done: list[str] = []
        for chosen in (plans or catalog()).values():
            if chosen.is_free:
                continue
            product_id = f"orbit_{chosen.key}"
            done.append(await self._sync_product(product_id, chosen))
            done.append(await self._sync_price(product_id, chosen, "month"))
            done.append(await self._sync_price(product_id, chosen, "year"))
        return done

    async def _sync_product(self, product_id: str, chosen: Plan) -> str:
        try:
            product = await self.client.v1.products.retrieve_async(product_id)
        except stripe.InvalidRequestError:
            await self.client.v1.products.create_async(
                {"id": product_id, "name": f"Orbit {chosen.name}"},
                {"idempotency_key": f"catalog:product:{product_id}"},
            )
            return f"product {product_id}: created"
        if product.name != f"Orbit {chosen.name}":
            await self.client.v1.products.update_async(
                product_id,
                {"name": f"Orbit {chosen.name}"},
                {"idempotency_key": f"catalog:product:{product_id}:{chosen.name}"},
            )
            return f"product {product_id}: renamed"
        return f"product {product_id}: unchanged"

    async def _sync_price(self, product_id: str, chosen: Plan, interval: Interval) -> str:
        key = lookup_key(chosen.key, interval)
        tiers = stripe_tiers(chosen.tiers(interval))
        if self.localstripe:
            return await self._sync_localstripe_plan(product_id, key, interval, tiers)
        found = await self.client.v1.prices.list_async(
            {"lookup_keys": [key], "active": True, "expand": ["data.tiers"]}
        )
        current = found.data[0] if found.data else None
        if current is not None and _same_tiers(current.to_dict().get("tiers"), tiers):
            return f"price {key}: unchanged ({current.id})"
        # A content hash in the key: re-running after a crash reuses the same new Price.
        digest = hashlib.sha256(repr(tiers).encode()).hexdigest()[:16]
        created = await self.client.v1.prices.create_async(
            cast(
                "Any",
                {
                    "product": product_id,
                    "currency": "usd",
                    "recurring": {"interval": interval, "usage_type": "licensed"},
                    "billing_scheme": "tiered",
                    "tiers_mode": "graduated",
                    "tiers": tiers,
                    "lookup_key": key,
                    "transfer_lookup_key": True,
                    "metadata": {"orbit_plan": chosen.key},
                },
            ),
            {"idempotency_key": f"catalog:price:{key}:{digest}"},
        )
        if current is not None:
            await self.client.v1.prices.update_async(
                current.id, {"active": False}, {"idempotency_key": f"catalog:archive:{current.id}"}
            )
            return f"price {key}: replaced {current.id} by {created.id}"
        return f"price {key}: created ({created.id})"

    async def _sync_localstripe_plan(
        self, product_id: str, key: str, interval: Interval, tiers: list[dict[str, Any]]
    ) -> str:
        # localstripe has Plans (the Prices' predecessor) with graduated tiers; the plan
        # id plays the lookup key. Its plans are immutable too, and it has no lookup keys
        # to transfer: a changed plan is a restart of localstripe with --from-scratch.
        try:
            existing = await self.client.v1.plans.retrieve_async(key)
        except stripe.InvalidRequestError:
            await self.client.v1.plans.create_async(
                cast(
                    "Any",
                    {
                        "id": key,
                        "product": product_id,
                        "currency": "usd",
                        "interval": interval,
                        "billing_scheme": "tiered",
                        "tiers_mode": "graduated",
                        "tiers": tiers,
                    },
                ),
                {"idempotency_key": f"catalog:plan:{key}"},
            )
            return f"plan {key}: created"
        if _same_tiers(existing.to_dict().get("tiers"), tiers):
            return f"plan {key}: unchanged"
        return f"plan {key}: differs from plans.toml (restart localstripe with --from-scratch)"

    # -- subscriptions -----------------------------------------------------------------

    def _item(self, price: str, quantity: int) -> dict[str, Any]:
        return {"plan" if self.localstripe else "price": price, "quantity": quantity}

    async def subscribe(
        self,
        tenant_id: UUID,
        customer_id: str,
        plan_key: str,
        interval: Interval,
        seats: int,
        *,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Start a subscription (localstripe's stand-in for Checkout, and API use)."""
        price = await self.price_id(plan_key, interval)
        created = await self.client.v1.subscriptions.create_async(
            cast(
                "Any",
                {
                    "customer": customer_id,
                    "items": [self._item(price, max(seats, 1))],
                    "metadata": {"tenant_id": str(tenant_id)},
                },
            ),
            {"idempotency_key": idempotency_key},
        )
        return created.to_dict()

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe has it now (webhooks re-read it before applying)."""
        found = await self.client.v1.subscriptions.retrieve_async(subscription_id)
        return found.to_dict()

    def _proration(self, increase: bool) -> dict[str, Any]:
        # Increases: "always_invoice" prorates the extra seats for the rest of the period
        # and invoices (and charges) them at once. Decreases: "none" lowers the quantity
        # without a credit note or refund, so what was paid covers the current period and
        # the next renewal invoice bills the lower count: the decrease takes effect, in
        # money, at the period end. localstripe rejects proration_behavior on updates.
        if self.localstripe:
            return {}
        return {"proration_behavior": "always_invoice" if increase else "none"}

    async def set_seats(
        self, subscription_id: str, seats: int, *, idempotency_key: str
    ) -> dict[str, Any]:
        """Set the per-seat item's quantity to ``seats`` (an absolute count: retries converge)."""
        current = await self.subscription(subscription_id)
        item = current["items"]["data"][0]
        quantity = max(seats, 1)
        if item.get("quantity") == quantity:
            return current
        params = {
            "items": [{"id": item["id"], "quantity": quantity}],
            **self._proration(quantity > int(item.get("quantity") or 0)),
        }
        updated = await self.client.v1.subscriptions.update_async(
            subscription_id, cast("Any", params), {"idempotency_key": idempotency_key}
        )
        return updated.to_dict()

    async def change_plan(
        self,
        subscription_id: str,
        plan_key: str,
        interval: Interval,
        seats: int,
        *,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Move the subscription to another plan or interval (same rule as seats)."""
        current = await self.subscription(subscription_id)
        item = current["items"]["data"][0]
        price = await self.price_id(plan_key, interval)
        now_plan = _plan_key_of_item(item)
        now_interval = _interval_of_item(item)
        increase = True
        if now_plan in catalog() and now_interval in {"month", "year"}:
            old = catalog()[now_plan].price(seats, cast("Interval", now_interval))
            new = catalog()[plan_key].price(seats, interval)
            # Compare per month, so monthly → yearly counts as the increase it is.
            increase = new / (12 if interval == "year" else 1) >= old / (
                12 if now_interval == "year" else 1
            )
        params = {
            "items": [{"id": item["id"], **self._item(price, max(seats, 1))}],
            "cancel_at_period_end": False,
            **self._proration(increase),
        }
        updated = await self.client.v1.subscriptions.update_async(
            subscription_id, cast("Any", params), {"idempotency_key": idempotency_key}
        )
        return updated.to_dict()

    async def cancel_at_period_end(
        self, subscription_id: str, *, cancel: bool, idempotency_key: str
    ) -> dict[str, Any]:
        """Cancel at the end of the paid period (``cancel=False``: resume)."""
        updated = await self.client.v1.subscriptions.update_async(
            subscription_id,
            {"cancel_at_period_end": cancel},
            {"idempotency_key": idempotency_key},
        )
        return updated.to_dict()

    # -- hosted pages ------------------------------------------------------------------

    async def checkout_url(
        self,
        tenant_id: UUID,
        customer_id: str,
        plan_key: str,
        interval: Interval,
        seats: int,
        *,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> str:
        """A Checkout session for an upgrade; its completion links the subscription."""
        price = await self.price_id(plan_key, interval)
        session = await self.client.v1.checkout.sessions.create_async(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(tenant_id),
                "line_items": [{"price": price, "quantity": max(seats, 1)}],
                "metadata": {"tenant_id": str(tenant_id)},
                "subscription_data": {"metadata": {"tenant_id": str(tenant_id)}},
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            {"idempotency_key": idempotency_key},
        )
        return str(session.url)

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        """A Billing Portal session (payment methods, invoices, tax ids).

        The one POST without an idempotency key: a session is a short-lived link that
        changes nothing, and each visit needs a fresh one.
        """
        session = await self.client.v1.billing_portal.sessions.create_async(
            {"customer": customer_id, "return_url": return_url}
        )
        return str(session.url)

    # -- invoices ----------------------------------------------------------------------

    async def next_invoice(self, customer_id: str, subscription_id: str) -> InvoiceSummary | None:
        """Stripe's preview of the next invoice (``None`` when there is none)."""
        try:
            invoice = await self.client.v1.invoices.create_preview_async(
                {"customer": customer_id, "subscription": subscription_id}
            )
        except stripe.InvalidRequestError:
            return None
        return _summary(invoice.to_dict())

    async def invoices(self, customer_id: str, limit: int = 12) -> list[InvoiceSummary]:
        """The customer's invoices, newest first."""
        found = await self.client.v1.invoices.list_async({"customer": customer_id, "limit": limit})
        return [_summary(invoice.to_dict()) for invoice in found.data]


def _plan_key_of_item(item: Any) -> str | None:
    """Orbit's plan key of a subscription item: from its price's lookup key or its plan id."""
    for source in (item.get("price"), item.get("plan")):
        if not source:
            continue
        for candidate in (source.get("lookup_key"), source.get("id")):
            key = str(candidate or "").rsplit("_", 1)[0]
            if key in catalog() and not catalog()[key].is_free:
                return key
    return None


def _interval_of_item(item: Any) -> str | None:
    price = item.get("price") or {}
    recurring = price.get("recurring") or {}
    plan = item.get("plan") or {}
    interval = recurring.get("interval") or plan.get("interval")
    return str(interval) if interval else None


def plan_of_subscription(subscription: Any) -> tuple[str | None, str | None]:
    """(plan key, interval) of a Stripe subscription's per-seat item."""
    data = (subscription.get("items") or {}).get("data") or []
    if not data:
        return None, None
    return _plan_key_of_item(data[0]), _interval_of_item(data[0])


def gateway_from_settings(settings: Settings) -> StripeGateway | None:
    """The gateway, or ``None`` when no Stripe key is configured (free tier only)."""
    if not settings.stripe_secret_key:
        return None
    return StripeGateway(settings.stripe_secret_key, settings.stripe_api_base)
