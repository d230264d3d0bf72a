"""The herald test plugin's table: addresses unsubscribed through its public route."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "herald_unsubscribed"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="probe", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE herald_unsubscribed (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                email text NOT NULL,
                unsubscribed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, email)
            );
            {plugin_owned("herald_unsubscribed")}
        """)
    )
    return manager
