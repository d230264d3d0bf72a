"""Per-tenant enablement through the marketplace API: consent, settings, secrets, plans."""

from __future__ import annotations

import asyncpg
import pytest

from orbit.platform.db.servers import Endpoints
from tests.conftest import Member, api_key, bearer
from tests.plugin_fixtures import CALLS


async def _enable(member: Member, plugin: str, scopes: list[str]) -> dict[str, object]:
    response = await member.client.post(
        f"/api/v1/marketplace/{plugin}/enable", json={"scopes": scopes}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_the_marketplace_lists_loaded_and_incompatible_plugins(alice: Member) -> None:
    listed = (await alice.client.get("/api/v1/marketplace")).json()["items"]
    by_id = {item["id"]: item for item in listed}
    assert by_id["probe"]["compatible"] is True
    assert by_id["probe"]["enabled"] is False  # off by default
    assert by_id["probe"]["scopes"] == ["contacts:read"]
    assert by_id["future"]["compatible"] is False
    assert "needs Orbit >=9" in by_id["future"]["problem"]
    searched = (await alice.client.get("/api/v1/marketplace", params={"q": "RECORDS what"})).json()
    assert [item["id"] for item in searched["items"]] == ["probe"]


async def test_only_admins_reach_the_marketplace(app: object, alice: Member) -> None:
    key = await api_key(alice, ["contacts:read"])
    async with bearer(app, key) as client:
        response = await client.get("/api/v1/marketplace")
        enable = await client.post("/api/v1/marketplace/probe/enable", json={"scopes": []})
    assert response.status_code == 403
    assert "plugins:write" in response.text
    assert enable.status_code == 403


async def test_enabling_needs_consent_to_every_scope_and_is_per_tenant(
    alice: Member, bob: Member
) -> None:
    refused = await alice.client.post("/api/v1/marketplace/probe/enable", json={"scopes": []})
    assert refused.status_code == 400
    assert refused.json()["extra"][0]["key"] == "scopes"
    assert "contacts:read" in refused.json()["detail"]
    too_much = await alice.client.post(
        "/api/v1/marketplace/probe/enable", json={"scopes": ["contacts:read", "deals:read"]}
    )
    assert too_much.status_code == 400
    enabled = await _enable(alice, "probe", ["contacts:read"])
    assert enabled["enabled"] is True
    assert enabled["installed_count"] >= 1
    assert ("installed", None) in CALLS[alice.slug]
    assert ("enabled", None) in CALLS[alice.slug]
    again = await alice.client.post(
        "/api/v1/marketplace/probe/enable", json={"scopes": ["contacts:read"]}
    )
    assert again.status_code == 409
    # Bob's workspace is untouched: not enabled there, and no hook ran for it.
    bobs = (await bob.client.get("/api/v1/marketplace/probe")).json()
    assert bobs["enabled"] is False
    assert bobs["installed"] is False
    assert CALLS[bob.slug] == []


async def test_incompatible_unknown_and_paid_plugins_are_refused_clearly(alice: Member) -> None:
    future = await alice.client.post("/api/v1/marketplace/future/enable", json={"scopes": []})
    assert future.status_code == 409
    assert "needs Orbit >=9" in future.json()["detail"]
    unknown = await alice.client.post("/api/v1/marketplace/nope/enable", json={"scopes": []})
    assert unknown.status_code == 404
    paid = await alice.client.post("/api/v1/marketplace/paid/enable", json={"scopes": []})
    assert paid.status_code == 402
    assert "upgrade" in paid.json()["detail"]


async def test_settings_are_validated_and_secrets_encrypted_at_rest(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    bad = await alice.client.put(
        "/api/v1/marketplace/probe/settings",
        json={"settings": {"threshold": "lots", "colour": "red"}},
    )
    assert bad.status_code == 400
    keys = {item["key"] for item in bad.json()["extra"]}
    assert keys == {"settings.threshold", "settings.colour"}
    out_of_range = await alice.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"threshold": 1000}}
    )
    assert out_of_range.status_code == 400
    assert "at most 100" in out_of_range.text
    vetoed = await alice.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"greeting": "nope"}}
    )
    assert vetoed.status_code == 400
    assert "not allowed" in vetoed.text
    saved = await alice.client.put(
        "/api/v1/marketplace/probe/settings",
        json={"settings": {"greeting": "Hi", "threshold": 7, "api_token": "tok-s3cret-value"}},
    )
    assert saved.status_code == 200, saved.text
    shown = (await alice.client.get("/api/v1/marketplace/probe")).json()
    assert shown["settings"] == {"greeting": "Hi", "threshold": 7}
    assert shown["secrets_set"] == ["api_token"]
    assert "tok-s3cret-value" not in str(shown)
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        stored = await admin.fetchval(
            "SELECT secrets FROM plugin_installations WHERE plugin_id = 'probe' "
            "AND tenant_id = $1::uuid",
            alice.workspace_id,
        )
    finally:
        await admin.close()
    assert stored is not None
    assert b"tok-s3cret-value" not in bytes(stored)
    # A blank secret keeps the saved one.
    kept = await alice.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"greeting": "Yo", "api_token": ""}}
    )
    assert kept.json()["settings"] == {"greeting": "Yo"}
    assert (await alice.client.get("/api/v1/marketplace/probe")).json()["secrets_set"] == [
        "api_token"
    ]
    # Bob cannot configure Alice's installation: in his workspace it does not exist.
    other = await bob.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"greeting": "pwned"}}
    )
    assert other.status_code == 404


