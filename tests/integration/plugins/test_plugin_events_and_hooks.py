"""Plugins' own events and hooks, per workspace: declared, delivered, isolated."""

from __future__ import annotations

import json

import asyncpg

from orbit.platform.db.servers import Endpoints
from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.jobs import deliver_plugin_events
from tests.conftest import Member
from tests.plugin_fixtures.services import HEARD, SERVICE_SCOPES

APP = "/api/v1/apps/servant"


async def _enable(member: Member, *plugins: str) -> None:
    for plugin in plugins:
        scopes = list(SERVICE_SCOPES) if plugin == "servant" else []
        response = await member.client.post(
            f"/api/v1/marketplace/{plugin}/enable", json={"scopes": scopes}
        )
        assert response.status_code == 201, response.text


async def _deliver(runtime: Runtime) -> None:
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    await deliver_plugin_events(runtime.plugins)


async def test_an_emitted_event_reaches_subscribers_of_the_same_workspace_only(
    alice: Member, bob: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await _enable(alice, "servant", "listener")
    await _enable(bob, "servant", "listener")
    emitted = await alice.client.post(
        f"{APP}/emit", json={"type": "servant.pinged", "data": {"invoice": 42}}
    )
    assert emitted.status_code == 201, emitted.text
    await _deliver(runtime)
    assert ("listener", ("servant.pinged", {"invoice": 42})) in HEARD[alice.slug]
    assert not [h for h in HEARD[bob.slug] if h[1][0] == "servant.pinged"]
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        rows = await admin.fetch(
            "SELECT e.tenant_id, e.data, d.plugin_id, d.status FROM outbox_events e "
            "JOIN plugin_event_deliveries d ON d.tenant_id = e.tenant_id AND d.event_id = e.id "
            "WHERE e.id = $1",
            emitted.json()["id"],
        )
    finally:
        await admin.close()
    assert [(str(r["tenant_id"]), r["plugin_id"], r["status"]) for r in rows] == [
        (alice.workspace_id, "listener", "succeeded")
    ]
    assert json.loads(rows[0]["data"]) == {"invoice": 42}


async def test_a_plugin_event_goes_to_webhooks_subscribed_to_it(
    alice: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await _enable(alice, "servant")
    hook = await alice.client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/pinged", "events": ["servant.pinged"]},
    )
    assert hook.status_code == 201, hook.text
    typo = await alice.client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["deal.closed"]}
    )
    assert typo.status_code == 400
    emitted = await alice.client.post(
        f"{APP}/emit", json={"type": "servant.pinged", "data": {"invoice": 7}}
    )
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        queued = await admin.fetch(
            "SELECT endpoint_id FROM webhook_deliveries WHERE tenant_id = $1 AND event_id = $2",
            alice.workspace_id,
            emitted.json()["id"],
        )
    finally:
        await admin.close()
    assert [str(r["endpoint_id"]) for r in queued] == [hook.json()["id"]]


async def test_an_undeclared_or_bad_emit_is_refused(alice: Member) -> None:
    await _enable(alice, "servant")
    for event_type in ("servant.other", "deal.won", "listener.pinged"):
        refused = await alice.client.post(f"{APP}/emit", json={"type": event_type, "data": {}})
        assert refused.status_code == 403, refused.text
        assert "emits lists servant.pinged" in refused.text
    not_an_object = await alice.client.post(
        f"{APP}/emit", json={"type": "servant.pinged", "data": [1, 2]}
    )
    assert not_an_object.status_code == 400


async def test_a_plugin_hook_reaches_the_workspace_s_enabled_plugins_isolated(
    alice: Member, bob: Member, runtime: Runtime
) -> None:
    await _enable(alice, "servant", "listener", "grumpy")
    await _enable(bob, "servant", "grumpy")
    answers = await alice.client.post(f"{APP}/hooks/servant_quote", json={"amount": 7})
    assert answers.status_code == 200, answers.text
    assert answers.json() == [["listener", f"listener quotes 7 in {alice.slug}"]]
    first = await alice.client.post(
        f"{APP}/hooks/servant_quote", json={"amount": 8, "_first": True}
    )
    assert first.json() == {"first": f"listener quotes 8 in {alice.slug}"}
    nested = await alice.client.post(
        f"{APP}/hooks/servant_quote", json={"amount": 9, "_with_db": True}
    )
    # The servant's own implementation opens its savepoint inside the caller's, and the
    # caller's SQL goes on as orbit_plugin_data afterwards.
    assert nested.json() == {
        "roles": ["orbit_plugin_data"] * 2,
        "answers": [
            ["listener", f"listener quotes 9 in {alice.slug}"],
            ["servant", "servant as orbit_plugin_data"],
        ],
    }
    # Bob's workspace has not enabled the listener: only grumpy answers (and fails).
    theirs = await bob.client.post(f"{APP}/hooks/servant_quote", json={"amount": 7})
    assert theirs.status_code == 200, theirs.text
    assert theirs.json() == []
    calls = runtime.plugins.metrics._stats  # the counts /metrics shows
    assert calls[("grumpy", "servant_quote", "error")].count >= 2
    wrong = await alice.client.post(f"{APP}/hooks/servant_quote", json={"price": 7})
    assert wrong.status_code == 500
    core = await alice.client.post(f"{APP}/hooks/orbit_event", json={})
    assert core.status_code == 500
