"""Contacts, their indexes, and the search function that can use them under RLS."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, SEARCH

ID = "2026-11-25T13:00:04:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE contacts (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                first_name varchar(100) NOT NULL DEFAULT '',
                last_name varchar(100) NOT NULL DEFAULT '',
                email varchar(320),
                phone varchar(50),
                company_name varchar(200),
                owner_id uuid,
                tags varchar(50)[] NOT NULL DEFAULT '{{}}',
                custom jsonb NOT NULL DEFAULT '{{}}',
                search_text text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, owner_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (owner_id)
            );
            CREATE INDEX contacts_tenant_recent ON contacts (tenant_id, updated_at DESC, id DESC);
            CREATE INDEX contacts_tenant_email ON contacts (tenant_id, email);
            CREATE INDEX contacts_tenant_search ON contacts
                USING gin (tenant_id, search_text gin_trgm_ops);
            {tenant_owned("contacts")}

            -- Under RLS PostgreSQL will not use the trigram index for LIKE (not
            -- LEAKPROOF), so search runs here: a definer that bypasses RLS but
            -- filters by the transaction's tenant itself, and refuses to run
            -- without one. EXECUTE format(%L) plans with the real values.
            CREATE FUNCTION orbit_search_contacts(
                p_pattern text, p_limit integer,
                p_before_updated timestamptz, p_before_id uuid)
            RETURNS SETOF contacts
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
            DECLARE
                v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
            BEGIN
                IF v_tenant IS NULL THEN
                    RAISE EXCEPTION 'orbit_search_contacts: app.tenant_id is not set'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN QUERY EXECUTE format(
                    'SELECT * FROM contacts WHERE tenant_id = %L AND search_text LIKE %L %s '
                    'ORDER BY updated_at DESC, id DESC LIMIT %s',
                    v_tenant, p_pattern,
                    CASE WHEN p_before_updated IS NULL THEN ''
                         ELSE format('AND (updated_at, id) < (%L::timestamptz, %L::uuid)',
                                     p_before_updated, p_before_id) END,
                    least(greatest(p_limit, 1), 201));
            END
            $$;
            GRANT SELECT ON contacts TO {SEARCH};
            ALTER FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid) OWNER TO {SEARCH};
            REVOKE ALL ON FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid)
                FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid)
                TO {APP};
        """)
    )
    return manager
