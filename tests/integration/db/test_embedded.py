"""The zero-set-up path: embedded PostgreSQL 18 and Valkey under ORBIT_HOME."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from orbit.platform.db.check import check_database
from orbit.platform.db.migrations import migrate
from orbit.platform.db.servers import Endpoints, Infrastructure
from orbit.platform.settings import Settings, generated_secret

pytestmark = pytest.mark.embedded


def _orbit(
    settings: Settings, endpoints: Endpoints, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORBIT_HOME": str(settings.home),
        "DATABASE_URL": endpoints.admin_dsn,
        "REDIS_URL": endpoints.redis_url,
        "PYTHONSAFEPATH": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _embedded_settings(home: Path) -> Settings:
    return Settings(home=home, secret_key=secrets.token_urlsafe(32), demo_seed=False)


async def test_embedded_servers_start_migrate_keep_data_and_stop(tmp_path: Path) -> None:
    settings = _embedded_settings(tmp_path / "home")
    infrastructure = Infrastructure(settings)
    endpoints = await infrastructure.start()
    try:
        assert (settings.home / "postgres" / "PG_VERSION").read_text().strip() == "18"
        await migrate(endpoints.admin_dsn, generated_secret(settings.home, "db_app_password"))
        reports, role_problems = await check_database(endpoints.admin_dsn)
        assert reports
        assert all(r.ok for r in reports)
        assert role_problems == []
        # Piccolo binds tables per process, so the app side runs as its own process.
        created = _orbit(
            settings,
            endpoints,
            "tenants",
            "create",
            "--name",
            "Kept",
            "--owner-email",
            "kept@example.com",
            "--password",
            "a long password",
        )
        assert created.returncode == 0, created.stderr
        assert "created workspace kept" in created.stdout
    finally:
        infrastructure.stop()
    assert not (settings.home / "postgres" / "postmaster.pid").exists()

    # Second start: same data directory, the workspace is still there.
    again = Infrastructure(settings)
    endpoints = await again.start()
    try:
        conn = await asyncpg.connect(endpoints.admin_dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM tenants WHERE slug = 'kept'") == 1
        finally:
            await conn.close()
        redis = Redis.from_url(endpoints.redis_url)
        try:
            info = await redis.info("server")
        finally:
            await redis.aclose()
        assert "valkey_version" in info or info.get("server_name") == "valkey"
    finally:
        again.stop()


async def test_external_urls_start_nothing(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        secret_key="k" * 40,
        database_url="postgresql://postgres@127.0.0.1:5432/postgres",
        redis_url="redis://127.0.0.1:6379/0",
    )
    infrastructure = Infrastructure(settings)
    endpoints = await infrastructure.start()
    infrastructure.stop()
    assert endpoints.admin_dsn == settings.database_url
    assert endpoints.redis_url == settings.redis_url
    assert endpoints.app_dsn.startswith("postgresql://orbit_app:")
    assert not (tmp_path / "postgres").exists()
    assert not (tmp_path / "valkey").exists()
