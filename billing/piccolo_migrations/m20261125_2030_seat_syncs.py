"""Seat syncs: each change of a workspace's active members, waiting to reach Stripe."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "seat syncs and trials"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="billing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            -- Written in the transaction that activates, adds or deactivates a member; the
            -- worker sends the workspace's CURRENT count of active members to Stripe and
            -- marks the row applied, or retries it later. Never deleted by a failure.
            CREATE TABLE billing_seat_syncs (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                reason varchar(40) NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                applied_at timestamptz,
                quantity_sent integer,
                outcome varchar(500),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX billing_seat_syncs_pending
                ON billing_seat_syncs (tenant_id, next_attempt_at) WHERE applied_at IS NULL;
            {tenant_owned("billing_seat_syncs")}

            -- Workspaces with a seat sync due (ids only), for the worker.
            CREATE FUNCTION orbit_due_seat_sync_tenants(p_limit integer)
            RETURNS TABLE (tenant_id uuid)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT s.tenant_id FROM billing_seat_syncs s
                WHERE s.applied_at IS NULL AND s.next_attempt_at <= now()
                GROUP BY s.tenant_id ORDER BY min(s.next_attempt_at)
                LIMIT greatest(1, least(p_limit, 1000))
            $$;
            GRANT SELECT ON billing_seat_syncs TO {CROSSTENANT};
            ALTER FUNCTION orbit_due_seat_sync_tenants(integer) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_due_seat_sync_tenants(integer) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_due_seat_sync_tenants(integer) TO {APP};

            -- A 14-day Pro trial without a card: when it ends the workspace is Free again.
            ALTER TABLE tenants ADD COLUMN trial_ends_at timestamptz;
            ALTER TABLE billing_accounts ADD COLUMN cancel_at_period_end boolean
                NOT NULL DEFAULT false;
            ALTER TABLE billing_accounts ADD COLUMN plan_interval varchar(5);
        """)
    )
    return manager
