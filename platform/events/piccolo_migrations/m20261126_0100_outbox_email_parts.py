"""Queued emails may carry an HTML part, a Reply-To and extra headers (plugins' mail).

``headers`` holds only names the mail outbox accepted (``List-Unsubscribe``,
``X-…``); the structural ones (From, To, Subject, MIME parts) stay Orbit's.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql

ID = "2026-11-26T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox email parts"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)
    manager.add_raw(
        sql("""
            ALTER TABLE outbox_emails
                ADD COLUMN html text,
                ADD COLUMN reply_to varchar(320),
                ADD COLUMN headers jsonb NOT NULL DEFAULT '{}';
        """)
    )
    return manager
