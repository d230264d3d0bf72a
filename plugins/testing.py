"""pytest fixtures for plugin authors: a real migrated database, tenants, and a harness.

Load it in the plugin's ``pyproject.toml`` and name the plugin in ``conftest.py``::

    [tool.pytest.ini_options]
    addopts = "-p orbit.plugins.testing"
    asyncio_mode = "auto"
    asyncio_default_fixture_loop_scope = "session"
    asyncio_default_test_loop_scope = "session"

    # tests/conftest.py
    @pytest.fixture(scope="session")
    def orbit_plugin():
        import my_plugin
        return my_plugin

Then a test takes ``orbit_harness`` (the plugin acting for a fresh tenant) or
``orbit_tenant`` and ``orbit_database`` to build more than one. Everything runs on a
real PostgreSQL with Orbit's migrations and the plugin's own applied, as the app role
under row-level security, exactly as in Orbit: ``DATABASE_URL`` (a server the tests
may create a scratch database on; ``ORBIT_TEST_APP_PASSWORD`` is the password of an
existing ``orbit_app`` role, default the one Orbit's own tests use) or, unset, an
embedded PostgreSQL.

Hooks are called directly, not through Orbit's isolation: an exception or an
assertion inside a hook fails the test, which is what a plugin's own tests want.
"""

from __future__ import annotations

import inspect
import os
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import msgspec
import pytest

from orbit.platform.db.engine import Database
from orbit.platform.ids import new_id
from orbit.plugins.context import Event, PluginContext
from orbit.plugins.links import PluginLinks
from orbit.plugins.manifest import Manifest, parse_manifest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orbit.tenants.context import TenantContext

TEST_APP_PASSWORD = "orbit-test-app-password"  # noqa: S105 - a throwaway test database's role
"""``orbit_app``'s password when the tests create the role (``ORBIT_TEST_APP_PASSWORD``)."""


@dataclass(frozen=True, slots=True)
class TestTenant:
    """A workspace made for one test, with its owner."""

    __test__ = False  # not a test class, whatever pytest's name pattern says

    id: UUID
    slug: str
    name: str
    owner_id: UUID
    membership_id: UUID


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@asynccontextmanager
async def scratch_database(
    extra_apps: tuple[str, ...] = (), *, home: Path | None = None
) -> AsyncIterator[tuple[str, str]]:
    """A new database with Orbit's and ``extra_apps``' migrations: (admin DSN, app DSN).

    Uses ``DATABASE_URL``'s server, or starts an embedded PostgreSQL under ``home``;
    the database is dropped afterwards. ``orbit plugin check`` uses it too.
    """
    from orbit.platform.db.migrations import migrate  # noqa: PLC0415 - Piccolo loads late
    from orbit.platform.db.servers import Infrastructure, app_dsn_for  # noqa: PLC0415
    from orbit.platform.settings import Settings  # noqa: PLC0415

    server = os.environ.get("DATABASE_URL") or None
    infrastructure = None
    if server is None:
        import tempfile  # noqa: PLC0415

        settings = Settings(
            home=home or Path(tempfile.mkdtemp(prefix="orbit-plugin-test-")),
            secret_key=secrets.token_urlsafe(32),
            redis_url="redis://unused",  # only PostgreSQL is started
        )
        infrastructure = Infrastructure(settings)
        server = (await infrastructure.start()).admin_dsn
    name = f"orbit_plugintest_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    admin_dsn = _with_database(server, name)
    password = os.environ.get("ORBIT_TEST_APP_PASSWORD", TEST_APP_PASSWORD)
    try:
        await migrate(admin_dsn, password, extra_apps=extra_apps)
        yield admin_dsn, app_dsn_for(admin_dsn, password)
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        if infrastructure is not None:
            infrastructure.stop()


