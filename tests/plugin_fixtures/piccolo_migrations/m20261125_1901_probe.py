"""The probe plugin's table: one row per contact.created event it saw."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-25T19:01:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "probe_seen"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="probe", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE probe_seen (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                event_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                seen_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, event_id)
            );
            {plugin_owned("probe_seen")}
        """)
    )
    return manager
