"""The outbox table: one row per domain event, written with the change it describes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned

ID = "2026-11-25T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE outbox_events (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                type varchar(64) NOT NULL,
                data jsonb NOT NULL,
                occurred_at timestamptz NOT NULL DEFAULT now(),
                dispatched_at timestamptz,
                PRIMARY KEY (tenant_id, id)
            );
            -- The worker scans what is not yet dispatched, oldest first.
            CREATE INDEX outbox_events_pending ON outbox_events (tenant_id, occurred_at)
                WHERE dispatched_at IS NULL;
            {tenant_owned("outbox_events")}
        """)
    )
    return manager
