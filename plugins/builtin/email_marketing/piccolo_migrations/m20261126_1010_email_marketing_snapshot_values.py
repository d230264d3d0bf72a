"""Each queued message keeps the contact's values frozen when the campaign started."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import sql

ID = "2026-11-26T10:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "email_marketing_messages.merge_values, unsubscribed addresses; campaign errors"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="email_marketing", description=DESCRIPTION)
    manager.add_raw(
        sql("""
            ALTER TABLE email_marketing_messages
                ADD COLUMN merge_values jsonb NOT NULL DEFAULT '{}';
            ALTER TABLE email_marketing_campaigns ADD COLUMN last_error text;
            CREATE INDEX email_marketing_messages_unsubscribed
                ON email_marketing_messages (tenant_id, email)
                WHERE unsubscribed_at IS NOT NULL;
        """)
    )
    return manager
