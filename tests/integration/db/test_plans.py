"""Statements are planned for the workspace they run for, never with a generic plan."""

from __future__ import annotations

import uuid

from orbit.platform.runtime import Runtime


async def test_app_connections_plan_every_run_with_its_real_tenant(runtime: Runtime) -> None:
    # A generic plan is costed for an average workspace; a big one among many small ones
    # then gets a plan that reads all of its rows (seconds at a million contacts).
    tenant = uuid.uuid4()
    async with runtime.db.transaction(tenant):
        assert await runtime.db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        for _ in range(7):  # past the five runs after which PostgreSQL may go generic
            await runtime.db.fetch(
                "SELECT id FROM contacts /* plan probe */ WHERE tenant_id = $1 "
                "ORDER BY updated_at DESC, id DESC LIMIT 5",
                tenant,
            )
        plans = await runtime.db.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%plan probe%' AND statement NOT LIKE '%pg_prepared%'"
        )
    assert plans is not None
    assert plans["generic_plans"] == 0
    assert plans["custom_plans"] >= 7
