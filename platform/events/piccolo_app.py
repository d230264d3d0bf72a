"""Piccolo app for domain events."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from orbit.platform.events.models import OutboxEvent

APP_CONFIG = AppConfig(
    app_name="events",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[OutboxEvent],
)
