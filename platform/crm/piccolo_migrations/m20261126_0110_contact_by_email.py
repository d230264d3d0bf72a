"""A contact by email address, case-insensitively, through the email index.

Under row-level security PostgreSQL may not use ``lower(email) = …`` as an index
condition (``lower`` is not leakproof), so the app role's query walked every contact
of the workspace (seconds at a million). Like the search and duplicate functions, this
one runs as ``orbit_search`` inside the caller's workspace (``app.tenant_id``) and
returns one id.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql
from orbit.platform.db.roles import APP, SEARCH

ID = "2026-11-26T01:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contact by email"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE FUNCTION orbit_contact_by_email(p_email text) RETURNS uuid
            LANGUAGE plpgsql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, public, pg_temp
            AS $$
            DECLARE
                v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
            BEGIN
                IF v_tenant IS NULL THEN
                    RAISE EXCEPTION 'orbit_contact_by_email: app.tenant_id is not set'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                -- The first one created when several share the address.
                RETURN (SELECT c.id FROM contacts c
                        WHERE c.tenant_id = v_tenant AND lower(c.email) = lower(p_email)
                          AND c.email IS NOT NULL AND c.email <> ''
                        ORDER BY lower(c.email), c.id LIMIT 1);
            END
            $$;
            ALTER FUNCTION orbit_contact_by_email(text) OWNER TO {SEARCH};
            REVOKE ALL ON FUNCTION orbit_contact_by_email(text) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_contact_by_email(text) TO {APP};
        """)
    )
    return manager
