"""Projects: from a won deal to a delivered, billed project — Orbit's builtin project tool.

A won deal becomes a project made from a template (once per deal, however often the
event arrives), with tasks and milestones dated in the workspace's working days. Tasks
have assignees, watchers, checklists, subtasks, finish-to-start dependencies with lag,
comments, and show on a kanban board, a list and a Gantt chart. People track time with
a timer or by hand; approved time and reached milestones are billed into a draft invoice
through the Invoices app, each entry on exactly one live invoice line. Chosen contacts
follow their project's shared tasks on a portal link.

Built only on ``orbit.plugins.api``, like any third-party plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orbit.plugins.api import Event, Fragment, Manifest, PluginContext, Setting, escape, hookimpl
from orbit.plugins.builtin.projects import billing, service

if TYPE_CHECKING:
    from uuid import UUID

__version__ = "1.0.0"

README = """\
Turns won deals into projects and projects into invoices.

- **Won deal → project** from your template, tasks dated in working days (your work
  week, your country's public holidays and your own days off).
- **Tasks**: assignees, watchers, checklists, subtasks, dependencies with lag,
  milestones, priorities, comments; a kanban board with WIP limits and swimlanes, a
  list with filters and bulk edit, and a Gantt chart with the critical path.
- **Time**: one timer per person, manual entries, weekly timesheets, approval.
- **Billing** through the Invoices app: time and materials, fixed price per milestone or
  prepaid hours; invoiced time is locked until a credit note frees it.
- **Client portal**: a private link per contact shows the tasks you share, never rates.
"""

MANIFEST = Manifest(
    id="projects",
    name="Projects",
    version=__version__,
    summary="Projects from won deals: tasks, kanban, Gantt, time tracking and billing",
    author="Orbit",
    license="AGPL-3.0-or-later",
    requires_orbit=">=0.1,<0.2",
    scopes=("contacts:read", "deals:read", "users:read"),
    events=("deal.won", "invoicing.credit_note_finalized"),
    slots=("deal.sidebar",),
    settings=(
        Setting(
            name="work_week",
            label="Working days",
            default="mon,tue,wed,thu,fri",
            help="Comma-separated: mon, tue, wed, thu, fri, sat, sun.",
        ),
        Setting(
            name="holiday_country",
            label="Public holidays of",
            default="",
            help="An ISO 3166 country code (GR, RU, CN, PH, US…); empty: none.",
        ),
        Setting(
            name="default_hourly_rate",
            label="Default hourly rate",
            type="number",
            default=0,
            minimum=0,
        ),
        Setting(
            name="default_billing_mode",
            label="Billing of new projects",
            type="choice",
            choices=service.BILLING_MODES,
            default="time_and_materials",
        ),
    ),
    tables=(
        "projects_templates",
        "projects_holidays",
        "projects_projects",
        "projects_tasks",
        "projects_dependencies",
        "projects_comments",
        "projects_rates",
        "projects_time_entries",
        "projects_billing_lines",
        "projects_portal_access",
        "projects_events_seen",
    ),
    migrations="orbit.plugins.builtin.projects.piccolo_app",
    readme=README,
    nav=("Projects", "/"),
)


async def _first_time(ctx: PluginContext, event: Event) -> bool:
    """Record the event; ``False`` when it was applied before (a redelivery)."""
    inserted = await ctx.db.fetchval(
        "INSERT INTO projects_events_seen (tenant_id, event_id, type) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING true",
        ctx.tenant_id,
        event.id,
        event.type,
    )
    return bool(inserted)


@hookimpl
async def orbit_event(ctx: PluginContext, event: Event) -> None:
    """A won deal gets its project; a credit note frees the time of the lines it credits."""
    if event.type == "deal.won":
        # Idempotent on the deal itself (unique key), not only on the event id: two
        # events for one deal (won, reopened, won again) still make one project.
        await service.project_from_won_deal(ctx, event.data)
    elif event.type == "invoicing.credit_note_finalized":
        found = billing.credit_note_lines(event.data)
        if found is not None and await _first_time(ctx, event):
            invoice_id, refs, quantities = found
            await billing.credit(ctx, invoice_id, refs, quantities)


@hookimpl
async def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """A won deal's project, its progress and time, on the deal's page."""
    if slot != "deal.sidebar" or subject_id is None:
        return None
    row = await ctx.db.fetchrow(
        """
        SELECT p.id, p.name, count(t.id) AS tasks, count(t.id) FILTER (WHERE t.status = 'done')
               AS done,
               (SELECT coalesce(sum(e.minutes), 0) FROM projects_time_entries e
                WHERE e.tenant_id = p.tenant_id AND e.project_id = p.id) AS minutes
        FROM projects_projects p
        LEFT JOIN projects_tasks t ON t.tenant_id = p.tenant_id AND t.project_id = p.id
        WHERE p.tenant_id = $1 AND p.deal_id = $2
        GROUP BY p.tenant_id, p.id
        """,
        ctx.tenant_id,
        subject_id,
    )
    if row is None:
        return None
    url = f"/t/{ctx.tenant_slug}/apps/projects/{row['id']}"
    hours = round(row["minutes"] / 60, 2)
    return Fragment(
        "Project",
        f'<p id="deal-project"><a href="{url}">{escape(row["name"])}</a></p>'
        f'<p class="muted">{row["done"]}/{row["tasks"]} tasks done · {hours} h logged · '
        f'<a href="{url}/billing">billing</a></p>',
    )


@hookimpl
def orbit_validate_settings(settings: dict[str, Any]) -> list[str]:
    """The work week and holiday country must be understood."""
    return service.check_settings(settings)


@hookimpl
def orbit_api_routes() -> list[Any]:
    """The JSON API under ``/api/v1/apps/projects/``."""
    from orbit.plugins.builtin.projects.api_routes import routes  # noqa: PLC0415

    return routes()


@hookimpl
def orbit_public_routes() -> list[Any]:
    """The client portal under ``/p/projects/portal/{token}``."""
    from orbit.plugins.builtin.projects.portal import PUBLIC_ROUTES  # noqa: PLC0415

    return list(PUBLIC_ROUTES)


@hookimpl
def orbit_page_routes() -> list[Any]:
    """Pages under ``/t/{slug}/apps/projects/``: projects, board, list, Gantt, time, billing."""
    from orbit.plugins.builtin.projects.pages import ROUTES  # noqa: PLC0415

    return list(ROUTES)
