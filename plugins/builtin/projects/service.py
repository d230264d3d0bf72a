"""Projects, tasks, dependencies and comments: the rules, on the plugin's own tables.

Every function takes the plugin's context (one workspace, its transaction) and filters
by ``ctx.tenant_id`` itself; row-level security is the second wall. Writes that race
(a board move, a date drag) carry the version they saw and get a 409 when it moved on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from gettext import gettext as _
from typing import TYPE_CHECKING, Any
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.projects.calendar import WorkCalendar, known_country, parse_work_week
from orbit.plugins.builtin.projects.errors import conflict, invalid, not_found
from orbit.plugins.builtin.projects.scheduling import (
    Link,
    Span,
    critical_path,
    earliest_start,
    find_cycle,
    violations,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from orbit.plugins.api import PluginContext

STATUSES = ("todo", "doing", "review", "done")
BILLING_MODES = ("time_and_materials", "fixed_price", "prepaid")
POSITION_STEP = 1024.0
MAX_LIST = 5000

DEFAULT_TEMPLATE: list[dict[str, Any]] = [
    {"key": "kickoff", "title": "Kickoff", "start": 0, "days": 0, "milestone": True},
    {"key": "discovery", "title": "Discovery", "days": 3, "after": ["kickoff"], "hours": 12},
    {"key": "build", "title": "Build", "days": 10, "after": ["discovery"], "hours": 60},
    {"key": "review", "title": "Review with the client", "days": 2, "after": ["build"], "hours": 6},
    {
        "key": "delivery",
        "title": "Delivery",
        "days": 0,
        "milestone": True,
        "after": ["review"],
        "share": "1",
    },
]
"""Tasks of a project made from a won deal when the workspace has no template of its own.

``start`` and ``days`` are working days (``days`` 0: a milestone); ``after`` lists
finish-to-start predecessors by ``key`` (``lag`` working days between); ``hours`` is the
estimate; ``share`` is the milestone's part of the budget in fixed-price projects.
"""


# --- the workspace's calendar ---------------------------------------------------------


async def work_calendar(ctx: PluginContext) -> WorkCalendar:
    """The workspace's working days: its work week, country holidays and own days off."""
    try:
        week = parse_work_week(str(ctx.settings.get("work_week") or "mon,tue,wed,thu,fri"))
    except ValueError:
        week = frozenset(range(5))
    rows = await ctx.db.fetch(
        "SELECT day FROM projects_holidays WHERE tenant_id = $1", ctx.tenant_id
    )
    return WorkCalendar(
        week, str(ctx.settings.get("holiday_country") or ""), [r["day"] for r in rows]
    )


def check_settings(settings: dict[str, Any]) -> list[str]:
    """Problems with the work week or holiday country (for orbit_validate_settings)."""
    problems = []
    try:
        parse_work_week(str(settings.get("work_week") or "mon,tue,wed,thu,fri"))
    except ValueError as exc:
        problems.append(str(exc))
    country = str(settings.get("holiday_country") or "")
    if not known_country(country):
        problems.append(_("holiday country: %s is not a known ISO 3166 country code") % country)
    return problems


# --- projects -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewProject:
    """What a project starts with."""

    name: str
    start_date: date
    currency: str = "USD"
    hourly_rate: Decimal = Decimal(0)
    budget: Decimal = Decimal(0)
    billing_mode: str = "time_and_materials"
    prepaid_hours: Decimal = Decimal(0)
    deal_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    template_id: UUID | None = None


def check_project(new: NewProject) -> None:
    """A 422 naming the first bad field of a new project."""
    if not new.name.strip() or len(new.name) > 200:  # noqa: PLR2004 - the column's limit
        raise invalid("name", _("must be 1 to 200 characters"))
    if len(new.currency) != 3 or not new.currency.isalpha() or not new.currency.isupper():  # noqa: PLR2004
        raise invalid("currency", _("must be an ISO 4217 code such as EUR"))
    if new.billing_mode not in BILLING_MODES:
        raise invalid("billing_mode", _("must be one of %s") % ", ".join(BILLING_MODES))
    for name in ("hourly_rate", "budget", "prepaid_hours"):
        value: Decimal = getattr(new, name)
        if not value.is_finite() or value < 0 or value != round(value, 2) or value >= 10**12:
            raise invalid(name, _("must be a non-negative amount with at most 2 decimals"))


async def template_tasks(ctx: PluginContext, template_id: UUID | None) -> list[dict[str, Any]]:
    """The tasks of ``template_id``, or of the workspace's default template, or Orbit's."""
    if template_id is not None:
        raw = await ctx.db.fetchval(
            "SELECT tasks FROM projects_templates WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            template_id,
        )
        if raw is None:
            raise not_found("template", template_id)
    else:
        raw = await ctx.db.fetchval(
            "SELECT tasks FROM projects_templates WHERE tenant_id = $1 AND is_default",
            ctx.tenant_id,
        )
    if raw is None:
        return DEFAULT_TEMPLATE
    tasks: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else raw
    return tasks


