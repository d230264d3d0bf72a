"""``orbit db check``: the row-level-security lint.

Every table with a ``tenant_id`` column must have RLS enabled and forced and a
policy on ``app.tenant_id``; every view over one must be ``security_invoker``;
the app role must be neither superuser nor BYPASSRLS.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from orbit.platform.db import roles

# A policy walls a table off when both its USING and WITH CHECK filter on the tenant.
_WALLED = """coalesce(pg_get_expr(p.polqual, p.polrelid), '') LIKE '%app.tenant_id%'
    AND coalesce(pg_get_expr(p.polwithcheck, p.polrelid), 'app.tenant_id') LIKE '%app.tenant_id%'"""

_TABLES = """
SELECT c.relname AS name, c.relkind AS kind, c.relrowsecurity AS enabled,
       c.relforcerowsecurity AS forced,
       coalesce(c.reloptions, '{}') @> ARRAY['security_invoker=true'] AS invoker,
       count(p.polname) FILTER (WHERE {walled}) AS policies,
       coalesce(array_agg(p.polname::text ORDER BY p.polname)
                FILTER (WHERE p.polpermissive AND NOT ({walled})), '{}') AS open_policies
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'v', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_temp%'
GROUP BY c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions
ORDER BY c.relname
""".replace("{walled}", _WALLED)


@dataclass(frozen=True, slots=True)
class TableReport:
    """The lint's verdict on one table or view."""

    name: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the table is walled off per tenant."""
        return not self.problems


def _table_problems(row: asyncpg.Record) -> tuple[str, ...]:
    if row["kind"] == "v":
        return () if row["invoker"] else ("view is not security_invoker",)
    if row["kind"] == "m":
        return ("a materialized view cannot carry RLS; keep tenant rows out",)
    problems = []
    if not row["enabled"]:
        problems.append("row level security is not enabled")
    if not row["forced"]:
        problems.append("row level security is not forced")
    if row["policies"] == 0:
        problems.append("no policy on app.tenant_id")
    # Permissive policies are OR'ed: one that does not filter by tenant opens the table.
    problems.extend(
        f"policy {name} does not filter on app.tenant_id" for name in row["open_policies"]
    )
    return tuple(problems)


async def _role_problems(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    role = await conn.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", roles.APP
    )
    if role is None:
        return [f"role {roles.APP} does not exist"]
    problems = []
    if role["rolsuper"]:
        problems.append(f"role {roles.APP} is a superuser")
    if role["rolbypassrls"]:
        problems.append(f"role {roles.APP} has BYPASSRLS")
    return problems


async def check_database(dsn: str) -> tuple[list[TableReport], list[str]]:
    """Lint the database at ``dsn``: per-table reports and role problems."""
    conn = await asyncpg.connect(dsn)
    try:
        reports = [
            TableReport(row["name"], _table_problems(row)) for row in await conn.fetch(_TABLES)
        ]
        return reports, await _role_problems(conn)
    finally:
        await conn.close()
