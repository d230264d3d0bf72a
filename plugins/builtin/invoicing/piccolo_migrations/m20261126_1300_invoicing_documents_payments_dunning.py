"""Invoicing: issued documents, payments and allocations, Stripe checkout, dunning.

Issued documents are the bytes sent to the customer: written once, never updated (a
trigger refuses it). Payments are allocated to invoices (and credit notes to
invoices); what is not allocated is the customer's credit. Dunning fires each level of
the policy at most once per invoice: ``(tenant_id, invoice_id, level)`` is the key.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invoicing documents, payments, dunning"

TENANT = "tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE"
INVOICE = "FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoicing_invoices (tenant_id, id)"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="invoicing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE invoicing_documents (
                {TENANT},
                invoice_id uuid NOT NULL,
                kind text NOT NULL CHECK (kind IN ('pdf', 'cii', 'ubl')),
                content bytea NOT NULL,
                sha256 text NOT NULL,
                media_type text NOT NULL,
                filename text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, invoice_id, kind),
                {INVOICE} ON DELETE CASCADE
            );
            {plugin_owned("invoicing_documents")}

            CREATE FUNCTION invoicing_documents_are_issued() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'an issued document never changes'
                    USING ERRCODE = 'check_violation';
            END $$;
            CREATE TRIGGER invoicing_documents_issued BEFORE UPDATE ON invoicing_documents
                FOR EACH ROW EXECUTE FUNCTION invoicing_documents_are_issued();

            CREATE TABLE invoicing_payments (
                {TENANT},
                id uuid NOT NULL,
                kind text NOT NULL CHECK (kind IN ('payment', 'refund')),
                company_id uuid,
                contact_id uuid,
                currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
                amount numeric NOT NULL CHECK (amount > 0),
                method text NOT NULL DEFAULT 'bank_transfer'
                    CHECK (method IN ('bank_transfer', 'card', 'cash', 'cheque', 'stripe', 'other')),
                received_on date NOT NULL,
                reference text NOT NULL DEFAULT '',
                external_id text,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                CHECK (company_id IS NOT NULL OR contact_id IS NOT NULL)
            );
            CREATE UNIQUE INDEX invoicing_payments_external
                ON invoicing_payments (tenant_id, external_id);
            CREATE INDEX invoicing_payments_company ON invoicing_payments (tenant_id, company_id);
            CREATE INDEX invoicing_payments_contact ON invoicing_payments (tenant_id, contact_id);
            {plugin_owned("invoicing_payments")}

            CREATE TABLE invoicing_allocations (
                {TENANT},
                id uuid NOT NULL,
                invoice_id uuid NOT NULL,
                payment_id uuid,
                credit_note_id uuid,
                amount numeric NOT NULL CHECK (amount > 0),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                CHECK (num_nonnulls(payment_id, credit_note_id) = 1),
                {INVOICE},
                FOREIGN KEY (tenant_id, payment_id) REFERENCES invoicing_payments (tenant_id, id),
                FOREIGN KEY (tenant_id, credit_note_id) REFERENCES invoicing_invoices (tenant_id, id)
            );
            CREATE INDEX invoicing_allocations_invoice ON invoicing_allocations (tenant_id, invoice_id);
            CREATE INDEX invoicing_allocations_payment ON invoicing_allocations (tenant_id, payment_id);
            CREATE INDEX invoicing_allocations_credit
                ON invoicing_allocations (tenant_id, credit_note_id);
            {plugin_owned("invoicing_allocations")}

            CREATE TABLE invoicing_checkout_sessions (
                {TENANT},
                session_id text NOT NULL,
                invoice_id uuid NOT NULL,
                account_id text NOT NULL,
                amount numeric NOT NULL CHECK (amount > 0),
                currency char(3) NOT NULL,
                url text NOT NULL,
                status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete', 'expired')),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, session_id),
                {INVOICE}
            );
            CREATE INDEX invoicing_checkout_sessions_invoice
                ON invoicing_checkout_sessions (tenant_id, invoice_id);
            {plugin_owned("invoicing_checkout_sessions")}

            CREATE TABLE invoicing_stripe_events (
                {TENANT},
                event_id text NOT NULL,
                type text NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, event_id)
            );
            {plugin_owned("invoicing_stripe_events")}

            CREATE TABLE invoicing_dunning_levels (
                {TENANT},
                level integer NOT NULL CHECK (level BETWEEN 1 AND 9),
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
                offset_days integer NOT NULL CHECK (offset_days BETWEEN 0 AND 365),
                action text NOT NULL CHECK (action IN ('reminder', 'call', 'lawyer')),
                fee numeric NOT NULL DEFAULT 0 CHECK (fee >= 0),
                interest boolean NOT NULL DEFAULT false,
                extend_days integer CHECK (extend_days BETWEEN 1 AND 365),
                PRIMARY KEY (tenant_id, level)
            );
            {plugin_owned("invoicing_dunning_levels")}

            CREATE TABLE invoicing_dunning_cases (
                {TENANT},
                invoice_id uuid NOT NULL,
                status text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'promised', 'disputed', 'escalated', 'closed')),
                promised_until date,
                due_date date,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, invoice_id),
                {INVOICE} ON DELETE CASCADE
            );
            {plugin_owned("invoicing_dunning_cases")}

            CREATE TABLE invoicing_dunning_steps (
                {TENANT},
                invoice_id uuid NOT NULL,
                level integer NOT NULL,
                action text NOT NULL,
                fired_on date NOT NULL,
                trigger text NOT NULL CHECK (trigger IN ('job', 'manual')),
                fee numeric NOT NULL DEFAULT 0,
                interest numeric NOT NULL DEFAULT 0,
                new_due_date date,
                task_id uuid,
                assignee_id uuid,
                detail jsonb NOT NULL DEFAULT '{{}}',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, invoice_id, level),
                {INVOICE} ON DELETE CASCADE
            );
            {plugin_owned("invoicing_dunning_steps")}

            CREATE TABLE invoicing_dunning_notes (
                {TENANT},
                id uuid NOT NULL,
                invoice_id uuid NOT NULL,
                kind text NOT NULL CHECK (kind IN ('call', 'promise', 'dispute', 'resume')),
                body text NOT NULL DEFAULT '' CHECK (length(body) <= 4000),
                promised_until date,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                {INVOICE} ON DELETE CASCADE
            );
            CREATE INDEX invoicing_dunning_notes_invoice
                ON invoicing_dunning_notes (tenant_id, invoice_id, created_at);
            {plugin_owned("invoicing_dunning_notes")}

            CREATE TABLE invoicing_dunning_rotation (
                {TENANT},
                turn bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (tenant_id)
            );
            {plugin_owned("invoicing_dunning_rotation")}

            CREATE TABLE invoicing_dunning_dossiers (
                {TENANT},
                invoice_id uuid NOT NULL,
                content bytea NOT NULL,
                sha256 text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, invoice_id),
                {INVOICE} ON DELETE CASCADE
            );
            {plugin_owned("invoicing_dunning_dossiers")}
        """)
    )
    return manager
