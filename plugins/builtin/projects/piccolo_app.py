"""The projects plugin's Piccolo app: ``orbit migrate`` applies its migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="projects",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
)
"""Projects' migrations (its tables are queried with SQL through ``ctx.db``)."""
