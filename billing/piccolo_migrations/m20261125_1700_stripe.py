"""Each workspace's Stripe customer and subscription, and every Stripe event received."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stripe accounts and events"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="billing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE billing_accounts (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                stripe_customer_id varchar(64) NOT NULL UNIQUE,
                stripe_subscription_id varchar(64),
                last_event_created bigint NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id)
            );
            {tenant_owned("billing_accounts")}

            -- Every event Stripe sent, once: the id is the idempotency key, written in the
            -- same transaction as the event's effect. No workspace data lives here.
            CREATE TABLE stripe_events (
                id varchar(255) PRIMARY KEY,
                type varchar(100) NOT NULL,
                created bigint NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                outcome varchar(200) NOT NULL DEFAULT 'received'
            );
            GRANT SELECT, INSERT, UPDATE ON stripe_events TO {APP};

            -- Webhooks name a Stripe customer, not a workspace: this finds the workspace.
            CREATE FUNCTION orbit_tenant_by_stripe_customer(p_customer text) RETURNS uuid
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$ SELECT tenant_id FROM billing_accounts WHERE stripe_customer_id = p_customer $$;
            GRANT SELECT ON billing_accounts TO {CROSSTENANT};
            ALTER FUNCTION orbit_tenant_by_stripe_customer(text) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_tenant_by_stripe_customer(text) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_tenant_by_stripe_customer(text) TO {APP};
        """)
    )
    return manager
