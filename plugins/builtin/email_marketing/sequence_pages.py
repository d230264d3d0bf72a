"""Sequence pages under ``/t/{slug}/apps/email_marketing/sequences``, in Orbit's layout.

The list of sequences with a form for a new one, and each sequence with its steps,
its activate/pause button and its enrolments (the step each contact is on, when it is
due, why it waits or why they left). Steps are written one a line::

    wait 2 days
    email Welcome
    wait until 09:00 mon,tue
    if clicked then next else end
    task in 24h Call them about the offer
    tag warm, trial
    webhook https://hooks.example.com/orbit

``if clicked|opened [email N]``, ``if stage <stage id>`` and ``if field <field> <op>
<value>`` take ``then``/``else`` targets: ``next``, ``end`` or a later step's number.
"""

from __future__ import annotations

import re
from gettext import gettext as _
from typing import Any
from uuid import UUID  # noqa: TC003 - Litestar reads the hints at run time

from litestar.exceptions import HTTPException, ValidationException

from orbit.plugins.api import Page, PluginContext, Request, Response, get, post
from orbit.plugins.builtin.email_marketing import audiences, library, sequences
from orbit.plugins.builtin.email_marketing.errors import invalid
from orbit.plugins.builtin.email_marketing.pages import (
    _a,
    _e,
    _errors,
    _field,
    _form,
    _menu,
    _redirect,
)

_DURATION = re.compile(r"(\d+)\s*(days?|d|hours?|h|minutes?|mins?|m)\b")
_BRANCH = re.compile(r"^(?P<head>.*?)\s+then\s+(?P<yes>\S+)(?:\s+else\s+(?P<no>\S+))?$")
_TASK_DUE = re.compile(r"^in\s+(\d+)\s*h(?:ours?)?\s+(.*)$")
EXAMPLE = "wait 2 days\nemail Welcome\nwait 3 days\nif clicked then next else end\ntask Call them"


def _target(raw: str | None, default: str) -> Any:
    if raw is None:
        return default
    return int(raw) if raw.isdigit() else raw


def _wait(rest: str) -> dict[str, Any]:
    if rest.startswith("until "):
        parts = rest.removeprefix("until ").split()
        days = parts[1].split(",") if len(parts) > 1 else []
        return {"type": "wait", "until": {"time": parts[0] if parts else "", "days": days}}
    step: dict[str, Any] = {"type": "wait", "days": 0, "hours": 0, "minutes": 0}
    found = _DURATION.findall(rest)
    if not found:
        msg = "wait needs a duration (2 days, 3h, 30m) or 'until HH:MM [mon,tue]'"
        raise ValueError(msg)
    for amount, unit in found:
        key = "days" if unit.startswith("d") else "hours" if unit.startswith("h") else "minutes"
        step[key] += int(amount)
    return step


def _condition(rest: str) -> dict[str, Any]:
    branch = _BRANCH.match(rest)
    head, yes, no = (branch["head"], branch["yes"], branch["no"]) if branch else (rest, None, None)
    step: dict[str, Any] = {
        "type": "condition",
        "yes": _target(yes, "next"),
        "no": _target(no, "end"),
    }
    words = head.split()
    if not words:
        msg = "if needs clicked, opened, stage or field"
        raise ValueError(msg)
    if words[0] in {"clicked", "opened"}:
        step["when"] = words[0]
        if len(words) >= 3 and words[1] == "email" and words[2].isdigit():  # noqa: PLR2004
            step["email"] = int(words[2])
    elif words[0] == "stage" and len(words) == 2:  # noqa: PLR2004
        step |= {"when": "deal_stage", "stage_id": words[1]}
    elif words[0] == "field" and len(words) >= 4:  # noqa: PLR2004
        value = " ".join(words[3:])
        step |= {"when": "fields", "filters": [{"field": words[1], "op": words[2], "value": value}]}
    else:
        msg = "if needs clicked, opened, 'stage <id>' or 'field <field> <op> <value>'"
        raise ValueError(msg)
    return step