def check_template(tasks: Any) -> list[dict[str, Any]]:  # noqa: C901 - one check per field
    """A template's task list, checked: keys unique, predecessors known, no cycle."""
    if not isinstance(tasks, list) or not tasks or len(tasks) > 500:  # noqa: PLR2004
        raise invalid("tasks", _("a list of 1 to 500 tasks"))
    keys: set[str] = set()
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("key"), str):
            raise invalid(f"tasks[{i}].key", _("is required"))
        if task["key"] in keys:
            raise invalid(f"tasks[{i}].key", _("is used twice"))
        keys.add(task["key"])
        title = task.get("title")
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 300:  # noqa: PLR2004
            raise invalid(f"tasks[{i}].title", _("must be 1 to 300 characters"))
        for field in ("start", "days", "lag"):
            value = task.get(field, 0)
            if not isinstance(value, int) or not 0 <= value <= 1000:  # noqa: PLR2004
                raise invalid(f"tasks[{i}].{field}", _("a whole number of working days, 0 to 1000"))
    for i, task in enumerate(tasks):
        after = task.get("after", [])
        if not isinstance(after, list) or any(a not in keys for a in after):
            raise invalid(f"tasks[{i}].after", _("must list keys of other tasks of the template"))
    cycle = find_cycle(
        Link(_key_id(a), _key_id(t["key"])) for t in tasks for a in t.get("after", [])
    )
    if cycle:
        raise invalid("tasks", _("the dependencies form a cycle"))
    return tasks


def _key_id(key: str) -> UUID:
    import uuid  # noqa: PLC0415 - only templates name tasks by key

    return uuid.uuid5(uuid.NAMESPACE_OID, key)


async def create_project(ctx: PluginContext, new: NewProject) -> tuple[UUID, bool]:
    """The project's id and whether it was created now (a deal's project is made once).

    A won deal's project is keyed on the deal: the unique index makes a second creation
    (a redelivered event, two workers at once) wait for the first and then find it.
    """
    check_project(new)
    project_id = uuid7()
    inserted = await ctx.db.fetchval(
        """
        INSERT INTO projects_projects (tenant_id, id, name, deal_id, template_id, company_id,
            contact_id, start_date, billing_mode, currency, hourly_rate, budget, prepaid_hours)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (tenant_id, deal_id) WHERE deal_id IS NOT NULL DO NOTHING
        RETURNING id
        """,
        ctx.tenant_id,
        project_id,
        new.name.strip(),
        new.deal_id,
        new.template_id,
        new.company_id,
        new.contact_id,
        new.start_date,
        new.billing_mode,
        new.currency,
        new.hourly_rate,
        new.budget,
        new.prepaid_hours,
    )
    if inserted is None:
        existing: UUID = await ctx.db.fetchval(
            "SELECT id FROM projects_projects WHERE tenant_id = $1 AND deal_id = $2",
            ctx.tenant_id,
            new.deal_id,
        )
        return existing, False
    if new.deal_id is not None or new.template_id is not None:
        tasks = await template_tasks(ctx, new.template_id)
        await _instantiate(ctx, project_id, new, tasks)
    return project_id, True


