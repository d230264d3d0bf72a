"""Where the benchmark's PostgreSQL and Redis come from, exactly as ``orbit`` finds them.

``DATABASE_URL``/``REDIS_URL`` when set (the machine's servers), otherwise the
embedded ones under ``ORBIT_HOME`` (default ``.orbit-bench``, apart from ``make run``'s
``.orbit`` so that the two never start one data directory twice). The benchmark
data lives in its own database, ``orbit_bench``, on that server.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from orbit.platform.db.servers import Infrastructure, app_dsn_for
from orbit.platform.settings import Settings, generated_secret, load_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BENCH_DATABASE = "orbit_bench"
BENCH_HOME = ".orbit-bench"


@dataclass(frozen=True, slots=True)
class BenchEndpoints:
    """Connections to the benchmark database."""

    server_dsn: str
    """A superuser connection to the server's maintenance database (create/drop)."""
    admin_dsn: str
    """A superuser connection to the benchmark database (migrations, COPY, RLS off)."""
    app_dsn: str
    """The app role (``orbit_app``) on the benchmark database: RLS on."""
    app_password: str
    redis_url: str
    database: str
    settings: Settings


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def bench_settings() -> Settings:
    """Orbit's settings from the environment, with the benchmark's own ``ORBIT_HOME``."""
    env = dict(os.environ)
    env.setdefault("ORBIT_HOME", BENCH_HOME)
    env["ORBIT_DEMO_SEED"] = "false"
    return load_settings(env)


@asynccontextmanager
async def bench_servers(database: str = BENCH_DATABASE) -> AsyncIterator[BenchEndpoints]:
    """The servers (embedded ones started here and stopped after) and the bench database."""
    settings = bench_settings()
    infrastructure = Infrastructure(settings)
    started = await infrastructure.start()
    try:
        if settings.database_app_url:
            password = unquote(urlsplit(settings.database_app_url).password or "")
            app_dsn = with_database(settings.database_app_url, database)
        else:
            password = generated_secret(settings.home, "db_app_password")
            app_dsn = app_dsn_for(with_database(started.admin_dsn, database), password)
        yield BenchEndpoints(
            server_dsn=started.admin_dsn,
            admin_dsn=with_database(started.admin_dsn, database),
            app_dsn=app_dsn,
            app_password=password,
            redis_url=started.redis_url,
            database=database,
            settings=settings,
        )
    finally:
        await asyncio.to_thread(infrastructure.stop)


async def ensure_superuser(admin_dsn: str) -> None:
    """The generator writes with COPY past RLS: that takes a superuser connection."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            msg = (
                "the benchmark needs DATABASE_URL to be a superuser: it loads the data with "
                "COPY past row-level security and measures queries with RLS off"
            )
            raise SystemExit(msg)
    finally:
        await conn.close()
