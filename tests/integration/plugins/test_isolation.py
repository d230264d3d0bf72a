"""Plugins per tenant at work: events, pages, routes, and what a broken plugin cannot break."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest

from orbit.platform.db.servers import Endpoints
from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.jobs import deliver_plugin_events, run_scheduled_jobs
from tests.conftest import Member
from tests.plugin_fixtures import CALLS


async def _enable(member: Member, plugin: str, scopes: list[str] | None = None) -> None:
    response = await member.client.post(
        f"/api/v1/marketplace/{plugin}/enable", json={"scopes": scopes or []}
    )
    assert response.status_code == 201, response.text


async def _contact(member: Member, name: str) -> str:
    response = await member.client.post("/api/v1/contacts", json={"first_name": name})
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["id"]
    return contact_id


async def _deliver(runtime: Runtime) -> None:
    """What the worker's pump does: dispatch committed events, then deliver plugin events."""
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    await deliver_plugin_events(runtime.plugins)


async def _admin_fetch(endpoints: Endpoints, query: str, *args: object) -> list[asyncpg.Record]:
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        return await admin.fetch(query, *args)
    finally:
        await admin.close()


async def test_events_reach_only_tenants_that_enabled_the_plugin_once_per_event(
    alice: Member, bob: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    alices = await _contact(alice, "Ada")
    bobs = await _contact(bob, "Bert")
    await _deliver(runtime)
    await _deliver(runtime)  # nothing is delivered twice
    seen = await _admin_fetch(endpoints, "SELECT tenant_id, contact_id FROM probe_seen")
    mine = [r for r in seen if str(r["tenant_id"]) == alice.workspace_id]
    assert [str(r["contact_id"]) for r in mine] == [alices]
    assert all(str(r["contact_id"]) != bobs for r in seen)
    assert not [c for c in CALLS[bob.slug] if c[0] == "event"]
    deliveries = await _admin_fetch(
        endpoints,
        "SELECT tenant_id, status, attempts FROM plugin_event_deliveries WHERE plugin_id = 'probe' "
        "AND tenant_id = ANY ($1::uuid[])",
        [alice.workspace_id, bob.workspace_id],
    )
    assert [(str(d["tenant_id"]), d["status"], d["attempts"]) for d in deliveries] == [
        (alice.workspace_id, "succeeded", 1)
    ]


async def test_a_failing_event_hook_leaves_no_partial_write_and_is_retried(
    alice: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    saved = await alice.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"fail_events": True}}
    )
    assert saved.status_code == 200, saved.text
    await _contact(alice, "Failing")
    await _deliver(runtime)
    rows = await _admin_fetch(
        endpoints,
        "SELECT count(*) AS n FROM probe_seen WHERE tenant_id = $1::uuid",
        alice.workspace_id,
    )
    assert rows[0]["n"] == 0  # the hook wrote, then raised: its savepoint was rolled back
    delivery = await _admin_fetch(
        endpoints,
        "SELECT status, attempts, last_error, next_attempt_at > now() AS later "
        "FROM plugin_event_deliveries WHERE tenant_id = $1::uuid AND plugin_id = 'probe'",
        alice.workspace_id,
    )
    assert [(d["status"], d["attempts"], d["later"]) for d in delivery] == [("pending", 1, True)]
    assert "failed" in delivery[0]["last_error"]


async def test_scopes_are_enforced_by_the_context_and_by_the_database_role(
    alice: Member, runtime: Runtime
) -> None:
    await _enable(alice, "snoop")
    await _contact(alice, "Private")
    await _deliver(runtime)
    kinds = dict(CALLS[alice.slug])
    assert "contacts:read" in kinds["scope_refused"]
    assert "permission denied for table contacts" in kinds["sql_refused"]


