"""The Stripe gateway against localstripe: customers, tiered plans, subscriptions, invoices."""

from __future__ import annotations

import uuid

import stripe

from orbit.billing.catalog import plan
from orbit.billing.gateway import StripeGateway, gateway_from_settings, stripe_tiers
from orbit.platform.runtime import Runtime
from orbit.platform.settings import Settings
from tests.conftest import Member
from tests.integration.billing.conftest import subscribe


async def test_a_customer_is_created_once_per_workspace_and_linked(
    runtime: Runtime, gateway: StripeGateway, alice: Member, bob: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    async with runtime.db.transaction(tenant_id):
        first = await gateway.customer_for(runtime.db, tenant_id, "Alice", alice.email)
    async with runtime.db.transaction(tenant_id):
        again = await gateway.customer_for(runtime.db, tenant_id, "Alice", alice.email)
        linked = await runtime.db.fetchval("SELECT orbit_tenant_by_stripe_customer($1)", first)
    assert first == again
    assert first.startswith("cus_")
    assert linked == tenant_id
    customer = await gateway.client.v1.customers.retrieve_async(first)
    assert customer.metadata["tenant_id"] == str(tenant_id)
    # Bob's workspace sees no billing account of alice's.
    async with runtime.db.transaction(uuid.UUID(bob.workspace_id)):
        assert await runtime.db.fetchval("SELECT count(*) FROM billing_accounts") == 0


async def test_sync_catalog_creates_graduated_plans_and_is_idempotent(
    gateway: StripeGateway,
) -> None:
    again = await gateway.sync_catalog()
    assert "plan starter_monthly: unchanged" in again
    assert "plan pro_yearly: unchanged" in again
    remote = await gateway.client.v1.plans.retrieve_async("starter_monthly")
    assert remote.tiers_mode == "graduated"
    assert [(t.get("up_to"), int(t.get("unit_amount"))) for t in remote.to_dict()["tiers"]] == [
        ("10", 1500),
        ("50", 1200),
        ("inf", 900),
    ]


async def test_subscription_quantity_change_cancel_and_invoices(
    runtime: Runtime, gateway: StripeGateway, alice: Member
) -> None:
    customer, subscription_id = await subscribe(runtime, gateway, alice)
    created = await gateway.subscription(subscription_id)
    assert created["status"] == "active"
    assert created["items"]["data"][0]["quantity"] == 1
    assert created["items"]["data"][0]["plan"]["id"] == "starter_monthly"

    grown = await gateway.set_seats(subscription_id, 12, idempotency_key="t:grow")
    assert grown["items"]["data"][0]["quantity"] == 12
    unchanged = await gateway.set_seats(subscription_id, 12, idempotency_key="t:same")
    assert unchanged["items"]["data"][0]["quantity"] == 12
    preview = await gateway.next_invoice(customer, subscription_id)
    assert preview is not None
    assert any(line.quantity == 12 for line in preview.lines)

    invoices = await gateway.invoices(customer)
    assert invoices
    assert invoices[0].status == "paid"
    assert invoices[-1].total_cents == 1500  # the first seat of Starter's first tier

    canceling = await gateway.cancel_at_period_end(
        subscription_id, cancel=True, idempotency_key="t:cancel"
    )
    assert canceling["cancel_at_period_end"] is True
    resumed = await gateway.cancel_at_period_end(
        subscription_id, cancel=False, idempotency_key="t:resume"
    )
    assert resumed["cancel_at_period_end"] is False


async def test_change_plan_moves_the_seat_item_to_pro(
    runtime: Runtime, gateway: StripeGateway, alice: Member
) -> None:
    _, subscription_id = await subscribe(runtime, gateway, alice)
    moved = await gateway.change_plan(subscription_id, "pro", "month", 2, idempotency_key="t:pro")
    assert moved["items"]["data"][0]["plan"]["id"] == "pro_monthly"
    assert moved["items"]["data"][0]["quantity"] == 2


def test_no_stripe_key_means_no_gateway(settings: Settings) -> None:
    assert settings.stripe_secret_key is None
    assert gateway_from_settings(settings) is None


def test_stripe_prices_are_matched_by_their_tiers_offline() -> None:
    """Real Stripe has Prices (localstripe does not): the comparison sync-catalog makes."""
    from orbit.billing.gateway import _same_tiers  # noqa: PLC0415

    wanted = stripe_tiers(plan("starter").monthly_tiers)
    price = stripe.Price.construct_from(
        {
            "id": "price_1",
            "lookup_key": "starter_monthly",
            "tiers": [
                {"up_to": 10, "unit_amount": 1500, "flat_amount": None},
                {"up_to": 50, "unit_amount": 1200, "flat_amount": None},
                {"up_to": None, "unit_amount": 900, "flat_amount": None},
            ],
        },
        "sk_test",
    )
    assert _same_tiers(price.to_dict()["tiers"], wanted)
    changed = stripe_tiers(plan("pro").monthly_tiers)
    assert not _same_tiers(price.to_dict()["tiers"], changed)
