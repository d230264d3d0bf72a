"""Imports and exports: durable job state, per-line errors and remembered column mappings.

The worker claims due jobs through ``orbit_claim_data_jobs`` (a narrow definer
that returns ids only and leases them); each batch then runs in a transaction
scoped to the job's tenant, so row-level security checks every row it writes.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T19:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "imports and exports"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE imports (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                object_type varchar(10) NOT NULL
                    CHECK (object_type IN ('contact', 'company', 'deal')),
                status varchar(12) NOT NULL DEFAULT 'uploaded' CHECK (status IN
                    ('uploaded', 'queued', 'running', 'done', 'failed', 'cancelled')),
                file_name varchar(255) NOT NULL,
                file_format varchar(4) NOT NULL CHECK (file_format IN ('csv', 'xlsx')),
                encoding varchar(40),
                size_bytes bigint NOT NULL DEFAULT 0,
                columns jsonb NOT NULL DEFAULT '[]',
                mapping jsonb NOT NULL DEFAULT '{{}}',
                mode varchar(6) NOT NULL DEFAULT 'upsert'
                    CHECK (mode IN ('create', 'update', 'upsert')),
                dedupe_key varchar(120),
                strict boolean NOT NULL DEFAULT false,
                total_rows integer NOT NULL DEFAULT 0,
                rows_done integer NOT NULL DEFAULT 0,
                created_count integer NOT NULL DEFAULT 0,
                updated_count integer NOT NULL DEFAULT 0,
                error_count integer NOT NULL DEFAULT 0,
                message text NOT NULL DEFAULT '',
                created_by uuid,
                created_at timestamptz NOT NULL DEFAULT now(),
                started_at timestamptz,
                finished_at timestamptz,
                updated_at timestamptz NOT NULL DEFAULT now(),
                lease_until timestamptz,
                attempts integer NOT NULL DEFAULT 0,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, created_by)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (created_by)
            );
            CREATE INDEX imports_tenant_recent ON imports (tenant_id, created_at DESC);
            CREATE INDEX imports_due ON imports (tenant_id, lease_until)
                WHERE status IN ('queued', 'running');
            {tenant_owned("imports")}

            -- One row per skipped line (the key makes a resumed batch write it once).
            CREATE TABLE import_errors (
                tenant_id uuid NOT NULL,
                import_id uuid NOT NULL,
                line integer NOT NULL,
                reason text NOT NULL,
                PRIMARY KEY (tenant_id, import_id, line),
                FOREIGN KEY (tenant_id, import_id)
                    REFERENCES imports (tenant_id, id) ON DELETE CASCADE
            );
            {tenant_owned("import_errors")}

            -- Remembered mappings: a column heading (folded) → the field it was mapped to.
            CREATE TABLE import_mappings (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                object_type varchar(10) NOT NULL,
                column_key varchar(200) NOT NULL,
                field varchar(120) NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX import_mappings_column
                ON import_mappings (tenant_id, object_type, column_key);
            {tenant_owned("import_mappings")}

            CREATE TABLE exports (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                object_type varchar(10) NOT NULL
                    CHECK (object_type IN ('contact', 'company', 'deal')),
                file_format varchar(4) NOT NULL CHECK (file_format IN ('csv', 'xlsx')),
                status varchar(12) NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
                -- What to list (view, filters, sort, q, columns) and as whom (scopes,
                -- visible owners): the job rebuilds the requester's list from these.
                request jsonb NOT NULL DEFAULT '{{}}',
                rows_done integer NOT NULL DEFAULT 0,
                size_bytes bigint NOT NULL DEFAULT 0,
                message text NOT NULL DEFAULT '',
                created_by uuid,
                created_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                lease_until timestamptz,
                attempts integer NOT NULL DEFAULT 0,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, created_by)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (created_by)
            );
            CREATE INDEX exports_tenant_recent ON exports (tenant_id, created_at DESC);
            CREATE INDEX exports_due ON exports (tenant_id, lease_until)
                WHERE status IN ('queued', 'running');
            {tenant_owned("exports")}

            -- Due import and export jobs of any tenant, leased for p_lease seconds: ids only.
            CREATE FUNCTION orbit_claim_data_jobs(p_limit integer, p_lease integer)
            RETURNS TABLE (kind text, tenant_id uuid, id uuid, attempts integer)
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, public, pg_temp
            AS $$
            BEGIN
                RETURN QUERY
                WITH due AS (
                    SELECT i.tenant_id, i.id FROM imports i
                    WHERE i.status IN ('queued', 'running')
                      AND (i.lease_until IS NULL OR i.lease_until < now())
                    ORDER BY i.created_at
                    LIMIT greatest(1, least(p_limit, 100))
                    FOR UPDATE SKIP LOCKED
                ), leased AS (
                    UPDATE imports i
                    SET lease_until = now() + make_interval(secs => p_lease),
                        attempts = i.attempts + 1
                    FROM due WHERE i.tenant_id = due.tenant_id AND i.id = due.id
                    RETURNING i.tenant_id, i.id, i.attempts
                )
                SELECT 'import'::text, l.tenant_id, l.id, l.attempts FROM leased l;
                RETURN QUERY
                WITH due AS (
                    SELECT e.tenant_id, e.id FROM exports e
                    WHERE e.status IN ('queued', 'running')
                      AND (e.lease_until IS NULL OR e.lease_until < now())
                    ORDER BY e.created_at
                    LIMIT greatest(1, least(p_limit, 100))
                    FOR UPDATE SKIP LOCKED
                ), leased AS (
                    UPDATE exports e
                    SET lease_until = now() + make_interval(secs => p_lease),
                        attempts = e.attempts + 1
                    FROM due WHERE e.tenant_id = due.tenant_id AND e.id = due.id
                    RETURNING e.tenant_id, e.id, e.attempts
                )
                SELECT 'export'::text, l.tenant_id, l.id, l.attempts FROM leased l;
            END
            $$;
            GRANT SELECT, UPDATE ON imports, exports TO {CROSSTENANT};
            ALTER FUNCTION orbit_claim_data_jobs(integer, integer) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_claim_data_jobs(integer, integer) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_claim_data_jobs(integer, integer) TO {APP};
        """)
    )
    return manager
