"""Lead scoring's tables: one score per contact, and the points each event gave."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-25T20:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "lead_scoring_scores, lead_scoring_points"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="lead_scoring", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE lead_scoring_scores (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                contact_id uuid NOT NULL,
                profile_points integer NOT NULL DEFAULT 0,
                profile_at timestamptz,
                event_points integer NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, contact_id)
            );
            {plugin_owned("lead_scoring_scores")}
            CREATE TABLE lead_scoring_points (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                event_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                reason text NOT NULL,
                points integer NOT NULL,
                occurred_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, event_id, contact_id)
            );
            CREATE INDEX lead_scoring_points_contact
                ON lead_scoring_points (tenant_id, contact_id, occurred_at);
            {plugin_owned("lead_scoring_points")}
        """)
    )
    return manager
