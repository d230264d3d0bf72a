"""Each user's time zone, for due dates and "today" on their pages."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql

ID = "2026-11-25T15:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "user time zone"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)
    manager.add_raw(
        sql("ALTER TABLE users ADD COLUMN time_zone varchar(64) NOT NULL DEFAULT 'UTC';")
    )
    return manager
