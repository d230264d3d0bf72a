"""The client portal: a signed link per contact and project showing the shared tasks only.

A link carries a token signed for this workspace and plugin (``ctx.sign``) naming one
access row; revoking the row ends the link at once. The portal shows shared tasks and
shared comments — never internal ones, never rates, never other projects.
"""

from __future__ import annotations

from datetime import timedelta
from gettext import gettext as _
from typing import Any
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.plugins.api import PluginContext, PublicGate, PublicPage, escape, get
from orbit.plugins.builtin.projects import service
from orbit.plugins.builtin.projects.errors import invalid, not_found

PURPOSE = "portal"
LINK_LIFETIME = timedelta(days=180)
STATUS_LABELS = {"todo": "To do", "doing": "In progress", "review": "In review", "done": "Done"}


def _token(ctx: PluginContext, access_id: UUID, project_id: UUID) -> str:
    return ctx.sign({"a": str(access_id), "p": str(project_id)}, PURPOSE, LINK_LIFETIME)


def link(ctx: PluginContext, token: str) -> str:
    """The portal's address for ``token``."""
    return ctx.url(f"/portal/{token}", public=True)


async def grant(ctx: PluginContext, project_id: UUID, contact_id: UUID) -> dict[str, Any]:
    """Give a contact access to a project; the link to send them."""
    await service.get_project(ctx, project_id)
    contact = await ctx.contacts.get(contact_id)
    if contact is None:
        raise invalid("contact_id", _("no such contact in this workspace"))
    access_id = await ctx.db.fetchval(
        """
        INSERT INTO projects_portal_access (tenant_id, id, project_id, contact_id, label)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (tenant_id, project_id, contact_id)
        DO UPDATE SET revoked_at = NULL, label = EXCLUDED.label
        RETURNING id
        """,
        ctx.tenant_id,
        uuid7(),
        project_id,
        contact_id,
        contact.name[:200],
    )
    token = _token(ctx, access_id, project_id)
    return {
        "id": str(access_id),
        "contact_id": str(contact_id),
        "token": token,
        "url": link(ctx, token),
    }


async def revoke(ctx: PluginContext, project_id: UUID, access_id: UUID) -> None:
    """End a contact's access (their link stops working)."""
    status = await ctx.db.execute(
        "UPDATE projects_portal_access SET revoked_at = now() WHERE tenant_id = $1 "
        "AND project_id = $2 AND id = $3 AND revoked_at IS NULL",
        ctx.tenant_id,
        project_id,
        access_id,
    )
    if status.endswith(" 0"):
        raise not_found("portal access", access_id)


async def accesses(ctx: PluginContext, project_id: UUID) -> list[dict[str, Any]]:
    """Who has portal access to a project."""
    rows = await ctx.db.fetch(
        "SELECT id, contact_id, label, created_at FROM projects_portal_access "
        "WHERE tenant_id = $1 AND project_id = $2 AND revoked_at IS NULL ORDER BY created_at",
        ctx.tenant_id,
        project_id,
    )
    return [dict(r) for r in rows]


async def portal_view(ctx: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """What the token's contact may see: the project's name, shared tasks and comments."""
    try:
        access_id, project_id = UUID(str(data["a"])), UUID(str(data["p"]))
    except (KeyError, ValueError):
        raise not_found("portal link", "") from None
    live = await ctx.db.fetchval(
        "SELECT true FROM projects_portal_access WHERE tenant_id = $1 AND id = $2 "
        "AND project_id = $3 AND revoked_at IS NULL",
        ctx.tenant_id,
        access_id,
        project_id,
    )
    if not live:
        raise not_found("portal link", "")
    project = await service.get_project(ctx, project_id)
    tasks = await service.list_tasks(ctx, project_id, shared_only=True, sort="due_date")
    notes = await service.comments(ctx, [t["id"] for t in tasks], shared_only=True)
    by_task: dict[UUID, list[dict[str, Any]]] = {}
    for note in notes:
        by_task.setdefault(note["task_id"], []).append(
            {
                "body": note["body"],
                "author": note["author_name"],
                "at": note["created_at"].isoformat(),
            }
        )
    return {
        "project": {"name": project["name"], "status": project["status"]},
        "tasks": [
            {
                "title": t["title"],
                "status": t["status"],
                "start_date": t["start_date"].isoformat(),
                "due_date": t["due_date"].isoformat(),
                "milestone": t["milestone"],
                "comments": by_task.get(t["id"], []),
            }
            for t in tasks
        ],
    }


def portal_html(view: dict[str, Any]) -> str:
    """The portal page's body."""
    rows = []
    for task in view["tasks"]:
        notes = "".join(f'<li class="comment">{escape(c["body"])}</li>' for c in task["comments"])
        rows.append(
            f'<tr class="portal-task"><td>{escape(task["title"])}'
            f"{' ◆' if task['milestone'] else ''}"
            f"{f'<ul>{notes}</ul>' if notes else ''}</td>"
            f"<td>{escape(_(STATUS_LABELS[task['status']]))}</td>"
            f"<td>{escape(task['due_date'])}</td></tr>"
        )
    body = "".join(rows) or f'<tr><td colspan="3">{escape(_("Nothing shared yet."))}</td></tr>'
    return (
        f"<h1>{escape(view['project']['name'])}</h1>"
        f"<table><thead><tr><th>{escape(_('Task'))}</th><th>{escape(_('Status'))}</th>"
        f"<th>{escape(_('Due'))}</th></tr></thead><tbody>{body}</tbody></table>"
    )


@get("/portal/{token:str}")
async def portal_page(token: str, public: PublicGate) -> PublicPage:
    """The contact's view of their project: shared tasks and comments."""
    async with public.open(token, PURPOSE) as (ctx, data):
        view = await portal_view(ctx, data)
    return PublicPage(view["project"]["name"], portal_html(view))


@get("/portal/{token:str}/tasks")
async def portal_tasks(token: str, public: PublicGate) -> dict[str, Any]:
    """The same as JSON."""
    async with public.open(token, PURPOSE) as (ctx, data):
        return await portal_view(ctx, data)


PUBLIC_ROUTES = (portal_page, portal_tasks)
