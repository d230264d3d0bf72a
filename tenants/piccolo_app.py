"""Piccolo app for workspaces: tenants, memberships, invitations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from orbit.tenants.models import Invitation, Membership, Tenant

APP_CONFIG = AppConfig(
    app_name="tenants",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Tenant, Membership, Invitation],
)
