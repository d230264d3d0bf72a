"""Deleting a workspace: a narrow definer that deletes only the workspace the caller is in.

The app role may not delete from ``tenants``; this function, owned by the
cross-tenant role, deletes the row of the transaction's own tenant (and the
foreign keys' cascades take every tenant table's rows with it).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T19:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orbit_delete_tenant"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE FUNCTION orbit_delete_tenant(p_tenant uuid) RETURNS void
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, public, pg_temp
            AS $$
            BEGIN
                IF p_tenant IS DISTINCT FROM
                        NULLIF(current_setting('app.tenant_id', true), '')::uuid THEN
                    RAISE EXCEPTION 'a workspace can only delete itself'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                DELETE FROM tenants WHERE id = p_tenant;
            END
            $$;
            GRANT DELETE ON tenants TO {CROSSTENANT};
            -- The cascade into contacts (empty by then) still fires the contact counter's
            -- statement trigger, as this function's owner.
            GRANT SELECT, UPDATE ON tenant_usage TO {CROSSTENANT};
            ALTER FUNCTION orbit_delete_tenant(uuid) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_delete_tenant(uuid) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_delete_tenant(uuid) TO {APP};
        """)
    )
    return manager
