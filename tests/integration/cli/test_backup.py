"""``orbit backup`` / ``orbit restore``: a round trip brings data, RLS and grants back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from orbit.platform.db.backup import client_tools_for, server_major
from orbit.platform.db.servers import Endpoints, app_dsn_for
from tests.conftest import recreate_database, with_database

ROOT = Path(__file__).resolve().parents[3]
APP_PASSWORD = "orbit-test-app-password"  # the one tests/conftest.py gives orbit_app


def _orbit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_APP_URL"}}
    return env | {"ORBIT_HOME": str(home), "PYTHONSAFEPATH": "1"} | extra


async def _seed(dsn: str, tenant_id: uuid.UUID, names: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Backup Co')",
            tenant_id,
            f"backup-{tenant_id.hex[:8]}",
        )
        await conn.executemany(
            "INSERT INTO contacts (tenant_id, id, first_name) VALUES ($1, $2, $3)",
            [(tenant_id, uuid.uuid4(), name) for name in names],
        )
    finally:
        await conn.close()


async def _contacts_seen_by_app_role(dsn: str, tenant_id: uuid.UUID) -> list[str]:
    """What orbit_app sees for that tenant: proves rows, grants and RLS all came back."""
    conn = await asyncpg.connect(app_dsn_for(dsn, APP_PASSWORD))
    try:
        async with conn.transaction():
            assert await conn.fetchval("SELECT count(*) FROM contacts") == 0  # no tenant: no rows
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            rows = await conn.fetch("SELECT first_name FROM contacts ORDER BY first_name")
    finally:
        await conn.close()
    return [row["first_name"] for row in rows]


async def test_backup_then_restore_brings_back_dropped_rows_and_tables(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    scratch = f"orbit_backup_{os.getpid()}"
    scratch_dsn = with_database(endpoints.admin_dsn, scratch)
    await recreate_database(endpoints.admin_dsn, scratch)
    env = _env(tmp_path / "home", DATABASE_URL=scratch_dsn, REDIS_URL=endpoints.redis_url)
    try:
        migrated = _orbit("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        tenant_id = uuid.uuid4()
        await _seed(scratch_dsn, tenant_id, ["Ada", "Βασίλης", "Zoë"])
        archive = tmp_path / "backups" / "orbit.dump"

        backed_up = _orbit("backup", str(archive), env=env)
        assert backed_up.returncode == 0, backed_up.stderr
        assert archive.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
        assert not archive.with_name("orbit.dump.partial").exists()

        conn = await asyncpg.connect(scratch_dsn)
        try:
            await conn.execute("DELETE FROM contacts WHERE first_name = 'Ada'")
            await conn.execute("UPDATE contacts SET first_name = 'Changed'")
            await conn.execute("DROP TABLE api_keys")
        finally:
            await conn.close()

        restored = _orbit("restore", str(archive), env=env)
        assert restored.returncode == 0, restored.stderr
        assert await _contacts_seen_by_app_role(scratch_dsn, tenant_id) == ["Ada", "Zoë", "Βασίλης"]
        conn = await asyncpg.connect(scratch_dsn)
        try:
            assert await conn.fetchval("SELECT to_regclass('api_keys') IS NOT NULL")
            forced = await conn.fetchval(
                "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'contacts'"
            )
            assert forced is True
        finally:
            await conn.close()
        checked = _orbit("db", "check", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        conn = await asyncpg.connect(endpoints.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await conn.close()


def test_restore_of_a_missing_file_says_so_and_changes_nothing(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    env = _env(tmp_path / "home", DATABASE_URL=endpoints.admin_dsn, REDIS_URL=endpoints.redis_url)
    result = _orbit("restore", str(tmp_path / "nope.dump"), env=env)
    assert result.returncode == 2
    assert "nope.dump does not exist" in result.stderr


def test_client_tools_are_at_least_as_new_as_the_server(endpoints: Endpoints) -> None:
    major = asyncio.run(server_major(endpoints.admin_dsn))
    tools = asyncio.run(client_tools_for(major))
    assert tools.major >= major
    assert Path(tools.tool("pg_dump")).exists()
    assert Path(tools.tool("pg_restore")).exists()


@pytest.mark.embedded
def test_round_trip_on_the_embedded_server(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DATABASE_APP_URL"}
    } | {"ORBIT_HOME": str(tmp_path / "home"), "PYTHONSAFEPATH": "1"}
    migrated = _orbit("migrate", env=env)  # starts (and stops) the embedded servers
    assert migrated.returncode == 0, migrated.stderr
    seeded = _orbit("demo-seed", env=env)
    assert seeded.returncode == 0, seeded.stderr
    archive = tmp_path / "embedded.dump"
    backed_up = _orbit("backup", str(archive), env=env)
    assert backed_up.returncode == 0, backed_up.stderr
    assert "pg_dump 18" in backed_up.stdout  # the embedded server's own tools
    restored = _orbit("restore", str(archive), env=env)
    assert restored.returncode == 0, restored.stderr
    again = _orbit("demo-seed", env=env)
    assert "already exists" in again.stdout
