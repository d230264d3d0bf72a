"""Quota usage per workspace (contacts, storage, emails per month) and a rate override."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned

ID = "2026-11-25T18:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "quota usage counters"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            -- An operator's per-workspace API rate (requests a minute); NULL: the plan's.
            ALTER TABLE tenants ADD COLUMN api_requests_per_minute integer
                CHECK (api_requests_per_minute > 0);

            -- One row per counted quota: 'contacts', 'storage_bytes', 'emails:2026-11'.
            CREATE TABLE tenant_usage (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                quota varchar(40) NOT NULL,
                used bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (tenant_id, quota)
            );

            -- The contact count follows every insert and delete, whoever makes it (the API,
            -- an import's INSERT … SELECT, a merge), one update per statement.
            CREATE FUNCTION orbit_count_contacts_added() RETURNS trigger
            LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
            BEGIN
                INSERT INTO tenant_usage (tenant_id, quota, used)
                SELECT tenant_id, 'contacts', count(*) FROM added GROUP BY tenant_id
                ON CONFLICT (tenant_id, quota) DO UPDATE SET used = tenant_usage.used + EXCLUDED.used;
                RETURN NULL;
            END $$;
            CREATE FUNCTION orbit_count_contacts_removed() RETURNS trigger
            LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
            BEGIN
                UPDATE tenant_usage u SET used = greatest(u.used - gone.n, 0)
                FROM (SELECT tenant_id, count(*) AS n FROM removed GROUP BY tenant_id) gone
                WHERE u.tenant_id = gone.tenant_id AND u.quota = 'contacts';
                RETURN NULL;
            END $$;
            CREATE TRIGGER contacts_count_added AFTER INSERT ON contacts
                REFERENCING NEW TABLE AS added FOR EACH STATEMENT
                EXECUTE FUNCTION orbit_count_contacts_added();
            CREATE TRIGGER contacts_count_removed AFTER DELETE ON contacts
                REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
                EXECUTE FUNCTION orbit_count_contacts_removed();

            -- Count the contacts that exist (RLS would hide them from the owner: lifted
            -- for this one statement, inside the migration's transaction).
            ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY;
            INSERT INTO tenant_usage (tenant_id, quota, used)
            SELECT tenant_id, 'contacts', count(*) FROM contacts GROUP BY tenant_id;
            ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
            {tenant_owned("tenant_usage")}
        """)
    )
    return manager
