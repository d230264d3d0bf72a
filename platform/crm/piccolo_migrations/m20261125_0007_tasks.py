"""Tasks with due dates, reminders and recurrence, and in-app notifications."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned
from orbit.platform.db.roles import APP, CROSSTENANT

ID = "2026-11-25T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tasks and notifications"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE tasks (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                title varchar(300) NOT NULL,
                notes text NOT NULL DEFAULT '',
                due_at timestamptz NOT NULL,
                remind_at timestamptz,
                reminded_at timestamptz,
                assignee_id uuid,
                priority varchar(10) NOT NULL DEFAULT 'normal'
                    CHECK (priority IN ('low', 'normal', 'high')),
                recurrence varchar(10) NOT NULL DEFAULT 'none'
                    CHECK (recurrence IN ('none', 'daily', 'weekly', 'monthly')),
                done_at timestamptz,
                contact_id uuid,
                company_id uuid,
                deal_id uuid,
                created_by uuid,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, assignee_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (assignee_id),
                FOREIGN KEY (tenant_id, created_by)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (created_by),
                FOREIGN KEY (tenant_id, contact_id)
                    REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, company_id)
                    REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX tasks_assignee_open ON tasks (tenant_id, assignee_id, due_at)
                WHERE done_at IS NULL;
            -- The reminder scan: open tasks whose reminder time has come and not yet fired.
            CREATE INDEX tasks_reminders_due ON tasks (tenant_id, remind_at)
                WHERE done_at IS NULL AND reminded_at IS NULL AND remind_at IS NOT NULL;
            {tenant_owned("tasks")}

            CREATE TABLE notifications (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                membership_id uuid NOT NULL,
                kind varchar(40) NOT NULL,
                title varchar(300) NOT NULL,
                link varchar(500) NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                read_at timestamptz,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, membership_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX notifications_unread ON notifications (tenant_id, membership_id, created_at DESC)
                WHERE read_at IS NULL;
            {tenant_owned("notifications")}

            -- The worker finds due reminders across workspaces here, then handles each
            -- inside that workspace's own transaction (under RLS).
            CREATE FUNCTION orbit_due_reminders(p_limit integer)
            RETURNS TABLE (tenant_id uuid, task_id uuid)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
                SELECT t.tenant_id, t.id FROM tasks t
                WHERE t.done_at IS NULL AND t.reminded_at IS NULL AND t.remind_at <= now()
                ORDER BY t.remind_at LIMIT least(greatest(p_limit, 1), 1000)
            $$;
            GRANT SELECT ON tasks TO {CROSSTENANT};
            ALTER FUNCTION orbit_due_reminders(integer) OWNER TO {CROSSTENANT};
            REVOKE ALL ON FUNCTION orbit_due_reminders(integer) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION orbit_due_reminders(integer) TO {APP};
        """)
    )
    return manager
