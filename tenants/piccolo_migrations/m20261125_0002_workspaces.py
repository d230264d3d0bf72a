"""Tenants, memberships and invitations, with the cross-tenant look-ups they need."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import TENANT_POLICY, sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T13:00:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "workspaces"
TENANT_ROW = TENANT_POLICY.replace("tenant_id =", "id =", 1)


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE tenants (
                id uuid PRIMARY KEY,
                slug varchar(63) NOT NULL UNIQUE,
                name varchar(200) NOT NULL,
                plan varchar(20) NOT NULL DEFAULT 'free',
                created_at timestamptz NOT NULL DEFAULT now()
            );
            GRANT SELECT, INSERT, UPDATE ON tenants TO {APP};
            -- Global table (slugs resolve before a tenant is chosen), but a request
            -- may change only its own workspace's row.
            ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
            ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenants_read ON tenants FOR SELECT USING (true);
            CREATE POLICY tenants_create ON tenants FOR INSERT WITH CHECK (true);
            CREATE POLICY tenants_update_own ON tenants FOR UPDATE
                USING ({TENANT_ROW}) WITH CHECK ({TENANT_ROW});

            CREATE TABLE memberships (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                role varchar(20) NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
                status varchar(20) NOT NULL
                    CHECK (status IN ('invited', 'active', 'deactivated')),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, user_id)
            );
            CREATE INDEX memberships_user ON memberships (user_id);
            {tenant_owned("memberships")}

            CREATE TABLE invitations (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                email varchar(320) NOT NULL,
                role varchar(20) NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
                token_hash varchar(64) NOT NULL UNIQUE,
                invited_by uuid,
                created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL,
                accepted_at timestamptz,
                revoked_at timestamptz,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, invited_by)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (invited_by)
            );
            CREATE INDEX invitations_tenant_created ON invitations (tenant_id, created_at DESC);
            {tenant_owned("invitations")}

            -- The workspace switcher lists one user's workspaces across tenants.
            CREATE FUNCTION orbit_user_workspaces(p_user_id uuid)
            RETURNS TABLE (tenant_id uuid, slug text, name text, role text)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT t.id, t.slug::text, t.name::text, m.role::text
                FROM memberships m JOIN tenants t ON t.id = m.tenant_id
                WHERE m.user_id = p_user_id AND m.status = 'active'
                ORDER BY t.name
            $$;

            -- Accepting an invitation finds it by its token before any tenant is set.
            CREATE FUNCTION orbit_invitation_by_token(p_token_hash text)
            RETURNS TABLE (tenant_id uuid, id uuid, email text, role text,
                           expires_at timestamptz, accepted_at timestamptz,
                           revoked_at timestamptz)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT i.tenant_id, i.id, i.email::text, i.role::text, i.expires_at,
                       i.accepted_at, i.revoked_at
                FROM invitations i WHERE i.token_hash = p_token_hash
            $$;

            GRANT SELECT ON memberships, invitations, tenants TO {CROSSTENANT};
            ALTER FUNCTION orbit_user_workspaces(uuid) OWNER TO {CROSSTENANT};
            ALTER FUNCTION orbit_invitation_by_token(text) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_user_workspaces(uuid) FROM PUBLIC;
            REVOKE ALL ON FUNCTION orbit_invitation_by_token(text) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_user_workspaces(uuid) TO {APP};
            GRANT EXECUTE ON FUNCTION orbit_invitation_by_token(text) TO {APP};
        """)
    )
    return manager
