"""The projects JSON API (``/api/v1/apps/projects/…``): thin handlers over the services."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from gettext import gettext as _
from typing import Any
from uuid import UUID

from litestar.exceptions import PermissionDeniedException
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from orbit.plugins.api import PluginContext, Response, delete, get, patch, post, put
from orbit.plugins.builtin.projects import billing, portal, service, timesheets
from orbit.plugins.builtin.projects.errors import invalid


class Member:
    """Who is calling: the member's id and whether they manage (owner or admin)."""

    __slots__ = ("manager", "name", "user_id")

    def __init__(self, user_id: UUID | None, name: str, *, manager: bool) -> None:
        self.user_id = user_id
        self.name = name
        self.manager = manager


def member(plugin: PluginContext) -> Member:
    """The caller (``ctx.actor``): a member's id, or none for an API key."""
    actor = plugin.actor
    member_id = actor.member_id if actor is not None else None
    return Member(member_id, "", manager=actor is not None and actor.manager)


def _user(plugin: PluginContext) -> UUID:
    who = member(plugin).user_id
    if who is None:
        raise PermissionDeniedException(
            detail=_("time is tracked by signed-in members, not API keys")
        )
    return who


def _int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, _("is required (a whole number)"))
    return value


def _id(data: dict[str, Any], name: str, *, required: bool = True) -> UUID | None:
    value = data.get(name)
    if value is None:
        if required:
            raise invalid(name, _("is required"))
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise invalid(name, _("must be an id")) from None


def _decimal(data: dict[str, Any], name: str, default: Decimal) -> Decimal:
    if name not in data:
        return default
    try:
        return Decimal(str(data[name]))
    except InvalidOperation:
        raise invalid(name, _("must be a number")) from None


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise invalid("body", _("must be a JSON object"))
    return data


# --- projects -------------------------------------------------------------------------


@get("/projects")
async def projects_index(plugin: PluginContext) -> dict[str, Any]:
    """The workspace's projects."""
    return {"items": await service.list_projects(plugin)}


