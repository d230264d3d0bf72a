"""The example lead scoring plugin, pip-installed from its own distribution (examples/).

conftest's ``installed_examples`` installs it into a directory on ``sys.path`` before
the test database is migrated, so ``orbit migrate`` created its tables and discovery
loaded it through its ``orbit.plugins`` entry point, as for any installed plugin.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg

from orbit.platform.db.servers import Endpoints
from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.context import PluginContext
from orbit.plugins.jobs import deliver_plugin_events
from tests.conftest import Member


async def _deliver(runtime: Runtime) -> None:
    """What the worker does: dispatch committed events, then deliver them to plugins."""
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    while await deliver_plugin_events(runtime.plugins):
        pass


async def _contact_with_a_call(member: Member) -> str:
    created = await member.client.post(
        "/api/v1/contacts",
        json={
            "first_name": "Lea",
            "last_name": "Score",
            "email": "lea@example.com",
            "company_name": "Scored Ltd",
        },
    )
    assert created.status_code == 201, created.text
    contact_id: str = created.json()["id"]
    call = await member.client.post(
        "/api/v1/activities", json={"kind": "call", "subject": "Intro", "contact_id": contact_id}
    )
    assert call.status_code == 201, call.text
    return contact_id


def test_it_is_discovered_through_its_entry_point(
    runtime: Runtime, installed_examples: Path
) -> None:
    listing = runtime.plugins.registry.listings["lead_scoring"]
    assert listing.loaded, listing.problem
    assert listing.source.startswith("orbit-lead-scoring (lead_scoring = orbit_lead_scoring)")
    module = runtime.plugins.registry.plugin("lead_scoring")
    assert Path(str(getattr(module, "__file__", ""))).is_relative_to(installed_examples)


async def test_enabled_in_one_workspace_it_scores_there_and_nowhere_else(
    alice: Member, bob: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    enabled = await alice.client.post(
        "/api/v1/marketplace/lead_scoring/enable", json={"scopes": ["contacts:read"]}
    )
    assert enabled.status_code == 201, enabled.text
    configured = await alice.client.put(
        "/api/v1/marketplace/lead_scoring/settings", json={"settings": {"hot_threshold": 25}}
    )
    assert configured.status_code == 200, configured.text
    alices = await _contact_with_a_call(alice)
    bobs = await _contact_with_a_call(bob)
    await _deliver(runtime)

    page = await alice.client.get(f"/t/{alice.slug}/contacts/{alices}")
    assert page.status_code == 200
    # email 10 + phone 0 + company 5, one call 5: hot from 25? not yet.
    assert 'id="lead-score" data-score="20"' in page.text
    assert "lead-score-hot" not in page.text
    assert "Lead score +5" in page.text  # its timeline entry
    other = await bob.client.get(f"/t/{bob.slug}/contacts/{bobs}")
    assert other.status_code == 200
    assert "lead-score" not in other.text
    assert "Lead score" not in other.text

    hot = await alice.client.get("/api/v1/apps/lead_scoring/hot")
    assert hot.status_code == 200
    assert hot.json() == {"threshold": 25, "items": []}
    assert (await bob.client.get("/api/v1/apps/lead_scoring/hot")).status_code == 404

    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        deliveries = (
            "SELECT count(*) FROM plugin_event_deliveries "
            "WHERE tenant_id = $1::uuid AND plugin_id = 'lead_scoring'"
        )
        scores = "SELECT count(*) FROM lead_scoring_scores WHERE tenant_id = $1::uuid"
        assert await admin.fetchval(deliveries, alice.workspace_id) == 2
        assert await admin.fetchval(scores, alice.workspace_id) == 1
        assert await admin.fetchval(deliveries, bob.workspace_id) == 0
        assert await admin.fetchval(scores, bob.workspace_id) == 0
        # At least once: the worker delivers the same events again; nothing is counted twice.
        await admin.execute(
            "UPDATE plugin_event_deliveries SET status = 'pending', next_attempt_at = now() "
            "WHERE tenant_id = $1::uuid AND plugin_id = 'lead_scoring'",
            alice.workspace_id,
        )
        await _deliver(runtime)
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM plugin_event_deliveries WHERE tenant_id = $1::uuid "
                "AND plugin_id = 'lead_scoring' AND status = 'succeeded' AND attempts = 2",
                alice.workspace_id,
            )
            == 2
        )
    finally:
        await admin.close()
    again = await alice.client.get(f"/t/{alice.slug}/contacts/{alices}")
    assert 'data-score="20"' in again.text

    # A second call makes the contact hot.
    await alice.client.post("/api/v1/activities", json={"kind": "meeting", "contact_id": alices})
    await _deliver(runtime)
    hot_now = (await alice.client.get("/api/v1/apps/lead_scoring/hot")).json()
    assert hot_now["items"] == [{"contact_id": alices, "score": 25}]
    assert "lead-score-hot" in (await alice.client.get(f"/t/{alice.slug}/contacts/{alices}")).text


async def test_a_plugin_reads_core_data_after_its_own_sql(alice: Member, runtime: Runtime) -> None:
    contact_id = await _contact_with_a_call(alice)
    async with runtime.db.transaction(UUID(alice.workspace_id)):
        ctx = PluginContext(
            plugin_id="lead_scoring",
            tenant_id=UUID(alice.workspace_id),
            tenant_slug=alice.slug,
            settings={},
            scopes=frozenset({"contacts:read"}),
            core_db=runtime.db,
        )
        assert await ctx.db.fetchval("SELECT current_user") == "orbit_plugin_data"
        contact = await ctx.contacts.get(UUID(contact_id))
        assert contact is not None
        assert contact.company_id is not None
        assert [c.id for c in await ctx.contacts.recent(1)] == [UUID(contact_id)]
        assert await ctx.db.fetchval("SELECT current_user") == "orbit_plugin_data"
        await ctx.db.settle(ok=True)
        assert await runtime.db.fetchval("SELECT current_user") == "orbit_app"


async def test_merging_contacts_moves_their_points_to_the_survivor(
    alice: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    enabled = await alice.client.post(
        "/api/v1/marketplace/lead_scoring/enable", json={"scopes": ["contacts:read"]}
    )
    assert enabled.status_code == 201, enabled.text
    survivor = await _contact_with_a_call(alice)
    duplicate = await _contact_with_a_call(alice)
    await _deliver(runtime)
    merged = await alice.client.post(
        "/api/v1/contacts/merge", json={"survivor_id": survivor, "merged_ids": [duplicate]}
    )
    assert merged.status_code in {200, 201}, merged.text
    await _deliver(runtime)
    page = await alice.client.get(f"/t/{alice.slug}/contacts/{survivor}")
    # Profile 15 (email + company) once, two calls of 5 each.
    assert 'id="lead-score" data-score="25"' in page.text
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        left = await admin.fetchval(
            "SELECT count(*) FROM lead_scoring_points WHERE contact_id = $1::uuid", duplicate
        )
    finally:
        await admin.close()
    assert left == 0
