"""Email marketing, a builtin Orbit plugin built only on ``orbit.plugins.api``.

Lists and segments of contacts, block templates, campaigns sent through a per-workspace
queue with throttling, opens and clicks told apart between people and machines, and
one-click unsubscribe. Its data lives in its own tables (``tables`` below); bounces,
complaints, consent and the suppression list are its deliverability half
(``bounces``, ``consent``, ``suppression``, ``inbound``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from orbit.plugins.api import (
    Event,
    Fragment,
    Manifest,
    PluginContext,
    ScheduledJob,
    Setting,
    TimelineEntry,
    Widget,
    hookimpl,
)
from orbit.plugins.builtin.email_marketing import (
    api,
    audiences,
    consent,
    inbound,
    pages,
    public_routes,
    sending,
    sequence_pages,
    sequence_routes,
    sequences,
    suppression,
    timeline,
    transport,
)

__version__ = "0.1.0"

README = """\
Send newsletters and campaigns to your contacts, from Orbit.

- **Lists** you fill by hand and **segments** that follow your contacts' fields, tags,
  custom fields and what they did with your emails.
- **Templates** built from blocks, personalised with the contact's fields, with a text
  part written for you and a preview on a real contact.
- **Campaigns** sent at your pace (per workspace and per receiving domain), paused
  automatically when bounces or complaints spike, with live counters.
- **Opens and clicks** split between people and machines (privacy proxies, link scanners).
- **One-click unsubscribe** in every email (RFC 8058): a scanner cannot unsubscribe anyone.
- **Sequences**: follow-ups that start when someone joins a list or segment, confirms an
  opt-in, reaches a deal stage or gets a field value, then wait, check (a person's click
  or open, fields, deal stage) and email, tag, create a task for the owner or call a
  webhook — outside quiet hours in the contact's time zone, leaving on unsubscribe,
  reply or a won deal.
"""

MANIFEST = Manifest(
    id="email_marketing",
    name="Email marketing",
    version=__version__,
    summary="Lists, segments, templates and campaigns with human/machine tracking",
    author="Orbit",
    license="AGPL-3.0-or-later",
    requires_orbit=">=0.1",
    scopes=("contacts:read", "contacts:write", "deals:read", "tasks:write", "mail:send"),
    slots=("dashboard", "contact.sidebar"),
    events=(
        "contact.deleted",
        "contact.merged",
        "contact.created",
        "contact.updated",
        "deal.created",
        "deal.stage_changed",
        "deal.won",
        sequences.LIST_JOINED,
        sequences.OPT_IN_CONFIRMED,
        sequences.ADDRESS_SUPPRESSED,
    ),
    emits=(sequences.LIST_JOINED, sequences.OPT_IN_CONFIRMED, sequences.ADDRESS_SUPPRESSED),
    settings=(
        Setting(
            name="smtp_url",
            label="SMTP server",
            default="smtp://127.0.0.1:25",
            help="smtp://host:port (STARTTLS when offered) or smtps://host:port; "
            "user name in the URL, password below.",
        ),
        Setting(name="smtp_password", label="SMTP password", type="secret"),
        Setting(name="from_email", label="Default sender address", default=""),
        Setting(name="from_name", label="Default sender name", default=""),
        Setting(
            name="unsubscribe_mailto",
            label="Unsubscribe mailbox",
            default="",
            help="Address for List-Unsubscribe mailto (default: the sender's address).",
        ),
        Setting(
            name="rate_per_second",
            label="Messages per second",
            type="integer",
            default=50,
            minimum=1,
            maximum=5000,
            help="The workspace's sending pace.",
        ),
        Setting(
            name="domain_rate_per_second",
            label="Messages per second per receiving domain",
            type="integer",
            default=20,
            minimum=1,
            maximum=5000,
        ),
        Setting(
            name="bounce_domain",
            label="Bounce domain",
            default="",
            help="Domain of the per-message return path (b+…@this domain), whose MX reaches "
            "Orbit's bounce receiver or the bounce mailbox (default: the sender's domain).",
        ),
        Setting(
            name="soft_bounce_limit",
            label="Soft bounces before suppression",
            type="integer",
            default=3,
            minimum=1,
            maximum=100,
            help="Soft or policy bounces of different messages within the window below.",
        ),
        Setting(
            name="soft_bounce_days",
            label="Soft bounce window (days)",
            type="integer",
            default=14,
            minimum=1,
            maximum=365,
        ),
        Setting(
            name="bounce_mailbox_url",
            label="Bounce mailbox (IMAP)",
            default="",
            help="imaps://user@host/INBOX (or imap://): read every minute for bounces and "
            "complaints, which are then deleted. Empty: no mailbox.",
        ),
        Setting(name="bounce_mailbox_password", label="Bounce mailbox password", type="secret"),
        Setting(
            name="time_zone",
            label="Workspace time zone",
            default="UTC",
            help="IANA name (Europe/Athens): sequences' quiet hours and 'wait until' times "
            "for contacts without their own.",
        ),
        Setting(
            name="time_zone_field",
            label="Contact time zone field",
            default="time_zone",
            help="The custom field holding a contact's IANA time zone.",
        ),
        Setting(
            name="sequence_webhook_secret",
            label="Sequence webhook secret",
            type="secret",
            help="Signs the webhook steps' calls as Orbit's webhooks are signed "
            "(Orbit-Signature: v1=HMAC-SHA256 of '{timestamp}.{body}', Orbit-Timestamp).",
        ),
        Setting(
            name="webhook_secret",
            label="Bounce webhook secret",
            type="secret",
            help="Signs the JSON bounce webhook (X-Orbit-Signature: sha256=HMAC of "
            "'{timestamp}.{body}').",
        ),
    ),
    tables=(
        "email_marketing_lists",
        "email_marketing_list_members",
        "email_marketing_segments",
        "email_marketing_templates",
        "email_marketing_campaigns",
        "email_marketing_messages",
        "email_marketing_events",
        "email_marketing_throttle",
        "email_marketing_keys",
        "email_marketing_bounces",
        "email_marketing_suppressions",
        "email_marketing_consents",
        "email_marketing_sequences",
        "email_marketing_sequence_steps",
        "email_marketing_enrolments",
        "email_marketing_sequence_runs",
    ),
    migrations="orbit.plugins.builtin.email_marketing.piccolo_app",
    hookspecs="orbit.plugins.builtin.email_marketing.hookspecs",
    nav=("Email marketing", "/"),
    readme=README,
)


# --- hooks ----------------------------------------------------------------------------
# Each hook is defined once here; the modules below do the work.


@hookimpl
def orbit_api_routes() -> list[Any]:
    """The REST API: lists, segments, templates, campaigns, sequences, suppressions, imports."""
    return [
        *api.routes(),
        *sequence_routes.routes(),
        *suppression.API_ROUTES,
        *consent.API_ROUTES,
    ]


@hookimpl
async def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """On a contact's page: their lists, campaign emails, a person's opens and clicks."""
    if slot != "contact.sidebar" or subject_id is None:
        return None
    return await timeline.panel(ctx, subject_id)


@hookimpl
async def orbit_dashboard_widgets(ctx: PluginContext) -> list[Widget] | None:
    """The latest campaigns' reach, people apart from machines."""
    widget = await pages.dashboard(ctx)
    return [widget] if widget else None


