"""The plugin's Piccolo app: Orbit's ``orbit migrate`` applies its migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="lead_scoring",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
)
"""Lead scoring's migrations (its tables are queried with SQL through ``ctx.db``)."""
