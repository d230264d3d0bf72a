"""Plan quotas behind one interface: contacts, seats, storage and emails a month."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from orbit.billing.catalog import plan
from orbit.platform.db.servers import Endpoints
from orbit.platform.events.mail import queue_email
from orbit.platform.runtime import Runtime
from orbit.tenants.quotas import QuotaExceededError, Quotas, month_key
from tests.conftest import Member

FREE = plan("free")


async def _admin_sql(endpoints: Endpoints, query: str, *args: object) -> object:
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        return await admin.fetchval(query, *args)
    finally:
        await admin.close()


async def _set_usage(endpoints: Endpoints, member: Member, counter: str, used: int) -> None:
    """Time passes: the workspace has used ``used`` (as the owner, past the app's RLS)."""
    await _admin_sql(
        endpoints,
        "INSERT INTO tenant_usage (tenant_id, quota, used) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id, quota) DO UPDATE SET used = EXCLUDED.used",
        uuid.UUID(member.workspace_id),
        counter,
        used,
    )


async def _contacts_counted(runtime: Runtime, member: Member) -> int:
    tenant_id = uuid.UUID(member.workspace_id)
    async with runtime.db.transaction(tenant_id):
        used = await runtime.db.fetchval(
            "SELECT used FROM tenant_usage WHERE tenant_id = $1 AND quota = 'contacts'",
            tenant_id,
        )
    return int(used or 0)


async def test_contact_count_follows_creates_and_deletes(runtime: Runtime, alice: Member) -> None:
    ids = []
    for name in ("A", "B", "C"):
        created = await alice.client.post("/api/v1/contacts", json={"first_name": name})
        ids.append(created.json()["id"])
    await alice.client.delete(f"/api/v1/contacts/{ids[0]}")
    assert await _contacts_counted(runtime, alice) == 2


async def test_the_contact_over_the_plan_is_refused_with_402_and_nothing_written(
    runtime: Runtime, endpoints: Endpoints, alice: Member, bob: Member
) -> None:
    await _set_usage(endpoints, alice, "contacts", FREE.contacts - 1)
    last = await alice.client.post("/api/v1/contacts", json={"first_name": "Last"})
    assert last.status_code == 201, last.text
    over = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Over", "company_name": "Brand New Co"}
    )
    assert over.status_code == 402
    body = over.json()
    assert "contacts quota exceeded" in body["detail"]
    assert f"{FREE.contacts:,}" in body["detail"]
    assert body["extra"] == [{"key": "contacts", "message": f"the plan allows {FREE.contacts:,}"}]
    names = [c["first_name"] for c in (await alice.client.get("/api/v1/contacts")).json()["items"]]
    assert names == ["Last"]
    assert (await alice.client.get("/api/v1/companies")).json()["items"] == []
    assert await _contacts_counted(runtime, alice) == FREE.contacts
    # Another workspace's quota is its own.
    assert (await bob.client.post("/api/v1/contacts", json={"first_name": "B"})).status_code == 201
    # Deleting one makes room again.
    await alice.client.delete(f"/api/v1/contacts/{last.json()['id']}")
    again = await alice.client.post("/api/v1/contacts", json={"first_name": "Again"})
    assert again.status_code == 201


async def test_imports_check_their_row_count_before_writing(
    runtime: Runtime, endpoints: Endpoints, alice: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    await _set_usage(endpoints, alice, "contacts", FREE.contacts - 100)
    quotas = Quotas(runtime.db)
    async with runtime.db.transaction(tenant_id):
        await quotas.check_contacts(tenant_id, adding=100)
        with pytest.raises(QuotaExceededError) as refused:
            await quotas.check_contacts(tenant_id, adding=101)
    assert refused.value.quota == "contacts"
    assert refused.value.limit == FREE.contacts
    assert "room for 100" in refused.value.message


async def test_emails_a_month_are_counted_by_the_outbox_and_refused_over_the_plan(
    runtime: Runtime, endpoints: Endpoints, alice: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    await _set_usage(endpoints, alice, month_key(), FREE.emails_per_month - 1)
    async with runtime.db.transaction(tenant_id):
        await queue_email(runtime.db, tenant_id, "a@example.com", "Hi", "Body")
        with pytest.raises(QuotaExceededError) as refused:
            await queue_email(runtime.db, tenant_id, "b@example.com", "Hi", "Body")
        queued = await runtime.db.fetchval(
            "SELECT count(*) FROM outbox_emails WHERE tenant_id = $1", tenant_id
        )
    assert queued == 1
    assert refused.value.quota == "emails_per_month"
    assert f"{FREE.emails_per_month:,} emails a month" in refused.value.message
    async with runtime.db.transaction(tenant_id):
        usage = {u.quota: u for u in await Quotas(runtime.db).usage(tenant_id)}
    assert usage["emails_per_month"].used == FREE.emails_per_month
    assert usage["seats"].used == 1
    assert usage["seats"].limit == FREE.seats


async def test_storage_is_counted_and_refused_over_the_plan(
    runtime: Runtime, alice: Member
) -> None:
    tenant_id = uuid.UUID(alice.workspace_id)
    quotas = Quotas(runtime.db)
    limit = FREE.storage_mb * 1024 * 1024
    async with runtime.db.transaction(tenant_id):
        assert await quotas.use_storage(tenant_id, limit - 10) == limit - 10
        with pytest.raises(QuotaExceededError) as refused:
            await quotas.use_storage(tenant_id, 11)
        assert await quotas.use_storage(tenant_id, -limit) == 0  # freeing never goes below 0
    assert refused.value.quota == "storage"
    assert f"{FREE.storage_mb:,} MB of storage" in refused.value.message


async def test_seats_are_checked_by_the_same_interface(alice: Member) -> None:
    statuses = []
    for n in range(FREE.seats):
        response = await alice.client.post(
            "/api/v1/invitations", json={"email": f"seat{n}@example.com", "role": "member"}
        )
        statuses.append(response.status_code)
    assert statuses == [201] * (FREE.seats - 1) + [402]


async def test_usage_is_shown_per_workspace(alice: Member, bob: Member) -> None:
    await alice.client.post("/api/v1/contacts", json={"first_name": "Counted"})
    mine = {u["quota"]: u for u in (await alice.client.get("/api/v1/usage")).json()}
    theirs = {u["quota"]: u for u in (await bob.client.get("/api/v1/usage")).json()}
    assert mine["contacts"] == {"quota": "contacts", "used": 1, "limit": FREE.contacts}
    assert theirs["contacts"]["used"] == 0
    assert mine["seats"]["limit"] == FREE.seats
    assert set(mine) == {"contacts", "seats", "storage", "emails_per_month"}


async def test_the_contact_form_says_why_when_the_quota_is_full(
    endpoints: Endpoints, alice: Member
) -> None:
    await _set_usage(endpoints, alice, "contacts", FREE.contacts)
    response = await alice.client.post(
        f"/t/{alice.slug}/contacts", data={"first_name": "Full", "csrf_token": alice.csrf}
    )
    assert response.status_code == 422
    assert "contacts quota exceeded" in response.text
    assert (await alice.client.get("/api/v1/contacts")).json()["items"] == []
