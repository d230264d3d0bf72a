"""Time tracking: one running timer per user, manual entries, weekly sheets, approval.

An entry snapshots its hourly rate when it is written (the user's rate on the project,
else the project's), so later rate changes never reprice logged time. An entry that is
on an invoice line is locked until a credit note of that line frees it.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from gettext import gettext as _
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.projects.errors import conflict, invalid, not_found
from orbit.plugins.builtin.projects.service import get_project, get_task

if TYPE_CHECKING:
    from orbit.plugins.api import PluginContext

ENTRY_COLUMNS = (
    "id, project_id, task_id, user_id, day, started_at, minutes, running, note, billable, "
    "rate, currency, status, invoice_id, invoice_line_ref, version, created_at"
)
MAX_MINUTES = 24 * 60


async def _rate(ctx: PluginContext, project: dict[str, Any], user_id: UUID) -> Decimal:
    own = await ctx.db.fetchval(
        "SELECT hourly_rate FROM projects_rates WHERE tenant_id = $1 AND project_id = $2 "
        "AND user_id = $3",
        ctx.tenant_id,
        project["id"],
        user_id,
    )
    rate: Decimal = own if own is not None else project["hourly_rate"]
    return rate


async def set_rate(ctx: PluginContext, project_id: UUID, user_id: UUID, rate: Decimal) -> None:
    """A user's hourly rate on one project (entries written afterwards use it)."""
    await get_project(ctx, project_id)
    if not rate.is_finite() or rate < 0 or rate != round(rate, 2) or rate >= 10**9:
        raise invalid("hourly_rate", _("a non-negative amount with at most 2 decimals"))
    await ctx.db.execute(
        "INSERT INTO projects_rates (tenant_id, project_id, user_id, hourly_rate) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, project_id, user_id) "
        "DO UPDATE SET hourly_rate = $4",
        ctx.tenant_id,
        project_id,
        user_id,
        rate,
    )


async def _task_of(ctx: PluginContext, project_id: UUID, task_id: UUID | None) -> UUID | None:
    if task_id is None:
        return None
    task = await get_task(ctx, task_id)
    if task["project_id"] != project_id:
        raise invalid("task_id", _("must be a task of the same project"))
    return task_id


def entry_out(row: Any, *, with_rate: bool = True) -> dict[str, Any]:
    """An entry as JSON-ready values (rates left out for people who may not see them)."""
    entry = dict(row)
    if not with_rate:
        entry.pop("rate", None)
    entry["hours"] = (Decimal(entry["minutes"]) / 60).quantize(Decimal("0.01"))
    return entry


async def get_entry(ctx: PluginContext, entry_id: UUID) -> dict[str, Any]:
    """One entry, or a 404."""
    row = await ctx.db.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM projects_time_entries WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        entry_id,
    )
    if row is None:
        raise not_found("time entry", entry_id)
    return entry_out(row)


async def running_timer(ctx: PluginContext, user_id: UUID) -> dict[str, Any] | None:
    """The user's running timer, if any."""
    row = await ctx.db.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM projects_time_entries "
        "WHERE tenant_id = $1 AND user_id = $2 AND running",
        ctx.tenant_id,
        user_id,
    )
    return None if row is None else entry_out(row)


async def member_zone(ctx: PluginContext, member_id: UUID) -> ZoneInfo:
    """The member's time zone (UTC when unknown): days are the member's days."""
    zone = next((u.time_zone for u in await ctx.users.list() if u.id == member_id), "UTC")
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def start_timer(
    ctx: PluginContext, user_id: UUID, project_id: UUID, task_id: UUID | None, note: str = ""
) -> dict[str, Any]:
    """Start the user's timer (stopping the one running, if any: one per user)."""
    project = await get_project(ctx, project_id)
    task = await _task_of(ctx, project_id, task_id)
    await stop_timer(ctx, user_id, missing_ok=True)
    now = datetime.now(UTC)
    entry_id = uuid7()
    inserted = await ctx.db.fetchval(
        """
        INSERT INTO projects_time_entries (tenant_id, id, project_id, task_id, user_id, day,
            started_at, running, note, rate, currency)
        VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9, $10)
        ON CONFLICT (tenant_id, user_id) WHERE running DO NOTHING RETURNING id
        """,
        ctx.tenant_id,
        entry_id,
        project_id,
        task,
        user_id,
        now.astimezone(await member_zone(ctx, user_id)).date(),
        now,
        _note(note),
        await _rate(ctx, project, user_id),
        project["currency"],
    )
    if inserted is None:
        raise conflict(_("a timer is already running for you: stop it first"))
    return await get_entry(ctx, entry_id)


