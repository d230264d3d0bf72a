"""Custom field definitions per workspace and object type; deals get a ``custom`` column.

Values stay in each record's ``custom`` jsonb; this table only says which keys a
workspace has defined, their type, options and whether they are required.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned

ID = "2026-11-25T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom fields"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE custom_fields (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                object_type varchar(10) NOT NULL
                    CHECK (object_type IN ('contact', 'company', 'deal')),
                key varchar(50) NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]*$'),
                label varchar(100) NOT NULL,
                type varchar(20) NOT NULL CHECK (type IN (
                    'text', 'long_text', 'number', 'decimal', 'date', 'select',
                    'multi_select', 'checkbox', 'url', 'email')),
                options jsonb NOT NULL DEFAULT '[]',
                required boolean NOT NULL DEFAULT false,
                position integer NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, object_type, key)
            );
            CREATE INDEX custom_fields_tenant_order
                ON custom_fields (tenant_id, object_type, position, created_at);
            {tenant_owned("custom_fields")}

            ALTER TABLE deals ADD COLUMN custom jsonb NOT NULL DEFAULT '{{}}';
        """)
    )
    return manager
