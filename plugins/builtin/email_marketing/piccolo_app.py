"""Email marketing's Piccolo app: ``orbit migrate`` applies its migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="email_marketing",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
)
"""Email marketing's migrations (its tables are queried with SQL through ``ctx.db``)."""
