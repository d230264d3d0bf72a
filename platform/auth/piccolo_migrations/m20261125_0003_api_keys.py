"""API keys, and the one cross-tenant look-up that authenticates them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T13:00:03:000000"
VERSION = "1.38.0"
DESCRIPTION = "api keys"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE api_keys (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name varchar(100) NOT NULL,
                prefix varchar(16) NOT NULL UNIQUE,
                secret_hash varchar(64) NOT NULL,
                scopes varchar(40)[] NOT NULL,
                created_by uuid,
                created_at timestamptz NOT NULL DEFAULT now(),
                last_used_at timestamptz,
                revoked_at timestamptz,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, created_by)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (created_by)
            );
            CREATE INDEX api_keys_tenant_created ON api_keys (tenant_id, created_at DESC);
            {tenant_owned("api_keys")}

            -- Authentication must find a key before it knows the tenant: this
            -- definer function returns only the row whose public prefix matches.
            CREATE FUNCTION orbit_api_key_by_prefix(p_prefix text)
            RETURNS TABLE (tenant_id uuid, id uuid, secret_hash text, scopes text[],
                           revoked_at timestamptz)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT k.tenant_id, k.id, k.secret_hash::text, k.scopes::text[], k.revoked_at
                FROM api_keys k WHERE k.prefix = p_prefix
            $$;
            GRANT SELECT ON api_keys TO {CROSSTENANT};
            ALTER FUNCTION orbit_api_key_by_prefix(text) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_api_key_by_prefix(text) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_api_key_by_prefix(text) TO {APP};
        """)
    )
    return manager
