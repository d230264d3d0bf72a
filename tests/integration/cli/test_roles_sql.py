"""`orbit db roles-sql`: the SQL a DBA runs once, printed without touching any server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from orbit.platform.db import roles
from orbit.platform.db.check import check_database
from orbit.platform.db.servers import Endpoints
from tests.conftest import with_database

ROOT = Path(__file__).resolve().parents[3]
ROLES = (roles.OWNER, roles.APP, roles.SEARCH, roles.CROSSTENANT, roles.PLUGIN_DATA)


def _orbit(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DATABASE_APP_URL"}
    }
    return subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", *args],
        cwd=ROOT,
        env=base | {"ORBIT_HOME": str(home), "PYTHONSAFEPATH": "1"} | env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _statements(output: str) -> list[str]:
    return [line for line in output.splitlines() if line and not line.startswith("--")]


def _as_login(dsn: str, user: str, password: str, database: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, "/" + database, parts.query, parts.fragment))


def test_roles_sql_prints_every_role_and_grant_without_starting_servers(tmp_path: Path) -> None:
    # No DATABASE_URL: a command that started servers would start an embedded PostgreSQL.
    result = _orbit(tmp_path, "db", "roles-sql", "--database", "orbit")
    assert result.returncode == 0, result.stderr
    statements = _statements(result.stdout)
    assert all(s.endswith(";") and s.count(";") == 1 for s in statements), statements
    created = {s.split()[2]: s for s in statements if s.startswith("CREATE ROLE ")}
    assert set(created) == set(ROLES)
    assert "NOBYPASSRLS" in created[roles.APP].split()
    assert "PASSWORD 'CHANGE-ME';" in created[roles.APP]
    assert "-- First replace CHANGE-ME" in result.stdout
    assert f'GRANT CONNECT, TEMPORARY ON DATABASE "orbit" TO {roles.APP};' in statements
    assert not (tmp_path / "postgres").exists()
    assert not (tmp_path / "valkey").exists()


def test_roles_sql_with_a_password_prints_no_placeholder(tmp_path: Path) -> None:
    result = _orbit(tmp_path, "db", "roles-sql", "--app-password", "s3cret'pw")
    assert result.returncode == 0, result.stderr
    assert "CHANGE-ME" not in result.stdout
    assert "PASSWORD 's3cret''pw';" in result.stdout
    assert 'ON DATABASE "orbit" TO' in result.stdout


async def test_the_printed_sql_runs_on_a_real_server(tmp_path: Path, endpoints: Endpoints) -> None:
    scratch = f"rolesql_{secrets.token_hex(4)}"
    result = _orbit(
        tmp_path, "db", "roles-sql", "--database", scratch, "--app-password", "a real password"
    )
    assert result.returncode == 0, result.stderr
    # Roles are cluster-wide and this server already has Orbit's; rename them and roll back.
    prefix = f"orbit_t{secrets.token_hex(3)}_"
    sql = result.stdout.replace("orbit_", prefix)
    server = await asyncpg.connect(endpoints.admin_dsn)
    await server.execute(f'CREATE DATABASE "{scratch}"')
    try:
        conn = await asyncpg.connect(with_database(endpoints.admin_dsn, scratch))
        try:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(sql)
            rows = await conn.fetch(
                "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles "
                "WHERE starts_with(rolname, $1)",
                prefix,
            )
            attributes = {r["rolname"].removeprefix(prefix): tuple(r)[1:] for r in rows}
            assert attributes == {
                "owner": (False, False, False),
                "app": (True, False, False),
                "search": (False, False, True),
                "crosstenant": (False, False, True),
                "plugin_data": (False, False, False),
            }
            assert await conn.fetchval(
                "SELECT has_database_privilege($1, $2, 'CONNECT')", prefix + "app", scratch
            )
            assert await conn.fetchval(
                "SELECT pg_has_role($1, $2, 'MEMBER')", prefix + "owner", prefix + "search"
            )
            await transaction.rollback()
        finally:
            await conn.close()
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await server.close()


async def test_a_non_superuser_granted_orbit_owner_can_migrate_as_docs_say(
    tmp_path: Path, endpoints: Endpoints
) -> None:
    # The managed-PostgreSQL path of docs/database.md: the DBA ran the printed SQL (the
    # roles already exist here, so only its grants) and GRANT orbit_owner TO the login.
    name = f"rolesql_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    printed = _orbit(tmp_path, "db", "roles-sql", "--database", name)
    assert printed.returncode == 0, printed.stderr
    grants = [s for s in _statements(printed.stdout) if s.startswith("GRANT ")]
    server = await asyncpg.connect(endpoints.admin_dsn)
    await server.execute(f'CREATE DATABASE "{name}"')
    await server.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER PASSWORD '{password}'")
    try:
        conn = await asyncpg.connect(with_database(endpoints.admin_dsn, name))
        try:
            await conn.execute("\n".join(grants))
            await conn.execute(f"GRANT {roles.OWNER} TO {name}")
        finally:
            await conn.close()
        login_dsn = _as_login(endpoints.admin_dsn, name, password, name)
        migrated = _orbit(
            tmp_path / "home", "migrate", DATABASE_URL=login_dsn, REDIS_URL=endpoints.redis_url
        )
        assert migrated.returncode == 0, migrated.stderr
        reports, role_problems = await check_database(login_dsn)
        assert reports
        assert all(report.ok for report in reports), reports
        assert role_problems == []
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.execute(f"DROP ROLE IF EXISTS {name}")
        await server.close()


REFUSED_MIGRATE = """
import sys
from orbit.platform.cli import main as cli
from orbit.platform.db.roles import RoleSetupError

async def refused(*_args):
    raise RoleSetupError("roles orbit_app are missing and crm may not create them")

cli.cmd_migrate = refused
sys.exit(cli.main(["migrate"]))
"""


def test_missing_roles_end_orbit_with_the_message_not_a_traceback(tmp_path: Path) -> None:
    # asyncio.run and signal handlers would leak into this process, so ``main`` runs apart.
    result = subprocess.run(
        [sys.executable, "-c", REFUSED_MIGRATE],
        cwd=ROOT,
        env=os.environ | {"ORBIT_HOME": str(tmp_path), "PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "orbit: roles orbit_app are missing and crm may not create them\n"
