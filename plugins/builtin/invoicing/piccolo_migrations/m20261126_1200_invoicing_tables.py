"""Quotes & invoices: catalogue, tax rates, quotes, invoices, number series, the outbox.

Money is ``numeric`` without a scale (exact; each currency's minor unit is applied by
the plugin's arithmetic, not by the column). A finalized invoice is immutable: a
trigger refuses any change to its row (but ``sent_at``/``updated_at``) or to its lines.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invoicing tables"

TENANT = "tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="invoicing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE invoicing_units (
                {TENANT},
                code text NOT NULL CHECK (code ~ '^[A-Z0-9]{{2,3}}$'),
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
                PRIMARY KEY (tenant_id, code)
            );
            {plugin_owned("invoicing_units")}

            CREATE TABLE invoicing_tax_rates (
                {TENANT},
                id uuid NOT NULL,
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
                rate numeric NOT NULL CHECK (rate > -100 AND rate < 1000),
                category text NOT NULL DEFAULT 'S'
                    CHECK (category IN ('S', 'Z', 'E', 'AE', 'K', 'G', 'O', 'L', 'M')),
                kind text NOT NULL DEFAULT 'vat' CHECK (kind IN ('vat', 'withholding', 'other')),
                compound boolean NOT NULL DEFAULT false,
                exemption_reason text NOT NULL DEFAULT '',
                active boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX invoicing_tax_rates_name ON invoicing_tax_rates (tenant_id, name);
            {plugin_owned("invoicing_tax_rates")}

            CREATE TABLE invoicing_products (
                {TENANT},
                id uuid NOT NULL,
                sku text CHECK (length(sku) BETWEEN 1 AND 64),
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                description text NOT NULL DEFAULT '',
                unit_code text NOT NULL DEFAULT 'C62',
                tax_rate_ids uuid[] NOT NULL DEFAULT '{{}}',
                active boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, unit_code) REFERENCES invoicing_units (tenant_id, code)
            );
            CREATE UNIQUE INDEX invoicing_products_sku ON invoicing_products (tenant_id, sku);
            CREATE INDEX invoicing_products_name ON invoicing_products (tenant_id, name);
            {plugin_owned("invoicing_products")}

            CREATE TABLE invoicing_price_lists (
                {TENANT},
                id uuid NOT NULL,
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
                currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
                prices_include_tax boolean NOT NULL DEFAULT false,
                is_default boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX invoicing_price_lists_name ON invoicing_price_lists (tenant_id, name);
            CREATE UNIQUE INDEX invoicing_price_lists_default
                ON invoicing_price_lists (tenant_id, currency) WHERE is_default;
            {plugin_owned("invoicing_price_lists")}

            CREATE TABLE invoicing_prices (
                {TENANT},
                price_list_id uuid NOT NULL,
                product_id uuid NOT NULL,
                unit_price numeric NOT NULL CHECK (unit_price >= 0),
                PRIMARY KEY (tenant_id, price_list_id, product_id),
                FOREIGN KEY (tenant_id, price_list_id)
                    REFERENCES invoicing_price_lists (tenant_id, id) ON DELETE CASCADE,
                FOREIGN KEY (tenant_id, product_id)
                    REFERENCES invoicing_products (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX invoicing_prices_product ON invoicing_prices (tenant_id, product_id);
            {plugin_owned("invoicing_prices")}

            -- Gapless numbering: one counter row per (series, year), taken with
            -- UPDATE ... RETURNING (a row lock held until the finalizing transaction ends).
            CREATE TABLE invoicing_number_series (
                {TENANT},
                series text NOT NULL CHECK (series IN ('invoice', 'credit_note', 'quote')),
                year integer NOT NULL,
                next_number bigint NOT NULL DEFAULT 1 CHECK (next_number >= 1),
                PRIMARY KEY (tenant_id, series, year)
            );
            {plugin_owned("invoicing_number_series")}

            CREATE TABLE invoicing_quotes (
                {TENANT},
                id uuid NOT NULL,
                root_id uuid NOT NULL,
                revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
                number text NOT NULL,
                status text NOT NULL DEFAULT 'draft' CHECK (status IN
                    ('draft', 'sent', 'accepted', 'declined', 'superseded')),
                title text NOT NULL DEFAULT '',
                deal_id uuid,
                company_id uuid,
                contact_id uuid,
                customer jsonb NOT NULL DEFAULT '{{}}',
                currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
                price_list_id uuid,
                prices_include_tax boolean NOT NULL DEFAULT false,
                discount_percent numeric NOT NULL DEFAULT 0
                    CHECK (discount_percent >= 0 AND discount_percent <= 100),
                discount_amount numeric NOT NULL DEFAULT 0 CHECK (discount_amount >= 0),
                expires_on date,
                notes text NOT NULL DEFAULT '',
                terms text NOT NULL DEFAULT '',
                net_total numeric NOT NULL DEFAULT 0,
                gross_total numeric NOT NULL DEFAULT 0,
                totals jsonb NOT NULL DEFAULT '{{}}',
                sent_at timestamptz,
                document bytea,
                document_type text,
                document_sha256 text,
                accepted_at timestamptz,
                accepted_name text,
                accepted_signature bytea,
                accepted_ip text,
                accepted_user_agent text,
                accepted_document_sha256 text,
                declined_at timestamptz,
                declined_reason text,
                invoice_id uuid,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, root_id, revision)
            );
            CREATE INDEX invoicing_quotes_deal ON invoicing_quotes (tenant_id, deal_id);
            CREATE INDEX invoicing_quotes_company ON invoicing_quotes (tenant_id, company_id);
            CREATE INDEX invoicing_quotes_contact ON invoicing_quotes (tenant_id, contact_id);
            CREATE INDEX invoicing_quotes_updated ON invoicing_quotes (tenant_id, updated_at DESC, id);
            {plugin_owned("invoicing_quotes")}

            CREATE TABLE invoicing_quote_lines (
                {TENANT},
                quote_id uuid NOT NULL,
                position integer NOT NULL CHECK (position >= 0),
                kind text NOT NULL DEFAULT 'item' CHECK (kind IN ('item', 'section')),
                product_id uuid,
                description text NOT NULL DEFAULT '',
                quantity numeric NOT NULL DEFAULT 1,
                unit_code text NOT NULL DEFAULT 'C62',
                unit_price numeric NOT NULL DEFAULT 0,
                discount_percent numeric NOT NULL DEFAULT 0
                    CHECK (discount_percent >= 0 AND discount_percent <= 100),
                taxes jsonb NOT NULL DEFAULT '[]',
                optional boolean NOT NULL DEFAULT false,
                selected boolean NOT NULL DEFAULT true,
                PRIMARY KEY (tenant_id, quote_id, position),
                FOREIGN KEY (tenant_id, quote_id)
                    REFERENCES invoicing_quotes (tenant_id, id) ON DELETE CASCADE
            );
            {plugin_owned("invoicing_quote_lines")}

            CREATE TABLE invoicing_invoices (
                {TENANT},
                id uuid NOT NULL,
                kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'credit_note')),
                status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'finalized')),
                series text,
                year integer,
                seq bigint,
                number text,
                issue_date date,
                due_date date,
                finalized_at timestamptz,
                sent_at timestamptz,
                deal_id uuid,
                company_id uuid,
                contact_id uuid,
                quote_id uuid,
                credited_invoice_id uuid,
                customer jsonb NOT NULL DEFAULT '{{}}',
                currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
                prices_include_tax boolean NOT NULL DEFAULT false,
                discount_percent numeric NOT NULL DEFAULT 0
                    CHECK (discount_percent >= 0 AND discount_percent <= 100),
                discount_amount numeric NOT NULL DEFAULT 0 CHECK (discount_amount >= 0),
                company_currency char(3),
                exchange_rate numeric CHECK (exchange_rate > 0),
                exchange_rate_source text,
                exchange_rate_date date,
                net_total numeric NOT NULL DEFAULT 0,
                tax_total numeric NOT NULL DEFAULT 0,
                gross_total numeric NOT NULL DEFAULT 0,
                payable_total numeric NOT NULL DEFAULT 0,
                totals jsonb NOT NULL DEFAULT '{{}}',
                notes text NOT NULL DEFAULT '',
                terms text NOT NULL DEFAULT '',
                source jsonb NOT NULL DEFAULT '{{}}',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, series, number),
                UNIQUE (tenant_id, series, year, seq),
                CHECK ((status = 'draft') = (number IS NULL)),
                CHECK ((status = 'draft') = (seq IS NULL))
            );
            CREATE INDEX invoicing_invoices_company ON invoicing_invoices (tenant_id, company_id);
            CREATE INDEX invoicing_invoices_contact ON invoicing_invoices (tenant_id, contact_id);
            CREATE INDEX invoicing_invoices_deal ON invoicing_invoices (tenant_id, deal_id);
            CREATE INDEX invoicing_invoices_updated
                ON invoicing_invoices (tenant_id, updated_at DESC, id);
            {plugin_owned("invoicing_invoices")}

            CREATE TABLE invoicing_invoice_lines (
                {TENANT},
                invoice_id uuid NOT NULL,
                position integer NOT NULL CHECK (position >= 0),
                kind text NOT NULL DEFAULT 'item' CHECK (kind IN ('item', 'section')),
                product_id uuid,
                description text NOT NULL DEFAULT '',
                quantity numeric NOT NULL DEFAULT 1,
                unit_code text NOT NULL DEFAULT 'C62',
                unit_price numeric NOT NULL DEFAULT 0,
                discount_percent numeric NOT NULL DEFAULT 0
                    CHECK (discount_percent >= 0 AND discount_percent <= 100),
                taxes jsonb NOT NULL DEFAULT '[]',
                ref text,
                PRIMARY KEY (tenant_id, invoice_id, position),
                FOREIGN KEY (tenant_id, invoice_id)
                    REFERENCES invoicing_invoices (tenant_id, id) ON DELETE CASCADE
            );
            {plugin_owned("invoicing_invoice_lines")}

            CREATE FUNCTION invoicing_finalized_is_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.status <> 'draft' AND (to_jsonb(NEW) - 'updated_at' - 'sent_at')
                        IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at' - 'sent_at') THEN
                    RAISE EXCEPTION 'invoice % is finalized and cannot change', OLD.number
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER invoicing_invoices_immutable BEFORE UPDATE ON invoicing_invoices
                FOR EACH ROW EXECUTE FUNCTION invoicing_finalized_is_immutable();

            CREATE FUNCTION invoicing_finalized_lines_are_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                line record;
            BEGIN
                line := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
                IF TG_OP = 'DELETE' THEN
                    -- Deleting a tenant or emptying the plugin's tables removes everything.
                    RETURN OLD;
                END IF;
                IF EXISTS (SELECT 1 FROM invoicing_invoices i WHERE i.tenant_id = line.tenant_id
                           AND i.id = line.invoice_id AND i.status <> 'draft') THEN
                    RAISE EXCEPTION 'the lines of a finalized invoice cannot change'
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER invoicing_invoice_lines_immutable
                BEFORE INSERT OR UPDATE ON invoicing_invoice_lines
                FOR EACH ROW EXECUTE FUNCTION invoicing_finalized_lines_are_immutable();

            -- Work after commit (documents, emails, payment links): claimed by a scheduled
            -- job with FOR UPDATE SKIP LOCKED, one task after the other per invoice.
            CREATE TABLE invoicing_outbox (
                {TENANT},
                id uuid NOT NULL,
                task text NOT NULL,
                invoice_id uuid,
                quote_id uuid,
                payload jsonb NOT NULL DEFAULT '{{}}',
                position integer NOT NULL DEFAULT 0,
                run_after timestamptz NOT NULL DEFAULT now(),
                attempts integer NOT NULL DEFAULT 0,
                last_error text,
                done_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX invoicing_outbox_due ON invoicing_outbox (tenant_id, run_after)
                WHERE done_at IS NULL;
            CREATE INDEX invoicing_outbox_invoice ON invoicing_outbox (tenant_id, invoice_id, position);
            {plugin_owned("invoicing_outbox")}
        """)
    )
    return manager
