"""The billing page: plan, seats, the bill's arithmetic, upgrades, cancel/resume, the trial."""

from __future__ import annotations

import re
import uuid

import pytest

from orbit.billing.gateway import StripeGateway
from orbit.billing.seats import sync_tenant_seats
from orbit.billing.service import end_expired_trials
from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.billing.test_seat_sync import _join


def _command(html: str) -> str:
    found = re.search(r'name="command_id" value="([0-9a-f]+)"', html)
    assert found, "the page's forms carry a command id"
    return found.group(1)


async def _status(runtime: Runtime, member: Member) -> tuple[str, str]:
    tenant_id = uuid.UUID(member.workspace_id)
    async with runtime.db.transaction(tenant_id):
        row = await runtime.db.fetchrow(
            "SELECT plan, subscription_status FROM tenants WHERE id = $1", tenant_id
        )
    assert row is not None
    return row["plan"], row["subscription_status"]


async def test_without_stripe_paid_plans_are_unavailable_and_free_works(
    runtime: Runtime, alice: Member
) -> None:
    assert runtime.billing is None
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    assert page.status_code == 200
    assert 'id="paid-unavailable"' in page.text
    assert 'id="change-plan"' not in page.text
    assert "What 1 seats would cost on Starter" in page.text
    refused = await alice.client.post(
        f"/t/{alice.slug}/billing/plan",
        data={"plan": "starter", "interval": "month", "command_id": "c1"},
    )
    assert refused.status_code == 422
    assert "Paid plans are unavailable" in refused.text
    assert await _status(runtime, alice) == ("free", "active")
    # The free tier works: contacts can be created.
    created = await alice.client.post("/api/v1/contacts", json={"first_name": "Free"})
    assert created.status_code == 201, created.text


async def test_billing_is_for_owners_and_admins_only(app: object, alice: Member) -> None:
    member, _ = await _join(app, alice)
    assert (await member.client.get(f"/t/{alice.slug}/billing/")).status_code == 403
    assert (await member.client.post(f"/t/{alice.slug}/billing/trial")).status_code == 403
    home = await alice.client.get(f"/t/{alice.slug}/")
    assert f'href="/t/{alice.slug}/billing"' in home.text
    members_home = await member.client.get(f"/t/{alice.slug}/")
    assert f'href="/t/{alice.slug}/billing"' not in members_home.text


async def test_upgrade_add_a_seat_see_the_next_invoice_change_and_cancel(
    app: object, runtime: Runtime, billing: StripeGateway, alice: Member, bob: Member
) -> None:
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    upgraded = await alice.client.post(
        f"/t/{alice.slug}/billing/plan",
        data={"plan": "starter", "interval": "month", "command_id": _command(page.text)},
    )
    assert upgraded.status_code == 303, upgraded.text
    assert await _status(runtime, alice) == ("starter", "active")
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    assert 'id="plan-name">Starter (monthly)' in page.text
    assert 'id="estimate-total">$15.00' in page.text
    assert 'id="upcoming-total">' in page.text
    assert "No invoices yet." not in page.text

    await _join(app, alice)  # a second seat
    await sync_tenant_seats(runtime.db, billing, uuid.UUID(alice.workspace_id))
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    assert "2 of 1,000 used" in page.text
    assert 'id="estimate-total">$30.00' in page.text
    assert "<td>1–2</td><td>2</td><td>$15.00</td><td>$30.00</td>" in page.text

    canceled = await alice.client.post(
        f"/t/{alice.slug}/billing/cancel", data={"command_id": _command(page.text)}
    )
    assert canceled.status_code == 303
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    assert "cancels at the end of the period" in page.text
    resumed = await alice.client.post(
        f"/t/{alice.slug}/billing/resume", data={"command_id": _command(page.text)}
    )
    assert resumed.status_code == 303
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    assert "cancels at the end of the period" not in page.text
    # Bob's workspace: untouched, and he cannot reach alice's billing.
    assert await _status(runtime, bob) == ("free", "active")
    assert (await bob.client.get(f"/t/{alice.slug}/billing/")).status_code in {403, 404}


async def test_the_same_upgrade_form_twice_makes_one_subscription(
    runtime: Runtime, billing: StripeGateway, alice: Member
) -> None:
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    command = _command(page.text)
    # The first submit subscribes; the repeat is then a plan change to the same plan.
    for _ in range(2):
        response = await alice.client.post(
            f"/t/{alice.slug}/billing/plan",
            data={"plan": "pro", "interval": "year", "command_id": command},
        )
        assert response.status_code == 303
    tenant_id = uuid.UUID(alice.workspace_id)
    async with runtime.db.transaction(tenant_id):
        customer = await runtime.db.fetchval(
            "SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = $1", tenant_id
        )
    subscriptions = await billing.client.v1.subscriptions.list_async({"customer": customer})
    assert len(subscriptions.data) == 1
    assert await _status(runtime, alice) == ("pro", "active")


@pytest.mark.usefixtures("billing")
async def test_a_pro_trial_without_a_card_then_free_again(
    runtime: Runtime, alice: Member, bob: Member
) -> None:
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    assert 'id="start-trial"' in page.text
    started = await alice.client.post(f"/t/{alice.slug}/billing/trial")
    assert started.status_code == 303
    assert await _status(runtime, alice) == ("pro", "trialing")
    again = await alice.client.post(f"/t/{alice.slug}/billing/trial")
    assert again.status_code == 422
    tenant_id = uuid.UUID(alice.workspace_id)
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "UPDATE tenants SET trial_ends_at = now() - interval '1 second' WHERE id = $1",
            tenant_id,
        )
    assert await end_expired_trials(runtime.db) >= 1
    assert await _status(runtime, alice) == ("free", "active")
    assert await _status(runtime, bob) == ("free", "active")


@pytest.mark.usefixtures("billing")
async def test_a_read_only_workspace_can_still_reach_billing(
    runtime: Runtime, alice: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "UPDATE tenants SET subscription_status = 'canceled' WHERE id = $1", tenant_id
        )
    refused = await alice.client.post("/api/v1/contacts", json={"first_name": "No"})
    assert refused.status_code == 402
    page = await alice.client.get(f"/t/{alice.slug}/billing/")
    upgraded = await alice.client.post(
        f"/t/{alice.slug}/billing/plan",
        data={"plan": "starter", "interval": "month", "command_id": _command(page.text)},
    )
    assert upgraded.status_code == 303, upgraded.text
    assert await _status(runtime, alice) == ("starter", "active")
