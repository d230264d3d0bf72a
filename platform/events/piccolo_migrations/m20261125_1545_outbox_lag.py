"""The worker's outbox-lag gauge: the age of the oldest undispatched event, any tenant.

A narrow cross-tenant read like the two in the webhooks migration: it returns one
number (seconds, 0 when nothing waits) and no tenant data, so ``orbit_app`` may
call it outside any tenant transaction.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T15:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox lag"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE FUNCTION orbit_outbox_lag_seconds()
            RETURNS double precision
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT coalesce(extract(epoch FROM now() - min(o.occurred_at))::double precision, 0)
                FROM outbox_events o
                WHERE o.dispatched_at IS NULL
            $$;
            ALTER FUNCTION orbit_outbox_lag_seconds() OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_outbox_lag_seconds() FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_outbox_lag_seconds() TO {APP};
        """)
    )
    return manager
