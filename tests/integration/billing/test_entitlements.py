"""Plans and subscription status limit what a workspace may do."""

from __future__ import annotations

import re
import uuid

import asyncpg
import pytest

from orbit.platform.db.servers import Endpoints
from tests.conftest import Member, api_key, bearer, make_client

# Writes that stay open while read-only: the user's own session and account.
ALLOWED_WHILE_READ_ONLY = {"/api/v1/logout"}
# Writes without a workspace: anyone may still sign up or log in.
NOT_WORKSPACE_WRITES = {"/api/v1/signup", "/api/v1/login", "/billing/stripe/webhook"}


async def _set_status(endpoints: Endpoints, member: Member, status: str) -> None:
    admin = await asyncpg.connect(endpoints.admin_dsn)  # billing's webhook will do this
    try:
        await admin.execute(
            "UPDATE tenants SET subscription_status = $2 WHERE id = $1",
            uuid.UUID(member.workspace_id),
            status,
        )
    finally:
        await admin.close()


async def test_the_free_plan_stops_the_fourth_seat_with_an_upgrade_prompt(alice: Member) -> None:
    for n in (1, 2):
        invited = await alice.client.post(
            "/api/v1/invitations", json={"email": f"seat{n}-{alice.slug}@example.com"}
        )
        assert invited.status_code == 201
    refused = await alice.client.post(
        "/api/v1/invitations", json={"email": f"seat3-{alice.slug}@example.com"}
    )
    assert refused.status_code == 402
    assert "3 seats" in refused.json()["detail"]
    assert "upgrade to Starter" in refused.json()["detail"]
    assert len((await alice.client.get("/api/v1/invitations")).json()) == 2
    # Revoking an open invitation frees its seat.
    first = (await alice.client.get("/api/v1/invitations")).json()[0]["id"]
    assert (await alice.client.delete(f"/api/v1/invitations/{first}")).status_code == 204
    again = await alice.client.post(
        "/api/v1/invitations", json={"email": f"seat3-{alice.slug}@example.com"}
    )
    assert again.status_code == 201


@pytest.mark.parametrize("status", ["unpaid", "canceled"])
async def test_a_read_only_workspace_refuses_every_write_and_keeps_reads(
    app: object, endpoints: Endpoints, alice: Member, status: str
) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Kept"})).json()
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    await _set_status(endpoints, alice, status)
    async with make_client(app) as anonymous:
        spec = (await anonymous.get("/api/docs/openapi.json")).json()
    writes = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
        and path not in ALLOWED_WHILE_READ_ONLY | NOT_WORKSPACE_WRITES
    ]
    assert len(writes) > 20  # the walk covers new endpoints automatically
    sample_id = str(uuid.uuid4())
    for method, path in writes:
        # Every path parameter (ids, tokens, plugins' own) gets a well-formed value, so
        # each request reaches its route instead of a 404 from routing.
        url = re.sub(r"\{[^}]+\}", sample_id, path)
        response = await alice.client.request(method, url, json={})
        assert response.status_code == 402, (method, path, response.status_code, response.text)
        assert "read-only" in response.json()["detail"]
    async with bearer(app, key) as client:
        by_key = await client.post("/api/v1/contacts", json={"first_name": "Nope"})
        assert by_key.status_code == 402
        assert (await client.get(f"/api/v1/contacts/{contact['id']}")).status_code == 200
    listed = (await alice.client.get("/api/v1/contacts")).json()["items"]
    assert [c["first_name"] for c in listed] == ["Kept"]
    page = await alice.client.post(f"/t/{alice.slug}/contacts", data={"first_name": "Form"})
    assert page.status_code == 402


async def test_past_due_keeps_writing_within_the_grace_period(
    endpoints: Endpoints, alice: Member
) -> None:
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE tenants SET subscription_status = 'past_due', "
            "past_due_since = now() - interval '2 days' WHERE id = $1",
            uuid.UUID(alice.workspace_id),
        )
    finally:
        await admin.close()
    created = await alice.client.post("/api/v1/contacts", json={"first_name": "Still"})
    assert created.status_code == 201


async def test_pages_show_the_billing_banner_when_read_only(
    endpoints: Endpoints, alice: Member
) -> None:
    await _set_status(endpoints, alice, "canceled")
    page = (await alice.client.get(f"/t/{alice.slug}/contacts")).text
    assert "read-only until its subscription is paid" in page
