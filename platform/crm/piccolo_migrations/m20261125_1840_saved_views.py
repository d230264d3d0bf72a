"""Saved views: a list's filters, sort and columns, kept for one member or shared."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned

ID = "2026-11-25T18:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "saved views"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE saved_views (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                object_type varchar(10) NOT NULL
                    CHECK (object_type IN ('contact', 'company', 'deal')),
                name varchar(100) NOT NULL,
                -- The member who saved it; NULL for a view an API key saved (always shared).
                owner_id uuid,
                shared boolean NOT NULL DEFAULT false,
                q varchar(200) NOT NULL DEFAULT '',
                filters jsonb NOT NULL DEFAULT '[]',
                sort varchar(120) NOT NULL DEFAULT '-updated_at',
                columns jsonb NOT NULL DEFAULT '[]',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, owner_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE CASCADE,
                CHECK (shared OR owner_id IS NOT NULL)
            );
            CREATE INDEX saved_views_tenant_type ON saved_views (tenant_id, object_type, name);
            {tenant_owned("saved_views")}
        """)
    )
    return manager