@hookimpl
def orbit_page_routes() -> list[Any]:
    """Campaigns, lists, segments, templates, sequences and deliverability in Orbit's layout."""
    return [*pages.routes(), *sequence_pages.routes(), *suppression.PAGE_ROUTES]


@hookimpl
def orbit_public_routes() -> list[Any]:
    """Open pixel, click redirects, unsubscribe, preference centre, opt-in, bounce webhooks."""
    return [*public_routes.routes(), *consent.PUBLIC_ROUTES, *inbound.PUBLIC_ROUTES]


@hookimpl
def orbit_validate_settings(settings: dict[str, Any]) -> list[str]:
    """The SMTP server must be an smtp(s) URL; the time zone a real one (quiet hours)."""
    return [*transport.settings_problems(settings), *sequences.settings_problems(settings)]


async def _send_job(ctx: PluginContext) -> None:
    await sending.send_due(ctx)
    await audiences.recount_stale(ctx)


async def _sequence_job(ctx: PluginContext) -> None:
    await sequences.run_due(ctx)


@hookimpl
def orbit_scheduled_jobs() -> list[ScheduledJob]:
    """The send job (due campaigns at the workspace's pace), the sequence job; bounce intake."""
    return [
        ScheduledJob(name="send", every=timedelta(seconds=1), run=_send_job),
        ScheduledJob(name="sequences", every=timedelta(seconds=30), run=_sequence_job),
        *inbound.SCHEDULED_JOBS,
    ]


@hookimpl
async def orbit_event(ctx: PluginContext, event: Event) -> None:
    """Deleted and merged-away contacts leave every list; sequences enrol and let go.

    Idempotent: an event delivered twice changes nothing more.
    """
    if event.type == "contact.deleted":
        await audiences.forget_contacts(ctx, [UUID(str(event.data["id"]))])
    elif event.type == "contact.merged":
        await audiences.forget_contacts(ctx, [UUID(str(i)) for i in event.data["merged_ids"]])
    if event.type in audiences.CHANGES_COUNTS:
        await audiences.counts_changed(ctx)
    await sequences.on_event(ctx, event)


@hookimpl
async def orbit_timeline_entries(
    ctx: PluginContext, subject_type: str, subject_id: UUID
) -> list[TimelineEntry] | None:
    """A contact's campaign emails, what they did with them, and their sequences."""
    if subject_type != "contact":
        return None
    return [*await timeline.entries(ctx, subject_id), *await sequences.timeline(ctx, subject_id)]


@hookimpl
async def orbit_contact_export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
    """The contact's lists, messages, events, consent proof, bounces, suppressions, sequences."""
    sent = await timeline.export(ctx, contact_id)
    proof = await consent.export_contact(ctx, contact_id)
    enrolled = await sequences.export(ctx, contact_id)
    if sent is None and proof is None and not enrolled:
        return None
    return {**(sent or {}), **(proof or {}), **({"sequences": enrolled} if enrolled else {})}


@hookimpl
async def orbit_contact_erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Forget the contact: memberships, messages, events, consent proof, bounce log, enrolments.

    Suppression entries stay: an objection to marketing must still be honoured.
    """
    await sequences.erase(ctx, contact_id)
    await consent.erase_contact(ctx, contact_id)
    await timeline.erase(ctx, contact_id)
