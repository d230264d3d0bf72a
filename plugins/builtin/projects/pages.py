# ruff: noqa: E501 - HTML fragments read better whole than split mid-tag
"""Pages under ``/t/{slug}/apps/projects/``: projects, board, list, Gantt, time and billing.

Each page renders inside Orbit's layout (``Page``); its buttons and drags call the JSON
API with the layout's CSRF header (``static/projects.js``). Vendored scripts (SortableJS,
frappe-gantt, each with its licence) are served from this plugin's own route.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from gettext import gettext as _
from pathlib import Path
from typing import Any
from uuid import UUID

from orbit.plugins.api import Page, PluginContext, Response, escape, get
from orbit.plugins.builtin.projects import billing, portal, service, timesheets
from orbit.plugins.builtin.projects.api_routes import member

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
STATUS_LABELS = {"todo": "To do", "doing": "In progress", "review": "In review", "done": "Done"}
PRIORITY_LABELS = {0: "Urgent", 1: "High", 2: "Normal", 3: "Low"}
API = "/api/v1/apps/projects"


def _base(ctx: PluginContext) -> str:
    return f"/t/{ctx.tenant_slug}/apps/projects"


def _page(ctx: PluginContext, title: str, html: str) -> Page:
    """A page in Orbit's layout with this plugin's script and styles."""
    head = (
        f'<link rel="stylesheet" href="{_base(ctx)}/static/projects.css">'
        f'<script src="{_base(ctx)}/static/projects.js" defer></script>'
    )
    return Page(title, head + html)


def _tabs(ctx: PluginContext, project: dict[str, Any], current: str) -> str:
    base = f"{_base(ctx)}/{project['id']}"
    tabs = [
        ("board", _("Board"), base),
        ("list", _("List"), f"{base}/list"),
        ("gantt", _("Gantt"), f"{base}/gantt"),
        ("time", _("Time"), f"{base}/time"),
        ("billing", _("Billing"), f"{base}/billing"),
        ("settings", _("Settings"), f"{base}/settings"),
    ]
    current_mark = ' aria-current="page"'
    links = "".join(
        f'<a href="{href}"{current_mark if key == current else ""}>{escape(label)}</a>'
        for key, label, href in tabs
    )
    return (
        f'<p><a href="{_base(ctx)}/">{escape(_("Projects"))}</a> / </p>'
        f'<nav class="prj-tabs">{links}</nav>'
    )


def _data(**values: Any) -> str:
    return " ".join(f'data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in values.items())


@get("/static/{name:str}")
async def static_file(name: str) -> Response[bytes]:
    """A vendored or own script, style or licence (only files of the static folder)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        return Response(b"not found", status_code=404, media_type="text/plain")
    return Response(
        path.read_bytes(),
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/")
async def projects_page(plugin: PluginContext) -> Any:
    """All projects, and a form for a new one."""
    rows = await service.list_projects(plugin)
    items = "".join(
        f'<tr><td><a href="{_base(plugin)}/{r["id"]}">{escape(r["name"])}</a></td>'
        f"<td>{escape(_(r['status']))}</td><td>{r['done']}/{r['tasks']}</td>"
        f"<td>{escape(r['billing_mode'].replace('_', ' '))}</td><td>{r['start_date']}</td></tr>"
        for r in rows
    )
    html = (
        f'<form id="prj-new-project" class="prj-form" {_data(api=API, base=_base(plugin))}>'
        f'<input name="name" required maxlength="200" placeholder="{escape(_("New project"))}">'
        f'<input name="start_date" type="date" value="{date.today().isoformat()}">'  # noqa: DTZ011
        f'<input name="hourly_rate" type="number" min="0" step="0.01" placeholder="{escape(_("Hourly rate"))}">'
        f'<select name="billing_mode"><option value="time_and_materials">{escape(_("Time and materials"))}</option>'
        f'<option value="fixed_price">{escape(_("Fixed price per milestone"))}</option>'
        f'<option value="prepaid">{escape(_("Prepaid hours"))}</option></select>'
        f'<button type="submit">{escape(_("Create"))}</button></form>'
        f'<table class="prj-table"><thead><tr><th>{escape(_("Project"))}</th><th>{escape(_("Status"))}</th>'
        f"<th>{escape(_('Done'))}</th><th>{escape(_('Billing'))}</th><th>{escape(_('Start'))}</th></tr></thead>"
        f"<tbody>{items or '<tr><td colspan=5>' + escape(_('No projects yet: win a deal or create one.')) + '</td></tr>'}"
        "</tbody></table>"
    )
    return _page(plugin, _("Projects"), html)


async def _names(ctx: PluginContext) -> dict[UUID, str]:
    """Members' names by id (``users:read``)."""
    return {u.id: u.name or u.email for u in await ctx.users.list()}


def _initials(name: str) -> str:
    return "".join(part[:1] for part in name.split()[:2]).upper() or "?"


def _card(task: dict[str, Any], names: dict[UUID, str], base: str) -> str:
    people = "".join(
        f'<span class="prj-avatar" title="{escape(names.get(p, ""))}">'
        f"{escape(_initials(names.get(p, '?')))}</span>"
        for p in task["assignees"]
    )
    badges = ""
    if task["milestone"]:
        badges += f'<span class="prj-badge">{escape(_("Milestone"))}</span>'
    if task["priority"] < 2:  # noqa: PLR2004
        badges += f'<span class="prj-badge prj-p{task["priority"]}">{escape(_(PRIORITY_LABELS[task["priority"]]))}</span>'
    return (
        f'<li class="prj-card" {_data(id=task["id"], version=task["version"])}>'
        f'<a class="prj-card-title" href="{base}/task/{task["id"]}">{escape(task["title"])}</a>'
        f"{badges}"
        f"<small>{task['due_date']} {people}</small></li>"
    )


@get("/{project_id:uuid}")
async def board_page(plugin: PluginContext, project_id: UUID) -> Any:
    """The kanban board: a column per status, a swimlane per lane, WIP limits shown."""
    project = await service.get_project(plugin, project_id)
    tasks = await service.list_tasks(plugin, project_id)
    names = await _names(plugin)
    lanes = sorted({t["lane"] for t in tasks}) or [""]
    limits = project["wip_limits"]
    counts = {s: sum(1 for t in tasks if t["status"] == s) for s in service.STATUSES}
    header = "".join(
        f'<div class="prj-colhead" data-status="{s}">{escape(_(STATUS_LABELS[s]))} '
        f'<span class="prj-count">{counts[s]}{f" / {limits[s]}" if limits.get(s) else ""}</span></div>'
        for s in service.STATUSES
    )
    rows = []
    for lane in lanes:
        cols = "".join(
            f'<ul class="prj-cards" {_data(status=s, lane=lane, wip=limits.get(s) or "")}>'
            + "".join(
                _card(t, names, _base(plugin))
                for t in tasks
                if t["status"] == s and t["lane"] == lane
            )
            + "</ul>"
            for s in service.STATUSES
        )
        title = f'<h3 class="prj-lane-title">{escape(lane)}</h3>' if lane else ""
        rows.append(f'<section class="prj-lane">{title}<div class="prj-row">{cols}</div></section>')
    html = (
        _tabs(plugin, project, "board")
        + f'<form id="prj-new-task" class="prj-form" {_data(api=API, project=project_id)}>'
        f'<input name="title" required maxlength="300" placeholder="{escape(_("New task"))}">'
        f'<input name="lane" maxlength="100" placeholder="{escape(_("Swimlane"))}">'
        f'<select name="assignee"><option value="">{escape(_("Nobody"))}</option>'
        + "".join(f'<option value="{k}">{escape(v)}</option>' for k, v in names.items())
        + f'</select><button type="submit">{escape(_("Add"))}</button></form>'
        f'<div id="prj-board" class="prj-board" {_data(api=API, project=project_id)}>'
        f'<div class="prj-row prj-head">{header}</div>{"".join(rows)}</div>'
        f'<p id="prj-message" role="status"></p>'
        f'<script src="{_base(plugin)}/static/Sortable.min.js" defer></script>'
    )
    return _page(plugin, project["name"], html)


@get("/{project_id:uuid}/list")
async def list_page(
    plugin: PluginContext,
    project_id: UUID,
    status: str | None = None,
    q: str | None = None,
    sort: str = "position",
) -> Any:
    """Every task in a table: filter, sort, select several and change them at once."""
    project = await service.get_project(plugin, project_id)
    tasks = await service.list_tasks(
        plugin, project_id, status=status or None, q=q or None, sort=sort
    )
    options = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>{escape(_(STATUS_LABELS[s]))}</option>'
        for s in service.STATUSES
    )
    sorts = "".join(
        f'<option value="{s}"{" selected" if s == sort else ""}>{escape(_(s.replace("_", " ")))}</option>'
        for s in ("position", "due_date", "priority", "title", "start_date")
    )
    rows = "".join(
        f'<tr {_data(id=t["id"])}><td><input type="checkbox" class="prj-pick" value="{t["id"]}"></td>'
        f'<td><a href="{_base(plugin)}/task/{t["id"]}">{escape(t["title"])}</a></td>'
        f"<td>{escape(_(STATUS_LABELS[t['status']]))}</td>"
        f"<td>{escape(_(PRIORITY_LABELS[t['priority']]))}</td><td>{t['start_date']}</td>"
        f"<td>{t['due_date']}</td><td>{t['estimate_hours']}</td>"
        f"<td>{escape(t['lane'])}</td><td>{'✓' if t['shared'] else ''}</td></tr>"
        for t in tasks
    )
    html = (
        _tabs(plugin, project, "list")
        + f'<form method="get" class="prj-form"><input name="q" value="{escape(q or "")}" '
        f'placeholder="{escape(_("Search"))}"><select name="status"><option value="">'
        f'{escape(_("Any status"))}</option>{options}</select><select name="sort">{sorts}</select>'
        f'<button type="submit">{escape(_("Filter"))}</button></form>'
        f'<form id="prj-bulk" class="prj-form" {_data(api=API, project=project_id)}>'
        f'<select name="status"><option value="">{escape(_("Set status…"))}</option>{options}</select>'
        f'<select name="priority"><option value="">{escape(_("Set priority…"))}</option>'
        + "".join(
            f'<option value="{k}">{escape(_(v))}</option>' for k, v in PRIORITY_LABELS.items()
        )
        + f'</select><select name="shared"><option value="">{escape(_("Client portal…"))}</option>'
        f'<option value="true">{escape(_("Share"))}</option>'
        f'<option value="false">{escape(_("Keep internal"))}</option></select>'
        f'<button type="submit">{escape(_("Apply to selected"))}</button></form>'
        f'<table class="prj-table" id="prj-list"><thead><tr><th></th><th>{escape(_("Task"))}</th>'
        f"<th>{escape(_('Status'))}</th><th>{escape(_('Priority'))}</th><th>{escape(_('Start'))}</th>"
        f"<th>{escape(_('Due'))}</th><th>{escape(_('Estimate (h)'))}</th><th>{escape(_('Lane'))}</th>"
        f"<th>{escape(_('Shared'))}</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<p id="prj-message" role="status"></p>'
    )
    return _page(plugin, project["name"], html)


