"""Data migrations keep what users typed: contacts' company names become companies."""

from __future__ import annotations

import os
import uuid

import asyncpg

from orbit.platform.db.migrations import migrate
from orbit.platform.db.servers import Endpoints
from tests.conftest import recreate_database, with_database

BEFORE_COMPANIES = "2026-11-25T13:00:04:000000"


async def test_contact_company_names_become_linked_companies(endpoints: Endpoints) -> None:
    scratch = f"orbit_migration_{os.getpid()}"
    server = with_database(endpoints.admin_dsn, "postgres")
    await recreate_database(server, scratch)
    dsn = with_database(endpoints.admin_dsn, scratch)
    try:
        await migrate(dsn, "pw", until=BEFORE_COMPANIES)
        conn = await asyncpg.connect(dsn)
        try:
            tenants = [uuid.uuid4(), uuid.uuid4()]
            for n, tenant in enumerate(tenants):
                await conn.execute(
                    "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'W')", tenant, f"w{n}"
                )
            rows = [
                (tenants[0], "Ana", "Lima Ltd"),
                (tenants[0], "Bo", " lima ltd "),
                (tenants[0], "Cy", None),
                (tenants[1], "Di", "Lima Ltd"),
            ]
            for tenant, name, company in rows:
                await conn.execute(
                    "INSERT INTO contacts (tenant_id, id, first_name, company_name) "
                    "VALUES ($1, $2, $3, $4)",
                    tenant,
                    uuid.uuid4(),
                    name,
                    company,
                )
        finally:
            await conn.close()

        await migrate(dsn, "pw")

        conn = await asyncpg.connect(dsn)
        try:
            companies = await conn.fetch("SELECT tenant_id, name FROM companies ORDER BY tenant_id")
            linked = await conn.fetch(
                "SELECT c.first_name, c.tenant_id, co.tenant_id AS company_tenant, co.name "
                "FROM contacts c LEFT JOIN companies co ON co.id = c.company_id "
                "ORDER BY c.first_name"
            )
            pipelines = await conn.fetchval("SELECT count(*) FROM pipelines")
        finally:
            await conn.close()
        assert sorted((r["tenant_id"], r["name"]) for r in companies) == sorted(
            [(tenants[0], "Lima Ltd"), (tenants[1], "Lima Ltd")]
        )
        by_name = {r["first_name"]: r for r in linked}
        assert by_name["Ana"]["name"] == by_name["Bo"]["name"] == "Lima Ltd"
        assert by_name["Cy"]["name"] is None
        assert all(r["company_tenant"] in (None, r["tenant_id"]) for r in linked), (
            "a contact was linked to another workspace's company"
        )
        assert pipelines == 2  # every existing workspace got its Sales pipeline
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await conn.close()


async def test_split_cjk_names_written_before_become_searchable_family_name_first(
    endpoints: Endpoints,
) -> None:
    scratch = f"orbit_migration_cjk_{os.getpid()}"
    server = with_database(endpoints.admin_dsn, "postgres")
    await recreate_database(server, scratch)
    dsn = with_database(endpoints.admin_dsn, scratch)
    try:
        await migrate(dsn, "pw", until="2026-11-25T23:00:00:000000")
        conn = await asyncpg.connect(dsn)
        try:
            tenant = uuid.uuid4()
            await conn.execute("INSERT INTO tenants (id, slug, name) VALUES ($1, 'w', 'W')", tenant)
            for first, last, text in [("伟", "王", "伟 王"), ("Ana", "王", "ana 王")]:
                await conn.execute(
                    "INSERT INTO contacts (tenant_id, id, first_name, last_name, search_text) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    tenant,
                    uuid.uuid4(),
                    first,
                    last,
                    text,
                )
        finally:
            await conn.close()

        await migrate(dsn, "pw")

        conn = await asyncpg.connect(dsn)
        try:
            texts = await conn.fetch("SELECT first_name, search_text FROM contacts")
        finally:
            await conn.close()
        assert {r["first_name"]: r["search_text"] for r in texts} == {
            "伟": "伟 王 王伟 伟王",  # as contact_search_document writes it now
            "Ana": "ana 王",  # not both CJK: unchanged
        }
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await conn.close()
