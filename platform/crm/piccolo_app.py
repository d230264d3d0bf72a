"""Piccolo app for the CRM core."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from orbit.platform.crm.models import (
    Activity,
    Company,
    Contact,
    Deal,
    DealStageHistory,
    Notification,
    Pipeline,
    PipelineStage,
    Task,
)

APP_CONFIG = AppConfig(
    app_name="crm",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[
        Contact,
        Company,
        Pipeline,
        PipelineStage,
        Deal,
        DealStageHistory,
        Activity,
        Task,
        Notification,
    ],
)
