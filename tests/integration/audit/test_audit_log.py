"""The audit log: entries written with the change, shown per record and to admins only."""

from __future__ import annotations

import secrets
import uuid

import pytest

from orbit.platform.audit.log import diff, erase_subject
from orbit.platform.crm.schemas import ContactCreate
from orbit.platform.crm.service import ContactService
from orbit.platform.runtime import Runtime
from orbit.tenants.context import TenantContext
from orbit.tenants.roles import Scope
from tests.conftest import Member, api_key, bearer, sign_up


async def _entries(member: Member, **params: str) -> list[dict[str, object]]:
    response = await member.client.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_contact_create_update_delete_are_recorded_with_before_after_actor_and_ip(
    alice: Member,
) -> None:
    created = await alice.client.post(
        "/api/v1/contacts",
        json={"first_name": "Ada", "email": "ada@example.com", "custom": {"tier": "gold"}},
    )
    contact_id = created.json()["id"]
    changed = await alice.client.patch(
        f"/api/v1/contacts/{contact_id}",
        json={"email": "ada@lovelace.org", "custom": {"tier": "platinum"}},
    )
    assert changed.status_code == 200
    unchanged = await alice.client.patch(
        f"/api/v1/contacts/{contact_id}", json={"first_name": "Ada"}
    )
    assert unchanged.status_code == 200
    assert (await alice.client.delete(f"/api/v1/contacts/{contact_id}")).status_code == 204

    entries = await _entries(alice, record_type="contact", record_id=contact_id)
    assert [e["action"] for e in entries] == ["delete", "update", "create"]  # no-op not logged
    deleted, updated, create = entries
    assert create["changes"]["email"] == {"before": None, "after": "ada@example.com"}
    assert create["changes"]["custom.tier"] == {"before": None, "after": "gold"}
    assert "updated_at" not in create["changes"]
    assert updated["changes"] == {
        "custom.tier": {"before": "gold", "after": "platinum"},
        "email": {"before": "ada@example.com", "after": "ada@lovelace.org"},
    }
    assert deleted["changes"]["email"] == {"before": "ada@lovelace.org", "after": None}
    for entry in entries:
        assert entry["record_label"] == "Ada"
        assert entry["actor_type"] == "user"
        assert alice.email in str(entry["actor_display"])
        assert str(entry["ip"]).startswith("10.")


async def test_api_key_changes_name_the_key_and_keys_need_audit_read(app: object) -> None:
    owner = await sign_up(app, "Keyed Audit")
    writer = bearer(app, await api_key(owner, ["contacts:write", "contacts:read"]))
    created = await writer.post("/api/v1/contacts", json={"last_name": "Babbage"})
    assert created.status_code == 201
    assert (await writer.get("/api/v1/audit")).status_code == 403
    reader = bearer(app, await api_key(owner, ["audit:read"]))
    response = await reader.get("/api/v1/audit", params={"record_type": "contact"})
    assert response.status_code == 200, response.text
    (entry,) = response.json()["items"]
    assert entry["actor_type"] == "api_key"
    assert entry["actor_display"] == "API key test"
    assert entry["record_id"] == created.json()["id"]
    keys = await _entries(owner, record_type="api_key", action="create")
    assert len(keys) == 2
    assert keys[0]["changes"]["scopes"] == {"before": None, "after": ["audit:read"]}
    assert "secret" not in str(keys)


async def test_settings_changes_are_recorded(alice: Member) -> None:
    await alice.client.put("/api/v1/settings/visibility", json={"member": "own"})
    hook = await alice.client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/orbit", "events": ["contact.created"]},
    )
    assert hook.status_code == 201, hook.text
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": "zoe@example.com", "role": "viewer"}
    )
    assert invited.status_code == 201
    field = await alice.client.post(
        "/api/v1/custom-fields",
        json={"object_type": "contact", "key": "tier", "label": "Tier", "type": "text"},
    )
    assert field.status_code == 201, field.text

    visibility = await _entries(alice, record_type="visibility")
    assert visibility[0]["changes"] == {"member": {"before": "all", "after": "own"}}
    (webhook,) = await _entries(alice, record_type="webhook_endpoint")
    assert webhook["record_label"] == "https://hooks.example.com/orbit"
    assert "secret" not in webhook["changes"]
    (invitation,) = await _entries(alice, record_type="invitation")
    assert invitation["changes"]["role"] == {"before": None, "after": "viewer"}
    (custom,) = await _entries(alice, record_type="custom_field")
    assert custom["record_label"] == "contact.tier"


