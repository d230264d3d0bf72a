"""Emails Orbit sends (task reminders first), queued with the change that causes them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T16:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox emails"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE outbox_emails (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                to_address varchar(320) NOT NULL,
                subject varchar(300) NOT NULL,
                body text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                attempts integer NOT NULL DEFAULT 0,
                last_error varchar(500),
                sent_at timestamptz,
                failed_at timestamptz,
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX outbox_emails_due ON outbox_emails (tenant_id, next_attempt_at)
                WHERE sent_at IS NULL AND failed_at IS NULL;
            {tenant_owned("outbox_emails")}

            -- The worker finds due emails across workspaces here (ids only), then sends
            -- each from inside its own workspace's transaction.
            CREATE FUNCTION orbit_due_emails(p_limit integer)
            RETURNS TABLE (tenant_id uuid, email_id uuid)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT e.tenant_id, e.id FROM outbox_emails e
                WHERE e.sent_at IS NULL AND e.failed_at IS NULL AND e.next_attempt_at <= now()
                ORDER BY e.next_attempt_at LIMIT least(greatest(p_limit, 1), 500)
            $$;
            GRANT SELECT ON outbox_emails TO {CROSSTENANT};
            ALTER FUNCTION orbit_due_emails(integer) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_due_emails(integer) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_due_emails(integer) TO {APP};
        """)
    )
    return manager
