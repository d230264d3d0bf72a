"""The plugin developer kit behind ``orbit plugin new`` and ``orbit plugin check``.

``new`` writes a plugin distribution that works from the first minute: a pyproject
with the entry point, a manifest, an event hook, a table with its migration, a
contact sidebar panel and tests on :mod:`orbit.plugins.testing`.

``check`` builds and installs a plugin distribution into a scratch directory (as an
operator's ``pip install`` would), loads it through its ``orbit.plugins`` entry point,
checks the manifest, its Orbit range and scopes, applies Orbit's and then the plugin's
migrations to a scratch database and lints the plugin's tables (``tenant_id``, forced
row-level security with a tenant policy, keys and indexes led by ``tenant_id``,
declared in the manifest), then runs the plugin's tests with pytest.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from contextlib import AsyncExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint, distributions
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from orbit.platform.version import ORBIT_VERSION
from orbit.plugins.manifest import PLUGIN_ID, ManifestError, incompatibility, parse_manifest
from orbit.plugins.registry import ENTRY_POINT_GROUP, PluginRegistry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from orbit.plugins.manifest import Manifest


class ScaffoldError(ValueError):
    """``orbit plugin new`` cannot write the plugin (bad name, folder not empty)."""


def plugin_id_for(name: str) -> str:
    """The plugin id for a name given on the command line (``lead-scoring`` → ``lead_scoring``)."""
    plugin_id = re.sub(r"[\s-]+", "_", name.strip().lower())
    if not PLUGIN_ID.match(plugin_id):
        raise ScaffoldError(
            f"{name!r} cannot be a plugin id: use 2-40 lower-case letters, digits, '-' or '_', "
            "starting with a letter"
        )
    return plugin_id


def orbit_range(version: str = ORBIT_VERSION) -> str:
    """The ``requires_orbit`` range a new plugin starts with: this minor (0.x) or major."""
    v = Version(version)
    if v.major == 0:
        return f">={v.major}.{v.minor},<{v.major}.{v.minor + 1}"
    return f">={v.major}.{v.minor},<{v.major + 1}"


def _next_migration_time() -> datetime:
    """Now, or just after the newest migration this Orbit knows, whichever is later.

    Orbit applies every app's migrations in the order of their IDs, so a plugin's
    first migration must come after the core tables it references.
    """
    from orbit.platform.db.migrations import all_migrations  # noqa: PLC0415 - imports every app

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    newest = max((m.id for m in all_migrations()), default="")
    if not newest:
        return now
    after = datetime.strptime(newest[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    return max(now, after + timedelta(minutes=1))


_PYPROJECT = """\
[project]
name = "__DIST__"
version = "0.1.0"
description = "__TITLE__, a plugin for Orbit CRM."
readme = "README.md"
requires-python = ">=3.11"
license = "MIT"
# Orbit is not a dependency: the plugin runs inside the Orbit it is installed into,
# and MANIFEST.requires_orbit says which versions it supports.
dependencies = []

[project.entry-points."orbit.plugins"]
__ID__ = "__PACKAGE__"

[build-system]
requires = ["setuptools>=75"]
build-backend = "setuptools.build_meta"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
addopts = "--import-mode=importlib -p orbit.plugins.testing"
testpaths = ["tests"]
pythonpath = ["src"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
"""

_README = """\
# __TITLE__

An Orbit plugin: it remembers the events of each contact and shows how many it saw
in the contact page's sidebar. Made with `orbit plugin new`; docs/plugins.md in
Orbit's repository is the guide.

    orbit plugin check .      # manifest, Orbit range, scopes, table RLS, tests
    pip install .             # into the Orbit environment, then `orbit migrate`
"""

_PLUGIN = '''\
"""__TITLE__: an Orbit plugin (made with ``orbit plugin new``)."""

from __future__ import annotations

from uuid import UUID

from orbit.plugins.api import Event, Fragment, Manifest, PluginContext, Setting, escape, hookimpl

MANIFEST = Manifest(
    id="__ID__",
    name="__TITLE__",
    version="0.1.0",
    summary="Counts the events of each contact",
    author="You",
    license="MIT",
    requires_orbit="__RANGE__",
    scopes=("contacts:read",),
    slots=("contact.sidebar",),
    events=("contact.created", "contact.updated"),
    settings=(Setting(name="label", label="Panel label", default="Events seen"),),
    migrations="__PACKAGE__.piccolo_app",
    tables=("__ID___events",),
)


@hookimpl
async def orbit_event(ctx: PluginContext, event: Event) -> None:
    """Remember a contact's event once: Orbit may deliver the same event again."""
    await ctx.db.execute(
        "INSERT INTO __ID___events (tenant_id, event_id, contact_id, type) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        ctx.tenant_id,
        event.id,
        UUID(event.data["id"]),
        event.type,
    )


@hookimpl
async def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """How many events of this contact the plugin saw, in the contact sidebar."""
    if slot != "contact.sidebar" or subject_id is None:
        return None
    contact = await ctx.contacts.get(subject_id)
    if contact is None:
        return None
    seen = await ctx.db.fetchval(
        "SELECT count(*) FROM __ID___events WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        subject_id,
    )
    label = escape(ctx.settings.get("label", "Events seen"))
    return Fragment(
        "__TITLE__", f'<p id="__ID__-panel">{label}: {seen} ({escape(contact.name)})</p>'
    )
'''

_PICCOLO_APP = '''\
"""The plugin's Piccolo app: ``orbit migrate`` applies its migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="__ID__",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
)
'''

_MIGRATION = '''\
"""__TITLE__'s table: one row per contact event it saw."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "__MIGRATION_ID__"
VERSION = "1.38.0"
DESCRIPTION = "__ID___events"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="__ID__", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE __ID___events (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                event_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                type text NOT NULL,
                seen_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, event_id)
            );
            CREATE INDEX __ID___events_contact ON __ID___events (tenant_id, contact_id);
            {plugin_owned("__ID___events")}
        """)
    )
    return manager
'''

_CONFTEST = '''\
"""The plugin under test, for orbit.plugins.testing's fixtures."""