async def stop_timer(
    ctx: PluginContext, user_id: UUID, *, missing_ok: bool = False
) -> dict[str, Any] | None:
    """Stop the user's running timer: its minutes (at least one) become the entry's."""
    row = await ctx.db.fetchrow(
        f"""
        UPDATE projects_time_entries SET running = false,
            minutes = least(
                greatest(ceil(extract(epoch FROM now() - started_at) / 60), 1), {MAX_MINUTES}
            ),
            version = version + 1
        WHERE tenant_id = $1 AND user_id = $2 AND running RETURNING {ENTRY_COLUMNS}
        """,
        ctx.tenant_id,
        user_id,
    )
    if row is None:
        if missing_ok:
            return None
        raise conflict(_("no timer is running for you"))
    return entry_out(row)


def _note(note: Any) -> str:
    if not isinstance(note, str) or len(note) > 2000:  # noqa: PLR2004
        raise invalid("note", _("text of at most 2,000 characters"))
    return note.strip()


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MINUTES:
        raise invalid("minutes", _("a whole number of minutes from 1 to 1440"))
    return value


def _day(value: Any) -> date:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise invalid("day", _("must be a date (YYYY-MM-DD)")) from None
    if day > date.today() + timedelta(days=366):  # noqa: DTZ011
        raise invalid("day", _("must not be more than a year ahead"))
    return day


async def add_entry(
    ctx: PluginContext,
    user_id: UUID,
    project_id: UUID,
    *,
    day: Any,
    minutes: Any,
    task_id: UUID | None = None,
    note: Any = "",
    billable: bool = True,
) -> dict[str, Any]:
    """A manual entry, its rate snapshot taken now."""
    project = await get_project(ctx, project_id)
    task = await _task_of(ctx, project_id, task_id)
    entry_id = uuid7()
    await ctx.db.execute(
        """
        INSERT INTO projects_time_entries (tenant_id, id, project_id, task_id, user_id, day,
            minutes, note, billable, rate, currency)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        """,
        ctx.tenant_id,
        entry_id,
        project_id,
        task,
        user_id,
        _day(day),
        _minutes(minutes),
        _note(note),
        bool(billable),
        await _rate(ctx, project, user_id),
        project["currency"],
    )
    return await get_entry(ctx, entry_id)


def _locked(entry: dict[str, Any]) -> None:
    if entry["invoice_id"] is not None:
        raise conflict(
            _("time entry %(id)s is on invoice %(invoice)s and locked; a credit note frees it")
            % {"id": entry["id"], "invoice": entry["invoice_id"]}
        )


