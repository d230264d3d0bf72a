"""Stripe webhooks: verified on the raw body, applied once, in any delivery order.

Each event's id is stored (uniquely) in the same transaction as its effect, so a
redelivery changes nothing. Stripe does not promise order: with a gateway
configured, a subscription event is applied from the subscription as Stripe has it
NOW (re-read), not from the event's copy; without one, a subscription event older
than the last one applied is recorded and skipped. Either way, once a subscription
is canceled no later ``updated`` for it brings it back. Events for a customer Orbit
does not know are recorded and ignored.

Handled: ``checkout.session.completed`` (links the customer and subscription to the
workspace named by the session's ``client_reference_id`` or metadata),
``customer.subscription.created|updated|deleted|trial_will_end``, ``invoice.paid``,
``invoice.payment_succeeded``, ``invoice.payment_failed`` and
``invoice.payment_action_required``. A failure while applying rolls the whole
transaction back (the event id too), so Stripe's redelivery tries it again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import stripe

from orbit.billing.seats import enqueue_seat_sync
from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy

if TYPE_CHECKING:
    from orbit.billing.gateway import StripeGateway
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


async def apply_event(
    db: Database, event: dict[str, Any], gateway: StripeGateway | None = None
) -> Outcome:
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
    result = await _apply(db, event, created, gateway)
    await db.execute("UPDATE stripe_events SET outcome = $2 WHERE id = $1", event_id, result[:200])
    return Outcome(event_id, result)


async def _apply(
    db: Database, event: dict[str, Any], created: int, gateway: StripeGateway | None
) -> str:
    kind = str(event["type"])
    obj: dict[str, Any] = event.get("data", {}).get("object", {}) or {}
    if kind == "checkout.session.completed":
        return await _checkout_completed(db, obj, created, gateway)
    if not kind.startswith("customer.subscription.") and kind not in _INVOICE_EVENTS:
        return "recorded"
    tenant_id = await _tenant_of(db, obj.get("customer"))
    if tenant_id is None:
        log.warning("Stripe event %s names an unknown customer", event["id"])
        return "ignored: unknown customer"
    if kind == "customer.subscription.trial_will_end":
        log.info("the trial of tenant %s ends at %s", tenant_id, obj.get("trial_end"))
        return f"noted: trial ends at {obj.get('trial_end')}"
    if kind in _INVOICE_EVENTS:
        return await _invoice_event(db, tenant_id, kind, obj, created, gateway)
    return await _subscription_changed(db, tenant_id, kind, obj, created, gateway)


_INVOICE_EVENTS = {
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
}


async def _tenant_of(db: Database, customer: object) -> UUID | None:
    if not isinstance(customer, str) or not customer:
        return None
    tenant_id: UUID | None = await db.fetchval(
        "SELECT orbit_tenant_by_stripe_customer($1)", customer
    )
    if tenant_id is not None:
        await db.set_tenant(tenant_id)
    return tenant_id


async def _checkout_completed(
    db: Database, session: dict[str, Any], created: int, gateway: StripeGateway | None
) -> str:
    reference = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "tenant_id"
    )
    try:
        tenant_id = UUID(str(reference))
    except ValueError:
        return "ignored: no workspace in the session"
    customer = session.get("customer")
    subscription_id = session.get("subscription")
    exists = await db.fetchval("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", tenant_id)
    if not exists or not isinstance(customer, str) or not isinstance(subscription_id, str):
        return "ignored: unknown workspace or no subscription"
    await link_customer(db, tenant_id, customer)
    await db.execute(
        "UPDATE billing_accounts SET stripe_subscription_id = $2, last_event_created = 0 "
        "WHERE tenant_id = $1",
        tenant_id,
        subscription_id,
    )
    # Members may have joined while the customer was on Stripe's page.
    await enqueue_seat_sync(db, tenant_id, "checkout completed")
    if gateway is None:
        return "linked: the subscription events set the status"
    fresh = await gateway.subscription(subscription_id)
    return await _subscription_changed(
        db, tenant_id, "customer.subscription.updated", fresh, created, None
    )


async def _subscription_changed(
    db: Database,
    tenant_id: UUID,
    kind: str,
    subscription: dict[str, Any],
    created: int,
    gateway: StripeGateway | None,
) -> str:
    account = await db.fetchrow(
        "SELECT * FROM billing_accounts WHERE tenant_id = $1 FOR UPDATE", tenant_id
    )
    if account is None:  # the definer found it; RLS would hide only another tenant's row
        return "ignored: unknown customer"
    status = await db.fetchval("SELECT subscription_status FROM tenants WHERE id = $1", tenant_id)
    same_subscription = account["stripe_subscription_id"] == subscription.get("id")
    if same_subscription and status == "canceled" and kind != "customer.subscription.created":
        return "skipped: the subscription is canceled"
    if gateway is not None and subscription.get("id"):
        # Never trust the event's copy or its delivery order: Stripe's state now decides.
        subscription = await gateway.subscription(str(subscription["id"]))
        new_status = _STATUSES.get(str(subscription.get("status")), "unpaid")
    else:
        if same_subscription and created < account["last_event_created"]:
            return "skipped: older than the last event applied"
        new_status = (
            "canceled"
            if kind == "customer.subscription.deleted"
            else _STATUSES.get(str(subscription.get("status")), "unpaid")
        )
    plan, interval = _plan_and_interval(subscription)
    await _set_status(db, tenant_id, new_status, plan, created)
    await db.execute(
        "UPDATE billing_accounts SET stripe_subscription_id = $2, last_event_created = $3, "
        "cancel_at_period_end = $4, plan_interval = coalesce($5, plan_interval), "
        "updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        subscription.get("id"),
        max(created, account["last_event_created"]) if same_subscription else created,
        bool(subscription.get("cancel_at_period_end")),
        interval,
    )
    return f"applied: {new_status}"


async def _invoice_event(
    db: Database,
    tenant_id: UUID,
    kind: str,
    invoice: dict[str, Any],
    created: int,
    gateway: StripeGateway | None,
) -> str:
    account = await db.fetchrow(
        "SELECT * FROM billing_accounts WHERE tenant_id = $1 FOR UPDATE", tenant_id
    )
    subscription_id = _invoice_subscription(invoice)
    if account is None or not subscription_id:
        return "recorded: not a subscription invoice"
    if account["stripe_subscription_id"] != subscription_id:
        return "skipped: not the workspace's subscription"
    status = await db.fetchval("SELECT subscription_status FROM tenants WHERE id = $1", tenant_id)
    if status == "canceled":
        return "skipped: the subscription is canceled"
    if gateway is not None:
        fresh = await gateway.subscription(subscription_id)
        new_status = _STATUSES.get(str(fresh.get("status")), "unpaid")
    elif created < account["last_event_created"]:
        return "skipped: older than the last event applied"
    elif kind in {"invoice.paid", "invoice.payment_succeeded"}:
        new_status = "active" if status in {"past_due", "unpaid"} else str(status)
    else:
        new_status = "past_due" if status in {"active", "trialing", "past_due"} else str(status)
    await _set_status(db, tenant_id, new_status, None, created)
    await db.execute(
        "UPDATE billing_accounts SET last_event_created = greatest(last_event_created, $2), "
        "updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        created,
    )
    if kind == "invoice.payment_action_required":
        return f"applied: {new_status} (the customer must confirm the payment)"
    return f"applied: {new_status}"


async def mirror_subscription(db: Database, tenant_id: UUID, subscription: dict[str, Any]) -> str:
    """Apply a subscription Orbit just received from Stripe's API (not from a webhook)."""
    new_status = _STATUSES.get(str(subscription.get("status")), "unpaid")
    plan, interval = _plan_and_interval(subscription)
    await _set_status(db, tenant_id, new_status, plan, int(datetime.now(UTC).timestamp()))
    await db.execute(
        "UPDATE billing_accounts SET stripe_subscription_id = $2, cancel_at_period_end = $3, "
        "plan_interval = coalesce($4, plan_interval), updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        subscription.get("id"),
        bool(subscription.get("cancel_at_period_end")),
        interval,
    )
    return new_status


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The invoice's subscription (top level before API 2025-03, under parent since)."""
    direct = invoice.get("subscription")
    if isinstance(direct, str) and direct:
        return direct
    details = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return str(details) if details else None


