"""Stripe webhooks: signed, idempotent, order-independent, and walled per workspace."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import httpx

from orbit.billing.webhooks import link_customer
from orbit.platform.runtime import Runtime
from tests.conftest import STRIPE_WEBHOOK_SECRET, Member, make_client

URL = "/billing/stripe/webhook"


def signed(event: dict[str, Any], secret: str = STRIPE_WEBHOOK_SECRET) -> tuple[bytes, str]:
    """A body and its Stripe-Signature header, made with Stripe's documented scheme."""
    body = json.dumps(event).encode()
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={digest}"


def subscription_event(
    kind: str, customer: str, status: str, created: int, subscription: str = "sub_1"
) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(8)}",
        "type": f"customer.subscription.{kind}",
        "created": created,
        "data": {
            "object": {
                "id": subscription,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "items": {"data": [{"price": {"lookup_key": "starter_monthly"}}]},
            }
        },
    }


async def deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    body, signature = signed(event)
    return await client.post(
        URL,
        content=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )


async def _customer(runtime: Runtime, member: Member) -> str:
    customer = f"cus_{secrets.token_hex(6)}"
    async with runtime.db.transaction():
        await link_customer(runtime.db, uuid.UUID(member.workspace_id), customer)
    return customer


async def _state(runtime: Runtime, member: Member) -> tuple[str, str]:
    async with runtime.db.transaction(uuid.UUID(member.workspace_id)):
        row = await runtime.db.fetchrow(
            "SELECT plan, subscription_status FROM tenants WHERE id = $1",
            uuid.UUID(member.workspace_id),
        )
    assert row is not None
    return row["plan"], row["subscription_status"]


async def test_the_same_event_ten_times_changes_state_once(
    app: object, runtime: Runtime, alice: Member
) -> None:
    customer = await _customer(runtime, alice)
    event = subscription_event("updated", customer, "past_due", int(time.time()))
    async with make_client(app) as stripe_client:
        results = [(await deliver(stripe_client, event)).json()["result"] for _ in range(10)]
    assert results[0] == "applied: past_due"
    assert set(results[1:]) == {"duplicate"}
    assert await _state(runtime, alice) == ("starter", "past_due")
    async with runtime.db.transaction():
        assert (
            await runtime.db.fetchval(
                "SELECT count(*) FROM stripe_events WHERE id = $1", event["id"]
            )
            == 1
        )


async def test_deleted_before_a_late_updated_ends_canceled(
    app: object, runtime: Runtime, alice: Member
) -> None:
    customer = await _customer(runtime, alice)
    now = int(time.time())
    async with make_client(app) as stripe_client:
        created = await deliver(
            stripe_client, subscription_event("created", customer, "active", now - 30)
        )
        deleted = await deliver(
            stripe_client, subscription_event("deleted", customer, "canceled", now)
        )
        late = await deliver(
            stripe_client, subscription_event("updated", customer, "active", now - 10)
        )
        newer_update = await deliver(
            stripe_client, subscription_event("updated", customer, "active", now + 10)
        )
    assert created.json()["result"] == "applied: active"
    assert deleted.json()["result"] == "applied: canceled"
    assert late.json()["result"].startswith("skipped")
    assert newer_update.json()["result"] == "skipped: the subscription is canceled"
    assert await _state(runtime, alice) == ("starter", "canceled")
    # A canceled workspace is read-only: data stays, writes get a 402.
    assert (await alice.client.get("/api/v1/contacts")).status_code == 200
    assert (
        await alice.client.post("/api/v1/contacts", json={"first_name": "X"})
    ).status_code == 402


async def test_a_bad_signature_is_refused_and_changes_nothing(
    app: object, runtime: Runtime, alice: Member
) -> None:
    customer = await _customer(runtime, alice)
    event = subscription_event("updated", customer, "unpaid", int(time.time()))
    body, _ = signed(event)
    _, forged = signed(event, secret="whsec_someone_else")
    async with make_client(app) as stripe_client:
        response = await stripe_client.post(URL, content=body, headers={"Stripe-Signature": forged})
        missing = await stripe_client.post(URL, content=body)
    assert response.status_code == 400
    assert "invalid Stripe signature" in response.json()["detail"]
    assert missing.status_code == 400
    assert await _state(runtime, alice) == ("free", "active")
    async with runtime.db.transaction():
        assert (
            await runtime.db.fetchval(
                "SELECT count(*) FROM stripe_events WHERE id = $1", event["id"]
            )
            == 0
        )


async def test_an_unknown_customer_is_recorded_and_ignored(app: object, runtime: Runtime) -> None:
    event = subscription_event("updated", "cus_nobody_knows", "active", int(time.time()))
    async with make_client(app) as stripe_client:
        response = await deliver(stripe_client, event)
    assert response.status_code == 200
    assert response.json()["result"] == "ignored: unknown customer"


async def test_an_event_for_one_workspace_never_changes_another(
    app: object, runtime: Runtime, alice: Member, bob: Member
) -> None:
    customer = await _customer(runtime, alice)
    await _customer(runtime, bob)
    async with make_client(app) as stripe_client:
        await deliver(
            stripe_client, subscription_event("updated", customer, "unpaid", int(time.time()))
        )
    assert await _state(runtime, alice) == ("starter", "unpaid")
    assert await _state(runtime, bob) == ("free", "active")
