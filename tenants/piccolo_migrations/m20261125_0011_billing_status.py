"""The workspace's subscription status, mirrored from Stripe (active until billing says else)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql

ID = "2026-11-25T16:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "subscription status"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(
        sql("""
            ALTER TABLE tenants
                ADD COLUMN subscription_status varchar(20) NOT NULL DEFAULT 'active'
                    CHECK (subscription_status IN
                           ('active', 'trialing', 'past_due', 'unpaid', 'canceled')),
                ADD COLUMN past_due_since timestamptz;
        """)
    )
    return manager
