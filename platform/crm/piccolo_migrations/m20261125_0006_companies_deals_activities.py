"""Companies, pipelines and deals with stage history, and the activity timeline.

Contacts' free-text ``company_name`` becomes a link: each distinct name per
workspace becomes a company and its contacts point at it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql, tenant_owned

ID = "2026-11-25T14:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "companies, deals, activities"

DEFAULT_STAGES = (
    ("Lead", 10, "open"),
    ("Qualified", 25, "open"),
    ("Proposal", 50, "open"),
    ("Negotiation", 75, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
)


def _default_pipeline_for_existing_workspaces() -> str:
    stages = ",\n".join(
        f"('{name}', {position}, {probability}, '{kind}')"
        for position, (name, probability, kind) in enumerate(DEFAULT_STAGES)
    )
    return f"""
        INSERT INTO pipelines (tenant_id, id, name, position)
        SELECT t.id, gen_random_uuid(), 'Sales', 0 FROM tenants t;
        INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position, probability, kind)
        SELECT p.tenant_id, gen_random_uuid(), p.id, s.name, s.position, s.probability, s.kind
        FROM pipelines p CROSS JOIN (VALUES {stages}) AS s (name, position, probability, kind);
    """


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE companies (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name varchar(200) NOT NULL,
                domain varchar(253),
                industry varchar(100),
                size varchar(20),
                address text,
                phone varchar(50),
                owner_id uuid,
                tags varchar(50)[] NOT NULL DEFAULT '{{}}',
                custom jsonb NOT NULL DEFAULT '{{}}',
                search_text text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, owner_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (owner_id)
            );
            CREATE UNIQUE INDEX companies_tenant_domain ON companies (tenant_id, domain)
                WHERE domain IS NOT NULL;
            CREATE INDEX companies_tenant_recent ON companies (tenant_id, updated_at DESC, id DESC);
            CREATE INDEX companies_tenant_name ON companies (tenant_id, lower(name));
            CREATE INDEX companies_tenant_search ON companies
                USING gin (tenant_id, search_text gin_trgm_ops);

            -- Existing contacts' company names become companies (one per name and workspace).
            -- RLS is forced on contacts even for its owner: lift it for this one
            -- cross-tenant data migration, inside this transaction only.
            ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY;
            INSERT INTO companies (tenant_id, id, name, search_text)
            SELECT DISTINCT ON (tenant_id, lower(btrim(company_name)))
                   tenant_id, gen_random_uuid(), btrim(company_name), lower(btrim(company_name))
            FROM contacts WHERE btrim(coalesce(company_name, '')) <> '';
            {tenant_owned("companies")}

            ALTER TABLE contacts ADD COLUMN company_id uuid;
            ALTER TABLE contacts ADD FOREIGN KEY (tenant_id, company_id)
                REFERENCES companies (tenant_id, id) ON DELETE SET NULL (company_id);
            CREATE INDEX contacts_tenant_company ON contacts (tenant_id, company_id);
            ALTER TABLE companies NO FORCE ROW LEVEL SECURITY;
            UPDATE contacts SET company_id = c.id
            FROM companies c
            WHERE c.tenant_id = contacts.tenant_id
              AND lower(c.name) = lower(btrim(contacts.company_name));
            ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
            ALTER TABLE companies FORCE ROW LEVEL SECURITY;
            ALTER TABLE contacts DROP COLUMN company_name;

            CREATE TABLE pipelines (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name varchar(100) NOT NULL,
                position integer NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, name)
            );
            CREATE TABLE pipeline_stages (
                tenant_id uuid NOT NULL,
                id uuid NOT NULL,
                pipeline_id uuid NOT NULL,
                name varchar(100) NOT NULL,
                position integer NOT NULL,
                probability numeric(5, 2) NOT NULL CHECK (probability BETWEEN 0 AND 100),
                kind varchar(10) NOT NULL DEFAULT 'open' CHECK (kind IN ('open', 'won', 'lost')),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, id, pipeline_id),
                UNIQUE (tenant_id, pipeline_id, name),
                FOREIGN KEY (tenant_id, pipeline_id)
                    REFERENCES pipelines (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX pipeline_stages_order ON pipeline_stages (tenant_id, pipeline_id, position);
            {_default_pipeline_for_existing_workspaces()}
            {tenant_owned("pipelines")}
            {tenant_owned("pipeline_stages")}

            CREATE TABLE deals (
                tenant_id uuid NOT NULL,
                id uuid NOT NULL,
                pipeline_id uuid NOT NULL,
                stage_id uuid NOT NULL,
                title varchar(200) NOT NULL,
                amount numeric(18, 4) NOT NULL DEFAULT 0 CHECK (amount >= 0),
                currency char(3) NOT NULL,
                expected_close_date date,
                owner_id uuid,
                company_id uuid,
                status varchar(10) NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'won', 'lost')),
                lost_reason varchar(500),
                closed_at timestamptz,
                search_text text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                -- The stage must belong to the deal's pipeline.
                FOREIGN KEY (tenant_id, stage_id, pipeline_id)
                    REFERENCES pipeline_stages (tenant_id, id, pipeline_id),
                FOREIGN KEY (tenant_id, owner_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (owner_id),
                FOREIGN KEY (tenant_id, company_id)
                    REFERENCES companies (tenant_id, id) ON DELETE SET NULL (company_id)
            );
            CREATE INDEX deals_tenant_recent ON deals (tenant_id, updated_at DESC, id DESC);
            CREATE INDEX deals_tenant_stage ON deals (tenant_id, stage_id);
            CREATE INDEX deals_tenant_company ON deals (tenant_id, company_id);
            CREATE INDEX deals_tenant_search ON deals USING gin (tenant_id, search_text gin_trgm_ops);
            {tenant_owned("deals")}

            CREATE TABLE deal_contacts (
                tenant_id uuid NOT NULL,
                deal_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                PRIMARY KEY (tenant_id, deal_id, contact_id),
                FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, contact_id)
                    REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX deal_contacts_contact ON deal_contacts (tenant_id, contact_id);
            {tenant_owned("deal_contacts")}

            CREATE TABLE deal_stage_history (
                tenant_id uuid NOT NULL,
                id uuid NOT NULL,
                deal_id uuid NOT NULL,
                from_stage_id uuid,
                to_stage_id uuid NOT NULL,
                moved_at timestamptz NOT NULL DEFAULT now(),
                moved_by uuid,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX deal_stage_history_deal ON deal_stage_history (tenant_id, deal_id, moved_at);
            {tenant_owned("deal_stage_history")}

            CREATE TABLE activities (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                kind varchar(20) NOT NULL CHECK (kind IN ('note', 'call', 'meeting', 'email',
                    'task', 'stage_change', 'field_change', 'plugin')),
                channel varchar(20) NOT NULL DEFAULT 'other' CHECK (channel IN ('email', 'phone',
                    'web', 'shop', 'call_centre', 'in_person', 'other')),
                subject varchar(300) NOT NULL DEFAULT '',
                body text NOT NULL DEFAULT '',
                author_id uuid,
                occurred_at timestamptz NOT NULL DEFAULT now(),
                contact_id uuid,
                company_id uuid,
                deal_id uuid,
                data jsonb NOT NULL DEFAULT '{{}}',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, author_id)
                    REFERENCES memberships (tenant_id, id) ON DELETE SET NULL (author_id),
                FOREIGN KEY (tenant_id, contact_id)
                    REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, company_id)
                    REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX activities_contact ON activities (tenant_id, contact_id, occurred_at DESC, id DESC);
            CREATE INDEX activities_company ON activities (tenant_id, company_id, occurred_at DESC, id DESC);
            CREATE INDEX activities_deal ON activities (tenant_id, deal_id, occurred_at DESC, id DESC);
            CREATE INDEX activities_recent ON activities (tenant_id, occurred_at DESC, id DESC);
            {tenant_owned("activities")}

        """)
    )
    return manager
