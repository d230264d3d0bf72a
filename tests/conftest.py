"""Shared fixtures: a real PostgreSQL and Redis, a migrated test database, the app.

With ``DATABASE_URL``/``REDIS_URL`` set (CI: the machine's PostgreSQL 15 and
Redis 7) the tests create a fresh ``orbit_test`` database on that server and
use Redis database 9; unset, they start embedded PostgreSQL 18 and Valkey.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from orbit.platform.app import create_app
from orbit.platform.db.migrations import migrate
from orbit.platform.db.servers import Endpoints, Infrastructure, app_dsn_for
from orbit.platform.runtime import Runtime
from orbit.platform.settings import Settings
from orbit.plugins.context import PluginContext
from tests import plugin_fixtures

# One database per run, so parallel runs (a developer and CI) never drop each other's.
TEST_DATABASE = f"orbit_test_{os.getpid()}"
TEST_REDIS_DB = 9
PASSWORD = "correct horse battery staple"
STRIPE_WEBHOOK_SECRET = "whsec_orbit_test_secret"


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def with_redis_db(url: str, db: int) -> str:
    """``url`` pointing at another Redis database number."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


async def recreate_database(server_dsn: str, name: str) -> None:
    """Drop and create ``name`` so every run starts from an empty, freshly migrated schema."""
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("orbit-home")
    return Settings(
        home=home,
        secret_key=secrets.token_urlsafe(32),
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        demo_seed=False,
        webhook_allow_private_networks=True,  # the test receivers listen on 127.0.0.1
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        # Tests make API calls far faster than people; the rate-limit tests set their own.
        api_rate_per_minute=1_000_000,
    )


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_PLUGINS = ("lead_scoring",)


@pytest.fixture(scope="session")
def installed_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugins pip-installed from their own distributions, on ``sys.path``.

    Installed before the test database is migrated and the app is built, so their
    migrations run and discovery finds them through their ``orbit.plugins`` entry points,
    like any plugin an operator installs. The tests then enable them per workspace.
    """
    target = tmp_path_factory.mktemp("site-packages")
    sources = tmp_path_factory.mktemp("examples")
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to install the example plugins (make sync installs it)"
    for name in EXAMPLE_PLUGINS:
        # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
        shutil.copytree(
            EXAMPLES / name,
            sources / name,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(target)]
        + ["--no-deps", "--no-build-isolation", "--no-cache"]
        + [str(sources / name) for name in EXAMPLE_PLUGINS],
        check=True,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    return target


@pytest.fixture(scope="session")
async def endpoints(settings: Settings, installed_examples: Path) -> AsyncIterator[Endpoints]:
    infrastructure = Infrastructure(settings)
    started = await infrastructure.start()
    admin_dsn = with_database(started.admin_dsn, TEST_DATABASE)
    await recreate_database(started.admin_dsn, TEST_DATABASE)
    password = "orbit-test-app-password"
    await migrate(admin_dsn, password, extra_apps=plugin_fixtures.APPS)
    redis_url = with_redis_db(started.redis_url, TEST_REDIS_DB)
    yield Endpoints(
        admin_dsn=admin_dsn, app_dsn=app_dsn_for(admin_dsn, password), redis_url=redis_url
    )
    conn = await asyncpg.connect(started.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()
    infrastructure.stop()


@pytest.fixture(scope="session")
async def app_and_runtime(
    settings: Settings, endpoints: Endpoints
) -> AsyncIterator[tuple[object, Runtime]]:
    app = create_app(settings, endpoints, plugin_registry=plugin_fixtures.registry())
    runtime: Runtime = app.state["runtime"]
    await runtime.start()
    # Browser tests all come from 127.0.0.1: start each run with fresh throttle counters.
    stale = [key async for key in runtime.redis.scan_iter("orbit:*:ip:127.0.0.1")]
    if stale:
        await runtime.redis.delete(*stale)
    yield app, runtime
    await runtime.stop()


@pytest.fixture(scope="session")
def runtime(app_and_runtime: tuple[object, Runtime]) -> Runtime:
    return app_and_runtime[1]


async def make_reminder_due(endpoints: Endpoints, task_id: str) -> None:
    """Time passes: move a task's reminder into the past (as a superuser, past the API's check)."""
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE tasks SET remind_at = now() - interval '1 minute' WHERE id = $1",
            uuid.UUID(task_id),
        )
    finally:
        await admin.close()


def make_client(app: object) -> httpx.AsyncClient:
    """A client with its own cookie jar, talking to the app in-process over ASGI.

    Each client gets its own peer address, so per-IP login throttling in one test
    never spills into another (or into a parallel run sharing the Redis).
    """
    peer = ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))
    transport = httpx.ASGITransport(app=app, client=(f"10.{peer}", 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@dataclass
class Member:
    """A signed-up user with a logged-in client (cookie + CSRF header)."""

    client: httpx.AsyncClient
    email: str
    slug: str
    workspace_id: str
    csrf: str


async def sign_up(app: object, workspace: str, email: str | None = None) -> Member:
    """Sign up through the API; the returned client sends the CSRF header."""
    email = email or f"{secrets.token_hex(4)}@example.com"
    client = make_client(app)
    response = await client.post(
        "/api/v1/signup",
        json={"email": email, "password": PASSWORD, "workspace_name": workspace, "name": "T"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    client.headers["X-CSRF-Token"] = body["csrf_token"]
    return Member(
        client=client,
        email=email,
        slug=body["workspace"]["slug"],
        workspace_id=body["workspace"]["id"],
        csrf=body["csrf_token"],
    )


async def api_key(member: Member, scopes: list[str]) -> str:
    """A new API key of the member's workspace."""
    response = await member.client.post("/api/v1/api-keys", json={"name": "test", "scopes": scopes})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def bearer(app: object, key: str) -> httpx.AsyncClient:
    """A cookie-less client authenticated by an API key."""
    client = make_client(app)
    client.headers["Authorization"] = f"Bearer {key}"
    return client


