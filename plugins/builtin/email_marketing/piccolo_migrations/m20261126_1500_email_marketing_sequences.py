"""Sequences: follow-ups that enrol contacts on a trigger and walk them through steps.

``email_marketing_sequences`` holds each sequence (its trigger, sender and quiet hours),
``email_marketing_sequence_steps`` its ordered steps. Every enrolment
(``email_marketing_enrolments``, one per sequence and contact) is a durable state
machine: the step it is on and when that step is due, claimed by the sequence job
with ``FOR UPDATE SKIP LOCKED``. ``email_marketing_sequence_runs`` is the ledger of
steps done, one row per enrolment and step: a retried job or a redelivered event
finds the row and never sends, tags or creates a task twice.

A sequence's email steps send through the campaign pipeline: each is a campaign of
audience kind ``sequence`` (its id the step's), so suppression, unsubscribe headers,
tracking, bounces and counters work for them as for any campaign.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "email_marketing sequences, steps, enrolments and their step ledger"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="email_marketing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            ALTER TABLE email_marketing_campaigns
                DROP CONSTRAINT email_marketing_campaigns_audience_kind_check;
            ALTER TABLE email_marketing_campaigns
                ADD CONSTRAINT email_marketing_campaigns_audience_kind_check
                CHECK (audience_kind IN ('list', 'segment', 'sequence'));

            CREATE TABLE email_marketing_sequences (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL,
                status text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'active', 'paused')),
                trigger jsonb NOT NULL,
                from_email text NOT NULL,
                from_name text NOT NULL DEFAULT '',
                reply_to text,
                quiet_start time,
                quiet_end time,
                exit_on_deal_won boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
            );
            CREATE UNIQUE INDEX email_marketing_sequences_name
                ON email_marketing_sequences (tenant_id, lower(name));
            CREATE INDEX email_marketing_sequences_status
                ON email_marketing_sequences (tenant_id, status);
            {plugin_owned("email_marketing_sequences")}

            CREATE TABLE email_marketing_sequence_steps (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                sequence_id uuid NOT NULL,
                position integer NOT NULL CHECK (position >= 1),
                kind text NOT NULL CHECK (kind IN
                    ('wait', 'email', 'condition', 'task', 'tag', 'webhook')),
                config jsonb NOT NULL DEFAULT '{{}}',
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, sequence_id, position),
                FOREIGN KEY (tenant_id, sequence_id)
                    REFERENCES email_marketing_sequences (tenant_id, id) ON DELETE CASCADE
            );
            {plugin_owned("email_marketing_sequence_steps")}

            CREATE TABLE email_marketing_enrolments (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                sequence_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                deal_id uuid,
                status text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'completed', 'exited')),
                step_id uuid,
                due_at timestamptz,
                waiting text NOT NULL DEFAULT '',
                exit_reason text,
                attempts integer NOT NULL DEFAULT 0,
                last_error text,
                source text NOT NULL DEFAULT '',
                enrolled_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, sequence_id)
                    REFERENCES email_marketing_sequences (tenant_id, id) ON DELETE CASCADE
            );
            CREATE UNIQUE INDEX email_marketing_enrolments_contact_once
                ON email_marketing_enrolments (tenant_id, sequence_id, contact_id);
            CREATE INDEX email_marketing_enrolments_due
                ON email_marketing_enrolments (tenant_id, due_at) WHERE status = 'active';
            CREATE INDEX email_marketing_enrolments_contact
                ON email_marketing_enrolments (tenant_id, contact_id);
            {plugin_owned("email_marketing_enrolments")}

            CREATE TABLE email_marketing_sequence_runs (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                enrolment_id uuid NOT NULL,
                step_id uuid NOT NULL,
                kind text NOT NULL,
                outcome text NOT NULL,
                message_id uuid,
                detail jsonb NOT NULL DEFAULT '{{}}',
                ran_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, enrolment_id, step_id),
                FOREIGN KEY (tenant_id, enrolment_id)
                    REFERENCES email_marketing_enrolments (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX email_marketing_sequence_runs_message
                ON email_marketing_sequence_runs (tenant_id, message_id)
                WHERE message_id IS NOT NULL;
            {plugin_owned("email_marketing_sequence_runs")}
        """)
    )
    return manager