@get("/{project_id:uuid}/gantt")
async def gantt_page(plugin: PluginContext, project_id: UUID) -> Any:
    """The Gantt chart: drag to reschedule, dependencies drawn, the critical path in red."""
    project = await service.get_project(plugin, project_id)
    rule = (
        _("Dependencies are enforced: a drag that breaks one is refused.")
        if project["enforce_dependencies"]
        else _("Dependencies are flagged: a drag that breaks one is saved and shown below.")
    )
    if project["auto_shift"]:
        rule += " " + _("Successors move along when a task moves later.")
    html = (
        _tabs(plugin, project, "gantt")
        + f'<link rel="stylesheet" href="{_base(plugin)}/static/frappe-gantt.css">'
        f'<p class="muted">{escape(rule)} <span class="prj-legend-critical">{escape(_("Critical path"))}</span></p>'
        f'<div id="prj-gantt" {_data(api=API, project=project_id)}></div>'
        f'<ul id="prj-violations"></ul><p id="prj-message" role="status"></p>'
        f'<script src="{_base(plugin)}/static/frappe-gantt.umd.js" defer></script>'
    )
    return _page(plugin, project["name"], html)


def _hours(minutes: int) -> str:
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01")))


@get("/{project_id:uuid}/time")
async def time_page(
    plugin: PluginContext,
    project_id: UUID,
    week: date | None = None,
) -> Any:
    """The timer, manual entries, approvals, the caller's week and totals against estimates."""
    project = await service.get_project(plugin, project_id)
    who = member(plugin)
    tasks = await service.list_tasks(plugin, project_id, sort="title")
    task_options = "".join(
        f'<option value="{t["id"]}">{escape(t["title"])}</option>' for t in tasks
    )
    running = await timesheets.running_timer(plugin, who.user_id) if who.user_id else None
    since = ""
    if running is not None and who.user_id is not None:
        zone = await timesheets.member_zone(plugin, who.user_id)
        since = f"{running['started_at'].astimezone(zone):%H:%M}"
    timer = (
        f'<p id="prj-timer" {_data(running="1")}>{escape(_("Timer running since"))} '
        f'{since} <button data-action="stop">{escape(_("Stop"))}</button></p>'
        if running
        else f'<p id="prj-timer"><select name="task_id"><option value="">{escape(_("No task"))}</option>'
        f'{task_options}</select> <button data-action="start">{escape(_("Start timer"))}</button></p>'
    )
    entries = await timesheets.entries(plugin, project_id, limit=500)
    names = await _names(plugin)
    rows = "".join(
        f"<tr {_data(id=e['id'], version=e['version'])}>"
        f'<td><input type="checkbox" class="prj-pick" value="{e["id"]}"{" disabled" if e["invoice_id"] else ""}></td>'
        f"<td>{escape(names.get(e['user_id'], ''))}</td><td>{e['day']}</td><td>{e['hours']}</td><td>{escape(e['note'])}</td>"
        f"<td>{'✓' if e['billable'] else ''}</td>"
        + (f"<td>{e['rate']} {e['currency']}</td>" if who.manager else "")
        + f"<td>{escape(_(e['status']))}{' · ' + escape(_('invoiced')) if e['invoice_id'] else ''}"
        f"{' · ' + escape(_('running')) if e['running'] else ''}</td></tr>"
        for e in entries
    )
    sheet = (
        await timesheets.timesheet(plugin, who.user_id, week or date.today())  # noqa: DTZ011
        if who.user_id
        else None
    )
    sheet_html = ""
    if sheet is not None:
        monday = sheet["week"]
        head = "".join(f"<th>{d:%a %d}</th>" for d in sheet["days"])
        lines = "".join(
            f"<tr><td>{escape(line['project'])} · {escape(line['task'])}</td>"
            + "".join(f"<td>{_hours(m) if m else ''}</td>" for m in line["minutes"])
            + f"<td>{_hours(sum(line['minutes']))}</td></tr>"
            for line in sheet["lines"]
        )
        nav = (
            f'<a href="?week={(monday - timedelta(days=7)).isoformat()}">←</a> '
            f"{escape(_('Week of'))} {monday} "
            f'<a href="?week={(monday + timedelta(days=7)).isoformat()}">→</a>'
        )
        sheet_html = (
            f'<h2>{escape(_("My week"))}</h2><p>{nav}</p><table class="prj-table" id="prj-sheet">'
            f"<thead><tr><th></th>{head}<th>{escape(_('Total'))}</th></tr></thead><tbody>{lines}</tbody>"
            f"<tfoot><tr><th>{escape(_('Total'))}</th>"
            + "".join(f"<th>{_hours(m)}</th>" for m in sheet["per_day"])
            + f"<th>{_hours(sheet['total'])}</th></tr></tfoot></table>"
        )
    totals = await timesheets.totals(plugin, project_id)
    over = ' class="prj-over"'
    total_rows = "".join(
        f"<tr{over if t['over_estimate'] else ''}><td>{escape(t['title'])}</td>"
        f"<td>{t['estimate_hours']}</td><td>{t['hours']}</td><td>{t['approved_hours']}</td></tr>"
        for t in totals
    )
    approve = (
        f'<button data-action="approve">{escape(_("Approve selected"))}</button> '
        f'<button data-action="reject">{escape(_("Reject selected"))}</button>'
        if who.manager
        else f'<button data-action="submit">{escape(_("Submit selected"))}</button>'
    )
    html = (
        _tabs(plugin, project, "time")
        + f'<div id="prj-time" {_data(api=API, project=project_id)}>{timer}'
        f'<form id="prj-entry" class="prj-form"><input name="day" type="date" value="{date.today().isoformat()}">'  # noqa: DTZ011
        f'<input name="minutes" type="number" min="1" max="1440" placeholder="{escape(_("Minutes"))}" required>'
        f'<select name="task_id"><option value="">{escape(_("No task"))}</option>{task_options}</select>'
        f'<input name="note" maxlength="2000" placeholder="{escape(_("Note"))}">'
        f'<label><input type="checkbox" name="billable" checked> {escape(_("Billable"))}</label>'
        f'<button type="submit">{escape(_("Log time"))}</button></form>'
        f'<p>{approve} <a href="{API}/projects/{project_id}/time.csv">{escape(_("Export CSV"))}</a></p>'
        f'<table class="prj-table" id="prj-entries"><thead><tr><th></th><th>{escape(_("Who"))}</th><th>{escape(_("Day"))}</th>'
        f"<th>{escape(_('Hours'))}</th><th>{escape(_('Note'))}</th><th>{escape(_('Billable'))}</th>"
        + (f"<th>{escape(_('Rate'))}</th>" if who.manager else "")
        + f"<th>{escape(_('Status'))}</th></tr></thead><tbody>{rows}</tbody></table></div>"
        f"{sheet_html}<h2>{escape(_('Totals against estimates'))}</h2>"
        f'<table class="prj-table"><thead><tr><th>{escape(_("Task"))}</th><th>{escape(_("Estimate (h)"))}</th>'
        f"<th>{escape(_('Logged (h)'))}</th><th>{escape(_('Approved (h)'))}</th></tr></thead>"
        f'<tbody>{total_rows}</tbody></table><p id="prj-message" role="status"></p>'
    )
    return _page(plugin, project["name"], html)


