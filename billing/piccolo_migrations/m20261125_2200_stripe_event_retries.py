"""Stripe events whose processing failed, kept for the worker to retry with backoff.

Not tenant-owned (an event names a Stripe customer; the workspace is found when it
is applied), like ``stripe_events``.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql
from orbit.platform.db.roles import APP

ID = "2026-11-25T22:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stripe event retries"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="billing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE stripe_event_retries (
                event_id varchar(255) PRIMARY KEY,
                type varchar(100) NOT NULL,
                payload jsonb NOT NULL,
                status varchar(10) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'failed')),
                attempts integer NOT NULL DEFAULT 1,
                next_attempt_at timestamptz NOT NULL,
                last_error varchar(500) NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX stripe_event_retries_due ON stripe_event_retries (next_attempt_at)
                WHERE status = 'pending';
            GRANT SELECT, INSERT, UPDATE, DELETE ON stripe_event_retries TO {APP};
        """)
    )
    return manager