async def test_deal_move_and_task_completion_record_the_changed_fields(alice: Member) -> None:
    deal = (
        await alice.client.post("/api/v1/deals", json={"title": "Big", "currency": "EUR"})
    ).json()
    pipeline = (await alice.client.get(f"/api/v1/pipelines/{deal['pipeline_id']}")).json()
    target = next(
        s for s in pipeline["stages"] if s["id"] != deal["stage_id"] and s["kind"] == "open"
    )
    moved = await alice.client.post(
        f"/api/v1/deals/{deal['id']}/move", json={"stage_id": target["id"]}
    )
    assert moved.status_code == 200, moved.text
    entries = await _entries(alice, record_type="deal", record_id=deal["id"], action="update")
    assert entries[0]["changes"]["stage_id"] == {"before": deal["stage_id"], "after": target["id"]}

    task = await alice.client.post(
        "/api/v1/tasks", json={"title": "Call back", "due_at": "2030-01-01T09:00:00+00:00"}
    )
    assert task.status_code == 201, task.text
    done = await alice.client.post(f"/api/v1/tasks/{task.json()['id']}/complete")
    assert done.status_code == 200, done.text
    (completed,) = await _entries(alice, record_type="task", action="update")
    assert completed["changes"]["done_at"]["before"] is None
    assert completed["changes"]["done_at"]["after"] is not None