async def edit_entry(  # noqa: C901, PLR0912 - one check per field
    ctx: PluginContext, entry_id: UUID, version: int, fields: dict[str, Any], *, approver: bool
) -> dict[str, Any]:
    """Change an entry still at ``version``; an invoiced one is locked (a 409)."""
    entry = await get_entry(ctx, entry_id)
    _locked(entry)
    values: dict[str, Any] = {}
    if "minutes" in fields:
        values["minutes"] = _minutes(fields["minutes"])
    if "day" in fields:
        values["day"] = _day(fields["day"])
    if "note" in fields:
        values["note"] = _note(fields["note"])
    if "billable" in fields:
        if not isinstance(fields["billable"], bool):
            raise invalid("billable", _("must be true or false"))
        values["billable"] = fields["billable"]
    if "task_id" in fields:
        raw = fields["task_id"]
        values["task_id"] = await _task_of(
            ctx, entry["project_id"], None if raw is None else _id("task_id", raw)
        )
    if "status" in fields:
        status = fields["status"]
        if status not in ("open", "submitted", "approved", "rejected"):
            raise invalid("status", _("must be open, submitted, approved or rejected"))
        if status in ("approved", "rejected") and not approver:
            raise invalid("status", _("only owners and admins approve or reject time"))
        values["status"] = status
    elif values and entry["status"] == "approved":
        values["status"] = "open"  # a changed entry is approved again
    if entry["running"] and "minutes" in values:
        raise invalid("minutes", _("stop the timer before changing its minutes"))
    if not values:
        return entry
    sets = [f"{name} = ${i}" for i, name in enumerate(values, start=4)]
    row = await ctx.db.fetchrow(
        f"UPDATE projects_time_entries SET {', '.join(sets)}, version = version + 1 "
        "WHERE tenant_id = $1 AND id = $2 AND version = $3 AND invoice_id IS NULL "
        f"RETURNING {ENTRY_COLUMNS}",
        ctx.tenant_id,
        entry_id,
        version,
        *values.values(),
    )
    if row is None:
        raise conflict(
            _("time entry %(id)s changed meanwhile (version %(seen)d is stale) or was invoiced")
            % {"id": entry_id, "seen": version}
        )
    return entry_out(row)


def _id(field: str, value: Any) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise invalid(field, _("must be an id")) from None


async def delete_entry(ctx: PluginContext, entry_id: UUID) -> None:
    """Delete an entry that is not on an invoice."""
    entry = await get_entry(ctx, entry_id)
    _locked(entry)
    await ctx.db.execute(
        "DELETE FROM projects_time_entries WHERE tenant_id = $1 AND id = $2 AND invoice_id IS NULL",
        ctx.tenant_id,
        entry_id,
    )


async def set_status(
    ctx: PluginContext, project_id: UUID, entry_ids: list[UUID], status: str
) -> int:
    """Approve, reject or submit many entries of a project; invoiced ones are left alone."""
    if status not in ("submitted", "approved", "rejected", "open"):
        raise invalid("status", _("must be open, submitted, approved or rejected"))
    await get_project(ctx, project_id)
    result = await ctx.db.execute(
        "UPDATE projects_time_entries SET status = $4, version = version + 1 "
        "WHERE tenant_id = $1 AND project_id = $2 AND id = ANY($3::uuid[]) "
        "AND invoice_id IS NULL AND NOT running",
        ctx.tenant_id,
        project_id,
        entry_ids,
        status,
    )
    return int(result.split()[-1])


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


async def timesheet(ctx: PluginContext, user_id: UUID, monday: date) -> dict[str, Any]:
    """The user's week: one row per project and task, minutes per day, totals."""
    monday = week_of(monday)
    rows = await ctx.db.fetch(
        """
        SELECT e.project_id, p.name AS project, e.task_id, t.title AS task, e.day,
               sum(e.minutes) AS minutes, bool_and(e.status = 'approved') AS approved
        FROM projects_time_entries e
        JOIN projects_projects p ON p.tenant_id = e.tenant_id AND p.id = e.project_id
        LEFT JOIN projects_tasks t ON t.tenant_id = e.tenant_id AND t.id = e.task_id
        WHERE e.tenant_id = $1 AND e.user_id = $2 AND e.day BETWEEN $3 AND $4
        GROUP BY e.project_id, p.name, e.task_id, t.title, e.day
        ORDER BY p.name, t.title NULLS FIRST
        """,
        ctx.tenant_id,
        user_id,
        monday,
        monday + timedelta(days=6),
    )
    days = [monday + timedelta(days=i) for i in range(7)]
    lines: dict[tuple[UUID, UUID | None], dict[str, Any]] = {}
    for r in rows:
        line = lines.setdefault(
            (r["project_id"], r["task_id"]),
            {
                "project_id": r["project_id"],
                "project": r["project"],
                "task_id": r["task_id"],
                "task": r["task"] or "",
                "minutes": [0] * 7,
                "approved": True,
            },
        )
        line["minutes"][(r["day"] - monday).days] += int(r["minutes"])
        line["approved"] = line["approved"] and bool(r["approved"])
    per_day = [sum(line["minutes"][i] for line in lines.values()) for i in range(7)]
    return {
        "week": monday,
        "days": days,
        "lines": list(lines.values()),
        "per_day": per_day,
        "total": sum(per_day),
    }