async def test_a_plugin_table_refuses_rows_of_another_tenant_even_through_the_plugin_role(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    conn = await asyncpg.connect(endpoints.app_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", alice.workspace_id)
            await conn.execute("SET LOCAL ROLE orbit_plugin_data")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await conn.execute(
                    "INSERT INTO probe_seen (tenant_id, event_id, contact_id) "
                    "VALUES ($1::uuid, $2, $2)",
                    bob.workspace_id,
                    uuid.uuid4(),
                )
    finally:
        await conn.close()


async def test_the_contact_page_shows_enabled_plugins_panels_only(
    alice: Member, bob: Member
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    saved = await alice.client.put(
        "/api/v1/marketplace/probe/settings", json={"settings": {"greeting": "<Howdy>"}}
    )
    assert saved.status_code == 200
    alices = await _contact(alice, "Ada")
    page = await alice.client.get(f"/t/{alice.slug}/contacts/{alices}")
    assert page.status_code == 200
    assert 'id="probe-panel"' in page.text
    assert "&lt;Howdy&gt; Ada" in page.text  # the plugin escaped its setting
    assert "Probed this contact" in page.text
    assert "&lt;b&gt;raw&lt;/b&gt;" in page.text  # timeline bodies are text
    assert '<a href="/t/x/apps/probe/page">Probe page</a>' in page.text  # a title's link
    assert "Probe script" in page.text
    assert "javascript:" not in page.text  # never a script link
    dashboard = await alice.client.get(f"/t/{alice.slug}/")
    assert 'id="probe-widget"' in dashboard.text
    bobs = await _contact(bob, "Bert")
    other = await bob.client.get(f"/t/{bob.slug}/contacts/{bobs}")
    assert other.status_code == 200
    assert "probe-panel" not in other.text
    assert "probe-widget" not in (await bob.client.get(f"/t/{bob.slug}/")).text


async def test_plugin_routes_answer_only_in_tenants_that_enabled_them(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    assert (await alice.client.get("/api/v1/apps/probe/seen")).status_code == 404
    await _enable(alice, "probe", ["contacts:read"])
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        for member in (alice, bob, bob):
            await admin.execute(
                "INSERT INTO probe_seen (tenant_id, event_id, contact_id) "
                "VALUES ($1::uuid, gen_random_uuid(), gen_random_uuid())",
                member.workspace_id,
            )
    finally:
        await admin.close()
    mine = await alice.client.get("/api/v1/apps/probe/seen")
    assert mine.status_code == 200
    assert mine.json() == {"tenant": alice.slug, "seen": 1}  # RLS: only Alice's row
    theirs = await bob.client.get("/api/v1/apps/probe/seen")
    assert theirs.status_code == 404
    assert "not enabled" in theirs.json()["detail"]


async def test_a_raising_hook_never_fails_the_page_and_trips_the_breaker(
    alice: Member, bob: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await _enable(alice, "raiser")
    await _enable(alice, "probe", ["contacts:read"])
    await _enable(bob, "raiser")
    contact = await _contact(alice, "Ada")
    for _ in range(runtime.plugins.threshold):
        page = await alice.client.get(f"/t/{alice.slug}/contacts/{contact}")
        assert page.status_code == 200
        assert 'id="probe-panel"' in page.text  # the other plugin still ran
    state = (await alice.client.get("/api/v1/marketplace/raiser")).json()
    assert state["enabled"] is False
    assert state["disabled_reason"] == "circuit_breaker"
    inbox = (await alice.client.get("/api/v1/notifications")).json()
    assert any("Raiser was disabled" in n["title"] for n in inbox["items"])
    # Only Alice's workspace tripped.
    assert (await bob.client.get("/api/v1/marketplace/raiser")).json()["enabled"] is True
    exposition = (await alice.client.get("/metrics")).text
    assert (
        'orbit_plugin_hook_calls_total{hook="orbit_ui_slot",outcome="error",plugin="raiser"}'
        in exposition
    )
    assert 'orbit_plugin_breaker_trips_total{plugin="raiser"}' in exposition
    events = await _admin_fetch(
        endpoints,
        "SELECT data->>'reason' AS reason FROM outbox_events "
        "WHERE tenant_id = $1::uuid AND type = 'plugin.disabled'",
        alice.workspace_id,
    )
    assert [e["reason"] for e in events] == ["circuit_breaker"]


async def test_a_hanging_hook_is_cut_off_at_its_budget(alice: Member, runtime: Runtime) -> None:
    await _enable(alice, "hanger")
    contact = await _contact(alice, "Ada")
    started = time.monotonic()
    page = await alice.client.get(f"/t/{alice.slug}/contacts/{contact}")
    elapsed = time.monotonic() - started
    assert page.status_code == 200
    assert elapsed < 5  # the hook sleeps an hour; its budget is half a second
    exposition = (await alice.client.get("/metrics")).text
    assert 'outcome="timeout",plugin="hanger"' in exposition


async def test_scheduled_jobs_run_once_per_interval_for_enabling_tenants_only(
    alice: Member, bob: Member, runtime: Runtime
) -> None:
    await _enable(alice, "probe", ["contacts:read"])
    assert await run_scheduled_jobs(runtime.plugins) >= 1
    await run_scheduled_jobs(runtime.plugins)  # within the hour: not again
    assert CALLS[alice.slug].count(("tick", None)) == 1
    assert ("tick", None) not in CALLS[bob.slug]