import pytest


@pytest.fixture(scope="session")
def orbit_plugin() -> object:
    import __PACKAGE__

    return __PACKAGE__
'''

_TEST = '''\
"""__TITLE__ on a real Orbit database (orbit.plugins.testing)."""

from uuid import UUID

from orbit.plugins.testing import PluginHarness, create_tenant


async def test_each_event_counts_once(orbit_harness: PluginHarness) -> None:
    contact = await orbit_harness.create_contact(first_name="Ada", email="ada@example.com")
    delivered = await orbit_harness.deliver_outbox()
    assert [event.type for event in delivered] == ["contact.created"]
    again = delivered[0]
    await orbit_harness.fire(again.type, again.data, event_id=again.id)  # redelivered
    panel = await orbit_harness.call(
        "orbit_ui_slot", slot="contact.sidebar", subject_id=UUID(contact["id"])
    )
    assert "Events seen: 1 (Ada)" in panel.html


async def test_another_workspace_sees_none_of_it(orbit_harness: PluginHarness) -> None:
    await orbit_harness.create_contact(first_name="Grace")
    await orbit_harness.deliver_outbox()
    other = PluginHarness(
        orbit_harness.plugin, orbit_harness.db, await create_tenant(orbit_harness.db)
    )
    assert await orbit_harness.fetchval("SELECT count(*) FROM __ID___events") == 1
    assert await other.fetchval("SELECT count(*) FROM __ID___events") == 0
