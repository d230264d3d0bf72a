"""Email marketing's tables: lists, segments, templates, campaigns, messages, events.

``email_marketing_messages`` is both the campaign's frozen recipient snapshot and its
send queue: one row per recipient, claimed by the send job with ``FOR UPDATE SKIP
LOCKED``. ``email_marketing_events`` holds every open, click, unsubscribe, bounce and
complaint, each marked human or machine.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import plugin_owned, sql

ID = "2026-11-26T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "email_marketing lists, segments, templates, campaigns, messages, events"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="email_marketing", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE TABLE email_marketing_lists (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL,
                description text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX email_marketing_lists_name
                ON email_marketing_lists (tenant_id, lower(name));
            {plugin_owned("email_marketing_lists")}

            CREATE TABLE email_marketing_list_members (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                list_id uuid NOT NULL,
                contact_id uuid NOT NULL,
                added_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, list_id, contact_id),
                FOREIGN KEY (tenant_id, list_id)
                    REFERENCES email_marketing_lists (tenant_id, id) ON DELETE CASCADE
            );
            CREATE INDEX email_marketing_list_members_contact
                ON email_marketing_list_members (tenant_id, contact_id);
            {plugin_owned("email_marketing_list_members")}

            CREATE TABLE email_marketing_segments (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL,
                filters jsonb NOT NULL DEFAULT '[]',
                behaviour jsonb NOT NULL DEFAULT '[]',
                member_count integer,
                counted_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE UNIQUE INDEX email_marketing_segments_name
                ON email_marketing_segments (tenant_id, lower(name));
            {plugin_owned("email_marketing_segments")}

            CREATE TABLE email_marketing_templates (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL,
                subject text NOT NULL,
                preheader text NOT NULL DEFAULT '',
                blocks jsonb NOT NULL DEFAULT '[]',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            {plugin_owned("email_marketing_templates")}

            CREATE TABLE email_marketing_campaigns (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                name text NOT NULL,
                template_id uuid NOT NULL,
                audience_kind text NOT NULL CHECK (audience_kind IN ('list', 'segment')),
                audience_id uuid NOT NULL,
                from_name text NOT NULL DEFAULT '',
                from_email text NOT NULL,
                reply_to text,
                status text NOT NULL DEFAULT 'draft' CHECK (status IN
                    ('draft', 'scheduled', 'sending', 'paused', 'cancelled', 'sent')),
                paused_reason text,
                scheduled_at timestamptz,
                started_at timestamptz,
                finished_at timestamptz,
                recipients integer NOT NULL DEFAULT 0,
                suppressed integer NOT NULL DEFAULT 0,
                sent integer NOT NULL DEFAULT 0,
                deferred integer NOT NULL DEFAULT 0,
                failed integer NOT NULL DEFAULT 0,
                bounced integer NOT NULL DEFAULT 0,
                complained integer NOT NULL DEFAULT 0,
                opened_human integer NOT NULL DEFAULT 0,
                opened_machine integer NOT NULL DEFAULT 0,
                clicked_human integer NOT NULL DEFAULT 0,
                clicked_machine integer NOT NULL DEFAULT 0,
                unsubscribed integer NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, template_id)
                    REFERENCES email_marketing_templates (tenant_id, id)
            );
            CREATE INDEX email_marketing_campaigns_status
                ON email_marketing_campaigns (tenant_id, status, scheduled_at);
            {plugin_owned("email_marketing_campaigns")}

            CREATE TABLE email_marketing_messages (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                campaign_id uuid NOT NULL,
                contact_id uuid,
                email text NOT NULL,
                domain text NOT NULL,
                status text NOT NULL DEFAULT 'queued' CHECK (status IN
                    ('queued', 'sent', 'deferred', 'failed', 'bounced', 'suppressed',
                     'cancelled')),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                sent_at timestamptz,
                error text,
                opened_at timestamptz,
                clicked_at timestamptz,
                unsubscribed_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id),
                FOREIGN KEY (tenant_id, campaign_id)
                    REFERENCES email_marketing_campaigns (tenant_id, id) ON DELETE CASCADE
            );
            CREATE UNIQUE INDEX email_marketing_messages_recipient
                ON email_marketing_messages (tenant_id, campaign_id, email);
            CREATE INDEX email_marketing_messages_due
                ON email_marketing_messages (tenant_id, next_attempt_at)
                WHERE status IN ('queued', 'deferred');
            CREATE INDEX email_marketing_messages_contact
                ON email_marketing_messages (tenant_id, contact_id);
            {plugin_owned("email_marketing_messages")}

            CREATE TABLE email_marketing_events (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL,
                message_id uuid,
                campaign_id uuid,
                contact_id uuid,
                kind text NOT NULL CHECK (kind IN
                    ('sent', 'open', 'click', 'unsubscribe', 'bounce', 'complaint')),
                machine boolean NOT NULL DEFAULT false,
                reason text NOT NULL DEFAULT '',
                url text,
                ip inet,
                user_agent text,
                occurred_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CREATE INDEX email_marketing_events_contact
                ON email_marketing_events (tenant_id, contact_id, occurred_at);
            CREATE INDEX email_marketing_events_message
                ON email_marketing_events (tenant_id, message_id, kind);
            CREATE INDEX email_marketing_events_campaign
                ON email_marketing_events (tenant_id, campaign_id, kind);
            {plugin_owned("email_marketing_events")}

            CREATE TABLE email_marketing_throttle (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                bucket text NOT NULL,
                tokens double precision NOT NULL,
                refilled_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, bucket)
            );
            {plugin_owned("email_marketing_throttle")}
        """)
    )
    return manager