async def enable_plugin(
    member: Member, plugin: str, settings: dict[str, object] | None = None
) -> None:
    """Enable ``plugin`` from the marketplace with every scope it asks for, as an admin would."""
    listed = (await member.client.get(f"/api/v1/marketplace/{plugin}")).json()
    response = await member.client.post(
        f"/api/v1/marketplace/{plugin}/enable", json={"scopes": listed["scopes"]}
    )
    assert response.status_code == 201, response.text
    if settings:
        await save_plugin_settings(member, plugin, settings)


async def save_plugin_settings(member: Member, plugin: str, settings: dict[str, object]) -> None:
    """Save ``plugin``'s settings for the member's workspace."""
    saved = await member.client.put(
        f"/api/v1/marketplace/{plugin}/settings", json={"settings": settings}
    )
    assert saved.status_code == 200, saved.text


@asynccontextmanager
async def plugin_transaction(
    runtime: Runtime, member: Member, plugin: str
) -> AsyncIterator[PluginContext]:
    """``plugin``'s context in the member's workspace, in one transaction (committed)."""
    tenant = uuid.UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, member.slug)
        ctx = plugins.context(plugin)
        try:
            yield ctx
        except BaseException:
            await ctx.db.settle(ok=False)
            raise
        await ctx.db.settle(ok=True)


@pytest.fixture(scope="session")
def app(app_and_runtime: tuple[object, Runtime]) -> object:
    return app_and_runtime[0]


@pytest.fixture
async def alice(app: object) -> AsyncIterator[Member]:
    member = await sign_up(app, "Alice Imports")
    yield member
    await member.client.aclose()


@pytest.fixture
async def bob(app: object) -> AsyncIterator[Member]:
    member = await sign_up(app, "Bob Exports")
    yield member
    await member.client.aclose()


@pytest.fixture(scope="session")
def artifacts_dir() -> Iterator[Path]:
    path = Path(__file__).parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
