"""One person's data: a subject access export, and erasure that leaves tombstones only."""

from __future__ import annotations

import asyncpg

from orbit.platform.db.servers import Endpoints
from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.jobs import deliver_plugin_events
from tests.conftest import Member, api_key, bearer


async def _person(member: Member) -> str:
    created = await member.client.post(
        "/api/v1/contacts",
        json={"first_name": "Eleni", "last_name": "Papadopoulou", "email": "eleni@example.gr"},
    )
    assert created.status_code == 201, created.text
    contact_id: str = created.json()["id"]
    note = await member.client.post(
        "/api/v1/activities",
        json={
            "kind": "note",
            "subject": "Likes olives",
            "body": "Call after 5",
            "contact_id": contact_id,
        },
    )
    assert note.status_code == 201, note.text
    changed = await member.client.patch(
        f"/api/v1/contacts/{contact_id}", json={"phone": "+30 210 0000000"}
    )
    assert changed.status_code == 200, changed.text
    return contact_id


async def test_a_subject_access_export_holds_everything_about_the_person(
    alice: Member, bob: Member, runtime: Runtime
) -> None:
    enabled = await alice.client.post(
        "/api/v1/marketplace/probe/enable", json={"scopes": ["contacts:read"]}
    )
    assert enabled.status_code == 201
    contact_id = await _person(alice)
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    await deliver_plugin_events(runtime.plugins)
    response = await alice.client.get(f"/api/v1/contacts/{contact_id}/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == "orbit.contact-export/1"
    assert document["contact"]["email"] == "eleni@example.gr"
    assert [a["subject"] for a in document["activities"]] == ["Likes olives"]
    assert {entry["action"] for entry in document["audit"]} >= {"create", "update"}
    assert document["plugins"] == {"probe": {"times_seen": 1}}
    # Another workspace cannot export her, whatever the id.
    assert (await bob.client.get(f"/api/v1/contacts/{contact_id}/export")).status_code == 404


async def test_erasure_forgets_the_person_everywhere_in_one_go(
    alice: Member, bob: Member, endpoints: Endpoints, runtime: Runtime
) -> None:
    await alice.client.post("/api/v1/marketplace/probe/enable", json={"scopes": ["contacts:read"]})
    contact_id = await _person(alice)
    bobs = await _person(bob)
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    await deliver_plugin_events(runtime.plugins)
    assert (await bob.client.post(f"/api/v1/contacts/{contact_id}/erase")).status_code == 404
    erased = await alice.client.post(f"/api/v1/contacts/{contact_id}/erase")
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["activities"] == 1
    assert report["plugins"] == 1
    assert report["events_scrubbed"] >= 2
    assert (await alice.client.get(f"/api/v1/contacts/{contact_id}")).status_code == 404
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        leftovers = await admin.fetchval(
            "SELECT count(*) FROM outbox_events WHERE tenant_id = $1::uuid "
            "AND (data::text ILIKE '%eleni%' OR data::text ILIKE '%papadopoulou%')",
            alice.workspace_id,
        )
        audit_text = await admin.fetchval(
            "SELECT string_agg(record_label || changes::text || details::text, ' ') "
            "FROM audit_entries WHERE tenant_id = $1::uuid",
            alice.workspace_id,
        )
        probe_rows = await admin.fetchval(
            "SELECT count(*) FROM probe_seen WHERE contact_id = $1::uuid", contact_id
        )
        bob_still = await admin.fetchval("SELECT count(*) FROM contacts WHERE id = $1::uuid", bobs)
    finally:
        await admin.close()
    assert leftovers == 0
    assert "Papadopoulou" not in audit_text
    assert "olives" not in audit_text
    assert probe_rows == 0
    assert bob_still == 1


async def test_erasure_is_for_admins_and_all_or_nothing(app: object, alice: Member) -> None:
    contact_id = await _person(alice)
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    async with bearer(app, key) as client:
        refused = await client.post(f"/api/v1/contacts/{contact_id}/erase")
    assert refused.status_code == 403
    await alice.client.post("/api/v1/marketplace/probe/enable", json={"scopes": ["contacts:read"]})
    failing = await alice.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"fail_events": True}}
    )
    assert failing.status_code == 200
    conflict = await alice.client.post(f"/api/v1/contacts/{contact_id}/erase")
    assert conflict.status_code == 409
    assert "probe" in conflict.json()["detail"]
    still = await alice.client.get(f"/api/v1/contacts/{contact_id}/timeline")
    assert still.status_code == 200
    assert len(still.json()["items"]) >= 1