async def _instantiate(
    ctx: PluginContext, project_id: UUID, new: NewProject, tasks: list[dict[str, Any]]
) -> None:
    """Date a template's tasks in working days from the start and write them with their links."""
    calendar = await work_calendar(ctx)
    ids = {t["key"]: uuid7() for t in tasks}
    by_key = {t["key"]: t for t in tasks}
    graph = {t["key"]: set(t.get("after", [])) for t in tasks}
    from graphlib import TopologicalSorter  # noqa: PLC0415

    spans: dict[str, Span] = {}
    for key in TopologicalSorter(graph).static_order():
        task = by_key[key]
        first = calendar.add(new.start_date, int(task.get("start", 0)))
        for before in task.get("after", []):
            allowed = earliest_start(spans[before], int(task.get("lag", 0)), calendar)
            first = max(first, allowed)
        begin, end = calendar.span(first, int(task.get("days", 1)))
        spans[key] = Span(ids[key], begin, end)
    shares = sum(Decimal(str(t.get("share", 0))) for t in tasks if t.get("milestone"))
    for index, task in enumerate(tasks):
        span = spans[task["key"]]
        share = Decimal(str(task.get("share", 0)))
        amount = (new.budget * share / shares).quantize(Decimal("0.01")) if shares else Decimal(0)
        await ctx.db.execute(
            """
            INSERT INTO projects_tasks (tenant_id, id, project_id, title, start_date, due_date,
                estimate_hours, milestone, milestone_amount, position)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            ctx.tenant_id,
            span.id,
            project_id,
            str(task["title"])[:300],
            span.start,
            span.end,
            Decimal(str(task.get("hours", 0))),
            bool(task.get("milestone")),
            amount if task.get("milestone") else Decimal(0),
            (index + 1) * POSITION_STEP,
        )
    for task in tasks:
        for before in task.get("after", []):
            await ctx.db.execute(
                "INSERT INTO projects_dependencies (tenant_id, project_id, predecessor_id, "
                "successor_id, lag_days) VALUES ($1, $2, $3, $4, $5)",
                ctx.tenant_id,
                project_id,
                ids[before],
                ids[task["key"]],
                int(task.get("lag", 0)),
            )


async def project_from_won_deal(ctx: PluginContext, deal: dict[str, Any]) -> tuple[UUID, bool]:
    """The won deal's project, created from the default template the first time."""
    closed = deal.get("closed_at") or deal.get("updated_at")
    start = date.fromisoformat(str(closed)[:10]) if closed else date.today()  # noqa: DTZ011
    calendar = await work_calendar(ctx)
    contacts = deal.get("contact_ids") or []
    amount = Decimal(str(deal.get("amount") or 0))
    currency = str(deal.get("currency") or "USD").upper()
    new = NewProject(
        name=str(deal.get("title") or _("Project"))[:200],
        start_date=calendar.add(start, 1),
        currency=currency if len(currency) == 3 else "USD",  # noqa: PLR2004
        budget=max(amount, Decimal(0)).quantize(Decimal("0.01")),
        hourly_rate=Decimal(str(ctx.settings.get("default_hourly_rate") or 0)).quantize(
            Decimal("0.01")
        ),
        billing_mode=str(ctx.settings.get("default_billing_mode") or "time_and_materials"),
        deal_id=UUID(str(deal["id"])),
        company_id=UUID(str(deal["company_id"])) if deal.get("company_id") else None,
        contact_id=UUID(str(contacts[0])) if contacts else None,
    )
    return await create_project(ctx, new)


async def get_project(ctx: PluginContext, project_id: UUID) -> dict[str, Any]:
    """One project as a dict, or a 404."""
    row = await ctx.db.fetchrow(
        "SELECT * FROM projects_projects WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        project_id,
    )
    if row is None:
        raise not_found("project", project_id)
    project = dict(row)
    project["wip_limits"] = _json(project["wip_limits"])
    return project


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def list_projects(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's projects, newest first, with task counts."""
    rows = await ctx.db.fetch(
        """
        SELECT p.id, p.name, p.status, p.start_date, p.billing_mode, p.currency, p.deal_id,
               count(t.id) AS tasks, count(t.id) FILTER (WHERE t.status = 'done') AS done
        FROM projects_projects p
        LEFT JOIN projects_tasks t ON t.tenant_id = p.tenant_id AND t.project_id = p.id
        WHERE p.tenant_id = $1
        GROUP BY p.tenant_id, p.id ORDER BY p.created_at DESC LIMIT 500
        """,
        ctx.tenant_id,
    )
    return [dict(r) for r in rows]


async def update_project(ctx: PluginContext, project_id: UUID, changes: dict[str, Any]) -> None:
    """Change a project's settings (name, status, rates, WIP limits, dependency rule)."""
    current = await get_project(ctx, project_id)
    merged = NewProject(
        name=changes.get("name", current["name"]),
        start_date=changes.get("start_date", current["start_date"]),
        currency=changes.get("currency", current["currency"]),
        hourly_rate=Decimal(str(changes.get("hourly_rate", current["hourly_rate"]))),
        budget=Decimal(str(changes.get("budget", current["budget"]))),
        billing_mode=changes.get("billing_mode", current["billing_mode"]),
        prepaid_hours=Decimal(str(changes.get("prepaid_hours", current["prepaid_hours"]))),
    )
    check_project(merged)
    limits = changes.get("wip_limits", current["wip_limits"])
    if not isinstance(limits, dict) or any(
        k not in STATUSES or not isinstance(v, int) or v < 0 for k, v in limits.items()
    ):
        raise invalid("wip_limits", _("a limit (0 or more) per status: todo, doing, review, done"))
    status = changes.get("status", current["status"])
    if status not in ("active", "on_hold", "done", "archived"):
        raise invalid("status", _("must be active, on_hold, done or archived"))
    await ctx.db.execute(
        """
        UPDATE projects_projects SET name = $3, start_date = $4, currency = $5, hourly_rate = $6,
            budget = $7, billing_mode = $8, prepaid_hours = $9, wip_limits = $10::jsonb,
            status = $11, enforce_dependencies = $12, auto_shift = $13, updated_at = now()
        WHERE tenant_id = $1 AND id = $2
        """,
        ctx.tenant_id,
        project_id,
        merged.name.strip(),
        merged.start_date,
        merged.currency,
        merged.hourly_rate,
        merged.budget,
        merged.billing_mode,
        merged.prepaid_hours,
        json.dumps(limits),
        status,
        bool(changes.get("enforce_dependencies", current["enforce_dependencies"])),
        bool(changes.get("auto_shift", current["auto_shift"])),
    )


# --- tasks ----------------------------------------------------------------------------

TASK_COLUMNS = (
    "id, project_id, parent_id, title, description, status, lane, priority, start_date, "
    "due_date, estimate_hours, milestone, milestone_amount, shared, assignees, watchers, "
    "checklist, position, version, completed_at, created_at, updated_at"
)


def task_out(row: Any) -> dict[str, Any]:
    """A task row as JSON-ready values."""
    task = dict(row)
    task["checklist"] = _json(task["checklist"])
    task["assignees"] = list(task["assignees"])
    task["watchers"] = list(task["watchers"])
    return task


async def get_task(ctx: PluginContext, task_id: UUID) -> dict[str, Any]:
    """One task, or a 404."""
    row = await ctx.db.fetchrow(
        f"SELECT {TASK_COLUMNS} FROM projects_tasks WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        task_id,
    )
    if row is None:
        raise not_found("task", task_id)
    return task_out(row)


def _uuids(field: str, values: Any) -> list[UUID]:
    if not isinstance(values, list) or len(values) > 50:  # noqa: PLR2004
        raise invalid(field, _("a list of at most 50 user ids"))
    try:
        return list(dict.fromkeys(UUID(str(v)) for v in values))
    except ValueError:
        raise invalid(field, _("a list of user ids")) from None


def _checklist(values: Any) -> str:
    if not isinstance(values, list) or len(values) > 200:  # noqa: PLR2004
        raise invalid("checklist", _("a list of at most 200 items"))
    items = []
    for i, item in enumerate(values):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise invalid(f"checklist[{i}].text", _("is required"))
        if not 1 <= len(item["text"].strip()) <= 500:  # noqa: PLR2004
            raise invalid(f"checklist[{i}].text", _("must be 1 to 500 characters"))
        items.append({"text": item["text"].strip(), "done": bool(item.get("done"))})
    return json.dumps(items)


def _date(field: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise invalid(field, _("must be a date (YYYY-MM-DD)")) from None


def _task_fields(  # noqa: C901, PLR0912 - one check per field
    fields: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    """Checked column values for a new task or a change (only the fields given)."""
    out: dict[str, Any] = {}
    if "title" in fields:
        title = fields["title"]
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 300:  # noqa: PLR2004
            raise invalid("title", _("must be 1 to 300 characters"))
        out["title"] = title.strip()
    if "description" in fields:
        if not isinstance(fields["description"], str) or len(fields["description"]) > 20000:  # noqa: PLR2004
            raise invalid("description", _("text of at most 20,000 characters"))
        out["description"] = fields["description"]
    if "status" in fields:
        if fields["status"] not in STATUSES:
            raise invalid("status", _("must be one of %s") % ", ".join(STATUSES))
        out["status"] = fields["status"]
    if "lane" in fields:
        if not isinstance(fields["lane"], str) or len(fields["lane"]) > 100:  # noqa: PLR2004
            raise invalid("lane", _("text of at most 100 characters"))
        out["lane"] = fields["lane"].strip()
    if "priority" in fields:
        if fields["priority"] not in (0, 1, 2, 3) or isinstance(fields["priority"], bool):
            raise invalid("priority", _("0 (urgent) to 3 (low)"))
        out["priority"] = fields["priority"]
    for name in ("start_date", "due_date"):
        if name in fields:
            out[name] = _date(name, fields[name])
    if "estimate_hours" in fields or "milestone_amount" in fields:
        for name in ("estimate_hours", "milestone_amount"):
            if name in fields:
                try:
                    value = Decimal(str(fields[name]))
                except ArithmeticError:
                    raise invalid(name, _("must be a number")) from None
                if not value.is_finite() or value < 0 or value != round(value, 2) or value >= 10**9:
                    raise invalid(name, _("a non-negative number with at most 2 decimals"))
                out[name] = value
    for name in ("milestone", "shared"):
        if name in fields:
            if not isinstance(fields[name], bool):
                raise invalid(name, _("must be true or false"))
            out[name] = fields[name]
    for name in ("assignees", "watchers"):
        if name in fields:
            out[name] = _uuids(name, fields[name])
    if "checklist" in fields:
        out["checklist"] = _checklist(fields["checklist"])
    start = out.get("start_date", current["start_date"] if current else None)
    due = out.get("due_date", current["due_date"] if current else None)
    if start is not None and due is not None and due < start:
        raise invalid("due_date", _("must not be before the start date"))
    return out


async def create_task(ctx: PluginContext, project_id: UUID, fields: dict[str, Any]) -> UUID:
    """A new task at the end of its column; dates default to the project's start."""
    project = await get_project(ctx, project_id)
    if "title" not in fields:
        raise invalid("title", _("is required"))
    values = _task_fields(fields, None)
    parent = fields.get("parent_id")
    if parent is not None:
        parent_task = await get_task(ctx, _uuid("parent_id", parent))
        if parent_task["project_id"] != project_id:
            raise invalid("parent_id", _("must be a task of the same project"))
        values["parent_id"] = parent_task["id"]
    values.setdefault("start_date", project["start_date"])
    values.setdefault("due_date", max(values["start_date"], project["start_date"]))
    if values["due_date"] < values["start_date"]:
        raise invalid("due_date", _("must not be before the start date"))
    status = values.setdefault("status", "todo")
    values["position"] = await ctx.db.fetchval(
        "SELECT coalesce(max(position), 0) + $4 FROM projects_tasks "
        "WHERE tenant_id = $1 AND project_id = $2 AND status = $3",
        ctx.tenant_id,
        project_id,
        status,
        POSITION_STEP,
    )
    await _check_wip(ctx, project, status, None)
    task_id = uuid7()
    columns = ["tenant_id", "id", "project_id", *values]
    args = [ctx.tenant_id, task_id, project_id, *values.values()]
    placeholders = ", ".join(
        f"${i}::jsonb" if name == "checklist" else f"${i}"
        for i, name in enumerate(columns, start=1)
    )
    await ctx.db.execute(
        f"INSERT INTO projects_tasks ({', '.join(columns)}) VALUES ({placeholders})", *args
    )
    return task_id


def _uuid(field: str, value: Any) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise invalid(field, _("must be an id")) from None


async def _check_wip(
    ctx: PluginContext, project: dict[str, Any], status: str, moving: UUID | None
) -> None:
    limit = project["wip_limits"].get(status)
    if not limit:
        return
    count = await ctx.db.fetchval(
        "SELECT count(*) FROM projects_tasks WHERE tenant_id = $1 AND project_id = $2 "
        "AND status = $3 AND id IS DISTINCT FROM $4",
        ctx.tenant_id,
        project["id"],
        status,
        moving,
    )
    if count >= limit:
        raise conflict(
            _("the %(status)s column is at its WIP limit of %(limit)d tasks")
            % {"status": status, "limit": limit}
        )


async def update_task(
    ctx: PluginContext, task_id: UUID, version: int, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change a task if it is still at ``version`` (else a 409); the task as it is now.

    Date changes are checked against the dependencies: with the project's rule on
    "block", a change that starts a successor before its predecessor allows is a 422.
    """
    current = await get_task(ctx, task_id)
    values = _task_fields(fields, current)
    if not values:
        return current
    project = await get_project(ctx, current["project_id"])
    if "status" in values and values["status"] != current["status"]:
        await _check_wip(ctx, project, values["status"], task_id)
    if "start_date" in values or "due_date" in values:
        changed = (values.get("start_date"), values.get("due_date"))
        await _check_schedule(
            ctx, project, {task_id: changed}, successors_follow=project["auto_shift"]
        )
    sets = []
    args: list[Any] = [ctx.tenant_id, task_id, version]
    for name, value in values.items():
        args.append(value)
        cast = "::jsonb" if name == "checklist" else ""
        sets.append(f"{name} = ${len(args)}{cast}")
        if name == "status":
            sets.append(
                f"completed_at = CASE WHEN ${len(args)}::text = 'done' "
                "THEN coalesce(completed_at, now()) END"
            )
    row = await ctx.db.fetchrow(
        f"UPDATE projects_tasks SET {', '.join(sets)}, version = version + 1, updated_at = now() "
        f"WHERE tenant_id = $1 AND id = $2 AND version = $3 RETURNING {TASK_COLUMNS}",
        *args,
    )
    if row is None:
        raise conflict(
            _("task %(id)s was changed by someone else (version %(seen)d is stale): reload it")
            % {"id": task_id, "seen": version}
        )
    return task_out(row)


async def move_task(  # noqa: C901 - neighbours, column and lane each checked
    ctx: PluginContext,
    task_id: UUID,
    version: int,
    status: str,
    *,
    lane: str | None = None,
    after_id: UUID | None = None,
    before_id: UUID | None = None,
) -> dict[str, Any]:
    """Drop a task into a column between two neighbours (fractional position, no renumbering)."""
    if status not in STATUSES:
        raise invalid("status", _("must be one of %s") % ", ".join(STATUSES))
    current = await get_task(ctx, task_id)
    project_id = current["project_id"]
    neighbours = [n for n in (after_id, before_id) if n is not None]
    rows = await ctx.db.fetch(
        "SELECT id, position FROM projects_tasks WHERE tenant_id = $1 AND project_id = $2 "
        "AND id = ANY($3::uuid[])",
        ctx.tenant_id,
        project_id,
        neighbours,
    )
    found = {r["id"]: r["position"] for r in rows}
    for name, ident in (("after_id", after_id), ("before_id", before_id)):
        if ident is not None and ident not in found:
            raise invalid(name, _("must be a task of the same project"))
    low = found.get(after_id) if after_id else None
    high = found.get(before_id) if before_id else None
    if low is not None and high is not None:
        if high <= low:
            raise invalid("before_id", _("must come after after_id"))
        position = (low + high) / 2
        if position in (low, high):  # the gap is exhausted: renumber this column
            position = await _renumber(ctx, project_id, status, after_id)
    elif low is not None:
        position = low + POSITION_STEP
    elif high is not None:
        position = high - POSITION_STEP
    else:
        position = await ctx.db.fetchval(
            "SELECT coalesce(max(position), 0) + $4 FROM projects_tasks "
            "WHERE tenant_id = $1 AND project_id = $2 AND status = $3",
            ctx.tenant_id,
            project_id,
            status,
            POSITION_STEP,
        )
    if status != current["status"]:
        await _check_wip(ctx, await get_project(ctx, project_id), status, task_id)
    if lane is not None and len(lane) > 100:  # noqa: PLR2004
        raise invalid("lane", _("text of at most 100 characters"))
    row = await ctx.db.fetchrow(
        f"""
        UPDATE projects_tasks SET status = $4, position = $5, lane = coalesce($6, lane),
            completed_at = CASE WHEN $4 = 'done' THEN coalesce(completed_at, now()) END,
            version = version + 1, updated_at = now()
        WHERE tenant_id = $1 AND id = $2 AND version = $3 RETURNING {TASK_COLUMNS}
        """,
        ctx.tenant_id,
        task_id,
        version,
        status,
        position,
        lane,
    )
    if row is None:
        raise conflict(
            _("task %(id)s was moved by someone else (version %(seen)d is stale): reload the board")
            % {"id": task_id, "seen": version}
        )
    return task_out(row)


async def _renumber(
    ctx: PluginContext, project_id: UUID, status: str, after_id: UUID | None
) -> float:
    """Spread a column's positions out again; the position just after ``after_id``."""
    await ctx.db.execute(
        """
        UPDATE projects_tasks t SET position = n.rank * $4
        FROM (SELECT id, row_number() OVER (ORDER BY position, id) * 2 AS rank
              FROM projects_tasks WHERE tenant_id = $1 AND project_id = $2 AND status = $3) n
        WHERE t.tenant_id = $1 AND t.id = n.id
        """,
        ctx.tenant_id,
        project_id,
        status,
        POSITION_STEP,
    )
    low: float = await ctx.db.fetchval(
        "SELECT position FROM projects_tasks WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        after_id,
    )
    return low + POSITION_STEP


async def bulk_update(
    ctx: PluginContext, project_id: UUID, ids: Sequence[UUID], fields: dict[str, Any]
) -> int:
    """Set status, priority, lane, due date or assignees of many tasks of one project at once."""
    await get_project(ctx, project_id)
    allowed = {"status", "priority", "lane", "due_date", "assignees", "shared"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise invalid(unknown[0], _("bulk edit changes only %s") % ", ".join(sorted(allowed)))
    if not ids or len(ids) > 2000:  # noqa: PLR2004
        raise invalid("ids", _("1 to 2,000 task ids"))
    values = _task_fields(fields, None)
    if not values:
        raise invalid("fields", _("nothing to change"))
    found = await ctx.db.fetchval(
        "SELECT count(*) FROM projects_tasks WHERE tenant_id = $1 AND project_id = $2 "
        "AND id = ANY($3::uuid[])",
        ctx.tenant_id,
        project_id,
        list(ids),
    )
    if found != len(set(ids)):
        raise invalid("ids", _("every id must be a task of this project"))
    if "due_date" in values:
        bad = await ctx.db.fetchval(
            "SELECT count(*) FROM projects_tasks WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
            "AND start_date > $3",
            ctx.tenant_id,
            list(ids),
            values["due_date"],
        )
        if bad:
            raise invalid("due_date", _("%d of the tasks start after that date") % bad)
    sets = [f"{name} = ${i}" for i, name in enumerate(values, start=4)]
    status = await ctx.db.execute(
        f"UPDATE projects_tasks SET {', '.join(sets)}, version = version + 1, updated_at = now() "
        "WHERE tenant_id = $1 AND project_id = $2 AND id = ANY($3::uuid[])",
        ctx.tenant_id,
        project_id,
        list(ids),
        *values.values(),
    )
    return int(status.split()[-1])


async def delete_task(ctx: PluginContext, task_id: UUID) -> None:
    """Delete a task (its subtasks, links and comments go with it), unless it was invoiced."""
    task = await get_task(ctx, task_id)
    billed = await ctx.db.fetchval(
        "SELECT count(*) FROM projects_billing_lines WHERE tenant_id = $1 AND task_id = $2 "
        "AND status = 'billed'",
        ctx.tenant_id,
        task_id,
    )
    if billed:
        raise conflict(_("task %s is a billed milestone: credit its invoice line first") % task_id)
    await ctx.db.execute(
        "DELETE FROM projects_tasks WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, task["id"]
    )


_SORTS = {
    "position": "status, position",
    "due_date": "due_date, position",
    "priority": "priority, due_date, position",
    "title": "title, id",
    "start_date": "start_date, position",
}


def _task_filter(
    ctx: PluginContext,
    project_id: UUID,
    *,
    status: str | None,
    assignee: UUID | None,
    priority: int | None,
    q: str | None,
    due_before: date | None,
    shared_only: bool,
    sort: str,
    limit: int,
) -> tuple[str, list[Any]]:
    """``WHERE … ORDER BY … LIMIT …`` of a task list, and its arguments."""
    if sort not in _SORTS:
        raise invalid("sort", _("one of %s") % ", ".join(_SORTS))
    if status is not None and status not in STATUSES:
        raise invalid("status", _("must be one of %s") % ", ".join(STATUSES))
    where = ["tenant_id = $1", "project_id = $2"]
    args: list[Any] = [ctx.tenant_id, project_id]
    for clause, value in (
        ("status = ${}", status),
        ("${} = ANY(assignees)", assignee),
        ("priority = ${}", priority),
        ("due_date < ${}", due_before),
    ):
        if value is not None:
            args.append(value)
            where.append(clause.format(len(args)))
    if q:
        args.append("%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        where.append(f"title ILIKE ${len(args)}")
    if shared_only:
        where.append("shared")
    args.append(min(max(limit, 1), MAX_LIST))
    return f"WHERE {' AND '.join(where)} ORDER BY {_SORTS[sort]} LIMIT ${len(args)}", args


async def list_tasks(
    ctx: PluginContext,
    project_id: UUID,
    *,
    status: str | None = None,
    assignee: UUID | None = None,
    priority: int | None = None,
    q: str | None = None,
    due_before: date | None = None,
    shared_only: bool = False,
    sort: str = "position",
    limit: int = MAX_LIST,
) -> list[dict[str, Any]]:
    """A project's tasks, filtered and sorted on one query (board, list and portal use it)."""
    tail, args = _task_filter(
        ctx,
        project_id,
        status=status,
        assignee=assignee,
        priority=priority,
        q=q,
        due_before=due_before,
        shared_only=shared_only,
        sort=sort,
        limit=limit,
    )
    rows = await ctx.db.fetch(f"SELECT {TASK_COLUMNS} FROM projects_tasks {tail}", *args)
    return [task_out(r) for r in rows]


_JSON_COLUMNS = TASK_COLUMNS.replace(
    "estimate_hours", "estimate_hours::text AS estimate_hours"
).replace("milestone_amount", "milestone_amount::text AS milestone_amount")


async def list_tasks_json(
    ctx: PluginContext,
    project_id: UUID,
    *,
    status: str | None = None,
    assignee: UUID | None = None,
    priority: int | None = None,
    q: str | None = None,
    due_before: date | None = None,
    sort: str = "position",
    limit: int = MAX_LIST,
) -> str:
    """The same list as ``{"items": [...]}``, the JSON built by PostgreSQL.

    Thousands of tasks without a Python object per field: a 2,000-task list is one value.
    """
    tail, args = _task_filter(
        ctx,
        project_id,
        status=status,
        assignee=assignee,
        priority=priority,
        q=q,
        due_before=due_before,
        shared_only=False,
        sort=sort,
        limit=limit,
    )
    text: str = await ctx.db.fetchval(
        "SELECT json_build_object('items', coalesce(json_agg(t), '[]'::json))::text "
        f"FROM (SELECT {_JSON_COLUMNS} FROM projects_tasks {tail}) t",
        *args,
    )
    return text


# --- dependencies and the schedule ----------------------------------------------------


async def project_links(ctx: PluginContext, project_id: UUID) -> list[Link]:
    """A project's finish-to-start links."""
    rows = await ctx.db.fetch(
        "SELECT predecessor_id, successor_id, lag_days FROM projects_dependencies "
        "WHERE tenant_id = $1 AND project_id = $2",
        ctx.tenant_id,
        project_id,
    )
    return [Link(r["predecessor_id"], r["successor_id"], r["lag_days"]) for r in rows]


async def _spans(ctx: PluginContext, project_id: UUID) -> dict[UUID, Span]:
    rows = await ctx.db.fetch(
        "SELECT id, start_date, due_date FROM projects_tasks "
        "WHERE tenant_id = $1 AND project_id = $2",
        ctx.tenant_id,
        project_id,
    )
    return {r["id"]: Span(r["id"], r["start_date"], r["due_date"]) for r in rows}


async def add_dependency(
    ctx: PluginContext, predecessor: UUID, successor: UUID, lag: int = 0
) -> None:
    """Link two tasks of one project; a link that closes a cycle is a 422 naming it."""
    if predecessor == successor:
        raise invalid("successor_id", _("a task cannot depend on itself"))
    if not -365 <= lag <= 365:  # noqa: PLR2004
        raise invalid("lag_days", _("from -365 to 365 working days"))
    first = await get_task(ctx, predecessor)
    second = await get_task(ctx, successor)
    if first["project_id"] != second["project_id"]:
        raise invalid("successor_id", _("must be a task of the same project"))
    links = await project_links(ctx, first["project_id"])
    links = [x for x in links if (x.predecessor, x.successor) != (predecessor, successor)]
    cycle = find_cycle([*links, Link(predecessor, successor, lag)])
    if cycle:
        titles = await ctx.db.fetch(
            "SELECT id, title FROM projects_tasks WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            cycle,
        )
        names = {r["id"]: r["title"] for r in titles}
        path = " → ".join(names.get(t, str(t)) for t in reversed(cycle))
        raise invalid("predecessor_id", _("this dependency would make a cycle: %s") % path)
    await ctx.db.execute(
        """
        INSERT INTO projects_dependencies (tenant_id, project_id, predecessor_id, successor_id,
            lag_days) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (tenant_id, predecessor_id, successor_id) DO UPDATE SET lag_days = $5
        """,
        ctx.tenant_id,
        first["project_id"],
        predecessor,
        successor,
        lag,
    )


async def remove_dependency(ctx: PluginContext, predecessor: UUID, successor: UUID) -> None:
    """Unlink two tasks (a 404 when they were not linked)."""
    status = await ctx.db.execute(
        "DELETE FROM projects_dependencies WHERE tenant_id = $1 AND predecessor_id = $2 "
        "AND successor_id = $3",
        ctx.tenant_id,
        predecessor,
        successor,
    )
    if status.endswith(" 0"):
        raise not_found("dependency", f"{predecessor} → {successor}")


async def _check_schedule(
    ctx: PluginContext,
    project: dict[str, Any],
    changes: dict[UUID, tuple[date | None, date | None]],
    *,
    successors_follow: bool = False,
) -> list[Link]:
    """Links the changed dates would break; a 422 when the project blocks violations.

    With ``successors_follow`` (the project shifts successors along), links from the
    changed tasks to their successors are not counted: the successors will move.
    """
    spans = await _spans(ctx, project["id"])
    for task_id, (start, end) in changes.items():
        old = spans[task_id]
        spans[task_id] = Span(task_id, start or old.start, end or old.end)
    calendar = await work_calendar(ctx)
    broken = [
        link
        for link in violations(spans, await project_links(ctx, project["id"]), calendar)
        if link.successor in changes or (link.predecessor in changes and not successors_follow)
    ]
    if broken and project["enforce_dependencies"]:
        link = broken[0]
        allowed = earliest_start(spans[link.predecessor], link.lag, calendar)
        raise invalid(
            "start_date",
            _("a dependency requires this task to start on or after %s") % allowed.isoformat()
            if link.successor in changes
            else _("a successor starts before this task would finish (it may start %s)")
            % allowed.isoformat(),
        )
    return broken


async def reschedule(
    ctx: PluginContext, task_id: UUID, version: int, start: date, end: date
) -> dict[str, Any]:
    """Move a task's dates (a Gantt drag): the task and the links it now breaks."""
    task = await update_task(ctx, task_id, version, {"start_date": start, "due_date": end})
    project = await get_project(ctx, task["project_id"])
    shifted = await _shift_successors(ctx, project, task_id) if project["auto_shift"] else []
    broken = await _check_schedule(ctx, project, {task_id: (start, end)})
    return {
        "task": task,
        "shifted": [str(t) for t in shifted],
        "violations": [_link_out(x) for x in broken],
    }


async def _shift_successors(ctx: PluginContext, project: dict[str, Any], moved: UUID) -> list[UUID]:
    """Push the moved task's successors (and theirs) later until no link is broken.

    Each keeps its length in working days; nothing is pulled earlier.
    """
    from graphlib import TopologicalSorter  # noqa: PLC0415

    spans = await _spans(ctx, project["id"])
    links = await project_links(ctx, project["id"])
    calendar = await work_calendar(ctx)
    preds: dict[UUID, list[Link]] = {}
    for link in links:
        preds.setdefault(link.successor, []).append(link)
    graph = {t: {x.predecessor for x in preds.get(t, [])} for t in spans}
    downstream = {moved}
    shifted: list[UUID] = []
    for task in TopologicalSorter(graph).static_order():
        incoming = [x for x in preds.get(task, []) if x.predecessor in downstream]
        if not incoming:
            continue
        span = spans[task]
        allowed = max(earliest_start(spans[x.predecessor], x.lag, calendar) for x in preds[task])
        if allowed <= span.start:
            continue
        length = max(calendar.between(span.start, span.end), 1)
        start, end = calendar.span(allowed, length)
        spans[task] = Span(task, start, end)
        downstream.add(task)
        shifted.append(task)
        await ctx.db.execute(
            "UPDATE projects_tasks SET start_date = $3, due_date = $4, version = version + 1, "
            "updated_at = now() WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            task,
            start,
            end,
        )
    return shifted


def _link_out(link: Link) -> dict[str, Any]:
    return {
        "predecessor_id": str(link.predecessor),
        "successor_id": str(link.successor),
        "lag_days": link.lag,
    }


async def gantt(ctx: PluginContext, project_id: UUID) -> dict[str, Any]:
    """Tasks with dates, links, the critical path and the links the current dates break."""
    project = await get_project(ctx, project_id)
    rows = await ctx.db.fetch(
        "SELECT id, title, start_date, due_date, status, milestone, version, parent_id "
        "FROM projects_tasks WHERE tenant_id = $1 AND project_id = $2 "
        "ORDER BY start_date, position",
        ctx.tenant_id,
        project_id,
    )
    spans = {r["id"]: Span(r["id"], r["start_date"], r["due_date"]) for r in rows}
    links = await project_links(ctx, project_id)
    calendar = await work_calendar(ctx)
    critical = set(critical_path(spans, links, calendar))
    broken = violations(spans, links, calendar)
    preds: dict[UUID, list[str]] = {}
    for link in links:
        preds.setdefault(link.successor, []).append(str(link.predecessor))
    done = {"done": 100, "review": 80, "doing": 40, "todo": 0}
    return {
        "project": {
            "id": str(project_id),
            "name": project["name"],
            "enforce_dependencies": project["enforce_dependencies"],
            "auto_shift": project["auto_shift"],
        },
        "tasks": [
            {
                "id": str(r["id"]),
                "name": r["title"],
                "start": r["start_date"].isoformat(),
                "end": r["due_date"].isoformat(),
                "progress": done[r["status"]],
                "dependencies": ",".join(preds.get(r["id"], [])),
                "milestone": r["milestone"],
                "critical": r["id"] in critical,
                "version": r["version"],
                # One class token: frappe-gantt passes it to classList.add(), which throws on
                # a space and leaves the whole chart empty ("critical milestone" did that).
                "custom_class": "critical" if r["id"] in critical else "",
            }
            for r in rows
        ],
        "critical_path": [str(t) for t in critical_path(spans, links, calendar)],
        "violations": [_link_out(x) for x in broken],
    }


# --- comments -------------------------------------------------------------------------


async def add_comment(
    ctx: PluginContext,
    task_id: UUID,
    body: Any,
    *,
    author_id: UUID | None,
    author_name: str,
    shared: bool = False,
) -> UUID:
    """A comment on a task; ``shared`` ones are shown to the project's portal contacts."""
    await get_task(ctx, task_id)
    if not isinstance(body, str) or not 1 <= len(body.strip()) <= 10000:  # noqa: PLR2004
        raise invalid("body", _("must be 1 to 10,000 characters"))
    comment_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO projects_comments (tenant_id, id, task_id, author_id, author_name, body, "
        "shared) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ctx.tenant_id,
        comment_id,
        task_id,
        author_id,
        author_name[:200],
        body.strip(),
        shared,
    )
    return comment_id


async def comments(
    ctx: PluginContext, task_ids: Iterable[UUID], *, shared_only: bool = False
) -> list[dict[str, Any]]:
    """Comments of tasks, oldest first."""
    rows = await ctx.db.fetch(
        "SELECT id, task_id, author_id, author_name, body, shared, created_at "
        "FROM projects_comments "
        "WHERE tenant_id = $1 AND task_id = ANY($2::uuid[]) AND (shared OR NOT $3) "
        "ORDER BY created_at, id",
        ctx.tenant_id,
        list(task_ids),
        shared_only,
    )
    return [dict(r) for r in rows]


async def add_template(ctx: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Save a template (``{"name", "tasks": [...], "default": bool}``)."""
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:  # noqa: PLR2004
        raise invalid("name", _("must be 1 to 200 characters"))
    tasks = check_template(data.get("tasks"))
    default = data.get("default", False)
    if not isinstance(default, bool):
        raise invalid("default", _("must be true or false"))
    if default:
        await ctx.db.execute(
            "UPDATE projects_templates SET is_default = false WHERE tenant_id = $1 AND is_default",
            ctx.tenant_id,
        )
    template_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO projects_templates (tenant_id, id, name, is_default, tasks) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        ctx.tenant_id,
        template_id,
        name.strip(),
        default,
        json.dumps(tasks),
    )
    return {"id": str(template_id), "name": name.strip(), "default": default, "tasks": tasks}
