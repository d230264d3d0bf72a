"""The database roles Orbit relies on, created on start when missing.

- ``orbit_owner`` owns every table and runs migrations (through ``SET ROLE``
  when Orbit connects as a superuser, as on the embedded server).
- ``orbit_app`` serves requests and jobs: ``LOGIN NOSUPERUSER NOBYPASSRLS``
  with DML grants only, so row-level security always applies to it.
- ``orbit_plugin_data`` (``NOLOGIN NOBYPASSRLS``, granted to ``orbit_app``) runs
  plugins' own SQL, with grants on plugin tables only.
- ``orbit_search`` and ``orbit_crosstenant`` are ``NOLOGIN BYPASSRLS`` owners of
  the few ``SECURITY DEFINER`` functions that need them: search (indexes under
  RLS, see DESIGN.md) and the narrow cross-tenant look-ups of authentication.

Where Orbit may not create roles, ``orbit db roles-sql`` prints
:func:`role_statements` for a database administrator to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

OWNER = "orbit_owner"
APP = "orbit_app"
SEARCH = "orbit_search"
CROSSTENANT = "orbit_crosstenant"
PLUGIN_DATA = "orbit_plugin_data"
"""The role plugin SQL runs as (``SET LOCAL ROLE`` from ``orbit_app``): DML on plugin
tables only, so a plugin's own queries cannot read the core's tables around its scopes."""


class RoleSetupError(RuntimeError):
    """The server lacks roles Orbit needs and the connection cannot create them."""


@dataclass(frozen=True, slots=True)
class RoleSetup:
    """What :func:`ensure_roles` found: the role migrations must run as."""

    migration_role: str
    """The role that owns Orbit's objects and runs migrations."""
    set_role: bool
    """Whether migrations must ``SET ROLE`` to it (connected as a superuser)."""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def ensure_roles(admin_dsn: str, app_password: str) -> RoleSetup:
    """Create Orbit's roles and database grants if missing; idempotent.

    Connected as a superuser (embedded server, a developer's PostgreSQL) this
    creates everything. Connected as a plain owner (managed PostgreSQL) it only
    checks that a DBA created the roles, and says which are missing.
    """
    conn = await asyncpg.connect(admin_dsn)
    try:
        superuser = await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        database = await conn.fetchval("SELECT current_database()")
        existing = {
            row["rolname"]
            for row in await conn.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])",
                [OWNER, APP, SEARCH, CROSSTENANT, PLUGIN_DATA],
            )
        }
        if not superuser:
            current = await conn.fetchval("SELECT current_user")
            missing = sorted({APP, SEARCH, CROSSTENANT, PLUGIN_DATA} - existing)
            if missing:
                raise RoleSetupError(
                    f"roles {', '.join(missing)} are missing and {current} may not create them; "
                    "ask a database administrator to run, once, the SQL that "
                    f"`orbit db roles-sql --database {database}` prints (docs/database.md)"
                )
            return RoleSetup(migration_role=current, set_role=False)
        for statement in role_statements(existing, app_password, database):
            await conn.execute(statement)
        return RoleSetup(migration_role=OWNER, set_role=True)
    finally:
        await conn.close()


def role_statements(existing: set[str], app_password: str, database: str) -> list[str]:
    """SQL that creates the missing roles and grants them what Orbit needs."""
    statements: list[str] = []
    if OWNER not in existing:
        statements.append(f"CREATE ROLE {OWNER} NOLOGIN NOSUPERUSER NOBYPASSRLS")
    if APP not in existing:
        password = app_password.replace("'", "''")
        statements.append(
            f"CREATE ROLE {APP} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
            f"PASSWORD '{password}'"
        )
    statements.extend(
        f"CREATE ROLE {definer} NOLOGIN NOSUPERUSER BYPASSRLS"
        for definer in (SEARCH, CROSSTENANT)
        if definer not in existing
    )
    if PLUGIN_DATA not in existing:
        statements.append(f"CREATE ROLE {PLUGIN_DATA} NOLOGIN NOSUPERUSER NOBYPASSRLS")
    db = _quote(database)
    statements += [
        # The app switches to it (SET LOCAL ROLE) around a plugin's own queries.
        f"GRANT {PLUGIN_DATA} TO {APP}",
        # The owner hands function ownership to the definer roles, which needs membership.
        f"GRANT {SEARCH}, {CROSSTENANT} TO {OWNER}",
        f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {db} TO {OWNER}",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {APP}",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {OWNER}, {SEARCH}, {CROSSTENANT}",
        f"GRANT USAGE ON SCHEMA public TO {APP}, {PLUGIN_DATA}",
    ]
    return statements
