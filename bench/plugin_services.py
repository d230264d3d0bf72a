"""The plugin context's contact services on one big workspace: counts, pages, by email.

A scratch database (dropped afterwards) is migrated, one workspace gets ``--contacts``
generated contacts (a tenth tagged ``vip``) and a second one 10,000, then
``ctx.contacts.count``, ``query`` and ``by_email`` run as a plugin does: as Orbit's app
role inside the workspace's transaction, under row-level security. Each case runs
twice; both times are printed (the first reads from disk more).

    uv run --frozen python -m bench.plugin_services [--contacts N]

Needs ``DATABASE_URL`` to be a superuser (the rows are inserted past RLS, in one
statement per workspace).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from orbit.platform.auth.service import AccountService
from orbit.platform.db.engine import Database
from orbit.platform.db.migrations import migrate
from orbit.platform.db.servers import app_dsn_for
from orbit.platform.runtime import all_tables
from orbit.plugins.context import PluginContext

if TYPE_CHECKING:
    from uuid import UUID

DATABASE = "orbit_bench_plugin_services"
CASES: dict[str, Any] = {
    "no filter": None,
    "tags contains vip": [{"field": "tags", "op": "contains", "value": "vip"}],
    "email contains 99": [{"field": "email", "op": "contains", "value": "99"}],
    "created_at range": [
        {"field": "created_at", "op": "range", "value": {"min": "2000-01-01T00:00:00Z"}}
    ],
}
INSERT = """
    INSERT INTO contacts (tenant_id, id, first_name, last_name, email, tags, custom,
                          search_text, created_at, updated_at)
    SELECT $1, gen_random_uuid(), 'First' || i, 'Last' || i, 'p' || i || '@example.com',
           CASE WHEN i % 10 = 0 THEN ARRAY['vip'] ELSE ARRAY['lead'] END::varchar[], '{}',
           'first' || i || ' last' || i || ' p' || i || '@example.com',
           now() - i * interval '1 second', now() - i * interval '1 second'
    FROM generate_series(1, $2) AS i
"""


def _on(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _timed(label: str, work: Any) -> Any:
    started = time.perf_counter()
    result = await work
    print(f"{label}: {(time.perf_counter() - started) * 1000:.0f} ms")
    return result


async def _load(admin_dsn: str, db: Database, contacts: int) -> tuple[UUID, str]:
    workspaces = []
    for name in ("Big", "Small"):
        async with db.transaction():
            _, workspace = await AccountService(db).sign_up(
                email=f"{name.lower()}-{secrets.token_hex(3)}@example.com",
                password=secrets.token_urlsafe(12),
                name=name,
                workspace_name=name,
            )
        workspaces.append(workspace)
    admin = await asyncpg.connect(admin_dsn)
    try:
        started = time.perf_counter()
        for workspace, count in zip(workspaces, (contacts, 10_000), strict=True):
            await admin.execute(INSERT, workspace.id, count)
        await admin.execute("VACUUM ANALYZE contacts")
        print(f"{contacts:,} contacts loaded in {time.perf_counter() - started:.0f} s")
    finally:
        await admin.close()
    return workspaces[0].id, workspaces[0].slug


async def run(server_dsn: str, contacts: int) -> None:
    """Create, load and measure, then drop the scratch database."""
    server = await asyncpg.connect(server_dsn)
    await server.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    await server.execute(f'CREATE DATABASE "{DATABASE}"')
    admin_dsn, password = _on(server_dsn, DATABASE), secrets.token_urlsafe(16)
    try:
        await migrate(admin_dsn, password)
        db = Database(app_dsn_for(admin_dsn, password), pool_size=1)
        await db.connect()
        db.bind(all_tables())
        tenant_id, slug = await _load(admin_dsn, db, contacts)
        for _ in range(2):
            async with db.transaction(tenant_id):
                ctx = PluginContext(
                    plugin_id="bench",
                    tenant_id=tenant_id,
                    tenant_slug=slug,
                    settings={},
                    scopes=frozenset({"contacts:read"}),
                    core_db=db,
                )
                for label, filters in CASES.items():
                    await _timed(f"count {label}", ctx.contacts.count(filters))
                await _timed("count q=first12345", ctx.contacts.count(q="first12345"))
                page = await _timed(
                    "query vip, page 1 of 500", ctx.contacts.query(CASES["tags contains vip"])
                )
                await _timed(
                    "query vip, page 2 of 500",
                    ctx.contacts.query(CASES["tags contains vip"], after=page[-1].id),
                )
                await _timed("by_email", ctx.contacts.by_email("P77777@example.com"))
        await db.close()
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await server.close()


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    server_dsn = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    asyncio.run(run(server_dsn, args.contacts))


if __name__ == "__main__":
    main()
