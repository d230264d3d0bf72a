"""The running services one Orbit process shares: database pool, Redis, session store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from orbit.billing.gateway import gateway_from_settings
from orbit.platform.auth.sessions import SessionStore
from orbit.platform.auth.throttle import LoginThrottle
from orbit.platform.db.engine import Database
from orbit.plugins.host import PluginHost
from orbit.plugins.links import PluginLinks
from orbit.plugins.registry import PluginRegistry
from orbit.plugins.secrets import SettingsCipher
from orbit.plugins.service import MarketplaceService
from orbit.tenants.rate_limits import RateLimiter

if TYPE_CHECKING:
    from piccolo.table import Table

    from orbit.platform.db.servers import Endpoints
    from orbit.platform.settings import Settings


def all_tables() -> list[type[Table]]:
    """Every Piccolo table of every registered app."""
    from orbit.platform.db.piccolo_conf import APP_REGISTRY  # noqa: PLC0415

    return [table for config in APP_REGISTRY.app_configs.values() for table in config.table_classes]


class Runtime:
    """Connections opened at start-up and closed at shutdown; one per process.

    Piccolo binds table classes to an engine globally, so :meth:`start` makes
    this runtime's pool the one every table uses.

    A plain class rather than a dataclass: Litestar injects it and would
    otherwise validate it field by field on every request.
    """

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        plugin_registry: PluginRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.db = Database(endpoints.app_dsn)
        self.redis: Redis = Redis.from_url(endpoints.redis_url, decode_responses=True)
        self.sessions = SessionStore(self.redis)
        self.throttle = LoginThrottle(self.redis)
        self.plugins = PluginHost(
            plugin_registry if plugin_registry is not None else PluginRegistry.discover(),
            self.db,
            self.redis,
            SettingsCipher(settings.secret_key),
            links=PluginLinks(settings.secret_key, settings.public_url),
        )
        self.marketplace = MarketplaceService(self.db, self.plugins)
        self.plugins.on_trip = self.marketplace.trip
        self.rate_limiter = RateLimiter(self.redis)
        self.billing = gateway_from_settings(settings)
        """Stripe, or ``None`` when no key is configured (paid plans unavailable)."""

    @classmethod
    def create(
        cls,
        settings: Settings,
        endpoints: Endpoints,
        plugin_registry: PluginRegistry | None = None,
    ) -> Runtime:
        """Build (but do not yet connect) the runtime.

        Plugins are found through entry points unless ``plugin_registry`` is given (tests).
        """
        return cls(settings, endpoints, plugin_registry)

    async def start(self) -> None:
        """Open the database pool and bind every table to it."""
        await self.db.connect()
        self.db.bind(all_tables())

    async def stop(self) -> None:
        """Close connections."""
        await self.db.close()
        await self.redis.aclose()