async def totals(ctx: PluginContext, project_id: UUID) -> list[dict[str, Any]]:
    """Per task: estimate, logged, billable and approved hours."""
    rows = await ctx.db.fetch(
        """
        SELECT t.id, t.title, t.estimate_hours,
               coalesce(sum(e.minutes), 0) AS minutes,
               coalesce(sum(e.minutes) FILTER (WHERE e.billable), 0) AS billable_minutes,
               coalesce(sum(e.minutes) FILTER (WHERE e.status = 'approved'), 0) AS approved_minutes
        FROM projects_tasks t
        LEFT JOIN projects_time_entries e ON e.tenant_id = t.tenant_id AND e.task_id = t.id
        WHERE t.tenant_id = $1 AND t.project_id = $2
        GROUP BY t.id, t.title, t.estimate_hours, t.position ORDER BY t.position
        """,
        ctx.tenant_id,
        project_id,
    )

    def hours(minutes: int) -> Decimal:
        return (Decimal(minutes) / 60).quantize(Decimal("0.01"))

    return [
        {
            "task_id": r["id"],
            "title": r["title"],
            "estimate_hours": r["estimate_hours"],
            "hours": hours(r["minutes"]),
            "billable_hours": hours(r["billable_minutes"]),
            "approved_hours": hours(r["approved_minutes"]),
            "over_estimate": r["estimate_hours"] > 0 and hours(r["minutes"]) > r["estimate_hours"],
        }
        for r in rows
    ]


async def entries(
    ctx: PluginContext, project_id: UUID, *, user_id: UUID | None = None, limit: int = 5000
) -> list[dict[str, Any]]:
    """A project's entries, newest day first."""
    rows = await ctx.db.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM projects_time_entries WHERE tenant_id = $1 "
        "AND project_id = $2 AND ($3::uuid IS NULL OR user_id = $3) "
        "ORDER BY day DESC, created_at DESC LIMIT $4",
        ctx.tenant_id,
        project_id,
        user_id,
        min(max(limit, 1), 50000),
    )
    return [entry_out(r) for r in rows]


async def export_csv(ctx: PluginContext, project_id: UUID) -> str:
    """The project's time as CSV (one line per entry, hours with two decimals)."""
    await get_project(ctx, project_id)
    rows = await ctx.db.fetch(
        """
        SELECT e.day, e.user_id, t.title AS task, e.note, e.minutes, e.billable, e.rate,
               e.currency, e.status, e.invoice_id
        FROM projects_time_entries e
        LEFT JOIN projects_tasks t ON t.tenant_id = e.tenant_id AND t.id = e.task_id
        WHERE e.tenant_id = $1 AND e.project_id = $2 AND NOT e.running
        ORDER BY e.day, e.created_at
        """,
        ctx.tenant_id,
        project_id,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "date",
            "user_id",
            "task",
            "note",
            "hours",
            "billable",
            "rate",
            "currency",
            "status",
            "invoice_id",
        ]
    )
    for r in rows:
        note = r["note"]
        if note[:1] in ("=", "+", "-", "@"):  # not a formula when opened in a spreadsheet
            note = "'" + note
        writer.writerow(
            [
                r["day"].isoformat(),
                r["user_id"],
                r["task"] or "",
                note,
                (Decimal(r["minutes"]) / 60).quantize(Decimal("0.01")),
                "yes" if r["billable"] else "no",
                r["rate"],
                r["currency"],
                r["status"],
                r["invoice_id"] or "",
            ]
        )
    return out.getvalue()