async def test_disable_keeps_data_and_uninstall_asks_then_deletes_only_this_tenants_rows(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    for member in (alice, bob):
        await _enable(member, "probe", ["contacts:read"])
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        for member in (alice, bob):
            await admin.execute(
                "INSERT INTO probe_seen (tenant_id, event_id, contact_id) "
                "VALUES ($1::uuid, gen_random_uuid(), gen_random_uuid())",
                member.workspace_id,
            )
        disabled = await alice.client.post("/api/v1/marketplace/probe/disable")
        assert disabled.status_code == 201
        assert disabled.json()["enabled"] is False
        assert ("disabled", "admin") in CALLS[alice.slug]
        count = "SELECT count(*) FROM probe_seen WHERE tenant_id = $1::uuid"
        assert await admin.fetchval(count, alice.workspace_id) == 1
        asks = await alice.client.delete("/api/v1/marketplace/probe")
        assert asks.status_code == 400
        assert "keep_data" in asks.text
        gone = await alice.client.delete("/api/v1/marketplace/probe", params={"keep_data": "false"})
        assert gone.status_code == 204
        assert await admin.fetchval(count, alice.workspace_id) == 0
        assert await admin.fetchval(count, bob.workspace_id) == 1
        events = await admin.fetch(
            "SELECT type, data->>'keep_data' AS keep FROM outbox_events "
            "WHERE tenant_id = $1::uuid AND type LIKE 'plugin.%' ORDER BY occurred_at",
            alice.workspace_id,
        )
    finally:
        await admin.close()
    assert [e["type"] for e in events] == [
        "plugin.installed",
        "plugin.enabled",
        "plugin.disabled",
        "plugin.uninstalled",
    ]
    assert events[-1]["keep"] == "false"
    assert (await alice.client.get("/api/v1/marketplace/probe")).json()["installed"] is False
    assert (await bob.client.get("/api/v1/marketplace/probe")).json()["enabled"] is True


@pytest.mark.parametrize("path", ["/api/v1/marketplace/probe/disable"])
async def test_disabling_what_is_not_enabled_is_a_conflict(alice: Member, path: str) -> None:
    response = await alice.client.post(path)
    assert response.status_code == 409
    assert "not enabled" in response.json()["detail"]


async def test_plugin_changes_are_in_the_audit_log_of_their_workspace_only(
    alice: Member, bob: Member
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    await alice.client.put(
        "/api/v1/marketplace/probe/settings",
        json={"settings": {"greeting": "Hi", "api_token": "tok-audit-secret"}},
    )
    await alice.client.post("/api/v1/marketplace/probe/disable")
    log = (await alice.client.get("/api/v1/audit", params={"record_type": "plugin"})).json()
    entries = [(e["action"], e["record_label"]) for e in log["items"]]
    assert entries.count(("update", "probe")) == 2  # settings, then disabled
    assert ("create", "probe") in entries
    assert "tok-audit-secret" not in str(log)
    theirs = (await bob.client.get("/api/v1/audit", params={"record_type": "plugin"})).json()
    assert theirs["items"] == []
