"""Plugins per tenant, and their event deliveries.

Which plugins each tenant installed and enabled, their settings and granted scopes,
and one delivery row per domain event and subscribing plugin (retried, at least once).

Also the two narrow cross-tenant look-ups: the worker's list of due plugin deliveries
(ids only) and the marketplace's installed count per plugin (counts only).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "plugin installations and event deliveries"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="plugins", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE plugin_installations (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                plugin_id varchar(40) NOT NULL,
                enabled boolean NOT NULL DEFAULT false,
                settings jsonb NOT NULL DEFAULT '{{}}',
                secrets bytea,
                granted_scopes text[] NOT NULL DEFAULT '{{}}',
                installed_at timestamptz NOT NULL DEFAULT now(),
                installed_by uuid,
                updated_at timestamptz NOT NULL DEFAULT now(),
                disabled_reason varchar(40),
                PRIMARY KEY (tenant_id, plugin_id)
            );
            {tenant_owned("plugin_installations")}

            CREATE TABLE plugin_event_deliveries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                event_id uuid NOT NULL,
                plugin_id varchar(40) NOT NULL,
                status varchar(20) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                last_error varchar(500),
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, event_id, plugin_id),
                FOREIGN KEY (tenant_id, event_id)
                    REFERENCES outbox_events (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX plugin_event_deliveries_due
                ON plugin_event_deliveries (tenant_id, next_attempt_at) WHERE status = 'pending';
            {tenant_owned("plugin_event_deliveries")}

            CREATE FUNCTION orbit_due_plugin_deliveries(p_limit integer)
            RETURNS TABLE (tenant_id uuid, id uuid)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT d.tenant_id, d.id FROM plugin_event_deliveries d
                WHERE d.status = 'pending' AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at
                LIMIT greatest(1, least(p_limit, 1000))
            $$;

            CREATE FUNCTION orbit_plugin_install_counts()
            RETURNS TABLE (plugin_id varchar, installed bigint)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT i.plugin_id, count(*) FROM plugin_installations i GROUP BY i.plugin_id
            $$;

            -- Tenants that enabled one plugin (scheduled jobs run once per such tenant).
            CREATE FUNCTION orbit_plugin_tenants(p_plugin_id varchar)
            RETURNS TABLE (tenant_id uuid, slug varchar)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT i.tenant_id, t.slug FROM plugin_installations i
                JOIN tenants t ON t.id = i.tenant_id
                WHERE i.plugin_id = p_plugin_id AND i.enabled
            $$;

            GRANT SELECT ON plugin_event_deliveries, plugin_installations TO {CROSSTENANT};
            ALTER FUNCTION orbit_due_plugin_deliveries(integer) OWNER TO {CROSSTENANT};
            ALTER FUNCTION orbit_plugin_install_counts() OWNER TO {CROSSTENANT};
            ALTER FUNCTION orbit_plugin_tenants(varchar) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_due_plugin_deliveries(integer) FROM PUBLIC;
            REVOKE ALL ON FUNCTION orbit_plugin_install_counts() FROM PUBLIC;
            REVOKE ALL ON FUNCTION orbit_plugin_tenants(varchar) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_due_plugin_deliveries(integer) TO {APP};
            GRANT EXECUTE ON FUNCTION orbit_plugin_install_counts() TO {APP};
            GRANT EXECUTE ON FUNCTION orbit_plugin_tenants(varchar) TO {APP};
        """)
    )
    return manager
