"""Time still to bill, found without reading a project's invoiced history."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import sql

ID = "2026-11-26T14:01:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "projects_time_entries_unbilled"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="projects", description=DESCRIPTION)
    manager.add_raw(
        sql("""
            CREATE INDEX projects_time_entries_unbilled
                ON projects_time_entries (tenant_id, project_id, day)
                WHERE invoice_id IS NULL;
        """)
    )
    return manager
