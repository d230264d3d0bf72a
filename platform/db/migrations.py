"""Orbit's migration runner on top of Piccolo's migration files.

Each area is a Piccolo app with its own ``piccolo_migrations/`` package; every
migration returns a ``MigrationManager`` whose steps are raw SQL (Piccolo cannot
express RLS policies, composite keys or opclass indexes). Areas depend on each
other in both directions (a membership references a user, an API key a
membership), so instead of ordering whole apps this runner orders all
migrations of all apps by their time-stamped ``ID`` and runs each, with its
record in Piccolo's ``migration`` table, in one transaction as the owner role.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piccolo.apps.migrations.tables import Migration
from piccolo.engine.postgres import PostgresEngine

from orbit.platform.db import roles

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from types import ModuleType

    from piccolo.apps.migrations.auto.migration_manager import MigrationManager

log = logging.getLogger(__name__)

PICCOLO_CONF = "orbit.platform.db.piccolo_conf"
_LOCK_KEY = 0x0_0B17_0001  # pg_advisory_xact_lock key: one migrator at a time

TENANT_POLICY = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def sql(statements: str) -> Callable[[], Awaitable[None]]:
    """A migration step running ``statements`` (several allowed) in the migration's transaction."""

    async def step() -> None:
        from piccolo.engine import engine_finder  # noqa: PLC0415 - resolved at run time

        engine = engine_finder()
        assert isinstance(engine, PostgresEngine)  # noqa: S101 - Orbit runs on PostgreSQL only
        tx = engine.current_transaction.get()
        assert tx is not None  # noqa: S101 - MigrationManager.run opens one
        await tx.connection.execute(statements)

    return step


def plugin_owned(table: str) -> str:
    """:func:`tenant_owned` for a plugin's table, plus DML for the role plugin SQL runs as."""
    return (
        tenant_owned(table)
        + f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {roles.PLUGIN_DATA};\n"
    )


def tenant_owned(table: str) -> str:
    """SQL that walls ``table`` off per tenant: RLS enabled and forced, the policy, DML grants."""
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON {table}
            USING ({TENANT_POLICY}) WITH CHECK ({TENANT_POLICY});
        GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {roles.APP};
    """


@dataclass(frozen=True, slots=True)
class PendingMigration:
    """One migration file of one app."""

    app_name: str
    id: str
    module: ModuleType


def plugin_apps() -> list[str]:
    """Piccolo apps of the installed plugins that load (their manifests' ``migrations``)."""
    from orbit.plugins.registry import PluginRegistry  # noqa: PLC0415 - plugins import late

    return [m.migrations for m in PluginRegistry.discover().loaded if m.migrations]


def all_migrations(extra_apps: Sequence[str] = ()) -> list[PendingMigration]:
    """Every migration of every registered app and installed plugin, ordered by ID.

    ``extra_apps``: Piccolo apps of plugins loaded some other way than entry points (tests).
    """
    from orbit.platform.db.piccolo_conf import APP_REGISTRY  # noqa: PLC0415

    found: list[PendingMigration] = []
    for app_module_path in dict.fromkeys([*APP_REGISTRY.apps, *plugin_apps(), *extra_apps]):
        app_module = importlib.import_module(app_module_path)
        app_config = app_module.APP_CONFIG
        package = app_module_path.rpartition(".")[0] + ".piccolo_migrations"
        migrations_package = importlib.import_module(package)
        for info in pkgutil.iter_modules(migrations_package.__path__):
            module = importlib.import_module(f"{package}.{info.name}")
            found.append(PendingMigration(app_config.app_name, module.ID, module))
    return sorted(found, key=lambda m: m.id)


def _owner_engine(admin_dsn: str, setup: roles.RoleSetup) -> PostgresEngine:
    server_settings: dict[str, Any] = {"application_name": "orbit-migrate"}
    if setup.set_role:
        server_settings["role"] = setup.migration_role
    return PostgresEngine(
        config={"dsn": admin_dsn, "server_settings": server_settings},
        extensions=(),
        log_queries=False,
    )


async def migrate(
    admin_dsn: str,
    app_password: str,
    *,
    until: str | None = None,
    extra_apps: Sequence[str] = (),
) -> list[str]:
    """Create roles, then apply every pending migration; returns the IDs applied.

    ``until`` stops after the migration with that ID (tests of data migrations);
    ``extra_apps`` adds plugin apps (see :func:`all_migrations`).
    """
    setup = await roles.ensure_roles(admin_dsn, app_password)
    os.environ.setdefault("PICCOLO_CONF", PICCOLO_CONF)
    from orbit.platform.db import piccolo_conf  # noqa: PLC0415

    engine = _owner_engine(admin_dsn, setup)
    piccolo_conf.DB = engine
    Migration._meta.db = engine  # noqa: SLF001
    applied: list[str] = []
    await Migration.create_table(if_not_exists=True)
    for migration in all_migrations(extra_apps):
        if until is not None and migration.id > until:
            break
        async with engine.transaction() as tx:
            await tx.connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            done = await Migration.exists().where(
                (Migration.name == migration.id) & (Migration.app_name == migration.app_name)
            )
            if done:
                continue
            manager: MigrationManager = await migration.module.forwards()
            await manager.run()
            await Migration.insert(Migration(name=migration.id, app_name=migration.app_name))
            applied.append(migration.id)
            log.info("applied migration %s (%s)", migration.id, migration.app_name)
    return applied
