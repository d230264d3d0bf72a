"""Piccolo app for authentication: users and API keys."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from orbit.platform.auth.models import ApiKey, User

APP_CONFIG = AppConfig(
    app_name="auth",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[User, ApiKey],
)