async def _set_status(
    db: Database, tenant_id: UUID, new_status: str, plan: str | None, created: int
) -> None:
    # A paid plan ends on cancellation: the workspace keeps its data, read-only.
    await db.execute(
        """
        UPDATE tenants SET subscription_status = $2::varchar, plan = coalesce($3, plan),
            past_due_since = CASE WHEN $2::varchar <> 'past_due' THEN NULL
                                  ELSE coalesce(past_due_since, $4) END
        WHERE id = $1
        """,
        tenant_id,
        new_status,
        plan,
        datetime.fromtimestamp(created, UTC),
    )


def _plan_and_interval(subscription: dict[str, Any]) -> tuple[str | None, str | None]:
    """The plan key (from the price's lookup key, or localstripe's plan id) and interval."""
    for item in (subscription.get("items") or {}).get("data", []):
        for source in (item.get("price"), item.get("plan")):
            if not source:
                continue
            recurring = source.get("recurring") or {}
            interval = recurring.get("interval") or source.get("interval")
            for candidate in (source.get("lookup_key"), source.get("id")):
                plan = str(candidate or "").rsplit("_", 1)[0]
                if plan in {"starter", "pro"}:
                    return plan, str(interval) if interval else None
    return None, None


# --- retries -------------------------------------------------------------------------