'''


def scaffold(name: str, path: Path | None = None) -> Path:
    """Write a new plugin distribution called ``name`` into ``path``; the folder written."""
    plugin_id = plugin_id_for(name)
    package = f"orbit_{plugin_id}"
    target = path if path is not None else Path.cwd() / f"orbit-{plugin_id.replace('_', '-')}"
    if target.exists() and any(target.iterdir()):
        raise ScaffoldError(f"{target} exists and is not empty")
    at = _next_migration_time()
    values = {
        "__DIST__": f"orbit-{plugin_id.replace('_', '-')}",
        "__PACKAGE__": package,
        "__TITLE__": plugin_id.replace("_", " ").capitalize(),
        "__RANGE__": orbit_range(),
        "__MIGRATION_ID__": at.strftime("%Y-%m-%dT%H:%M:00:000000"),
        "__ID__": plugin_id,
    }
    migration = f"m{at:%Y%m%d_%H%M}_{plugin_id}_events.py"
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{package}/__init__.py": _PLUGIN,
        f"src/{package}/piccolo_app.py": _PICCOLO_APP,
        f"src/{package}/piccolo_migrations/__init__.py": '"""Migrations."""\n',
        f"src/{package}/piccolo_migrations/{migration}": _MIGRATION,
        "tests/conftest.py": _CONFTEST,
        f"tests/test_{plugin_id}.py": _TEST,
    }
    for relative, template in files.items():
        text = template
        for token, value in values.items():
            text = text.replace(token, value)
        file = target / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    return target


# --- check ---------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What ``orbit plugin check`` found: one line per check, failures counted."""

    lines: list[tuple[bool, str]] = field(default_factory=list)
    out: Callable[[str], None] = print

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(passed for passed, _ in self.lines)

    def add(self, message: str, *, ok: bool) -> None:
        """Record one result and print it."""
        self.lines.append((ok, message))
        self.out(f"  {'ok  ' if ok else 'FAIL'}  {message}")

    def good(self, message: str) -> None:
        """Record a check that passed."""
        self.add(message, ok=True)

    def bad(self, message: str) -> None:
        """Record a check that failed."""
        self.add(message, ok=False)


def _uv() -> list[str] | None:
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else None


def install(source: Path, target: Path) -> str | None:
    """Build ``source`` and install it (no dependencies) into ``target``; an error or ``None``."""
    uv = _uv()
    if uv is None:
        return "uv is needed to build the plugin (Orbit's `make sync` installs it)"
    copy = target.parent / "source"
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    shutil.copytree(
        source,
        copy,
        ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", "__pycache__", ".venv", ".git", ".*_cache"
        ),
    )
    result = subprocess.run(  # noqa: S603 - uv with fixed arguments and a folder path
        [
            *uv,
            *("pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache"),
            *("--python", sys.executable, "--target", str(target), str(copy)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return (result.stderr or result.stdout).strip()[-2000:]
    return None


def _entry_points(target: Path) -> list[tuple[str, str, EntryPoint]]:
    """(distribution, entry point name, entry point) of the plugins installed in ``target``."""
    return [
        (dist.metadata["Name"], point.name, point)
        for dist in distributions(path=[str(target)])
        for point in dist.entry_points
        if point.group == ENTRY_POINT_GROUP
    ]


_PLUGIN_TABLES = """
SELECT c.relname AS name,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
               AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname = 'public'
"""

_INDEXES = """
SELECT i.relname AS index, t.relname AS table
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND t.relname = ANY ($1::text[])
  AND (x.indkey[0] = 0 OR (SELECT a.attname FROM pg_attribute a
                            WHERE a.attrelid = t.oid AND a.attnum = x.indkey[0]) <> 'tenant_id')
"""


async def _tables(admin_dsn: str) -> dict[str, bool]:
    import asyncpg  # noqa: PLC0415

    conn = await asyncpg.connect(admin_dsn)
    try:
        return {row["name"]: row["has_tenant"] for row in await conn.fetch(_PLUGIN_TABLES)}
    finally:
        await conn.close()


@contextmanager
def _off_path(folder: Path) -> Iterator[None]:
    """Leave ``folder`` off ``sys.path`` (and so off plugin discovery) for a while."""
    sys.path.remove(str(folder))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.insert(0, str(folder))
        importlib.invalidate_caches()


async def check_migrations(manifest: Manifest, installed: Path, report: CheckReport) -> None:
    """Apply Orbit's, then the plugin's migrations to a scratch database and lint its tables.

    Orbit's own migrations run while ``installed`` is off ``sys.path`` (discovery would
    otherwise find the plugin and apply its migrations with them); the tables the
    plugin's migrations then add are the plugin's.
    """
    import asyncpg  # noqa: PLC0415

    from orbit.platform.db.check import check_database  # noqa: PLC0415
    from orbit.platform.db.migrations import migrate  # noqa: PLC0415
    from orbit.plugins.testing import TEST_APP_PASSWORD, scratch_database  # noqa: PLC0415

    if not manifest.migrations:
        if manifest.tables:
            report.bad("the manifest lists tables but names no `migrations` app")
        else:
            report.good("migrations: none (the plugin keeps no tables)")
        return
    async with AsyncExitStack() as stack:
        # Piccolo prints each migration it runs; the report says what matters.
        stack.enter_context(redirect_stdout(io.StringIO()))
        with _off_path(installed):
            admin_dsn, _ = await stack.enter_async_context(scratch_database(()))
        before = await _tables(admin_dsn)
        try:
            password = os.environ.get("ORBIT_TEST_APP_PASSWORD", TEST_APP_PASSWORD)
            applied = await migrate(admin_dsn, password, extra_apps=(manifest.migrations,))
        except Exception as exc:  # noqa: BLE001 - the author's SQL: report it, whatever it is
            report.bad(f"migrations of {manifest.migrations} failed: {exc}")
            return
        after = await _tables(admin_dsn)
        # Also the plugin's tables when it is installed in this environment already.
        created = sorted(
            t
            for t in after
            if t not in before or t in manifest.tables or t.startswith(f"{manifest.id}_")
        )
        reports, _ = await check_database(admin_dsn)
        conn = await asyncpg.connect(admin_dsn)
        try:
            unled = await conn.fetch(_INDEXES, created)
        finally:
            await conn.close()
    report.add(f"migrations: {len(applied)} applied from {manifest.migrations}", ok=bool(applied))
    rls = {r.name: r.problems for r in reports}
    for table in created:
        problems = list(rls.get(table, ())) if after[table] else ["has no tenant_id column"]
        problems += [
            f"index {r['index']} does not start with tenant_id"
            for r in unled
            if r["table"] == table and after[table]
        ]
        if table not in manifest.tables:
            problems.append("is not in the manifest's `tables` (uninstall could not empty it)")
        if problems:
            report.bad(f"table {table}: " + "; ".join(problems))
        else:
            report.good(f"table {table}: tenant_id, forced RLS, tenant policy")
    missing = [t for t in manifest.tables if t not in created]
    report.add(
        f"the manifest's tables exist: {', '.join(manifest.tables) or 'none'}"
        + (f" (missing: {', '.join(missing)})" if missing else ""),
        ok=not missing,
    )


def run_tests(source: Path, installed: Path, report: CheckReport) -> None:
    """The plugin's own tests, with pytest, against the installed copy of the plugin."""
    if not (source / "tests").is_dir():
        report.bad("tests: the plugin has no tests/ folder")
        return
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(installed), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    summary = (result.stdout.strip().splitlines() or ["no output"])[-1]
    if result.returncode != 0:
        report.out(result.stdout[-4000:] + result.stderr[-2000:])
    report.add(f"tests: {summary}", ok=result.returncode == 0)


async def check(source: Path, *, tests: bool = True, out: Callable[[str], None] = print) -> bool:
    """``orbit plugin check``: whether the plugin distribution at ``source`` passes."""
    report = CheckReport(out=out)
    out(f"orbit plugin check {source} (Orbit {ORBIT_VERSION})")
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        report.bad(f"{pyproject} is missing: a plugin is a Python distribution")
        return False
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        report.bad(f"pyproject.toml: {exc}")
        return False
    declared = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not declared:
        report.bad(f'pyproject.toml: no [project.entry-points."{ENTRY_POINT_GROUP}"]')
        return False
    with tempfile.TemporaryDirectory(prefix="orbit-plugin-check-") as scratch:
        installed = Path(scratch) / "site-packages"
        error = install(source, installed)
        if error is not None:
            report.bad(f"the distribution does not build or install: {error}")
            return False
        points = _entry_points(installed)
        report.add(
            f"distribution {project.get('name')} {project.get('version')} installs; entry points: "
            + (", ".join(f"{name} = {point.value}" for _, name, point in points) or "none"),
            ok=bool(points),
        )
        sys.path.insert(0, str(installed))
        importlib.invalidate_caches()
        try:
            for dist, name, point in points:
                manifest = _check_plugin(f"{dist} ({name})", point, report)
                if manifest is not None:
                    await check_migrations(manifest, installed, report)
            if tests and report.ok:
                run_tests(source, installed, report)
            elif not tests:
                out("  skip  tests (--no-tests)")
        finally:
            sys.path.remove(str(installed))
    failures = sum(not passed for passed, _ in report.lines)
    out("all checks passed" if report.ok else f"{failures} check(s) failed")
    return report.ok


def _check_plugin(source: str, point: EntryPoint, report: CheckReport) -> Manifest | None:
    """Load one entry point; check its manifest, range and scopes."""
    try:
        module = point.load()
    except Exception as exc:  # noqa: BLE001 - the author's import error, reported as it is
        report.bad(f"{source}: import failed: {exc!r}")
        return None
    raw = getattr(module, "MANIFEST", None)
    if raw is None:
        report.bad(f"{source}: the module has no MANIFEST")
        return None
    try:
        manifest = parse_manifest(raw, source=source)
    except ManifestError as exc:
        for problem in exc.problems:
            report.bad(f"manifest: {problem}")
        return None
    report.good(f"manifest: {manifest.id} {manifest.version} ({manifest.name})")
    reason = incompatibility(manifest, ORBIT_VERSION)
    report.add(
        f"requires_orbit {manifest.requires_orbit}: " + (reason or f"admits Orbit {ORBIT_VERSION}"),
        ok=reason is None,
    )
    report.good(f"scopes: {', '.join(manifest.scopes) or 'none'} (all known)")
    registry = PluginRegistry()
    listing = registry.load(source, lambda: module)
    report.add(f"hooks: {listing.problem or _hooks(registry, manifest.id)}", ok=listing.loaded)
    return manifest if listing.loaded else None


def _hooks(registry: PluginRegistry, plugin_id: str) -> str:
    plugin = registry.plugin(plugin_id)
    callers = registry.pm.get_hookcallers(plugin) or []
    return ", ".join(sorted(caller.name for caller in callers)) or "none"
