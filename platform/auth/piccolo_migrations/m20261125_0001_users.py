"""Users: global accounts, email unique case-insensitively."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql
from orbit.platform.db.roles import APP

ID = "2026-11-25T13:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "users"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="auth", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE users (
                id uuid PRIMARY KEY,
                email varchar(320) NOT NULL,
                email_key varchar(320) NOT NULL UNIQUE,
                password_hash varchar(200) NOT NULL,
                name varchar(200) NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now()
            );
            GRANT SELECT, INSERT, UPDATE ON users TO {APP};
        """)
    )
    return manager