def _line(word: str, rest: str, template_ids: dict[str, str]) -> dict[str, Any]:
    """One line's step (``ValueError`` says what is wrong with it)."""
    if word == "wait":
        return _wait(rest)
    if word == "email":
        found = template_ids.get(rest.lower())
        if found is None:
            msg = f"no template called {rest!r}"
            raise ValueError(msg)
        return {"type": "email", "template_id": found}
    if word == "if":
        return _condition(rest)
    if word == "task":
        due = _TASK_DUE.match(rest)
        title, hours = (due[2], int(due[1])) if due else (rest, 0)
        return {"type": "task", "title": title, "due_in_hours": hours}
    if word == "tag":
        return {"type": "tag", "tags": [t.strip() for t in rest.split(",")]}
    if word == "webhook":
        return {"type": "webhook", "url": rest}
    msg = "a step starts with wait, email, if, task, tag or webhook"
    raise ValueError(msg)


def parse_steps(text: str, template_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Steps written one a line → the API's steps; a 400 names the line that is wrong."""
    steps: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        word, _sep, rest = line.partition(" ")
        try:
            steps.append(_line(word, rest.strip(), template_ids))
        except (ValueError, IndexError) as exc:
            problems[f"steps line {number}"] = str(exc)
    if problems:
        raise invalid(problems)
    if not steps:
        raise invalid({"steps": "write at least one step"})
    return steps


def _describe_condition(step: dict[str, Any]) -> str:
    head = {
        "clicked": "clicked",
        "opened": "opened",
        "deal_stage": f"stage {step.get('stage_id')}",
    }.get(step["when"])
    if head is None:
        flt = step["filters"][0]
        head = f"field {flt.get('field')} {flt.get('op')} {flt.get('value')}"
    if step.get("email"):
        head += f" email {step['email']}"
    return f"if {head} then {step['yes']} else {step['no']}"


def describe(step: dict[str, Any], template_names: dict[str, str]) -> str:
    """A step written back as a line."""
    kind = step["type"]
    if kind == "wait" and "until" in step:
        days = ",".join(step["until"].get("days") or [])
        return f"wait until {step['until']['time']} {days}".rstrip()
    if kind == "wait":
        return "wait " + " ".join(
            f"{step[k]}{k[0]}" for k in ("days", "hours", "minutes") if step.get(k)
        )
    if kind == "condition":
        return _describe_condition(step)
    if kind == "task":
        due = f"in {step['due_in_hours']}h " if step.get("due_in_hours") else ""
        return f"task {due}{step['title']}"
    return {
        "email": lambda: f"email {template_names.get(step['template_id'], step['template_id'])}",
        "tag": lambda: "tag " + ", ".join(step["tags"]),
    }.get(kind, lambda: f"webhook {step['url']}")()


def _trigger_text(trigger: dict[str, Any], names: dict[str, str]) -> str:
    kind = trigger.get("type")
    if kind == "list_joined":
        return _("joins the list {name}").format(name=names.get(trigger["list_id"], "?"))
    if kind == "segment_entered":
        return _("enters the segment {name}").format(name=names.get(trigger["segment_id"], "?"))
    if kind == "opt_in_confirmed":
        return _("confirms an opt-in {purpose}").format(purpose=trigger.get("purpose") or "")
    if kind == "deal_stage":
        return _("has a deal reach stage {stage}").format(stage=trigger["stage_id"])
    if kind == "field_changed":
        return _("has {field} = {value}").format(field=trigger["field"], value=trigger["value"])
    return _("is enrolled by hand")


async def _names(ctx: PluginContext) -> dict[str, str]:
    lists = await audiences.lists(ctx)
    segments = await audiences.segments(ctx)
    return {str(item["id"]): item["name"] for item in [*lists, *segments]}


async def _templates(ctx: PluginContext) -> dict[str, str]:
    return {str(t["id"]): t["name"] for t in await library.templates_of(ctx)}


async def _trigger_options(ctx: PluginContext) -> str:
    options = [("manual", _("Enrolled by hand (API)")), ("opt_in", _("Confirms an opt-in"))]
    options += [(f"list:{i['id']}", _("Joins list {n}").format(n=i["name"]))
                for i in await audiences.lists(ctx)]  # fmt: skip
    options += [(f"segment:{i['id']}", _("Enters segment {n}").format(n=i["name"]))
                for i in await audiences.segments(ctx)]  # fmt: skip
    options += [("deal_stage", _("A deal reaches the stage below")),
                ("field", _("The field below gets the value below"))]  # fmt: skip
    return "".join(f'<option value="{_e(v)}">{_e(label)}</option>' for v, label in options)


async def _index(ctx: PluginContext, error: Exception | None = None) -> Page:
    names = await _names(ctx)
    rows = "".join(
        f"<tr><td>{_a(ctx, '/sequences/' + str(s['id']), s['name'])}</td>"
        f"<td>{_e(_trigger_text(s['trigger'], names))}</td><td>{_e(s['status'])}</td>"
        f"<td>{len(s['steps'])}</td><td>{s['enrolments']['active']}</td>"
        f"<td>{s['enrolments']['completed']}</td><td>{s['enrolments']['exited']}</td></tr>"
        for s in await sequences.all_sequences(ctx)
    )
    table = (
        f"<table><thead><tr><th>{_e(_('Sequence'))}</th><th>{_e(_('Who enters'))}</th>"
        f"<th>{_e(_('Status'))}</th><th>{_e(_('Steps'))}</th><th>{_e(_('In it'))}</th>"
        f"<th>{_e(_('Completed'))}</th><th>{_e(_('Left'))}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else f"<p>{_e(_('No sequences yet.'))}</p>"
    )
    form = (
        f"<h2>{_e(_('New sequence'))}</h2>{_errors(error)}"
        f'<form method="post" action="{_e(ctx.url("/sequences"))}" id="new-sequence">'
        f"{ctx.csrf_field()}{_field(_('Name'), 'name')}"
        f'<label>{_e(_("A contact enters when they"))} <select name="trigger">'
        f"{await _trigger_options(ctx)}</select></label>"
        f"{_field(_('Deal stage id'), 'stage_id')}{_field(_('Field'), 'field')}"
        f"{_field(_('Value'), 'value')}"
        f"{_field(_('From address'), 'from_email', ctx.settings.get('from_email') or '')}"
        f"{_field(_('From name'), 'from_name', ctx.settings.get('from_name') or '')}"
        f"{_field(_('Quiet hours from'), 'quiet_start', '21:00')}"
        f"{_field(_('to'), 'quiet_end', '08:00')}"
        f'<label>{_e(_("Steps, one a line"))}<br><textarea name="steps" rows="8" cols="60" '
        f'placeholder="{_e(EXAMPLE)}"></textarea></label>'
        f"<p><small>{_e(_('wait 2 days · wait until 09:00 mon,tue · email <template name> · '))}"
        f"{_e(_('if clicked|opened [email N] then next|end|N else next|end|N · '))}"
        f"{_e(_('if stage <id> … · if field tags contains vip … · task [in 24h] <title> · '))}"
        f"{_e(_('tag a, b · webhook <url>'))}</small></p>"
        f'<button type="submit">{_e(_("Create sequence"))}</button></form>'
    )
    return Page(
        _("Sequences"),
        f"{_menu(ctx, '/sequences')}{table}{form}",
        status_code=400 if error else 200,
    )


@get("/sequences")
async def sequences_page(plugin: PluginContext) -> Page:
    """The workspace's sequences, and a form for a new one."""
    return await _index(plugin)


def _trigger_of(form: dict[str, Any]) -> dict[str, Any]:
    choice = str(form.get("trigger") or "manual")
    kind, _sep, ident = choice.partition(":")
    if kind == "list":
        return {"type": "list_joined", "list_id": ident}
    if kind == "segment":
        return {"type": "segment_entered", "segment_id": ident}
    if kind == "opt_in":
        return {"type": "opt_in_confirmed"}
    if kind == "deal_stage":
        return {"type": "deal_stage", "stage_id": form.get("stage_id")}
    if kind == "field":
        return {"type": "field_changed", "field": form.get("field"), "value": form.get("value")}
    return {"type": "manual"}


@post("/sequences", status_code=303)
async def create_sequence(plugin: PluginContext, request: Request[Any, Any, Any]) -> Response[Any]:
    """Create a draft sequence from the form."""
    form = await _form(request)
    templates = {name.lower(): ident for ident, name in (await _templates(plugin)).items()}
    quiet = (
        {"start": form.get("quiet_start"), "end": form.get("quiet_end")}
        if form.get("quiet_start") or form.get("quiet_end")
        else None
    )
    try:
        steps = parse_steps(str(form.get("steps") or ""), templates)
        made = await sequences.create(
            plugin,
            {
                "name": form.get("name"),
                "trigger": _trigger_of(form),
                "steps": steps,
                "from_email": form.get("from_email"),
                "from_name": form.get("from_name") or "",
                "quiet_hours": quiet,
            },
        )
    except ValidationException as exc:
        return await _index(plugin, exc)
    return _redirect(plugin, f"/sequences/{made['id']}")


def _enrolment_row(row: dict[str, Any], names: dict[UUID, str]) -> str:
    done = "; ".join(f"{h['step']}: {h['outcome']}" for h in row["history"])
    state = row["status"]
    if row["status"] == "active":
        due = row["due_at"].strftime("%Y-%m-%d %H:%M UTC") if row["due_at"] else "—"
        state = _("step {step} ({kind}) due {due}").format(
            step=row["step"], kind=row["step_type"], due=due
        )
        if row["waiting"]:
            state += f" — {row['waiting']}"
    elif row["exit_reason"]:
        state += f": {row['exit_reason']}"
    contact = names.get(row["contact_id"]) or str(row["contact_id"])
    entered = row["enrolled_at"].strftime("%Y-%m-%d %H:%M")
    return (
        f"<tr><td>{_e(contact)}</td><td>{_e(state)}</td><td>{_e(row['last_error'] or '')}</td>"
        f"<td>{_e(done)}</td><td>{_e(entered)}</td></tr>"
    )


@get("/sequences/{sequence_id:uuid}")
async def sequence_page(plugin: PluginContext, sequence_id: UUID) -> Page:
    """One sequence: its steps, activate or pause, and where each contact is."""
    sequence = await sequences.get(plugin, sequence_id)
    templates = await _templates(plugin)
    steps = "".join(f"<li>{_e(describe(step, templates))}</li>" for step in sequence["steps"])
    action = "pause" if sequence["status"] == "active" else "activate"
    label = _("Pause") if action == "pause" else _("Activate")
    button = (
        f'<form method="post" action="{_e(plugin.url(f"/sequences/{sequence_id}/{action}"))}">'
        f'{plugin.csrf_field()}<button type="submit">{_e(label)}</button></form>'
    )
    rows = await sequences.enrolments(plugin, sequence_id)
    names: dict[UUID, str] = {}
    for row in rows:
        person = await plugin.contacts.get(row["contact_id"])
        if person is not None:
            names[row["contact_id"]] = f"{person.name} <{person.email or ''}>"
    table = (
        f"<table><thead><tr><th>{_e(_('Contact'))}</th><th>{_e(_('State'))}</th>"
        f"<th>{_e(_('Last error'))}</th><th>{_e(_('Steps done'))}</th>"
        f"<th>{_e(_('Entered'))}</th></tr></thead><tbody>"
        + "".join(_enrolment_row(row, names) for row in rows)
        + "</tbody></table>"
        if rows
        else f"<p>{_e(_('Nobody has entered yet.'))}</p>"
    )
    quiet = sequence["quiet_hours"]
    counts = sequence["enrolments"]
    return Page(
        sequence["name"],
        f"{_menu(plugin, '')}"
        f"<p>{_e(_('Status'))}: <strong>{_e(sequence['status'])}</strong> · "
        f"{_e(_('A contact enters when they'))} "
        f"{_e(_trigger_text(sequence['trigger'], await _names(plugin)))} · "
        f"{_e(sequence['from_name'])} &lt;{_e(sequence['from_email'])}&gt; · "
        + (_e(_("quiet hours {start}–{end}").format(**quiet)) if quiet else _e(_("no quiet hours")))
        + f"</p>{button}<h2>{_e(_('Steps'))}</h2><ol>{steps}</ol>"
        f"<h2>{_e(_('Enrolments'))}</h2><p>{_e(_('In it'))}: {counts['active']} · "
        f"{_e(_('Completed'))}: {counts['completed']} · {_e(_('Left'))}: {counts['exited']}</p>"
        f"{table}",
    )


@post("/sequences/{sequence_id:uuid}/{action:str}", status_code=303)
async def sequence_action(plugin: PluginContext, sequence_id: UUID, action: str) -> Response[Any]:
    """Activate or pause."""
    status = {"activate": "active", "pause": "paused"}.get(action)
    if status is None:
        raise HTTPException(status_code=404, detail=f"no action {action!r}")
    await sequences.set_status(plugin, sequence_id, status)
    return _redirect(plugin, f"/sequences/{sequence_id}")


def routes() -> list[Any]:
    """Every sequence page route handler."""
    return [sequences_page, create_sequence, sequence_page, sequence_action]
