"""The database wall: RLS holds even when the application code forgets the tenant."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from orbit.platform.db.check import check_database
from orbit.platform.db.roles import APP, OWNER
from orbit.platform.db.servers import Endpoints
from tests.conftest import Member

ROOT = Path(__file__).resolve().parents[3]
# The foundation's tenant tables; later areas add more, and every one is checked.
CORE_TENANT_TABLES = {"api_keys", "contacts", "invitations", "memberships"}


async def tenant_tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE a.attname = 'tenant_id' AND c.relkind = 'r' AND n.nspname = 'public'"
        )
    finally:
        await conn.close()
    return {row["relname"] for row in rows}


async def test_app_role_is_neither_superuser_nor_bypassrls(endpoints: Endpoints) -> None:
    conn = await asyncpg.connect(endpoints.app_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["name"] == APP
    assert row["rolsuper"] is False
    assert row["rolbypassrls"] is False


async def test_tables_are_owned_by_the_owner_role_not_the_app(endpoints: Endpoints) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        owners = {
            row["tablename"]: row["tableowner"]
            for row in await conn.fetch(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await conn.close()
    assert {owners[t] for t in await tenant_tables(endpoints.admin_dsn)} == {OWNER}


async def test_without_a_tenant_the_app_role_sees_no_rows_and_cannot_insert(
    endpoints: Endpoints, alice: Member
) -> None:
    created = await alice.client.post("/api/v1/contacts", json={"first_name": "Walled"})
    assert created.status_code == 201
    conn = await asyncpg.connect(endpoints.app_dsn)
    try:
        for table in sorted(await tenant_tables(endpoints.admin_dsn)):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(
                "INSERT INTO contacts (tenant_id, id, first_name) VALUES ($1, $2, 'x')",
                uuid.UUID(alice.workspace_id),
                uuid.uuid4(),
            )
        # With the tenant set, the same role sees exactly that tenant's rows.
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", alice.workspace_id)
            names = await conn.fetch("SELECT first_name FROM contacts")
        assert [r["first_name"] for r in names] == ["Walled"]
        # Transaction-local: the next transaction on the same connection is walled again.
        assert await conn.fetchval("SELECT count(*) FROM contacts") == 0
    finally:
        await conn.close()


async def test_app_role_cannot_write_another_tenants_id_into_its_own_transaction(
    endpoints: Endpoints, alice: Member, bob: Member
) -> None:
    conn = await asyncpg.connect(endpoints.app_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", alice.workspace_id)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "INSERT INTO contacts (tenant_id, id, first_name) VALUES ($1, $2, 'x')",
                    uuid.UUID(bob.workspace_id),
                    uuid.uuid4(),
                )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "call",
    [
        "orbit_search_ranked('contacts', 'a', '%a%', false, 10, NULL)",
        "orbit_search_ids('deals', 'a', '%a%', false, NULL, NULL, NULL, 10)",
        "orbit_search_notes('''a'':*', 10, NULL)",
    ],
)
async def test_search_functions_refuse_to_run_without_a_tenant(
    endpoints: Endpoints, call: str
) -> None:
    conn = await asyncpg.connect(endpoints.app_dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"app\.tenant_id is not set"):
            await conn.fetch(f"SELECT * FROM {call}")
    finally:
        await conn.close()


async def test_rls_lint_passes_on_the_migrated_schema(endpoints: Endpoints) -> None:
    reports, role_problems = await check_database(endpoints.admin_dsn)
    assert {r.name for r in reports} == await tenant_tables(endpoints.admin_dsn)
    assert {r.name for r in reports} >= CORE_TENANT_TABLES
    assert all(r.ok for r in reports), reports
    assert role_problems == []


async def test_rls_lint_fails_on_a_policy_that_opens_a_walled_table(endpoints: Endpoints) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await conn.execute("CREATE POLICY open_door ON contacts USING (true)")
        reports, _ = await check_database(endpoints.admin_dsn)
    finally:
        await conn.execute("DROP POLICY IF EXISTS open_door ON contacts")
        await conn.close()
    contacts = next(r for r in reports if r.name == "contacts")
    assert contacts.problems == ("policy open_door does not filter on app.tenant_id",)


async def test_app_role_may_update_only_its_own_workspace_row(
    endpoints: Endpoints, alice: Member, bob: Member
) -> None:
    conn = await asyncpg.connect(endpoints.app_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", alice.workspace_id)
            changed = await conn.execute(
                "UPDATE tenants SET plan = 'pro' WHERE id = $1", uuid.UUID(bob.workspace_id)
            )
            own = await conn.execute(
                "UPDATE tenants SET name = name WHERE id = $1", uuid.UUID(alice.workspace_id)
            )
        # Every workspace's slug and name stay readable: sign-up and links resolve slugs.
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM tenants WHERE id = $1", uuid.UUID(bob.workspace_id)
            )
            == 1
        )
    finally:
        await conn.close()
    assert changed == "UPDATE 0"
    assert own == "UPDATE 1"


async def test_rls_lint_fails_on_a_table_made_without_rls(endpoints: Endpoints) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await conn.execute("CREATE TABLE rogue_notes (tenant_id uuid NOT NULL, body text)")
        await conn.execute(
            "CREATE TABLE half_walled (tenant_id uuid NOT NULL);"
            "ALTER TABLE half_walled ENABLE ROW LEVEL SECURITY"
        )
        reports, _ = await check_database(endpoints.admin_dsn)
        by_name = {r.name: r for r in reports}
        assert not by_name["rogue_notes"].ok
        assert "row level security is not enabled" in by_name["rogue_notes"].problems
        assert by_name["half_walled"].problems == (
            "row level security is not forced",
            "no policy on app.tenant_id",
        )
    finally:
        await conn.execute("DROP TABLE IF EXISTS rogue_notes, half_walled")
        await conn.close()


def _orbit_db_check(endpoints: Endpoints, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": endpoints.admin_dsn,
        "REDIS_URL": endpoints.redis_url,
        "ORBIT_HOME": str(home),
        "PYTHONSAFEPATH": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", "db", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_orbit_db_check_command_passes_then_fails_on_a_rogue_table(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    ok = _orbit_db_check(endpoints, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "contacts" in ok.stdout
    assert "all walled off" in ok.stdout
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await conn.execute("CREATE TABLE rogue_cli (tenant_id uuid NOT NULL)")
        failed = _orbit_db_check(endpoints, tmp_path)
    finally:
        await conn.execute("DROP TABLE IF EXISTS rogue_cli")
        await conn.close()
    assert failed.returncode == 1
    assert "rogue_cli" in failed.stdout
    assert "FAIL" in failed.stdout


# Global look-ups that run before a tenant is known (through definer functions).
GLOBAL_LOOKUP_INDEXES = {
    "api_keys_prefix_key",
    "invitations_token_hash_key",
    "memberships_user",
    "billing_accounts_stripe_customer_id_key",  # Stripe webhooks name the customer
}


async def test_every_index_of_a_tenant_table_leads_with_tenant_id(endpoints: Endpoints) -> None:
    """Keeps the schema ready to shard by tenant (tenant_id is the distribution column)."""
    tables = await tenant_tables(endpoints.admin_dsn)
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    offenders = [
        (row["tablename"], row["indexname"])
        for row in rows
        if row["tablename"] in tables
        and row["indexname"] not in GLOBAL_LOOKUP_INDEXES
        and "(tenant_id" not in row["indexdef"]
    ]
    assert offenders == []
