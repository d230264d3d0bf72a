"""Data portability for one person: everything Orbit keeps about a contact, and erasure.

``export`` answers a subject access request: the contact, their timeline, tasks,
deals, the audit log about them and every enabled plugin's data (``orbit_contact_export``),
as one JSON document. ``erase`` forgets them: the contact and everything hanging off it
(timeline, tasks, deal links, by the foreign keys' cascades), the personal data in
their domain events (webhook bodies are built from those), their audit entries and
their timeline's scrubbed to tombstones, and every enabled plugin's data
(``orbit_contact_erase``) — all in the request's one transaction.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from orbit.platform.audit.log import erase_subject, record
from orbit.platform.crm.service import ContactService, display_name
from orbit.platform.errors import ConflictError, PermissionDeniedError
from orbit.platform.events.outbox import emit
from orbit.tenants.roles import Role, Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.plugins.host import PluginHost
    from orbit.tenants.context import TenantContext

EXPORT_FORMAT = "orbit.contact-export/1"


def _rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {k: json.loads(v) if k in {"data", "changes", "details"} else v for k, v in dict(r).items()}
        for r in rows
    ]


class ContactPortability:
    """Subject access export and erasure of one contact."""

    def __init__(self, db: Database, plugins: PluginHost) -> None:
        self.db = db
        self.plugins = plugins
        self.contacts = ContactService(db)

    async def export(self, ctx: TenantContext, contact_id: UUID) -> dict[str, Any]:
        """Everything about the contact, JSON-ready (visibility applies: 404 if not visible)."""
        contact = await self.contacts.get(ctx, contact_id)  # checks scope and visibility
        args = (ctx.tenant_id, contact_id)
        activities = await self.db.fetch(
            "SELECT id, kind, channel, subject, body, occurred_at, company_id, deal_id, data "
            "FROM activities WHERE tenant_id = $1 AND contact_id = $2 ORDER BY occurred_at",
            *args,
        )
        tasks = await self.db.fetch(
            "SELECT id, title, notes, due_at, done_at, priority, company_id, deal_id "
            "FROM tasks WHERE tenant_id = $1 AND contact_id = $2 ORDER BY due_at",
            *args,
        )
        deals = await self.db.fetch(
            "SELECT d.id, d.title, d.amount, d.currency, d.status, s.name AS stage "
            "FROM deal_contacts dc "
            "JOIN deals d ON d.tenant_id = dc.tenant_id AND d.id = dc.deal_id "
            "JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id "
            "WHERE dc.tenant_id = $1 AND dc.contact_id = $2 ORDER BY d.created_at",
            *args,
        )
        audit = await self.db.fetch(
            "SELECT occurred_at, action, actor_display, changes, details FROM audit_entries "
            "WHERE tenant_id = $1 AND record_type = 'contact' AND record_id = $2 "
            "ORDER BY occurred_at",
            *args,
        )
        tenant_plugins = await self.plugins.for_tenant(ctx.tenant_id, ctx.tenant_slug)
        plugin_data = {
            answer.plugin_id: answer.value
            for answer in await tenant_plugins.call("orbit_contact_export", contact_id=contact_id)
        }
        await record(
            self.db,
            ctx,
            "export",
            "contact",
            contact_id,
            label=display_name(contact),
            owner_id=contact.owner_id,
            details={"kind": "subject_access"},
        )
        return {
            "format": EXPORT_FORMAT,
            "exported_at": datetime.now(UTC),
            "workspace": ctx.tenant_slug,
            "contact": msgspec.to_builtins(contact),
            "activities": _rows(activities),
            "tasks": _rows(tasks),
            "deals": _rows(deals),
            "audit": _rows(audit),
            "plugins": plugin_data,
        }

    async def erase(self, ctx: TenantContext, contact_id: UUID) -> dict[str, int]:
        """Forget the contact completely; owners and admins only. What was removed, counted."""
        ctx.require(Scope.CONTACTS_WRITE)
        if ctx.role not in {Role.OWNER, Role.ADMIN}:
            raise PermissionDeniedError(
                "erasing a person needs an owner or admin (deleting a contact does not)"
            )
        await self.contacts.get(ctx, contact_id)  # 404 unless visible in this workspace
        args = (ctx.tenant_id, contact_id)
        linked = {
            kind: [
                row["id"]
                for row in await self.db.fetch(
                    f"SELECT id FROM {table} WHERE tenant_id = $1 AND contact_id = $2",
                    *args,
                )
            ]
            for kind, table in (("activity", "activities"), ("task", "tasks"))
        }
        tenant_plugins = await self.plugins.for_tenant(ctx.tenant_id, ctx.tenant_slug)
        erasing = tenant_plugins.implementers("orbit_contact_erase")
        for plugin_id in erasing:
            ok, _ = await tenant_plugins.call_one(
                "orbit_contact_erase", plugin_id, contact_id=contact_id
            )
            if not ok:  # all or nothing: the request rolls back
                raise ConflictError(
                    f"the app {plugin_id!r} could not erase its data about this contact, so "
                    "nothing was erased; try again, or uninstall the app deleting its data"
                )
        # The cascades take the timeline, tasks and deal links with the contact.
        await self.db.execute("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2", *args)
        events = await self.db.fetchval(
            """
            WITH scrubbed AS (
                UPDATE outbox_events
                SET data = jsonb_build_object('id', data->>'id', 'erased', true)
                WHERE tenant_id = $1
                  AND (data->>'id' = $2 OR data->>'contact_id' = $2)
                RETURNING 1
            )
            SELECT count(*) FROM scrubbed
            """,
            ctx.tenant_id,
            str(contact_id),
        )
        entries = 0
        for kind, ids in linked.items():
            for record_id in ids:
                entries += await erase_subject(self.db, ctx, kind, record_id)
        entries += await erase_subject(self.db, ctx, "contact", contact_id)
        await emit(self.db, ctx.tenant_id, "contact.deleted", {"id": str(contact_id)})
        return {
            "activities": len(linked["activity"]),
            "tasks": len(linked["task"]),
            "events_scrubbed": int(events),
            "audit_entries_scrubbed": entries,
            "plugins": len(erasing),
        }
