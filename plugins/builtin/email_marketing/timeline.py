"""A contact's emails on their timeline, in their data export, and gone when they are erased."""

from __future__ import annotations

from gettext import gettext as _
from typing import TYPE_CHECKING, Any

from orbit.plugins.api import Fragment, TimelineEntry, escape
from orbit.plugins.builtin.email_marketing import suppression

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.api import PluginContext

LIMIT = 50
_TITLES = {
    "open": _("Opened “{campaign}”"),
    "click": _("Clicked a link in “{campaign}”"),
    "unsubscribe": _("Unsubscribed from “{campaign}”"),
    "bounce": _("“{campaign}” bounced"),
    "complaint": _("Marked “{campaign}” as spam"),
}


async def entries(ctx: PluginContext, contact_id: UUID) -> list[TimelineEntry]:
    """Sent campaign emails and every open, click, unsubscribe, bounce and complaint."""
    rows = await ctx.db.fetch(
        """
        (SELECT 'sent' AS kind, m.sent_at AS at, c.name AS campaign, false AS machine,
                '' AS reason, NULL::text AS url
         FROM email_marketing_messages m
         JOIN email_marketing_campaigns c ON c.tenant_id = m.tenant_id AND c.id = m.campaign_id
         WHERE m.tenant_id = $1 AND m.contact_id = $2 AND m.sent_at IS NOT NULL
         ORDER BY m.sent_at DESC LIMIT $3)
        UNION ALL
        (SELECT e.kind, e.occurred_at, coalesce(c.name, ''), e.machine, e.reason, e.url
         FROM email_marketing_events e
         LEFT JOIN email_marketing_campaigns c ON c.tenant_id = e.tenant_id AND c.id = e.campaign_id
         WHERE e.tenant_id = $1 AND e.contact_id = $2
         ORDER BY e.occurred_at DESC LIMIT $3)
        ORDER BY at DESC LIMIT $3
        """,
        ctx.tenant_id,
        contact_id,
        LIMIT,
    )
    found: list[TimelineEntry] = []
    for row in rows:
        if row["kind"] == "sent":
            title = _("Sent campaign “{campaign}”").format(campaign=row["campaign"])
        else:
            title = _TITLES[row["kind"]].format(campaign=row["campaign"])
        body = []
        if row["machine"]:
            body.append(
                _("by a machine ({reason}), not counted as a person").format(reason=row["reason"])
            )
        elif row["kind"] in {"bounce", "complaint"} and row["reason"]:
            body.append(row["reason"])
        if row["url"]:
            body.append(row["url"])
        found.append(TimelineEntry(occurred_at=row["at"], title=title, body=" — ".join(body)))
    return found


async def export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
    """Everything kept about the contact, JSON-serialisable."""
    lists = await ctx.db.fetch(
        "SELECT l.name, m.added_at FROM email_marketing_list_members m "
        "JOIN email_marketing_lists l ON l.tenant_id = m.tenant_id AND l.id = m.list_id "
        "WHERE m.tenant_id = $1 AND m.contact_id = $2 ORDER BY m.added_at",
        ctx.tenant_id,
        contact_id,
    )
    messages = await ctx.db.fetch(
        "SELECT m.id, c.name AS campaign, m.email, m.status, m.sent_at, m.opened_at, "
        "m.clicked_at, m.unsubscribed_at FROM email_marketing_messages m "
        "JOIN email_marketing_campaigns c ON c.tenant_id = m.tenant_id AND c.id = m.campaign_id "
        "WHERE m.tenant_id = $1 AND m.contact_id = $2 ORDER BY m.created_at",
        ctx.tenant_id,
        contact_id,
    )
    events = await ctx.db.fetch(
        "SELECT kind, machine, reason, url, host(ip) AS ip, user_agent, occurred_at "
        "FROM email_marketing_events WHERE tenant_id = $1 AND contact_id = $2 "
        "ORDER BY occurred_at",
        ctx.tenant_id,
        contact_id,
    )
    if not (lists or messages or events):
        return None

    def plain(rows: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if k == "id" else v)
                for k, v in dict(row).items()
            }
            for row in rows
        ]

    return {"lists": plain(lists), "messages": plain(messages), "events": plain(events)}


async def erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Delete the contact's memberships and events; keep messages as anonymous counts."""
    await ctx.db.execute(
        "DELETE FROM email_marketing_list_members WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )
    await ctx.db.execute(
        "DELETE FROM email_marketing_events WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )
    # The campaign's counters stay right; the address and values go.
    await ctx.db.execute(
        "UPDATE email_marketing_messages SET contact_id = NULL, "
        "email = 'erased-' || id::text || '@invalid', domain = 'invalid', merge_values = '{}' "
        "WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )


async def panel(ctx: PluginContext, contact_id: UUID) -> Fragment | None:
    """A contact's email standing: lists, emails sent, a person's opens and clicks, blocks."""
    row = await ctx.db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
               count(*) FILTER (WHERE opened_at IS NOT NULL) AS opened,
               count(*) FILTER (WHERE clicked_at IS NOT NULL) AS clicked,
               max(sent_at) AS last_sent,
               (array_agg(email ORDER BY created_at DESC))[1] AS email
        FROM email_marketing_messages WHERE tenant_id = $1 AND contact_id = $2
        """,
        ctx.tenant_id,
        contact_id,
    )
    lists = await ctx.db.fetch(
        "SELECT l.name FROM email_marketing_list_members m JOIN email_marketing_lists l "
        "ON l.tenant_id = m.tenant_id AND l.id = m.list_id "
        "WHERE m.tenant_id = $1 AND m.contact_id = $2 ORDER BY lower(l.name)",
        ctx.tenant_id,
        contact_id,
    )
    if row is None or (not row["sent"] and not lists):
        return None
    contact = await ctx.contacts.get(contact_id)
    address = (contact.email if contact else None) or row["email"]
    blocked = await suppression.for_email(ctx, address) if address else []
    items = [
        _("Lists: {names}").format(names=", ".join(r["name"] for r in lists) or "—"),
        _("Emails sent: {sent}, opened by them: {opened}, clicked: {clicked}").format(
            sent=row["sent"], opened=row["opened"], clicked=row["clicked"]
        ),
    ]
    if blocked:
        reasons = ", ".join(sorted({entry["reason"] for entry in blocked}))
        items.append(_("Not emailed: {reasons}").format(reasons=reasons))
    html = "".join(f"<li>{escape(item)}</li>" for item in items)
    return Fragment(_("Email marketing"), f'<ul id="em-contact">{html}</ul>')
