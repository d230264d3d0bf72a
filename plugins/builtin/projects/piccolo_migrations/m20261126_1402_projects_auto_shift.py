"""Projects may push successors along when a task moves later (instead of flagging)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import sql

ID = "2026-11-26T14:02:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "projects_projects.auto_shift"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="projects", description=DESCRIPTION)
    manager.add_raw(
        sql("""
            ALTER TABLE projects_projects ADD COLUMN auto_shift boolean NOT NULL DEFAULT false;
        """)
    )
    return manager