@get("/{project_id:uuid}/billing")
async def billing_page(plugin: PluginContext, project_id: UUID) -> Any:
    """What was billed, what is left to bill, the prepaid burn-down; "Bill project"."""
    project = await service.get_project(plugin, project_id)
    summary = await billing.ledger_summary(plugin, project_id)
    burn = await billing.burn_down(plugin, project_id)
    who = member(plugin)
    burn_html = ""
    if burn["block"] is not None:
        block = burn["block"]
        days = "".join(
            f"<tr><td>{d['day']}</td><td>{d['hours']}</td><td>{d['left']}</td></tr>"
            for d in burn["days"]
        )
        burn_html = (
            f'<h2>{escape(_("Prepaid hours"))}</h2><p id="prj-burn">{block["used"]} / {block["hours"]} h '
            f"{escape(_('used'))}, {block['left']} h {escape(_('left'))}</p>"
            f'<table class="prj-table"><thead><tr><th>{escape(_("Day"))}</th><th>{escape(_("Hours"))}</th>'
            f"<th>{escape(_('Left'))}</th></tr></thead><tbody>{days}</tbody></table>"
        )
    bills = await billing.invoices(plugin, project_id) if who.manager else []
    invoice_rows = "".join(
        f'<tr><td><a href="/t/{plugin.tenant_slug}/apps/invoicing/invoices/{b["invoice_id"]}">'
        f"{b['billed_at']:%Y-%m-%d}</a></td><td>{b['billed']}</td><td>{b['credited']}</td>"
        f"<td>{b['entries']}</td></tr>"
        for b in bills
    )
    invoices_html = (
        f'<h2>{escape(_("Invoices"))}</h2><table class="prj-table" id="prj-invoices"><thead><tr>'
        f"<th>{escape(_('Billed on'))}</th><th>{escape(_('Billed'))}</th>"
        f"<th>{escape(_('Credited'))}</th><th>{escape(_('Time entries'))}</th></tr></thead>"
        f"<tbody>{invoice_rows}</tbody></table>"
        if bills
        else ""
    )
    access = await portal.accesses(plugin, project_id)
    shared = "".join(f"<li>{escape(a['label'])}</li>" for a in access)
    contacts = await plugin.contacts.recent(200) if who.manager else []
    grant = (
        '<form id="prj-portal" class="prj-form"><select name="contact_id" required>'
        + "".join(f'<option value="{c.id}">{escape(c.name)}</option>' for c in contacts)
        + f'</select><button type="submit">{escape(_("Give portal access"))}</button></form>'
        f'<p><input id="prj-portal-link" readonly size="80" aria-label="{escape(_("Portal link"))}"></p>'
        if contacts
        else ""
    )
    money = (
        f"<dt>{escape(_('Billed'))}</dt><dd>{summary['billed']} {project['currency']}</dd>"
        f"<dt>{escape(_('Credited'))}</dt><dd>{summary['credited']} {project['currency']}</dd>"
        if who.manager
        else ""
    )
    html = (
        _tabs(plugin, project, "billing")
        + f'<div id="prj-billing" {_data(api=API, project=project_id)}>'
        f"<dl><dt>{escape(_('Mode'))}</dt><dd>{escape(_(project['billing_mode'].replace('_', ' ')))}</dd>"
        f"{money}<dt>{escape(_('Approved time not yet invoiced'))}</dt>"
        f"<dd>{summary['to_bill_hours']} h ({summary['to_bill_entries']})</dd></dl>"
        + (
            f'<button data-action="bill">{escape(_("Bill project"))}</button>'
            if who.manager
            else ""
        )
        + f'<p id="prj-message" role="status"></p>{burn_html}{invoices_html}'
        f"<h2>{escape(_('Client portal'))}</h2>"
        f'<p class="muted">{escape(_("Contacts given access see the tasks and comments marked shared, never rates or internal ones."))}</p>'
        f"<ul>{shared}</ul>{grant}</div>"
    )
    return _page(plugin, project["name"], html)


