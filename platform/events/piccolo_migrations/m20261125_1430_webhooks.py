"""Outgoing webhooks: endpoints, deliveries (one per event and endpoint) and every attempt.

Also the two narrow cross-tenant look-ups the worker needs before it knows a
tenant: claim the next committed outbox events, and list deliveries that are
due. Both return ids only; the worker then works on each inside a transaction
scoped to its tenant, under row-level security.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhooks"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE webhook_endpoints (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                url varchar(2000) NOT NULL CHECK (url ~ '^https?://'),
                description varchar(200) NOT NULL DEFAULT '',
                event_types text[] NOT NULL,
                secret varchar(100) NOT NULL,
                active boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);
            {tenant_owned("webhook_endpoints")}

            -- The delivery state of one event to one endpoint; the attempts log is below.
            CREATE TABLE webhook_deliveries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                event_id uuid NOT NULL,
                endpoint_id uuid NOT NULL,
                status varchar(20) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed')),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                started_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, event_id, endpoint_id),
                FOREIGN KEY (tenant_id, event_id)
                    REFERENCES outbox_events (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, endpoint_id)
                    REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX webhook_deliveries_due ON webhook_deliveries (tenant_id, next_attempt_at)
                WHERE status = 'pending';
            CREATE INDEX webhook_deliveries_endpoint
                ON webhook_deliveries (tenant_id, endpoint_id, event_id);
            {tenant_owned("webhook_deliveries")}

            CREATE TABLE webhook_attempts (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                delivery_id uuid NOT NULL,
                event_id uuid NOT NULL,
                endpoint_id uuid NOT NULL,
                attempt integer NOT NULL,
                status_code integer,
                error text,
                duration_ms integer NOT NULL,
                attempted_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, delivery_id)
                    REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX webhook_attempts_endpoint
                ON webhook_attempts (tenant_id, endpoint_id, attempted_at DESC);
            {tenant_owned("webhook_attempts")}

            -- Claims committed, undispatched events of one tenant (the one with the
            -- oldest waiting event), locked for the calling transaction, which then
            -- scopes itself to that tenant and dispatches them under RLS.
            CREATE FUNCTION orbit_claim_outbox_events(p_limit integer)
            RETURNS TABLE (tenant_id uuid, id uuid)
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, public, pg_temp
            AS $$
            DECLARE
                v_tenant uuid;
            BEGIN
                SELECT o.tenant_id INTO v_tenant FROM outbox_events o
                WHERE o.dispatched_at IS NULL
                ORDER BY o.occurred_at
                LIMIT 1
                FOR UPDATE SKIP LOCKED;
                IF v_tenant IS NULL THEN
                    RETURN;
                END IF;
                RETURN QUERY
                    SELECT o.tenant_id, o.id FROM outbox_events o
                    WHERE o.tenant_id = v_tenant AND o.dispatched_at IS NULL
                    ORDER BY o.occurred_at, o.id
                    LIMIT greatest(1, least(p_limit, 500))
                    FOR UPDATE SKIP LOCKED;
            END
            $$;

            -- Deliveries whose next attempt is due, oldest first (ids and attempt count only).
            CREATE FUNCTION orbit_due_webhook_deliveries(p_limit integer)
            RETURNS TABLE (tenant_id uuid, id uuid, attempts integer)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT d.tenant_id, d.id, d.attempts FROM webhook_deliveries d
                WHERE d.status = 'pending' AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at
                LIMIT greatest(1, least(p_limit, 1000))
            $$;

            GRANT SELECT, UPDATE ON outbox_events TO {CROSSTENANT};
            GRANT SELECT ON webhook_deliveries TO {CROSSTENANT};
            ALTER FUNCTION orbit_claim_outbox_events(integer) OWNER TO {CROSSTENANT};
            ALTER FUNCTION orbit_due_webhook_deliveries(integer) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_claim_outbox_events(integer) FROM PUBLIC;
            REVOKE ALL ON FUNCTION orbit_due_webhook_deliveries(integer) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_claim_outbox_events(integer) TO {APP};
            GRANT EXECUTE ON FUNCTION orbit_due_webhook_deliveries(integer) TO {APP};
        """)
    )
    return manager
