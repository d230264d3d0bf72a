"""Email marketing's deliverability tables: VERP keys, bounces, suppressions, consent.

``email_marketing_keys`` holds each workspace's random key for the per-message return
path (VERP) signatures. ``email_marketing_bounces`` is the log of every bounce and
complaint matched to a message (once per report: ``report_key``).
``email_marketing_suppressions`` is the workspace's do-not-send list, one row per
address and reason. ``email_marketing_consents`` is the consent ledger: what each
person agreed to, in which words (text version), where, from which address and
browser, and when it was asked for, confirmed or withdrawn.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "email_marketing VERP keys, bounces, suppressions, consent ledger"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="email_marketing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE email_marketing_keys (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                verp_key bytea NOT NULL CHECK (length(verp_key) >= 32),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id)
            );
            {plugin_owned("email_marketing_keys")}

            CREATE TABLE email_marketing_bounces (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                message_id uuid NOT NULL,
                contact_id uuid,
                email text NOT NULL,
                kind text NOT NULL CHECK (kind IN ('hard', 'soft', 'policy', 'complaint')),
                status text,
                diagnostic text NOT NULL DEFAULT '',
                source text NOT NULL,
                report_key text NOT NULL,
                occurred_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX email_marketing_bounces_report
                ON email_marketing_bounces (tenant_id, report_key);
            CREATE INDEX email_marketing_bounces_email
                ON email_marketing_bounces (tenant_id, email, occurred_at);
            CREATE INDEX email_marketing_bounces_contact
                ON email_marketing_bounces (tenant_id, contact_id);
            {plugin_owned("email_marketing_bounces")}

            CREATE TABLE email_marketing_suppressions (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                email text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
                reason text NOT NULL CHECK (reason IN
                    ('bounce-hard', 'bounce-soft', 'complaint', 'unsubscribe', 'manual')),
                source text NOT NULL DEFAULT '',
                detail text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, email, reason)
            );
            CREATE INDEX email_marketing_suppressions_recent
                ON email_marketing_suppressions (tenant_id, created_at DESC);
            {plugin_owned("email_marketing_suppressions")}

            CREATE TABLE email_marketing_consents (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                contact_id uuid,
                email text NOT NULL,
                purpose text NOT NULL,
                legal_basis text NOT NULL CHECK (legal_basis IN
                    ('consent', 'contract', 'legal_obligation', 'vital_interests',
                     'public_task', 'legitimate_interests')),
                text_version text NOT NULL DEFAULT '',
                source text NOT NULL,
                status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'withdrawn')),
                ip inet,
                user_agent text NOT NULL DEFAULT '',
                requested_at timestamptz NOT NULL DEFAULT now(),
                confirmed_at timestamptz,
                confirm_ip inet,
                confirm_user_agent text NOT NULL DEFAULT '',
                withdrawn_at timestamptz,
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX email_marketing_consents_contact
                ON email_marketing_consents (tenant_id, contact_id);
            CREATE INDEX email_marketing_consents_email
                ON email_marketing_consents (tenant_id, email, purpose);
            {plugin_owned("email_marketing_consents")}
        """)
    )
    return manager