@get("/{project_id:uuid}/settings")
async def settings_page(plugin: PluginContext, project_id: UUID) -> Any:
    """The project's rules: billing, rates, WIP limits, dependencies; members' rates."""
    project = await service.get_project(plugin, project_id)
    who = member(plugin)
    modes = "".join(
        f'<option value="{m}"{" selected" if m == project["billing_mode"] else ""}>'
        f"{escape(_(m.replace('_', ' ')))}</option>"
        for m in service.BILLING_MODES
    )
    states = "".join(
        f'<option value="{m}"{" selected" if m == project["status"] else ""}>'
        f"{escape(_(m.replace('_', ' ')))}</option>"
        for m in ("active", "on_hold", "done", "archived")
    )
    limits = "".join(
        f'<label>{escape(_(STATUS_LABELS[k]))} <input name="wip_{k}" type="number" min="0" '
        f'value="{project["wip_limits"].get(k, "")}" size="3"></label>'
        for k in service.STATUSES
    )

    def checked(name: str) -> str:
        return " checked" if project[name] else ""

    rates = ""
    if who.manager:
        people = "".join(
            f'<option value="{k}">{escape(v)}</option>' for k, v in (await _names(plugin)).items()
        )
        rates = (
            f"<h2>{escape(_('Rates of members'))}</h2>"
            f'<form id="prj-rate" class="prj-form"><select name="user_id">{people}</select>'
            f'<input name="hourly_rate" type="number" min="0" step="0.01" required>'
            f'<button type="submit">{escape(_("Set rate"))}</button></form>'
        )
    html = (
        _tabs(plugin, project, "settings")
        + f'<form id="prj-settings" class="prj-form" {_data(api=API, project=project_id)}>'
        f'<label>{escape(_("Name"))} <input name="name" value="{escape(project["name"])}" required maxlength="200"></label>'
        f'<label>{escape(_("Status"))} <select name="status">{states}</select></label>'
        f'<label>{escape(_("Billing"))} <select name="billing_mode">{modes}</select></label>'
        f'<label>{escape(_("Currency"))} <input name="currency" value="{project["currency"]}" size="3" maxlength="3"></label>'
        f'<label>{escape(_("Hourly rate"))} <input name="hourly_rate" type="number" min="0" step="0.01" value="{project["hourly_rate"]}"></label>'
        f'<label>{escape(_("Budget"))} <input name="budget" type="number" min="0" step="0.01" value="{project["budget"]}"></label>'
        f'<label>{escape(_("Prepaid hours"))} <input name="prepaid_hours" type="number" min="0" step="0.25" value="{project["prepaid_hours"]}"></label>'
        f"<fieldset><legend>{escape(_('WIP limits (empty: none)'))}</legend>{limits}</fieldset>"
        f'<label><input type="checkbox" name="enforce_dependencies"{checked("enforce_dependencies")}> '
        f"{escape(_('Refuse dates that break a dependency'))}</label>"
        f'<label><input type="checkbox" name="auto_shift"{checked("auto_shift")}> '
        f"{escape(_('Move successors along when a task moves later'))}</label>"
        f'<button type="submit">{escape(_("Save"))}</button></form>{rates}'
        f'<p id="prj-message" role="status"></p>'
    )
    return _page(plugin, project["name"], html)