async def test_another_workspace_sees_none_of_the_entries(
    app: object, alice: Member, bob: Member
) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Secret"})).json()
    assert await _entries(bob, record_id=contact["id"]) == []
    assert all(e["record_label"] != "Secret" for e in await _entries(bob))
    history = await bob.client.get(f"/api/v1/audit/contact/{contact['id']}")
    assert history.status_code == 404
    assert (await bob.client.get(f"/t/{alice.slug}/audit")).status_code == 404
    bobs_key = bearer(app, await api_key(bob, ["audit:read"]))
    listed = await bobs_key.get("/api/v1/audit", params={"record_id": contact["id"]})
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    page = await bob.client.get(f"/t/{bob.slug}/audit")
    assert page.status_code == 200
    assert "Secret" not in page.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"record_type": "planet"}, "record_type"),
        ({"actor": "not-an-id"}, "actor"),
        ({"record_id": "42"}, "record_id"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
        ({"cursor": "garbage"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
async def test_bad_filters_get_a_400_naming_the_field(
    alice: Member, params: dict[str, str], field: str
) -> None:
    response = await alice.client.get("/api/v1/audit", params=params)
    assert response.status_code == 400, response.text
    assert field in {item["key"] for item in response.json()["extra"]}


async def test_admin_page_filters_and_pages_through_entries(alice: Member) -> None:
    for name in ("One", "Two", "Three"):
        await alice.client.post("/api/v1/contacts", json={"first_name": name})
    first = await alice.client.get("/api/v1/audit", params={"record_type": "contact", "limit": "2"})
    second = await alice.client.get(
        "/api/v1/audit",
        params={"record_type": "contact", "limit": "2", "cursor": first.json()["next_cursor"]},
    )
    labels = [e["record_label"] for e in first.json()["items"] + second.json()["items"]]
    assert labels == ["Three", "Two", "One"]
    assert second.json()["next_cursor"] is None

    page = await alice.client.get(f"/t/{alice.slug}/audit", params={"record_type": "contact"})
    assert page.status_code == 200
    assert "Three" in page.text
    assert "Older entries" not in page.text
    today = await alice.client.get(
        f"/t/{alice.slug}/audit", params={"action": "create", "until": "2000-01-01"}
    )
    assert "Three" not in today.text
    bad = await alice.client.get(f"/t/{alice.slug}/audit", params={"since": "soon"})
    assert bad.status_code == 400
    assert 'data-field="since"' in bad.text


async def test_record_pages_show_history_and_members_only_of_records_they_see(
    app: object, alice: Member
) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Histo"})).json()
    await alice.client.patch(f"/api/v1/contacts/{contact['id']}", json={"last_name": "Ry"})
    detail = await alice.client.get(f"/t/{alice.slug}/contacts/{contact['id']}")
    assert detail.status_code == 200
    assert 'id="history"' in detail.text
    assert "last_name" in detail.text

    email = f"mem-{secrets.token_hex(4)}@example.com"
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": email, "role": "member"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, "Member Own", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    await member.client.get(f"/t/{alice.slug}/")
    joined = await _entries(alice, record_type="member")
    assert joined[0]["record_label"] == email
    assert joined[0]["actor_display"].endswith(f"<{email}>") or joined[0]["actor_display"] == email

    # Members see the history of records they can see, never the whole log.
    seen = await member.client.get(f"/api/v1/audit/contact/{contact['id']}")
    assert seen.status_code == 200
    assert [e["action"] for e in seen.json()["items"]] == ["update", "create"]
    assert (await member.client.get("/api/v1/audit")).status_code == 403
    assert (await member.client.get(f"/t/{alice.slug}/audit")).status_code == 403
    await alice.client.put("/api/v1/settings/visibility", json={"member": "own"})
    hidden = await member.client.get(f"/api/v1/audit/contact/{contact['id']}")
    assert hidden.status_code == 404
    await member.client.aclose()


async def test_nothing_is_written_when_the_change_rolls_back(
    runtime: Runtime, alice: Member
) -> None:
    ctx = TenantContext(
        tenant_id=uuid.UUID(alice.workspace_id),
        tenant_slug=alice.slug,
        tenant_name="Alice",
        scopes=frozenset(Scope),
    )
    written: list[uuid.UUID] = []

    async def create_then_fail() -> None:
        async with runtime.db.transaction(ctx.tenant_id):
            ghost = await ContactService(runtime.db).create(ctx, ContactCreate(first_name="Ghost"))
            written.append(ghost.id)
            inside = await runtime.db.fetchval(
                "SELECT count(*) FROM audit_entries WHERE tenant_id = $1 AND record_id = $2",
                ctx.tenant_id,
                ghost.id,
            )
            assert inside == 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await create_then_fail()
    async with runtime.db.transaction(ctx.tenant_id):
        after = await runtime.db.fetchval(
            "SELECT count(*) FROM audit_entries WHERE tenant_id = $1 AND record_id = $2",
            ctx.tenant_id,
            written[0],
        )
    assert after == 0
    # An HTTP request that fails after the check writes no entry either.
    refused = await alice.client.post("/api/v1/contacts", json={"email": "not-an-email"})
    assert refused.status_code == 400
    assert await _entries(alice, record_type="contact") == []


async def test_erasing_a_subject_scrubs_its_entries_to_tombstones(
    runtime: Runtime, alice: Member
) -> None:
    contact = (
        await alice.client.post(
            "/api/v1/contacts", json={"first_name": "Forget", "email": "f@x.org"}
        )
    ).json()
    await alice.client.patch(f"/api/v1/contacts/{contact['id']}", json={"phone": "+30 210 000"})
    ctx = TenantContext(
        tenant_id=uuid.UUID(alice.workspace_id),
        tenant_slug=alice.slug,
        tenant_name="Alice",
        scopes=frozenset(Scope),
    )
    async with runtime.db.transaction(ctx.tenant_id):
        scrubbed = await erase_subject(runtime.db, ctx, "contact", uuid.UUID(contact["id"]))
    assert scrubbed == 2
    entries = await _entries(alice, record_id=contact["id"])
    assert [e["action"] for e in entries] == ["erase", "update", "create"]
    assert entries[0]["details"] == {"entries_scrubbed": 2}
    for entry in entries[1:]:
        assert entry["erased"] is True
        assert entry["record_label"] == ""
        assert entry["changes"] == {}
    assert "f@x.org" not in str(entries)


def test_diff_treats_empty_values_alike_and_flattens_custom_fields() -> None:
    before = {"tags": [], "phone": None, "custom": {"a": 1}, "updated_at": "x"}
    after = {"tags": None, "phone": "", "custom": {"a": 2, "b": None}, "updated_at": "y"}
    assert diff(before, after) == {"custom.a": {"before": 1, "after": 2}}
    assert diff(None, {"name": "N", "id": "1"}) == {"name": {"before": None, "after": "N"}}


async def test_member_role_changes_are_checked_and_recorded(
    app: object, alice: Member, bob: Member
) -> None:
    email = f"role-{secrets.token_hex(4)}@example.com"
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": email, "role": "viewer"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, "Role Own", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    members = (await alice.client.get("/api/v1/members")).json()
    owner_id = next(m["id"] for m in members if m["role"] == "owner")
    member_id = next(m["id"] for m in members if m["email"] == email)

    changed = await alice.client.put(f"/api/v1/members/{member_id}/role", json={"role": "admin"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "admin"
    (entry,) = await _entries(alice, record_type="member", action="update")
    assert entry["record_id"] == member_id
    assert entry["changes"] == {"role": {"before": "viewer", "after": "admin"}}

    bad = await alice.client.put(f"/api/v1/members/{member_id}/role", json={"role": "king"})
    assert bad.status_code == 400
    assert bad.json()["extra"][0]["key"] == "role"
    owner = await alice.client.put(f"/api/v1/members/{owner_id}/role", json={"role": "viewer"})
    assert owner.status_code == 409
    # Another workspace cannot touch Alice's members; nothing changes.
    foreign = await bob.client.put(f"/api/v1/members/{member_id}/role", json={"role": "viewer"})
    assert foreign.status_code == 404
    roles = {m["id"]: m["role"] for m in (await alice.client.get("/api/v1/members")).json()}
    assert roles[member_id] == "admin"
    assert await _entries(bob, record_type="member", action="update") == []

    # From the Team page.
    page = await alice.client.get(f"/t/{alice.slug}/members")
    assert 'id="change-role"' in page.text
    form = await alice.client.post(
        f"/t/{alice.slug}/members/role",
        data={"membership_id": member_id, "role": "member", "csrf_token": alice.csrf},
    )
    assert form.status_code in {200, 303}
    roles = {m["id"]: m["role"] for m in (await alice.client.get("/api/v1/members")).json()}
    assert roles[member_id] == "member"
    await member.client.aclose()
