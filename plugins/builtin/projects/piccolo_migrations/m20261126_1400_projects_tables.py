"""Projects' tables: projects, tasks and their links, time entries, the billing ledger, portal."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "projects_* tables"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="projects", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE projects_templates (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                is_default boolean NOT NULL DEFAULT false,
                tasks jsonb NOT NULL DEFAULT '[]',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX projects_templates_default
                ON projects_templates (tenant_id) WHERE is_default;
            {plugin_owned("projects_templates")}

            CREATE TABLE projects_holidays (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                day date NOT NULL,
                name text NOT NULL DEFAULT '',
                PRIMARY KEY (tenant_id, day)
            );
            {plugin_owned("projects_holidays")}

            CREATE TABLE projects_projects (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                deal_id uuid,
                template_id uuid,
                company_id uuid,
                contact_id uuid,
                status text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'on_hold', 'done', 'archived')),
                start_date date NOT NULL,
                billing_mode text NOT NULL DEFAULT 'time_and_materials'
                    CHECK (billing_mode IN ('time_and_materials', 'fixed_price', 'prepaid')),
                currency char(3) NOT NULL DEFAULT 'USD',
                hourly_rate numeric(14, 2) NOT NULL DEFAULT 0 CHECK (hourly_rate >= 0),
                budget numeric(14, 2) NOT NULL DEFAULT 0 CHECK (budget >= 0),
                prepaid_hours numeric(10, 2) NOT NULL DEFAULT 0 CHECK (prepaid_hours >= 0),
                wip_limits jsonb NOT NULL DEFAULT '{{}}',
                enforce_dependencies boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            -- Once per won deal: the key every creation path upserts on.
            CREATE UNIQUE INDEX projects_projects_deal
                ON projects_projects (tenant_id, deal_id) WHERE deal_id IS NOT NULL;
            CREATE INDEX projects_projects_created ON projects_projects (tenant_id, created_at);
            {plugin_owned("projects_projects")}

            CREATE TABLE projects_tasks (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                project_id uuid NOT NULL,
                parent_id uuid,
                title text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
                description text NOT NULL DEFAULT '',
                status text NOT NULL DEFAULT 'todo'
                    CHECK (status IN ('todo', 'doing', 'review', 'done')),
                lane text NOT NULL DEFAULT '',
                priority smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3),
                start_date date NOT NULL,
                due_date date NOT NULL,
                estimate_hours numeric(10, 2) NOT NULL DEFAULT 0 CHECK (estimate_hours >= 0),
                milestone boolean NOT NULL DEFAULT false,
                milestone_amount numeric(14, 2) NOT NULL DEFAULT 0 CHECK (milestone_amount >= 0),
                shared boolean NOT NULL DEFAULT false,
                assignees uuid[] NOT NULL DEFAULT '{{}}',
                watchers uuid[] NOT NULL DEFAULT '{{}}',
                checklist jsonb NOT NULL DEFAULT '[]',
                position double precision NOT NULL,
                version integer NOT NULL DEFAULT 1,
                completed_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, project_id)
                    REFERENCES projects_projects (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, parent_id)
                    REFERENCES projects_tasks (tenant_id, id) ON DELETE CASCADE,
                CHECK (due_date >= start_date)
            );
            CREATE INDEX projects_tasks_board
                ON projects_tasks (tenant_id, project_id, status, position);
            CREATE INDEX projects_tasks_parent ON projects_tasks (tenant_id, parent_id)
                WHERE parent_id IS NOT NULL;
            {plugin_owned("projects_tasks")}

            CREATE TABLE projects_dependencies (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                project_id uuid NOT NULL,
                predecessor_id uuid NOT NULL,
                successor_id uuid NOT NULL,
                lag_days integer NOT NULL DEFAULT 0 CHECK (lag_days BETWEEN -365 AND 365),
                PRIMARY KEY (tenant_id, predecessor_id, successor_id),
                FOREIGN KEY (tenant_id, predecessor_id)
                    REFERENCES projects_tasks (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, successor_id)
                    REFERENCES projects_tasks (tenant_id, id) ON DELETE CASCADE,
                CHECK (predecessor_id <> successor_id)
            );
            CREATE INDEX projects_dependencies_project
                ON projects_dependencies (tenant_id, project_id);
            {plugin_owned("projects_dependencies")}

            CREATE TABLE projects_comments (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                task_id uuid NOT NULL,
                author_id uuid,
                author_name text NOT NULL DEFAULT '',
                body text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
                shared boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, task_id)
                    REFERENCES projects_tasks (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX projects_comments_task ON projects_comments (tenant_id, task_id, created_at);
            {plugin_owned("projects_comments")}

            CREATE TABLE projects_rates (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                project_id uuid NOT NULL,
                user_id uuid NOT NULL,
                hourly_rate numeric(14, 2) NOT NULL CHECK (hourly_rate >= 0),
                PRIMARY KEY (tenant_id, project_id, user_id),
                FOREIGN KEY (tenant_id, project_id)
                    REFERENCES projects_projects (tenant_id, id) ON DELETE CASCADE
            );
            {plugin_owned("projects_rates")}

            CREATE TABLE projects_time_entries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                project_id uuid NOT NULL,
                task_id uuid,
                user_id uuid NOT NULL,
                day date NOT NULL,
                started_at timestamptz,
                minutes integer NOT NULL DEFAULT 0 CHECK (minutes BETWEEN 0 AND 1440),
                running boolean NOT NULL DEFAULT false,
                note text NOT NULL DEFAULT '',
                billable boolean NOT NULL DEFAULT true,
                rate numeric(14, 2) NOT NULL DEFAULT 0,
                currency char(3) NOT NULL,
                status text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'submitted', 'approved', 'rejected')),
                invoice_id uuid,
                invoice_line_ref text,
                version integer NOT NULL DEFAULT 1,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, project_id)
                    REFERENCES projects_projects (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, task_id)
                    REFERENCES projects_tasks (tenant_id, id) ON DELETE SET NULL (task_id)
            );
            -- One running timer per user.
            CREATE UNIQUE INDEX projects_time_entries_running
                ON projects_time_entries (tenant_id, user_id) WHERE running;
            CREATE INDEX projects_time_entries_project
                ON projects_time_entries (tenant_id, project_id, status);
            CREATE INDEX projects_time_entries_user ON projects_time_entries (tenant_id, user_id, day);
            {plugin_owned("projects_time_entries")}

            -- The billing ledger: what went onto which invoice line. A row "billed" holds
            -- its entry (or milestone) until a credit note of that line frees it.
            CREATE TABLE projects_billing_lines (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                project_id uuid NOT NULL,
                invoice_id uuid NOT NULL,
                line_ref text NOT NULL,
                kind text NOT NULL CHECK (kind IN ('time', 'milestone', 'prepaid', 'consumed')),
                entry_id uuid,
                task_id uuid,
                hours numeric(10, 2) NOT NULL DEFAULT 0,
                amount numeric(14, 2) NOT NULL DEFAULT 0,
                status text NOT NULL DEFAULT 'billed' CHECK (status IN ('billed', 'credited')),
                created_at timestamptz NOT NULL DEFAULT now(),
                credited_at timestamptz,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, project_id)
                    REFERENCES projects_projects (tenant_id, id) ON DELETE CASCADE
            );
            -- Never billed twice: at most one live line per entry and per milestone.
            CREATE UNIQUE INDEX projects_billing_lines_entry
                ON projects_billing_lines (tenant_id, entry_id)
                WHERE entry_id IS NOT NULL AND status = 'billed';
            CREATE UNIQUE INDEX projects_billing_lines_milestone
                ON projects_billing_lines (tenant_id, task_id)
                WHERE task_id IS NOT NULL AND status = 'billed';
            CREATE INDEX projects_billing_lines_line
                ON projects_billing_lines (tenant_id, invoice_id, line_ref);
            CREATE INDEX projects_billing_lines_project
                ON projects_billing_lines (tenant_id, project_id, kind);
            {plugin_owned("projects_billing_lines")}

            CREATE TABLE projects_portal_access (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                project_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                label text NOT NULL DEFAULT '',
                revoked_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, project_id)
                    REFERENCES projects_projects (tenant_id, id) ON DELETE CASCADE
            );
            CREATE UNIQUE INDEX projects_portal_access_contact
                ON projects_portal_access (tenant_id, project_id, contact_id);
            {plugin_owned("projects_portal_access")}

            -- Events already applied (at-least-once delivery): credit notes, won deals.
            CREATE TABLE projects_events_seen (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                event_id uuid NOT NULL,
                type text NOT NULL,
                seen_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, event_id)
            );
            {plugin_owned("projects_events_seen")}
        """)
    )
    return manager
