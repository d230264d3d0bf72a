"""Webhooks over real HTTP with localstripe as Stripe: delivery, re-reads, checkout, invoices.

localstripe sends the subscription events it knows itself (signed with the endpoint's
secret); Checkout and some invoice events it lacks are signed by the test with Stripe's
scheme. With the gateway configured, the app re-reads the subscription before applying.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx

from orbit.billing.gateway import StripeGateway
from orbit.billing.webhooks import retry_stripe_events
from orbit.platform.events.backoff import RetryPolicy
from orbit.platform.runtime import Runtime
from tests.conftest import STRIPE_WEBHOOK_SECRET, Member
from tests.integration.billing.conftest import subscribe
from tests.integration.billing.test_stripe_webhooks import URL, signed, subscription_event

FAST = RetryPolicy(
    first_delay=timedelta(milliseconds=10),
    max_delay=timedelta(seconds=1),
    window=timedelta(minutes=5),
)


async def _post(live_app_url: str, event: dict[str, Any]) -> httpx.Response:
    body, signature = signed(event)
    async with httpx.AsyncClient(base_url=live_app_url) as client:
        return await client.post(
            URL,
            content=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )


async def _state(runtime: Runtime, member: Member) -> dict[str, Any]:
    tenant_id = uuid.UUID(member.workspace_id)
    async with runtime.db.transaction(tenant_id):
        row = await runtime.db.fetchrow(
            "SELECT t.plan, t.subscription_status, t.past_due_since, a.stripe_customer_id, "
            "a.stripe_subscription_id, a.cancel_at_period_end FROM tenants t "
            "LEFT JOIN billing_accounts a ON a.tenant_id = t.id WHERE t.id = $1",
            tenant_id,
        )
    assert row is not None
    return dict(row)


async def _eventually(runtime: Runtime, member: Member, key: str, value: object) -> None:
    deadline = time.monotonic() + 15
    while (await _state(runtime, member))[key] != value:
        assert time.monotonic() < deadline, await _state(runtime, member)
        await asyncio.sleep(0.2)


def _event(kind: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(8)}",
        "type": kind,
        "created": created or int(time.time()),
        "data": {"object": obj},
    }


async def test_localstripe_delivers_subscription_events_to_the_running_app(
    runtime: Runtime,
    billing: StripeGateway,
    localstripe_url: str,
    live_app_url: str,
    alice: Member,
    bob: Member,
) -> None:
    async with httpx.AsyncClient() as client:
        configured = await client.post(
            f"{localstripe_url}/_config/webhooks/orbit",
            data={"url": f"{live_app_url}{URL}", "secret": STRIPE_WEBHOOK_SECRET},
        )
    assert configured.status_code == 200
    bob_before = await _state(runtime, bob)
    _, subscription_id = await subscribe(runtime, billing, alice)
    # The subscription exists in Stripe; localstripe's signed event makes it Starter here.
    await _eventually(runtime, alice, "plan", "starter")
    await _eventually(runtime, alice, "subscription_status", "active")
    await billing.client.v1.subscriptions.cancel_async(subscription_id)
    await _eventually(runtime, alice, "subscription_status", "canceled")
    assert await _state(runtime, bob) == bob_before


async def test_checkout_completed_links_the_workspace_from_client_reference_id(
    runtime: Runtime, billing: StripeGateway, live_app_url: str, alice: Member, bob: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    # What Checkout would have made: a customer and a subscription Orbit has not linked yet.
    token = await billing.client.v1.tokens.create_async(
        {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}}  # type: ignore[typeddict-item]
    )
    customer = await billing.client.v1.customers.create_async(
        {"name": "checkout", "source": token.id}
    )
    subscription = await billing.client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"plan": "pro_monthly", "quantity": 1}]}  # type: ignore[typeddict-item]
    )
    session = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "client_reference_id": str(tenant_id),
        "customer": customer.id,
        "subscription": subscription.id,
        "mode": "subscription",
    }
    response = await _post(live_app_url, _event("checkout.session.completed", session))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "applied: active"
    state = await _state(runtime, alice)
    assert state["stripe_customer_id"] == customer.id
    assert state["stripe_subscription_id"] == subscription.id
    assert (state["plan"], state["subscription_status"]) == ("pro", "active")
    async with runtime.db.transaction(tenant_id):
        queued = await runtime.db.fetchval(
            "SELECT count(*) FROM billing_seat_syncs WHERE tenant_id = $1 AND applied_at IS NULL",
            tenant_id,
        )
    assert queued == 1
    assert (await _state(runtime, bob))["stripe_customer_id"] is None


async def test_a_late_updated_cannot_resurrect_a_canceled_subscription_with_rereads(
    runtime: Runtime, billing: StripeGateway, live_app_url: str, alice: Member
) -> None:
    customer, subscription_id = await subscribe(runtime, billing, alice)
    now = int(time.time())
    await billing.client.v1.subscriptions.cancel_async(subscription_id)
    deleted = subscription_event("deleted", customer, "canceled", now, subscription_id)
    late = subscription_event("updated", customer, "active", now - 60, subscription_id)
    for event in (deleted, late, late):
        assert (await _post(live_app_url, event)).status_code == 200
    assert (await _state(runtime, alice))["subscription_status"] == "canceled"


async def test_the_same_event_ten_times_over_http_changes_state_once(
    runtime: Runtime, billing: StripeGateway, live_app_url: str, alice: Member
) -> None:
    customer, subscription_id = await subscribe(runtime, billing, alice)
    event = subscription_event("updated", customer, "active", int(time.time()), subscription_id)
    results = [(await _post(live_app_url, event)).json()["result"] for _ in range(10)]
    assert results == ["applied: active"] + ["duplicate"] * 9


async def test_invoice_events_move_the_status_without_a_gateway(
    runtime: Runtime, live_app_url: str, alice: Member, bob: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    customer = f"cus_{secrets.token_hex(6)}"
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "INSERT INTO billing_accounts (tenant_id, stripe_customer_id, stripe_subscription_id)"
            " VALUES ($1, $2, 'sub_inv')",
            tenant_id,
            customer,
        )
    now = int(time.time())
    invoice = {"object": "invoice", "customer": customer, "subscription": "sub_inv"}
    failed = await _post(live_app_url, _event("invoice.payment_failed", invoice, now))
    assert failed.json()["result"] == "applied: past_due"
    state = await _state(runtime, alice)
    assert state["subscription_status"] == "past_due"
    assert state["past_due_since"] is not None
    action = await _post(live_app_url, _event("invoice.payment_action_required", invoice, now))
    assert action.json()["result"].startswith("applied: past_due")
    paid = await _post(live_app_url, _event("invoice.paid", invoice, now + 1))
    assert paid.json()["result"] == "applied: active"
    state = await _state(runtime, alice)
    assert (state["subscription_status"], state["past_due_since"]) == ("active", None)
    # Another subscription's invoice changes nothing, nor does alice's touch bob.
    other = {"object": "invoice", "customer": customer, "subscription": "sub_other"}
    skipped = await _post(live_app_url, _event("invoice.payment_failed", other, now + 2))
    assert skipped.json()["result"] == "skipped: not the workspace's subscription"
    assert (await _state(runtime, bob))["subscription_status"] == "active"


async def test_trial_will_end_is_recorded(
    runtime: Runtime, live_app_url: str, alice: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    customer = f"cus_{secrets.token_hex(6)}"
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "INSERT INTO billing_accounts (tenant_id, stripe_customer_id) VALUES ($1, $2)",
            tenant_id,
            customer,
        )
    event = _event(
        "customer.subscription.trial_will_end",
        {"id": "sub_t", "customer": customer, "trial_end": 1_900_000_000},
    )
    response = await _post(live_app_url, event)
    assert response.json()["result"] == "noted: trial ends at 1900000000"


async def test_a_processing_failure_is_queued_and_the_worker_applies_it_later(
    app: Any, runtime: Runtime, live_app_url: str, alice: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    customer = f"cus_{secrets.token_hex(6)}"
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "INSERT INTO billing_accounts (tenant_id, stripe_customer_id) VALUES ($1, $2)",
            tenant_id,
            customer,
        )
    before = runtime.billing
    runtime.billing = StripeGateway("sk_test_orbit", "http://127.0.0.1:9")  # Stripe down
    metric = app.state["metrics"].stripe_webhooks.labels("queued")
    queued = metric._value.get()
    try:
        event = subscription_event("updated", customer, "past_due", int(time.time()), "sub_x")
        response = await _post(live_app_url, event)
        again = await _post(live_app_url, event)  # Stripe delivering it twice changes nothing
        # Still down when the worker first tries: it stays queued, later.
        async with runtime.db.transaction():
            await runtime.db.execute(
                "UPDATE stripe_event_retries SET next_attempt_at = now() WHERE event_id = $1",
                event["id"],
            )
        still_down = await retry_stripe_events(runtime.db, runtime.billing, FAST)
    finally:
        runtime.billing = before
    assert response.status_code == 200
    assert response.json()["result"] == "queued for retry"
    assert again.json()["result"] == "queued for retry"
    # At least these two (localstripe's own deliveries may arrive while Stripe is "down").
    assert metric._value.get() >= queued + 2
    assert [o.result for o in still_down if o.event_id == event["id"]] == ["failed: pending"]
    async with runtime.db.transaction():
        stored = await runtime.db.fetchval(
            "SELECT count(*) FROM stripe_events WHERE id = $1", event["id"]
        )
        retry = await runtime.db.fetchrow(
            "SELECT status, attempts, last_error FROM stripe_event_retries WHERE event_id = $1",
            event["id"],
        )
    assert stored == 0  # the failed attempts left nothing behind
    assert retry is not None
    assert (retry["status"], retry["attempts"]) == ("pending", 2)
    assert retry["last_error"]
    assert (await _state(runtime, alice))["subscription_status"] != "past_due"
    # Stripe is back: the next due retry applies it, once.
    async with runtime.db.transaction():
        await runtime.db.execute(
            "UPDATE stripe_event_retries SET next_attempt_at = now() WHERE event_id = $1",
            event["id"],
        )
    applied = await retry_stripe_events(runtime.db, runtime.billing, FAST)
    assert [o.result for o in applied if o.event_id == event["id"]] == ["applied: past_due"]
    assert (await _state(runtime, alice))["subscription_status"] == "past_due"
    again_later = await retry_stripe_events(runtime.db, runtime.billing, FAST)
    assert [o for o in again_later if o.event_id == event["id"]] == []