@post("/projects")
async def projects_create(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Create a project by hand (optionally from a template)."""
    data = _body(data)
    start = data.get("start_date") or date.today().isoformat()  # noqa: DTZ011
    try:
        start_date = date.fromisoformat(str(start))
    except ValueError:
        raise invalid("start_date", _("must be a date (YYYY-MM-DD)")) from None
    new = service.NewProject(
        name=str(data.get("name") or ""),
        start_date=start_date,
        currency=str(data.get("currency") or "USD"),
        hourly_rate=_decimal(data, "hourly_rate", Decimal(0)),
        budget=_decimal(data, "budget", Decimal(0)),
        billing_mode=str(data.get("billing_mode") or "time_and_materials"),
        prepaid_hours=_decimal(data, "prepaid_hours", Decimal(0)),
        company_id=_id(data, "company_id", required=False),
        contact_id=_id(data, "contact_id", required=False),
        template_id=_id(data, "template_id", required=False),
    )
    project_id, _created = await service.create_project(plugin, new)
    return await service.get_project(plugin, project_id)


@get("/projects/{project_id:uuid}")
async def projects_show(plugin: PluginContext, project_id: UUID) -> dict[str, Any]:
    """One project."""
    return await service.get_project(plugin, project_id)


@patch("/projects/{project_id:uuid}")
async def projects_update(
    plugin: PluginContext, project_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a project's settings."""
    await service.update_project(plugin, project_id, _body(data))
    return await service.get_project(plugin, project_id)


# --- tasks ----------------------------------------------------------------------------


@get("/projects/{project_id:uuid}/tasks")
async def tasks_index(
    plugin: PluginContext,
    project_id: UUID,
    status: str | None = None,
    assignee: UUID | None = None,
    priority: int | None = None,
    q: str | None = None,
    due_before: date | None = None,
    sort: str = "position",
    limit: int = service.MAX_LIST,
) -> Response[bytes]:
    """A project's tasks, filtered and sorted (``{"items": [...]}``)."""
    await service.get_project(plugin, project_id)
    text = await service.list_tasks_json(
        plugin,
        project_id,
        status=status,
        assignee=assignee,
        priority=priority,
        q=q,
        due_before=due_before,
        sort=sort,
        limit=limit,
    )
    return Response(text.encode(), media_type="application/json")


@post("/projects/{project_id:uuid}/tasks")
async def tasks_create(
    plugin: PluginContext, project_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Add a task (or a subtask with ``parent_id``)."""
    task_id = await service.create_task(plugin, project_id, _body(data))
    return await service.get_task(plugin, task_id)


@post("/projects/{project_id:uuid}/tasks/bulk", status_code=HTTP_200_OK)
async def tasks_bulk(
    plugin: PluginContext, project_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change many tasks at once: ``{"ids": [...], "set": {"status": "done", ...}}``."""
    data = _body(data)
    raw = data.get("ids")
    if not isinstance(raw, list):
        raise invalid("ids", _("a list of task ids"))
    try:
        ids = [UUID(str(x)) for x in raw]
    except ValueError:
        raise invalid("ids", _("a list of task ids")) from None
    changes = data.get("set")
    if not isinstance(changes, dict):
        raise invalid("set", _("the fields to change"))
    return {"updated": await service.bulk_update(plugin, project_id, ids, changes)}


@get("/tasks/{task_id:uuid}")
async def tasks_show(plugin: PluginContext, task_id: UUID) -> dict[str, Any]:
    """One task with its subtasks, dependencies and comments."""
    task = await service.get_task(plugin, task_id)
    task["subtasks"] = [
        t for t in await service.list_tasks(plugin, task["project_id"]) if t["parent_id"] == task_id
    ]
    links = await service.project_links(plugin, task["project_id"])
    task["depends_on"] = [
        {"task_id": str(x.predecessor), "lag_days": x.lag} for x in links if x.successor == task_id
    ]
    task["comments"] = await service.comments(plugin, [task_id])
    return task


@patch("/tasks/{task_id:uuid}")
async def tasks_update(
    plugin: PluginContext, task_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a task; ``version`` must be the one read (a 409 otherwise)."""
    data = _body(data)
    version = _int(data, "version")
    fields = {k: v for k, v in data.items() if k != "version"}
    return await service.update_task(plugin, task_id, version, fields)


@delete("/tasks/{task_id:uuid}", status_code=HTTP_204_NO_CONTENT)
async def tasks_delete(plugin: PluginContext, task_id: UUID) -> None:
    """Delete a task with its subtasks."""
    await service.delete_task(plugin, task_id)


@post("/tasks/{task_id:uuid}/move", status_code=HTTP_200_OK)
async def tasks_move(plugin: PluginContext, task_id: UUID, data: dict[str, Any]) -> dict[str, Any]:
    """A board drop: column, swimlane and neighbours (``after_id`` above, ``before_id`` below)."""
    data = _body(data)
    lane = data.get("lane")
    if lane is not None and not isinstance(lane, str):
        raise invalid("lane", _("must be text"))
    return await service.move_task(
        plugin,
        task_id,
        _int(data, "version"),
        str(data.get("status") or ""),
        lane=lane,
        after_id=_id(data, "after_id", required=False),
        before_id=_id(data, "before_id", required=False),
    )


@post("/tasks/{task_id:uuid}/dates", status_code=HTTP_200_OK)
async def tasks_dates(plugin: PluginContext, task_id: UUID, data: dict[str, Any]) -> dict[str, Any]:
    """A Gantt drag: new start and end; the links it breaks (or a 422 when blocked)."""
    data = _body(data)
    dates = []
    for name in ("start_date", "due_date"):
        try:
            dates.append(date.fromisoformat(str(data.get(name))))
        except ValueError:
            raise invalid(name, _("must be a date (YYYY-MM-DD)")) from None
    return await service.reschedule(plugin, task_id, _int(data, "version"), dates[0], dates[1])


@post("/dependencies", status_code=HTTP_200_OK)
async def dependencies_add(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Link two tasks finish-to-start; a cycle is a 422."""
    data = _body(data)
    predecessor = _id(data, "predecessor_id")
    successor = _id(data, "successor_id")
    lag = data.get("lag_days", 0)
    if isinstance(lag, bool) or not isinstance(lag, int):
        raise invalid("lag_days", _("a whole number of working days"))
    assert predecessor is not None  # noqa: S101 - required above
    assert successor is not None  # noqa: S101
    await service.add_dependency(plugin, predecessor, successor, lag)
    return {"predecessor_id": str(predecessor), "successor_id": str(successor), "lag_days": lag}


@delete("/dependencies/{predecessor:uuid}/{successor:uuid}", status_code=HTTP_204_NO_CONTENT)
async def dependencies_remove(plugin: PluginContext, predecessor: UUID, successor: UUID) -> None:
    """Unlink two tasks."""
    await service.remove_dependency(plugin, predecessor, successor)


@post("/tasks/{task_id:uuid}/comments")
async def comments_add(
    plugin: PluginContext, task_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Comment on a task (``shared``: the portal shows it)."""
    data = _body(data)
    who = member(plugin)
    shared = data.get("shared", False)
    if not isinstance(shared, bool):
        raise invalid("shared", _("must be true or false"))
    names = {u.id: u.name or u.email for u in await plugin.users.list()}
    comment_id = await service.add_comment(
        plugin,
        task_id,
        data.get("body", ""),
        author_id=who.user_id,
        author_name=names.get(who.user_id, "") if who.user_id else "",
        shared=shared,
    )
    return {"id": str(comment_id)}


@get("/projects/{project_id:uuid}/gantt")
async def gantt(plugin: PluginContext, project_id: UUID) -> dict[str, Any]:
    """Gantt data: tasks, dependencies, the critical path and violations."""
    return await service.gantt(plugin, project_id)


# --- time -----------------------------------------------------------------------------


@get("/timer")
async def timer_show(plugin: PluginContext) -> dict[str, Any]:
    """The caller's running timer."""
    return {"timer": await timesheets.running_timer(plugin, _user(plugin))}


@post("/timer/start")
async def timer_start(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Start the caller's timer on a project (and task); one runs per person."""
    data = _body(data)
    project_id = _id(data, "project_id")
    assert project_id is not None  # noqa: S101
    return await timesheets.start_timer(
        plugin,
        _user(plugin),
        project_id,
        _id(data, "task_id", required=False),
        data.get("note", ""),
    )


@post("/timer/stop", status_code=HTTP_200_OK)
async def timer_stop(plugin: PluginContext) -> dict[str, Any]:
    """Stop the caller's timer."""
    entry = await timesheets.stop_timer(plugin, _user(plugin))
    assert entry is not None  # noqa: S101 - stop_timer raises when none runs
    return entry


@post("/projects/{project_id:uuid}/time")
async def time_add(plugin: PluginContext, project_id: UUID, data: dict[str, Any]) -> dict[str, Any]:
    """A manual entry for the caller."""
    data = _body(data)
    billable = data.get("billable", True)
    if not isinstance(billable, bool):
        raise invalid("billable", _("must be true or false"))
    return await timesheets.add_entry(
        plugin,
        _user(plugin),
        project_id,
        day=data.get("day"),
        minutes=data.get("minutes"),
        task_id=_id(data, "task_id", required=False),
        note=data.get("note", ""),
        billable=billable,
    )


@get("/projects/{project_id:uuid}/time")
async def time_index(plugin: PluginContext, project_id: UUID) -> dict[str, Any]:
    """A project's entries."""
    await service.get_project(plugin, project_id)
    return {"items": await timesheets.entries(plugin, project_id)}


@patch("/time/{entry_id:uuid}")
async def time_update(
    plugin: PluginContext, entry_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change an entry (locked once invoiced)."""
    data = _body(data)
    who = member(plugin)
    entry = await timesheets.get_entry(plugin, entry_id)
    if entry["user_id"] != who.user_id and not who.manager:
        raise PermissionDeniedException(detail=_("only owners and admins change others' time"))
    fields = {k: v for k, v in data.items() if k != "version"}
    return await timesheets.edit_entry(
        plugin, entry_id, _int(data, "version"), fields, approver=who.manager
    )


@delete("/time/{entry_id:uuid}", status_code=HTTP_204_NO_CONTENT)
async def time_delete(plugin: PluginContext, entry_id: UUID) -> None:
    """Delete an entry that is not invoiced."""
    who = member(plugin)
    entry = await timesheets.get_entry(plugin, entry_id)
    if entry["user_id"] != who.user_id and not who.manager:
        raise PermissionDeniedException(detail=_("only owners and admins delete others' time"))
    await timesheets.delete_entry(plugin, entry_id)


@post("/projects/{project_id:uuid}/time/status", status_code=HTTP_200_OK)
async def time_status(
    plugin: PluginContext, project_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Approve, reject or submit entries: ``{"ids": [...], "status": "approved"}``."""
    data = _body(data)
    status = data.get("status")
    if status in ("approved", "rejected") and not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins approve or reject time"))
    raw = data.get("ids")
    if not isinstance(raw, list) or not raw:
        raise invalid("ids", _("a list of time entry ids"))
    try:
        ids = [UUID(str(x)) for x in raw]
    except ValueError:
        raise invalid("ids", _("a list of time entry ids")) from None
    return {"updated": await timesheets.set_status(plugin, project_id, ids, str(status))}


@get("/timesheet")
async def timesheet(plugin: PluginContext, week: date | None = None) -> dict[str, Any]:
    """The caller's week (Monday of ``week``, default this week)."""
    return await timesheets.timesheet(plugin, _user(plugin), week or date.today())  # noqa: DTZ011


@get("/projects/{project_id:uuid}/totals")
async def totals(plugin: PluginContext, project_id: UUID) -> dict[str, Any]:
    """Hours per task against estimates."""
    await service.get_project(plugin, project_id)
    return {"items": await timesheets.totals(plugin, project_id)}


@get("/projects/{project_id:uuid}/time.csv")
async def time_csv(plugin: PluginContext, project_id: UUID) -> Response[str]:
    """The project's time as CSV."""
    text = await timesheets.export_csv(plugin, project_id)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="time-{project_id}.csv"'},
    )


@put("/projects/{project_id:uuid}/rates/{user_id:uuid}")
async def rate_set(
    plugin: PluginContext,
    project_id: UUID,
    user_id: UUID,
    data: dict[str, Any],
) -> dict[str, Any]:
    """A person's hourly rate on the project (owners and admins)."""
    if not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins set rates"))
    rate = _decimal(_body(data), "hourly_rate", Decimal(-1))
    await timesheets.set_rate(plugin, project_id, user_id, rate)
    return {"user_id": str(user_id), "hourly_rate": str(rate)}


# --- billing and portal ---------------------------------------------------------------


@post("/projects/{project_id:uuid}/bill", status_code=HTTP_200_OK)
async def bill(plugin: PluginContext, project_id: UUID) -> dict[str, Any]:
    """Bill the project into a draft invoice of the Invoices app."""
    if not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins bill projects"))
    result = await billing.bill_project(plugin, project_id, invoicing_draft(plugin))
    return {
        "invoice": result.invoice,
        "lines": result.lines,
        "entries": result.entries,
        "milestones": result.milestones,
        "consumed": result.consumed,
    }


@get("/projects/{project_id:uuid}/billing")
async def billing_summary(plugin: PluginContext, project_id: UUID) -> dict[str, Any]:
    """Billed, credited and still to bill; the prepaid burn-down."""
    await service.get_project(plugin, project_id)
    return {
        **await billing.ledger_summary(plugin, project_id),
        "burn_down": await billing.burn_down(plugin, project_id),
    }


def invoicing_draft(ctx: PluginContext) -> billing.CreateDraft:
    """The Invoices app's ``invoicing_create_draft_invoice`` hook (``None``: not enabled)."""

    async def create(
        customer: dict[str, Any], lines: list[dict[str, Any]], source: dict[str, Any]
    ) -> Any:
        try:
            return await ctx.hooks.first(
                "invoicing_create_draft_invoice", customer=customer, lines=lines, source=source
            )
        except ValueError:  # no loaded plugin declares the hook
            return None

    return create


@post("/projects/{project_id:uuid}/portal")
async def portal_grant(
    plugin: PluginContext, project_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Give a contact a portal link to the project's shared tasks."""
    if not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins share projects"))
    contact_id = _id(_body(data), "contact_id")
    assert contact_id is not None  # noqa: S101
    return await portal.grant(plugin, project_id, contact_id)


@delete("/projects/{project_id:uuid}/portal/{access_id:uuid}", status_code=HTTP_204_NO_CONTENT)
async def portal_revoke(plugin: PluginContext, project_id: UUID, access_id: UUID) -> None:
    """Take a contact's portal access away."""
    if not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins share projects"))
    await portal.revoke(plugin, project_id, access_id)


@post("/holidays")
async def holidays_add(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """A day off for the whole workspace (owners and admins)."""
    if not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins change the calendar"))
    data = _body(data)
    try:
        day = date.fromisoformat(str(data.get("day")))
    except ValueError:
        raise invalid("day", _("must be a date (YYYY-MM-DD)")) from None
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:  # noqa: PLR2004
        raise invalid("name", _("text of at most 200 characters"))
    await plugin.db.execute(
        "INSERT INTO projects_holidays (tenant_id, day, name) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id, day) DO UPDATE SET name = $3",
        plugin.tenant_id,
        day,
        name,
    )
    return {"day": day.isoformat(), "name": name}


@post("/templates")
async def templates_add(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """A project template; ``default`` makes won deals use it."""
    if not member(plugin).manager:
        raise PermissionDeniedException(detail=_("only owners and admins change templates"))
    return await service.add_template(plugin, _body(data))


ROUTES = (
    projects_index,
    projects_create,
    projects_show,
    projects_update,
    tasks_index,
    tasks_create,
    tasks_bulk,
    tasks_show,
    tasks_update,
    tasks_delete,
    tasks_move,
    tasks_dates,
    dependencies_add,
    dependencies_remove,
    comments_add,
    gantt,
    timer_show,
    timer_start,
    timer_stop,
    time_add,
    time_index,
    time_update,
    time_delete,
    time_status,
    timesheet,
    totals,
    time_csv,
    rate_set,
    bill,
    billing_summary,
    portal_grant,
    portal_revoke,
    holidays_add,
    templates_add,
)


def routes() -> list[Any]:
    """The handlers (Orbit refuses viewers' changes through them)."""
    return list(ROUTES)