async def create_tenant(db: Database, name: str | None = None) -> TestTenant:
    """A new workspace with an owner, as signing up makes one."""
    from orbit.platform.auth.service import AccountService  # noqa: PLC0415

    token = secrets.token_hex(4)
    async with db.transaction():
        account, workspace = await AccountService(db).sign_up(
            email=f"owner-{token}@example.com",
            password=secrets.token_urlsafe(16),
            name="Test Owner",
            workspace_name=name or f"Plugin test {token}",
        )
        await db.set_tenant(workspace.id)
        membership = await db.fetchval(
            "SELECT id FROM memberships WHERE tenant_id = $1 AND user_id = $2",
            workspace.id,
            account.id,
        )
    return TestTenant(workspace.id, workspace.slug, workspace.name, account.id, membership)


@dataclass
class PluginHarness:
    """One plugin acting for one tenant: call its hooks, fire events, make CRM records."""

    plugin: object
    db: Database
    tenant: TestTenant
    settings: dict[str, Any] = field(default_factory=dict)
    """The tenant's configuration of the plugin (the manifest's defaults are added)."""
    scopes: frozenset[str] | None = None
    """Scopes granted; ``None``: all the manifest asks for."""
    delivered: set[UUID] = field(default_factory=set)
    links: PluginLinks = field(
        default_factory=lambda: PluginLinks(secrets.token_urlsafe(32), "http://orbit.test")
    )
    """Signs ``ctx.sign`` tokens (verify them with ``harness.links.verify(plugin_id, …)``)."""

    @property
    def manifest(self) -> Manifest:
        """The plugin's checked manifest."""
        return parse_manifest(getattr(self.plugin, "MANIFEST"), source="test")  # noqa: B009

    def _context(self) -> PluginContext:
        manifest = self.manifest
        settings = {s.name: s.default for s in manifest.settings if s.default is not None}
        settings.update(self.settings)
        return PluginContext(
            plugin_id=manifest.id,
            tenant_id=self.tenant.id,
            tenant_slug=self.tenant.slug,
            settings=settings,
            scopes=frozenset(manifest.scopes) if self.scopes is None else self.scopes,
            core_db=self.db,
            links=self.links,
            emits=frozenset(manifest.emits),
        )

    @asynccontextmanager
    async def context(self) -> AsyncIterator[PluginContext]:
        """The plugin's context inside one tenant transaction (committed unless it raises)."""
        async with self.db.transaction(self.tenant.id):
            ctx = self._context()
            try:
                yield ctx
            except BaseException:
                await ctx.db.settle(ok=False)
                raise
            await ctx.db.settle(ok=True)

    async def call(self, hook: str, **kwargs: Any) -> Any:
        """Call the plugin's ``hook`` for the tenant as Orbit would (``ctx`` is added)."""
        function = getattr(self.plugin, hook, None)
        if function is None:
            raise AssertionError(f"the plugin does not implement {hook}")
        async with self.context() as ctx:
            available = {**kwargs, "ctx": ctx}
            wanted = inspect.signature(function).parameters
            value = function(**{name: available[name] for name in wanted if name != "self"})
            if inspect.isawaitable(value):
                value = await value
            return value

    async def fire(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        event_id: UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Event:
        """Deliver one event to ``orbit_event``; fire the returned event again to redeliver."""
        event = Event(
            id=event_id or new_id(),
            type=event_type,
            occurred_at=occurred_at or datetime.now(UTC),
            data=msgspec.to_builtins(data),
        )
        await self.call("orbit_event", event=event)
        return event

    async def deliver_outbox(self) -> list[Event]:
        """Deliver the tenant's committed events the manifest subscribes to, in order, once."""
        events = set(self.manifest.events)
        async with self.db.transaction(self.tenant.id):
            rows = await self.db.fetch(
                "SELECT id, type, data, occurred_at FROM outbox_events WHERE tenant_id = $1 "
                "ORDER BY occurred_at, id",
                self.tenant.id,
            )
        delivered: list[Event] = []
        for row in rows:
            if row["id"] in self.delivered or not ({row["type"], "*"} & events):
                continue
            event = Event(
                row["id"], row["type"], row["occurred_at"], msgspec.json.decode(row["data"])
            )
            await self.call("orbit_event", event=event)
            self.delivered.add(row["id"])
            delivered.append(event)
        return delivered

    def member(self) -> TenantContext:
        """The tenant's owner, for calling Orbit's own services."""
        from orbit.tenants.context import TenantContext  # noqa: PLC0415
        from orbit.tenants.roles import ROLE_SCOPES, Role  # noqa: PLC0415

        return TenantContext(
            tenant_id=self.tenant.id,
            tenant_slug=self.tenant.slug,
            tenant_name=self.tenant.name,
            scopes=ROLE_SCOPES[Role.OWNER],
            user_id=self.tenant.owner_id,
            membership_id=self.tenant.membership_id,
            role=Role.OWNER,
        )

    async def create_contact(self, **fields: Any) -> dict[str, Any]:
        """A contact made through Orbit (its ``contact.created`` event is in the outbox)."""
        from orbit.platform.crm.schemas import ContactCreate  # noqa: PLC0415
        from orbit.platform.crm.service import ContactService  # noqa: PLC0415

        async with self.db.transaction(self.tenant.id):
            contact = await ContactService(self.db).create(self.member(), ContactCreate(**fields))
        out: dict[str, Any] = msgspec.to_builtins(contact)
        return out

    async def log_activity(
        self, contact_id: UUID | str, kind: str = "call", **fields: Any
    ) -> dict[str, Any]:
        """An interaction logged with a contact through Orbit (``activity.created``)."""
        from orbit.platform.crm.activities import ActivityService  # noqa: PLC0415
        from orbit.platform.crm.schemas import ActivityIn  # noqa: PLC0415

        data = ActivityIn(kind=kind, contact_id=UUID(str(contact_id)), **fields)  # type: ignore[arg-type]
        async with self.db.transaction(self.tenant.id):
            activity = await ActivityService(self.db).log(self.member(), data)
        out: dict[str, Any] = msgspec.to_builtins(activity)
        return out

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Rows of ``query`` as Orbit's app role in the tenant (row-level security applies)."""
        async with self.db.transaction(self.tenant.id):
            return await self.db.fetch(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        """The first value of ``query``, as :meth:`fetch`."""
        async with self.db.transaction(self.tenant.id):
            return await self.db.fetchval(query, *args)


# --- pytest fixtures ---------------------------------------------------------------


@pytest.fixture(scope="session")
def orbit_plugin() -> object:
    """The plugin under test: override it in the plugin's ``conftest.py``."""
    raise pytest.UsageError(
        "define an `orbit_plugin` fixture (scope='session') returning your plugin's module"
    )


@pytest.fixture(scope="session")
async def orbit_database(
    orbit_plugin: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A scratch database migrated with Orbit and the plugin's tables, as the app role."""
    manifest = parse_manifest(getattr(orbit_plugin, "MANIFEST"), source="test")  # noqa: B009
    apps = (manifest.migrations,) if manifest.migrations else ()
    async with scratch_database(apps, home=tmp_path_factory.mktemp("orbit")) as (_, app_dsn):
        from orbit.platform.runtime import all_tables  # noqa: PLC0415

        db = Database(app_dsn, pool_size=4)
        await db.connect()
        db.bind(all_tables())
        try:
            yield db
        finally:
            await db.close()


@pytest.fixture
async def orbit_tenant(orbit_database: Database) -> TestTenant:
    """A fresh workspace."""
    return await create_tenant(orbit_database)


@pytest.fixture
def orbit_harness(
    orbit_plugin: object, orbit_database: Database, orbit_tenant: TestTenant
) -> PluginHarness:
    """The plugin enabled for ``orbit_tenant`` with its default settings and every scope."""
    return PluginHarness(orbit_plugin, orbit_database, orbit_tenant)


__all__ = [
    "PluginHarness",
    "TestTenant",
    "create_tenant",
    "orbit_database",
    "orbit_harness",
    "orbit_plugin",
    "orbit_tenant",
    "scratch_database",
]
