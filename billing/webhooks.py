"""Stripe webhooks: verified on the raw body, applied once, in any delivery order.

Each event's id is stored (uniquely) in the same transaction as its effect, so a
redelivery changes nothing. Stripe does not promise order, so a subscription
event older than the last one applied is recorded and skipped, and once a
subscription is canceled no later ``updated`` for it brings it back. Events for a
customer Orbit does not know are recorded and ignored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import stripe

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database

log = logging.getLogger(__name__)

_STATUSES = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "unpaid": "unpaid",
    "canceled": "canceled",
    "incomplete": "unpaid",
    "incomplete_expired": "canceled",
    "paused": "unpaid",
}
"""Stripe's subscription statuses as Orbit's (what the entitlements understand)."""


class InvalidSignatureError(ValueError):
    """The payload was not signed with the endpoint's secret (or is too old)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery did."""

    event_id: str
    result: str


def verify(payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The event, if Stripe signed exactly this body; :class:`InvalidSignatureError` otherwise."""
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, 300)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise InvalidSignatureError(str(exc)) from None
    try:
        event: dict[str, Any] = json.loads(payload)
    except ValueError:
        raise InvalidSignatureError("the body is not JSON") from None
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        raise InvalidSignatureError("the body is not a Stripe event")
    return event


async def link_customer(db: Database, tenant_id: UUID, customer_id: str) -> None:
    """Remember which Stripe customer pays for ``tenant_id`` (checkout does this)."""
    await db.set_tenant(tenant_id)
    await db.execute(
        "INSERT INTO billing_accounts (tenant_id, stripe_customer_id) VALUES ($1, $2) "
        "ON CONFLICT (tenant_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id",
        tenant_id,
        customer_id,
    )


async def apply_event(db: Database, event: dict[str, Any]) -> Outcome:
    """Record ``event`` once and apply it; call inside one transaction."""
    event_id = str(event["id"])
    created = int(event.get("created") or 0)
    first_time = await db.fetchval(
        "INSERT INTO stripe_events (id, type, created) VALUES ($1, $2, $3) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        event_id,
        str(event["type"])[:100],
        created,
    )
    if first_time is None:
        return Outcome(event_id, "duplicate")
    result = await _apply(db, event, created)
    await db.execute("UPDATE stripe_events SET outcome = $2 WHERE id = $1", event_id, result)
    return Outcome(event_id, result)


async def _apply(db: Database, event: dict[str, Any], created: int) -> str:
    kind = str(event["type"])
    if not kind.startswith("customer.subscription."):
        return "recorded"
    subscription = event.get("data", {}).get("object", {})
    customer = subscription.get("customer")
    tenant_id = await db.fetchval("SELECT orbit_tenant_by_stripe_customer($1)", customer)
    if tenant_id is None:
        log.warning("Stripe event %s names an unknown customer", event["id"])
        return "ignored: unknown customer"
    await db.set_tenant(tenant_id)
    account = await db.fetchrow(
        "SELECT * FROM billing_accounts WHERE tenant_id = $1 FOR UPDATE", tenant_id
    )
    if account is None:  # the definer found it; RLS would hide only another tenant's row
        return "ignored: unknown customer"
    status = await db.fetchval("SELECT subscription_status FROM tenants WHERE id = $1", tenant_id)
    same_subscription = account["stripe_subscription_id"] == subscription.get("id")
    if same_subscription and created < account["last_event_created"]:
        return "skipped: older than the last event applied"
    if same_subscription and status == "canceled" and kind != "customer.subscription.created":
        return "skipped: the subscription is canceled"
    new_status = (
        "canceled"
        if kind == "customer.subscription.deleted"
        else _STATUSES.get(str(subscription.get("status")), "unpaid")
    )
    await db.execute(
        """
        UPDATE tenants SET subscription_status = $2::varchar, plan = coalesce($3, plan),
            past_due_since = CASE WHEN $2::varchar <> 'past_due' THEN NULL
                                  ELSE coalesce(past_due_since, $4) END
        WHERE id = $1
        """,
        tenant_id,
        new_status,
        _plan_of(subscription),
        datetime.fromtimestamp(created, UTC),
    )
    await db.execute(
        "UPDATE billing_accounts SET stripe_subscription_id = $2, last_event_created = $3, "
        "updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        subscription.get("id"),
        max(created, account["last_event_created"]) if same_subscription else created,
    )
    return f"applied: {new_status}"


def _plan_of(subscription: dict[str, Any]) -> str | None:
    """The plan key from the subscription's price lookup key (``starter_monthly`` → starter)."""
    for item in subscription.get("items", {}).get("data", []):
        lookup = str((item.get("price") or {}).get("lookup_key") or "")
        plan = lookup.rsplit("_", 1)[0]
        if plan in {"starter", "pro"}:
            return plan
    return None
