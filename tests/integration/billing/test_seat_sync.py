"""Seat sync: member changes reach the Stripe subscription's quantity, even after an outage."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from orbit.billing.gateway import StripeGateway
from orbit.billing.seats import sync_due_seats, sync_tenant_seats
from orbit.platform.events.backoff import RetryPolicy
from orbit.platform.runtime import Runtime
from tests.conftest import Member, sign_up
from tests.integration.billing.conftest import subscribe

NOW = RetryPolicy(first_delay=timedelta(0), max_delay=timedelta(0))
"""Retries due at once, so a test need not wait out the backoff."""


async def _join(app: object, owner: Member) -> tuple[Member, str]:
    email = f"{secrets.token_hex(4)}@example.com"
    invited = await owner.client.post(
        "/api/v1/invitations", json={"email": email, "role": "member"}
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, "Joiner", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    members = (await owner.client.get("/api/v1/members")).json()
    membership = next(m["id"] for m in members if m["email"] == email)
    return member, membership


async def _quantity(gateway: StripeGateway, subscription_id: str) -> int:
    subscription = await gateway.subscription(subscription_id)
    return int(subscription["items"]["data"][0]["quantity"])


async def _pending(runtime: Runtime, member: Member) -> list[dict[str, object]]:
    tenant_id = uuid.UUID(member.workspace_id)
    async with runtime.db.transaction(tenant_id):
        rows = await runtime.db.fetch(
            "SELECT attempts, outcome FROM billing_seat_syncs "
            "WHERE tenant_id = $1 AND applied_at IS NULL",
            tenant_id,
        )
    return [dict(row) for row in rows]


async def test_accepting_and_deactivating_members_sets_the_subscription_quantity(
    app: object, runtime: Runtime, gateway: StripeGateway, alice: Member, bob: Member
) -> None:
    _, subscription = await subscribe(runtime, gateway, alice)
    _, bobs_subscription = await subscribe(runtime, gateway, bob)
    assert await _quantity(gateway, subscription) == 1
    _, first = await _join(app, alice)
    _, second = await _join(app, alice)
    results = await sync_tenant_seats(runtime.db, gateway, uuid.UUID(alice.workspace_id))
    assert results is not None
    assert results.outcome == "applied: 3 seats"
    assert results.rows == 2  # both acceptances, one absolute update
    assert await _quantity(gateway, subscription) == 3

    response = await alice.client.put(
        f"/api/v1/members/{first}/status", json={"status": "deactivated"}
    )
    assert response.status_code == 200, response.text
    await sync_tenant_seats(runtime.db, gateway, uuid.UUID(alice.workspace_id))
    assert await _quantity(gateway, subscription) == 2
    assert await _pending(runtime, alice) == []
    # The other workspace's subscription never moved.
    assert await _quantity(gateway, bobs_subscription) == 1
    # Nor can bob deactivate alice's member through his own workspace.
    denied = await bob.client.put(
        f"/api/v1/members/{second}/status", json={"status": "deactivated"}
    )
    assert denied.status_code == 404


async def test_seat_changes_while_stripe_is_unreachable_are_applied_once_it_returns(
    app: object, runtime: Runtime, gateway: StripeGateway, alice: Member
) -> None:
    _, subscription = await subscribe(runtime, gateway, alice)
    await _join(app, alice)
    down = StripeGateway("sk_test_orbit", "http://127.0.0.1:9")  # nothing listens there
    for _ in range(3):
        result = await sync_tenant_seats(
            runtime.db, down, uuid.UUID(alice.workspace_id), policy=NOW
        )
        assert result is not None
        assert result.outcome.startswith("failed: APIConnectionError")
    pending = await _pending(runtime, alice)
    assert [row["attempts"] for row in pending] == [3]
    assert await _quantity(gateway, subscription) == 1

    results = await sync_due_seats(runtime.db, gateway, policy=NOW)
    mine = [r for r in results if r.tenant_id == uuid.UUID(alice.workspace_id)]
    assert [r.outcome for r in mine] == ["applied: 2 seats"]
    assert await _quantity(gateway, subscription) == 2
    assert await _pending(runtime, alice) == []


async def test_a_failed_sync_waits_for_its_backoff(
    app: object, runtime: Runtime, gateway: StripeGateway, alice: Member
) -> None:
    await subscribe(runtime, gateway, alice)
    await _join(app, alice)
    down = StripeGateway("sk_test_orbit", "http://127.0.0.1:9")
    failed = await sync_tenant_seats(runtime.db, down, uuid.UUID(alice.workspace_id))
    assert failed is not None
    assert failed.outcome.startswith("failed")
    # Not due again for 30 s (the default policy's first delay): nothing to do now.
    assert await sync_tenant_seats(runtime.db, gateway, uuid.UUID(alice.workspace_id)) is None


async def test_a_free_workspace_records_its_seat_changes_without_stripe(
    app: object, runtime: Runtime, alice: Member
) -> None:
    await _join(app, alice)
    result = await sync_tenant_seats(runtime.db, None, uuid.UUID(alice.workspace_id))
    assert result is not None
    assert result.outcome == "skipped: Stripe not configured"
    assert await _pending(runtime, alice) == []


async def test_a_canceled_subscription_is_not_sent_seat_counts(
    app: object, runtime: Runtime, gateway: StripeGateway, alice: Member
) -> None:
    _, subscription = await subscribe(runtime, gateway, alice)
    await _join(app, alice)
    tenant_id = uuid.UUID(alice.workspace_id)
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "UPDATE tenants SET subscription_status = 'canceled' WHERE id = $1", tenant_id
        )
    await gateway.client.v1.subscriptions.cancel_async(subscription)
    result = await sync_tenant_seats(runtime.db, gateway, tenant_id)
    assert result is not None
    assert result.outcome == "skipped: no subscription"
    assert await _pending(runtime, alice) == []


async def test_the_team_page_deactivates_a_member_and_queues_a_seat_sync(
    app: object, runtime: Runtime, alice: Member
) -> None:
    _, membership = await _join(app, alice)
    tenant_id = uuid.UUID(alice.workspace_id)
    await sync_tenant_seats(runtime.db, None, tenant_id)  # settle the acceptance
    page = await alice.client.get(f"/t/{alice.slug}/members")
    assert 'id="change-status"' in page.text
    response = await alice.client.post(
        f"/t/{alice.slug}/members/status",
        data={"membership_id": membership, "status": "deactivated"},
    )
    assert response.status_code == 303
    members = (await alice.client.get("/api/v1/members")).json()
    assert next(m["status"] for m in members if m["id"] == membership) == "deactivated"
    assert len(await _pending(runtime, alice)) == 1
    # The owner cannot be deactivated; the page says why.
    owner = next(m["id"] for m in members if m["role"] == "owner")
    refused = await alice.client.post(
        f"/t/{alice.slug}/members/status", data={"membership_id": owner, "status": "deactivated"}
    )
    assert refused.status_code == 422
    assert "the owner cannot be deactivated" in refused.text
