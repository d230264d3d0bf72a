"""The audit log: one append-mostly table per workspace, under forced RLS."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP

ID = "2026-11-25T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit log"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="audit", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE audit_entries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                occurred_at timestamptz NOT NULL DEFAULT now(),
                action varchar(20) NOT NULL,
                record_type varchar(40) NOT NULL,
                record_id uuid,
                record_label varchar(300) NOT NULL DEFAULT '',
                owner_id uuid,
                actor_type varchar(10) NOT NULL
                    CHECK (actor_type IN ('user', 'api_key', 'system')),
                actor_id uuid,
                actor_display varchar(400) NOT NULL DEFAULT '',
                ip inet,
                changes jsonb NOT NULL DEFAULT '{{}}',
                details jsonb NOT NULL DEFAULT '{{}}',
                erased_at timestamptz,
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX audit_entries_record
                ON audit_entries (tenant_id, record_type, record_id, occurred_at DESC, id DESC);
            CREATE INDEX audit_entries_time ON audit_entries (tenant_id, occurred_at DESC, id DESC);
            CREATE INDEX audit_entries_actor
                ON audit_entries (tenant_id, actor_id, occurred_at DESC, id DESC);
            {tenant_owned("audit_entries")}
            -- Entries are never deleted by the app (a workspace's deletion cascades as the
            -- owner); erasing a person scrubs their entries to tombstones with UPDATE.
            REVOKE DELETE ON audit_entries FROM {APP};
        """)
    )
    return manager
