"""Record visibility per role, and teams: named groups of memberships."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, SEARCH

ID = "2026-11-25T16:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "record visibility and teams"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            -- Role → 'all' | 'team' | 'own' for members and viewers (owners and admins see all).
            ALTER TABLE tenants ADD COLUMN record_visibility jsonb NOT NULL DEFAULT '{{}}';

            CREATE TABLE teams (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name varchar(100) NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, name)
            );
            {tenant_owned("teams")}

            CREATE TABLE team_members (
                tenant_id uuid NOT NULL,
                team_id uuid NOT NULL,
                membership_id uuid NOT NULL,
                PRIMARY KEY (tenant_id, team_id, membership_id),
                FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, membership_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX team_members_membership ON team_members (tenant_id, membership_id);
            {tenant_owned("team_members")}

            -- Search honours visibility: NULL owners means every record of the workspace.
            DROP FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid);
            CREATE FUNCTION orbit_search_contacts(
                p_pattern text, p_limit integer,
                p_before_updated timestamptz, p_before_id uuid, p_owner_ids uuid[])
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
                    'SELECT * FROM contacts WHERE tenant_id = %L AND search_text LIKE %L %s %s '
                    'ORDER BY updated_at DESC, id DESC LIMIT %s',
                    v_tenant, p_pattern,
                    CASE WHEN p_before_updated IS NULL THEN ''
                         ELSE format('AND (updated_at, id) < (%L::timestamptz, %L::uuid)',
                                     p_before_updated, p_before_id) END,
                    CASE WHEN p_owner_ids IS NULL THEN ''
                         ELSE format('AND owner_id = ANY (%L::uuid[])', p_owner_ids) END,
                    least(greatest(p_limit, 1), 201));
            END
            $$;
            ALTER FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid, uuid[])
                OWNER TO {SEARCH};
            REVOKE ALL ON FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid, uuid[])
                FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid, uuid[])
                TO {APP};
        """)
    )
    return manager