@get("/task/{task_id:uuid}")
async def task_page(plugin: PluginContext, task_id: UUID) -> Any:
    """One task: its fields, checklist, subtasks, dependencies and comments."""
    task = await service.get_task(plugin, task_id)
    project = await service.get_project(plugin, task["project_id"])
    names = await _names(plugin)
    siblings = await service.list_tasks(plugin, project["id"], sort="title")
    links = await service.project_links(plugin, project["id"])
    titles = {t["id"]: t["title"] for t in siblings}
    depends = "".join(
        f"<li>{escape(titles.get(x.predecessor, ''))}{f' (+{x.lag} d)' if x.lag else ''}</li>"
        for x in links
        if x.successor == task_id
    )
    subtasks = "".join(
        f'<li><a href="{_base(plugin)}/task/{t["id"]}">{escape(t["title"])}</a> · '
        f"{escape(_(STATUS_LABELS[t['status']]))}</li>"
        for t in siblings
        if t["parent_id"] == task_id
    )
    checklist = "".join(
        f'<li><label><input type="checkbox" class="prj-check" data-text="{escape(item["text"])}"'
        f"{' checked' if item['done'] else ''}> {escape(item['text'])}</label></li>"
        for item in task["checklist"]
    )
    notes = "".join(
        f'<li class="prj-comment"><strong>{escape(c["author_name"] or _("Someone"))}</strong> '
        f"<small>{c['created_at']:%Y-%m-%d %H:%M}{' · ' + escape(_('shared')) if c['shared'] else ''}"
        f"</small><br>{escape(c['body'])}</li>"
        for c in await service.comments(plugin, [task_id])
    )
    statuses = "".join(
        f'<option value="{k}"{" selected" if k == task["status"] else ""}>{escape(_(v))}</option>'
        for k, v in STATUS_LABELS.items()
    )
    others = "".join(
        f'<option value="{t["id"]}">{escape(t["title"])}</option>'
        for t in siblings
        if t["id"] != task_id
    )
    people = ", ".join(escape(names.get(p, "?")) for p in task["assignees"]) or escape(_("nobody"))
    shared_mark = " checked" if task["shared"] else ""
    html = (
        _tabs(plugin, project, "board")
        + f'<div id="prj-task" {_data(api=API, task=task_id, project=project["id"], version=task["version"])}>'
        f'<h2>{escape(task["title"])}</h2><p class="muted">{escape(_("Assigned to"))} {people}</p>'
        f'<form id="prj-task-edit" class="prj-form">'
        f'<input name="title" value="{escape(task["title"])}" maxlength="300" required>'
        f'<select name="status">{statuses}</select>'
        f'<input name="start_date" type="date" value="{task["start_date"]}">'
        f'<input name="due_date" type="date" value="{task["due_date"]}">'
        f'<input name="estimate_hours" type="number" min="0" step="0.25" value="{task["estimate_hours"]}">'
        f'<label><input type="checkbox" name="shared"{shared_mark}> {escape(_("Shared with the client"))}</label>'
        f'<button type="submit">{escape(_("Save"))}</button></form>'
        f'<h3>{escape(_("Checklist"))}</h3><ul id="prj-checklist">{checklist}</ul>'
        f'<form id="prj-check-add" class="prj-form"><input name="text" maxlength="500" required '
        f'placeholder="{escape(_("New item"))}"><button type="submit">{escape(_("Add"))}</button></form>'
        f"<h3>{escape(_('Subtasks'))}</h3><ul>{subtasks}</ul>"
        f'<form id="prj-subtask" class="prj-form"><input name="title" maxlength="300" required '
        f'placeholder="{escape(_("New subtask"))}"><button type="submit">{escape(_("Add"))}</button></form>'
        f"<h3>{escape(_('Depends on'))}</h3><ul>{depends}</ul>"
        f'<form id="prj-dep" class="prj-form"><select name="predecessor_id" required>{others}</select>'
        f'<input name="lag_days" type="number" value="0" min="-365" max="365" aria-label="{escape(_("Lag (working days)"))}">'
        f'<button type="submit">{escape(_("Add dependency"))}</button></form>'
        f"<h3>{escape(_('Comments'))}</h3><ul>{notes}</ul>"
        f'<form id="prj-comment" class="prj-form"><textarea name="body" required maxlength="10000"></textarea>'
        f'<label><input type="checkbox" name="shared"> {escape(_("Shared with the client"))}</label>'
        f'<button type="submit">{escape(_("Comment"))}</button></form>'
        f'<p id="prj-message" role="status"></p></div>'
    )
    return _page(plugin, task["title"], html)


@get("/{project_id:uuid}/gantt.json")
async def gantt_json(plugin: PluginContext, project_id: UUID) -> Response[bytes]:
    """The Gantt data the chart loads (same as the API's, for the page's own origin)."""
    data = await service.gantt(plugin, project_id)
    # frappe-gantt writes names with innerHTML: hand it escaped text.
    data["project"]["name"] = str(escape(data["project"]["name"]))
    for task in data["tasks"]:
        task["name"] = str(escape(task["name"]))
    return Response(json.dumps(data).encode(), media_type="application/json")


ROUTES = (
    static_file,
    task_page,
    settings_page,
    projects_page,
    board_page,
    list_page,
    gantt_page,
    time_page,
    billing_page,
    gantt_json,
)