MAX_ERROR = 500


async def apply_or_queue(
    db: Database,
    event: dict[str, Any],
    gateway: StripeGateway | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Outcome:
    """Apply ``event`` in a savepoint; if that fails, queue it for the worker instead.

    The failed attempt leaves nothing behind (the savepoint is rolled back), and the
    event is stored with its next attempt time, so Orbit, not Stripe's redelivery,
    owns the retries. An event already queued is not queued twice.
    """
    await db.execute("SAVEPOINT stripe_event")
    try:
        outcome = await apply_event(db, event, gateway)
    except Exception as exc:
        await db.execute("ROLLBACK TO SAVEPOINT stripe_event")
        log.exception("Stripe event %s (%s) failed; queued for retry", event["id"], event["type"])
        now = datetime.now(UTC)
        await db.execute(
            """
            INSERT INTO stripe_event_retries (event_id, type, payload, next_attempt_at, last_error)
            VALUES ($1, $2, $3::jsonb, $4, $5) ON CONFLICT (event_id) DO NOTHING
            """,
            str(event["id"]),
            str(event["type"])[:100],
            json.dumps(event),
            policy.next_attempt(1, now, now) or now,
            f"{type(exc).__name__}: {exc}"[:MAX_ERROR],
        )
        return Outcome(str(event["id"]), "queued for retry")
    await db.execute("RELEASE SAVEPOINT stripe_event")
    return outcome


async def retry_stripe_events(
    db: Database,
    gateway: StripeGateway | None,
    policy: RetryPolicy = DEFAULT_POLICY,
    limit: int = 20,
) -> list[Outcome]:
    """Apply queued events that are due; a failure is tried again later, then given up.

    Given-up events stay in ``stripe_event_retries`` with status ``failed`` and their
    last error, for an operator (and are logged at ERROR).
    """
    async with db.transaction():
        due = await db.fetch(
            "SELECT event_id FROM stripe_event_retries WHERE status = 'pending' "
            "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1",
            limit,
        )
    outcomes: list[Outcome] = []
    for row in due:
        async with db.transaction():
            queued = await db.fetchrow(
                "SELECT payload, attempts, created_at FROM stripe_event_retries "
                "WHERE event_id = $1 AND status = 'pending' AND next_attempt_at <= now() "
                "FOR UPDATE SKIP LOCKED",
                row["event_id"],
            )
            if queued is None:
                continue  # another worker has it
            event = json.loads(queued["payload"])
            await db.execute("SAVEPOINT stripe_retry")
            try:
                outcome = await apply_event(db, event, gateway)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, and logged
                await db.execute("ROLLBACK TO SAVEPOINT stripe_retry")
                attempt = queued["attempts"] + 1
                retry_at = policy.next_attempt(attempt, queued["created_at"], datetime.now(UTC))
                status = "pending" if retry_at else "failed"
                log.log(
                    logging.WARNING if retry_at else logging.ERROR,
                    "Stripe event %s attempt %d failed (%s)%s",
                    row["event_id"],
                    attempt,
                    exc,
                    "" if retry_at else "; given up, see stripe_event_retries",
                )
                await db.execute(
                    "UPDATE stripe_event_retries SET attempts = $2, status = $3, "
                    "next_attempt_at = coalesce($4, next_attempt_at), last_error = $5, "
                    "updated_at = now() WHERE event_id = $1",
                    row["event_id"],
                    attempt,
                    status,
                    retry_at,
                    f"{type(exc).__name__}: {exc}"[:MAX_ERROR],
                )
                outcomes.append(Outcome(row["event_id"], f"failed: {status}"))
                continue
            await db.execute(
                "DELETE FROM stripe_event_retries WHERE event_id = $1", row["event_id"]
            )
            outcomes.append(outcome)
    return outcomes
