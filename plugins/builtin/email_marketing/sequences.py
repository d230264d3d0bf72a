"""Sequences: the CRM follow-up — a trigger enrols a contact, then waits, checks and acts.

A sequence has a **trigger** (who enters), **steps** (what happens, in order) and a
sender. Triggers::

    {"type": "list_joined", "list_id": "…"}          added to a list
    {"type": "segment_entered", "segment_id": "…"}   created or changed into a segment
    {"type": "opt_in_confirmed", "purpose": "…"}     confirmed a (double) opt-in
    {"type": "deal_stage", "stage_id": "…"}          a deal of theirs reached a stage
    {"type": "field_changed", "field": "custom.plan", "value": "pro"}
                                                     created or changed with that value
    {"type": "manual"}                               enrolled through the API only

Steps::

    {"type": "wait", "days": 2, "hours": 0, "minutes": 0}
    {"type": "wait", "until": {"time": "09:00", "days": ["mon", "tue"]}}
    {"type": "email", "template_id": "…"}
    {"type": "condition", "when": "clicked" | "opened", "email": 2,
     "yes": "next", "no": "end"}
    {"type": "condition", "when": "fields", "filters": [<saved-view filters>], …}
    {"type": "condition", "when": "deal_stage", "stage_id": "…", …}
    {"type": "task", "title": "Call them", "due_in_hours": 24, "notes": ""}
    {"type": "tag", "tags": ["warm"]}
    {"type": "webhook", "url": "https://…"}

A condition's ``yes``/``no`` are ``"next"``, ``"end"`` or the number of a later step
(only forward, so every enrolment ends). ``clicked``/``opened`` count people only
(machine opens and scanner clicks never do), on the email step numbered ``email`` or
on any email the enrolment was sent.

**Each enrolment is a durable state machine** in ``email_marketing_enrolments``: the
step it is on and when that step is due. The sequence job claims due enrolments with
``FOR UPDATE SKIP LOCKED``, so timers survive restarts and two workers never walk one
enrolment at once. Every step done is written to ``email_marketing_sequence_runs``
(one row per enrolment and step) in the same transaction as its effect: a retried job
or a state walked again follows the recorded outcome instead of acting twice. A
contact enters a sequence once (redelivered events change nothing).

A contact **leaves** when their address is suppressed (unsubscribed, bounced,
complained), when they reply (:func:`record_reply`, ``POST …/sequences/replies``),
when a deal of theirs is won (unless the sequence says otherwise), or when they are
deleted. Emails wait out the sequence's **quiet hours** in the contact's time zone
(the custom field named by the ``time_zone_field`` setting, else the workspace's
``time_zone`` setting). Emails go through the campaign pipeline: each email step is
a campaign of audience kind ``sequence`` whose id is the step's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from gettext import gettext as _
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from litestar.exceptions import ClientException
from uuid_utils.compat import uuid7

from orbit.plugins.api import TimelineEntry, escape
from orbit.plugins.builtin.email_marketing import audiences, sending, suppression, templates
from orbit.plugins.builtin.email_marketing.campaigns import _email
from orbit.plugins.builtin.email_marketing.errors import Problems, invalid, not_found

if TYPE_CHECKING:
    from orbit.plugins.api import Contact, Event, PluginContext

TRIGGERS = (
    "list_joined",
    "segment_entered",
    "opt_in_confirmed",
    "deal_stage",
    "field_changed",
    "manual",
)
STEP_KINDS = ("wait", "email", "condition", "task", "tag", "webhook")
CONDITIONS = ("clicked", "opened", "fields", "deal_stage")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "owner_id", "company_id", "tags")
LIST_JOINED = "email_marketing.list_member_added"
"""The plugin's own event when contacts join a list: ``{"list_id", "contact_ids"}``."""
OPT_IN_CONFIRMED = "email_marketing.opt_in_confirmed"
"""The plugin's own event when someone confirms an opt-in.

``{"contact_id", "email", "purpose"}``.
"""
ADDRESS_SUPPRESSED = "email_marketing.address_suppressed"
"""The plugin's own event when an address joins the suppression list: ``{"email", "reason"}``."""
DEFAULT_QUIET = {"start": "21:00", "end": "08:00"}
MAX_STEPS = 50
MAX_WAIT_DAYS = 365
BATCH = 1000
"""Enrolments one run of the job claims at most (it walks them for ``RUN_SECONDS``)."""
MAX_ATTEMPTS = 5
RETRY_MINUTES = (1, 5, 30, 120)
WEBHOOK_TIMEOUT = 5.0
RUN_SECONDS = 20.0
"""How long one run of the job walks enrolments (the job's budget is 60 s)."""
MAX_PAGE = 500


class StateConflict(ClientException):
    """The sequence is not in a state that allows this (a 409)."""

    status_code = 409


# --- checking what a sequence says -----------------------------------------------------


def _uuid(raw: Any, where: str, problems: Problems) -> UUID | None:
    try:
        return UUID(str(raw))
    except ValueError:
        problems.add(where, f"{raw!r} is not an id" if raw else "is required")
        return None


def _clock(raw: Any, where: str, problems: Problems) -> time | None:
    try:
        hours, minutes = str(raw).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        problems.add(where, f"{raw!r} is not a time of day as HH:MM")
        return None


def _count(raw: Any, where: str, problems: Problems, top: int) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= top:
        problems.add(where, f"must be a whole number from 0 to {top}")
        return 0
    return raw


async def _check_trigger(ctx: PluginContext, raw: Any, problems: Problems) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in TRIGGERS:
        problems.add("trigger.type", f"must be one of {', '.join(TRIGGERS)}")
        return {}
    kind = raw["type"]
    if kind in {"list_joined", "segment_entered"}:
        key, table = (
            ("list_id", "email_marketing_lists")
            if kind == "list_joined"
            else ("segment_id", "email_marketing_segments")
        )
        ident = _uuid(raw.get(key), f"trigger.{key}", problems)
        if ident is not None and not await ctx.db.fetchval(
            f"SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, ident
        ):
            problems.add(f"trigger.{key}", f"{key[:-3]} {ident} not found in this workspace")
        return {"type": kind, key: str(ident)}
    if kind == "deal_stage":
        stage = _uuid(raw.get("stage_id"), "trigger.stage_id", problems)
        return {"type": kind, "stage_id": str(stage)}
    if kind == "opt_in_confirmed":
        purpose = raw.get("purpose") or ""
        if not isinstance(purpose, str) or len(purpose) > audiences.MAX_NAME:
            problems.add("trigger.purpose", "must be text")
        return {"type": kind, "purpose": purpose}
    if kind == "field_changed":
        name = raw.get("field")
        if not isinstance(name, str) or not (
            name in CONTACT_FIELDS or (name.startswith("custom.") and len(name) > len("custom."))
        ):
            problems.add(
                "trigger.field", f"must be one of {', '.join(CONTACT_FIELDS)} or custom.<key>"
            )
        value = raw.get("value")
        if value is None or isinstance(value, (dict, list)):
            problems.add("trigger.value", "is required: the value that enrols a contact")
        return {"type": kind, "field": name, "value": value}
    return {"type": kind}


def _target(raw: Any, where: str, position: int, total: int, problems: Problems) -> Any:
    if raw in ("next", "end"):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool) and position < raw <= total:
        return raw
    problems.add(where, f"must be 'next', 'end' or a later step number ({position + 1}–{total})")
    return "end"


def _check_email_ref(
    item: dict[str, Any], where: str, position: int, kinds: list[str], problems: Problems
) -> dict[str, Any]:
    """A click or open condition's email step: a number of an earlier email step, or any."""
    email = item.get("email")
    if email is None:
        if "email" not in kinds[: position - 1]:
            problems.add(f"{where}.when", f"{item['when']} needs an email step before it")
        return {}
    if not (
        isinstance(email, int)
        and not isinstance(email, bool)
        and 1 <= email < position
        and kinds[email - 1] == "email"
    ):
        problems.add(f"{where}.email", "must be the number of an email step before it")
    return {"email": email}


async def _check_condition(
    ctx: PluginContext,
    item: dict[str, Any],
    where: str,
    position: int,
    kinds: list[str],
    problems: Problems,
) -> dict[str, Any]:
    when = item.get("when")
    if when not in CONDITIONS:
        problems.add(f"{where}.when", f"must be one of {', '.join(CONDITIONS)}")
        return {}
    out: dict[str, Any] = {"when": when}
    if when in {"clicked", "opened"}:
        out |= _check_email_ref(item, where, position, kinds, problems)
    elif when == "fields":
        filters = item.get("filters")
        if not isinstance(filters, list) or not filters:
            problems.add(f"{where}.filters", "must be a non-empty list of contact filters")
        else:
            try:
                await ctx.contacts.count(filters)
            except Exception as exc:
                fields = getattr(exc, "fields", None)
                if not isinstance(fields, dict):
                    raise
                for key, message in fields.items():
                    problems.add(f"{where}.{key}", str(message))
            out["filters"] = filters
    else:
        out["stage_id"] = str(_uuid(item.get("stage_id"), f"{where}.stage_id", problems))
    return out


def _check_wait(item: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    if "until" in item:
        until = item["until"]
        if not isinstance(until, dict):
            problems.add(f"{where}.until", 'must be {"time": "HH:MM", "days": ["mon", …]}')
            return {}
        _clock(until.get("time"), f"{where}.until.time", problems)
        days = until.get("days") or []
        if not isinstance(days, list) or any(d not in WEEKDAYS for d in days):
            problems.add(f"{where}.until.days", f"must be a list of {', '.join(WEEKDAYS)}")
            days = []
        return {"until": {"time": until.get("time"), "days": days}}
    days = _count(item.get("days"), f"{where}.days", problems, MAX_WAIT_DAYS)
    hours = _count(item.get("hours"), f"{where}.hours", problems, 24 * MAX_WAIT_DAYS)
    minutes = _count(item.get("minutes"), f"{where}.minutes", problems, 60 * 24 * 7)
    total_minutes = days * 1440 + hours * 60 + minutes
    if total_minutes == 0 or total_minutes > MAX_WAIT_DAYS * 1440:
        problems.add(where, f"a wait needs days, hours or minutes (up to {MAX_WAIT_DAYS} days)")
    return {"days": days, "hours": hours, "minutes": minutes}


async def _check_email(
    ctx: PluginContext, item: dict[str, Any], where: str, problems: Problems
) -> dict[str, Any]:
    template_id = _uuid(item.get("template_id"), f"{where}.template_id", problems)
    if template_id is not None and not await ctx.db.fetchval(
        "SELECT 1 FROM email_marketing_templates WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        template_id,
    ):
        problems.add(f"{where}.template_id", f"template {template_id} not found in this workspace")
    return {"template_id": str(template_id)}


def _check_task(item: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    title = item.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > audiences.MAX_NAME:
        problems.add(f"{where}.title", f"is required, at most {audiences.MAX_NAME} characters")
    notes = item.get("notes", "")
    if not isinstance(notes, str) or len(notes) > audiences.MAX_DESCRIPTION:
        problems.add(f"{where}.notes", "must be text")
    hours = _count(item.get("due_in_hours"), f"{where}.due_in_hours", problems, 24 * 365)
    return {"title": str(title).strip(), "notes": notes, "due_in_hours": hours}


def _check_tag(item: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    tags = item.get("tags")
    if (
        not isinstance(tags, list)
        or not 1 <= len(tags) <= 20  # noqa: PLR2004
        or not all(isinstance(t, str) and t.strip() and len(t) <= 50 for t in tags)  # noqa: PLR2004
    ):
        problems.add(f"{where}.tags", "must be 1 to 20 tags of at most 50 characters")
        return {}
    return {"tags": [t.strip() for t in tags]}


def _check_webhook(item: dict[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    url = item.get("url")
    if not isinstance(url, str) or not templates._http_url(url):  # noqa: SLF001 - same plugin
        problems.add(f"{where}.url", "must be an http(s) URL")
    return {"url": url}


async def _check_step(
    ctx: PluginContext, item: Any, index: int, kinds: list[str], problems: Problems
) -> dict[str, Any]:
    where, position, total = f"steps[{index}]", index + 1, len(kinds)
    if not isinstance(item, dict) or item.get("type") not in STEP_KINDS:
        problems.add(f"{where}.type", f"must be one of {', '.join(STEP_KINDS)}")
        return {}
    kind = item["type"]
    if kind == "email":
        return await _check_email(ctx, item, where, problems)
    if kind == "condition":
        out = await _check_condition(ctx, item, where, position, kinds, problems)
        out["yes"] = _target(item.get("yes", "next"), f"{where}.yes", position, total, problems)
        out["no"] = _target(item.get("no", "end"), f"{where}.no", position, total, problems)
        return out
    checks = {
        "wait": _check_wait,
        "task": _check_task,
        "tag": _check_tag,
        "webhook": _check_webhook,
    }
    return checks[kind](item, where, problems)


def _quiet(raw: Any, problems: Problems) -> tuple[time | None, time | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        problems.add("quiet_hours", 'must be {"start": "HH:MM", "end": "HH:MM"} or null')
        return None, None
    start = _clock(raw.get("start"), "quiet_hours.start", problems)
    end = _clock(raw.get("end"), "quiet_hours.end", problems)
    if start is not None and start == end:
        problems.add("quiet_hours.end", "must differ from the start")
    return start, end


@dataclass
class Checked:
    """A sequence's fields, checked."""

    name: str
    trigger: dict[str, Any]
    steps: list[dict[str, Any]] | None
    from_email: str
    from_name: str
    reply_to: str | None
    quiet: tuple[time | None, time | None]
    exit_on_deal_won: bool


async def _check(ctx: PluginContext, body: dict[str, Any], *, steps: bool = True) -> Checked:
    problems = Problems()
    if not isinstance(body, dict):
        raise invalid({"body": "must be a JSON object"})
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > audiences.MAX_NAME:
        problems.add("name", f"is required, at most {audiences.MAX_NAME} characters")
    trigger = await _check_trigger(ctx, body.get("trigger"), problems)
    checked_steps: list[dict[str, Any]] | None = None
    if steps:
        raw = body.get("steps")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
            problems.add("steps", f"must be a list of 1 to {MAX_STEPS} steps")
        else:
            kinds = [str(item.get("type")) if isinstance(item, dict) else "" for item in raw]
            checked_steps = []
            for index, item in enumerate(raw):
                config = await _check_step(ctx, item, index, kinds, problems)
                checked_steps.append({"type": kinds[index], **config})
    from_email = _email(
        body.get("from_email") or ctx.settings.get("from_email"),
        "from_email",
        problems,
        required=True,
    )
    reply_to = _email(body.get("reply_to"), "reply_to", problems, required=False)
    from_name = body.get("from_name", ctx.settings.get("from_name") or "")
    if not isinstance(from_name, str) or len(from_name) > audiences.MAX_NAME:
        problems.add("from_name", f"must be text of at most {audiences.MAX_NAME} characters")
    quiet = _quiet(body.get("quiet_hours", DEFAULT_QUIET), problems)
    exit_on_won = body.get("exit_on_deal_won", True)
    if not isinstance(exit_on_won, bool):
        problems.add("exit_on_deal_won", "must be true or false")
    problems.raise_any()
    return Checked(
        name=str(name).strip(),
        trigger=trigger,
        steps=checked_steps,
        from_email=str(from_email),
        from_name=str(from_name).strip(),
        reply_to=reply_to,
        quiet=quiet,
        exit_on_deal_won=bool(exit_on_won),
    )


# --- sequences ---------------------------------------------------------------------------


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _sequence(row: Any, steps: list[Any], counts: dict[str, int]) -> dict[str, Any]:
    out = dict(row)
    out["trigger"] = _loaded(out["trigger"])
    start, end = out.pop("quiet_start"), out.pop("quiet_end")
    out["quiet_hours"] = (
        {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")} if start else None
    )
    out["steps"] = [
        {"id": s["id"], "position": s["position"], "type": s["kind"], **_loaded(s["config"])}
        for s in steps
    ]
    out["enrolments"] = {key: counts.get(key, 0) for key in ("active", "completed", "exited")}
    return out


_COLUMNS = (
    "id, name, status, trigger, from_email, from_name, reply_to, quiet_start, quiet_end, "
    "exit_on_deal_won, created_at, updated_at"
)


async def _steps(ctx: PluginContext, sequence_id: UUID) -> list[Any]:
    return await ctx.db.fetch(
        "SELECT id, position, kind, config FROM email_marketing_sequence_steps "
        "WHERE tenant_id = $1 AND sequence_id = $2 ORDER BY position",
        ctx.tenant_id,
        sequence_id,
    )


async def _counts(
    ctx: PluginContext, sequence_id: UUID | None = None
) -> dict[UUID, dict[str, int]]:
    rows = await ctx.db.fetch(
        "SELECT sequence_id, status, count(*) AS n FROM email_marketing_enrolments "
        "WHERE tenant_id = $1 AND ($2::uuid IS NULL OR sequence_id = $2) "
        "GROUP BY sequence_id, status",
        ctx.tenant_id,
        sequence_id,
    )
    found: dict[UUID, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["sequence_id"], {})[row["status"]] = row["n"]
    return found


async def get(ctx: PluginContext, sequence_id: UUID) -> dict[str, Any]:
    """One sequence with its steps and enrolment counts, or a 404."""
    row = await ctx.db.fetchrow(
        f"SELECT {_COLUMNS} FROM email_marketing_sequences WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        sequence_id,
    )
    if row is None:
        raise not_found("sequence", sequence_id)
    counts = await _counts(ctx, sequence_id)
    return _sequence(row, await _steps(ctx, sequence_id), counts.get(sequence_id, {}))


async def all_sequences(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's sequences by name, with their steps and enrolment counts."""
    rows = await ctx.db.fetch(
        f"SELECT {_COLUMNS} FROM email_marketing_sequences WHERE tenant_id = $1 "
        "ORDER BY lower(name), id",
        ctx.tenant_id,
    )
    counts = await _counts(ctx)
    return [_sequence(row, await _steps(ctx, row["id"]), counts.get(row["id"], {})) for row in rows]


async def _name_taken(ctx: PluginContext, name: str, other_than: UUID | None) -> None:
    if await ctx.db.fetchval(
        "SELECT 1 FROM email_marketing_sequences WHERE tenant_id = $1 AND lower(name) = lower($2) "
        "AND id IS DISTINCT FROM $3",
        ctx.tenant_id,
        name,
        other_than,
    ):
        raise invalid({"name": f"a sequence called {name!r} exists already"})


async def _write_steps(ctx: PluginContext, sequence_id: UUID, steps: list[dict[str, Any]]) -> None:
    """Replace the steps, keeping the id of a step whose position and type stay."""
    old = {(row["position"], row["kind"]): row["id"] for row in await _steps(ctx, sequence_id)}
    await ctx.db.execute(
        "DELETE FROM email_marketing_sequence_steps WHERE tenant_id = $1 AND sequence_id = $2",
        ctx.tenant_id,
        sequence_id,
    )
    for position, step in enumerate(steps, start=1):
        config = {key: value for key, value in step.items() if key != "type"}
        await ctx.db.execute(
            "INSERT INTO email_marketing_sequence_steps "
            "(tenant_id, id, sequence_id, position, kind, config) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            ctx.tenant_id,
            old.get((position, step["type"])) or uuid7(),
            sequence_id,
            position,
            step["type"],
            json.dumps(config),
        )


async def _sync_campaigns(ctx: PluginContext, sequence_id: UUID) -> None:
    """Each email step is a campaign of audience kind ``sequence``, sending while active."""
    await ctx.db.execute(
        """
        INSERT INTO email_marketing_campaigns AS c (tenant_id, id, name, template_id,
            audience_kind, audience_id, from_name, from_email, reply_to, status, paused_reason,
            started_at)
        SELECT s.tenant_id, st.id, s.name || ' · ' || st.position,
               (st.config ->> 'template_id')::uuid, 'sequence', s.id, s.from_name,
               s.from_email, s.reply_to,
               CASE WHEN s.status = 'active' THEN 'sending' ELSE 'paused' END,
               CASE WHEN s.status = 'active' THEN NULL ELSE 'the sequence is not active' END,
               now()
        FROM email_marketing_sequences s
        JOIN email_marketing_sequence_steps st
          ON st.tenant_id = s.tenant_id AND st.sequence_id = s.id AND st.kind = 'email'
        WHERE s.tenant_id = $1 AND s.id = $2
        ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name,
            template_id = EXCLUDED.template_id, from_name = EXCLUDED.from_name,
            from_email = EXCLUDED.from_email, reply_to = EXCLUDED.reply_to,
            status = EXCLUDED.status, paused_reason = EXCLUDED.paused_reason,
            updated_at = now()
        """,
        ctx.tenant_id,
        sequence_id,
    )
    # Email steps taken out of the sequence send nothing more.
    await ctx.db.execute(
        """
        UPDATE email_marketing_campaigns c SET status = 'paused',
            paused_reason = 'no longer a step of its sequence', updated_at = now()
        WHERE c.tenant_id = $1 AND c.audience_kind = 'sequence' AND c.audience_id = $2
          AND NOT EXISTS (SELECT 1 FROM email_marketing_sequence_steps st
                          WHERE st.tenant_id = c.tenant_id AND st.id = c.id)
        """,
        ctx.tenant_id,
        sequence_id,
    )


async def create(ctx: PluginContext, body: dict[str, Any]) -> dict[str, Any]:
    """A draft sequence with its steps; a 400 names each bad field (``steps[2].when``…)."""
    checked = await _check(ctx, body)
    await _name_taken(ctx, checked.name, None)
    sequence_id = uuid7()
    await ctx.db.execute(
        """
        INSERT INTO email_marketing_sequences (tenant_id, id, name, trigger, from_email,
            from_name, reply_to, quiet_start, quiet_end, exit_on_deal_won)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)
        """,
        ctx.tenant_id,
        sequence_id,
        checked.name,
        json.dumps(checked.trigger),
        checked.from_email,
        checked.from_name,
        checked.reply_to,
        checked.quiet[0],
        checked.quiet[1],
        checked.exit_on_deal_won,
    )
    assert checked.steps is not None  # noqa: S101 - checked with steps
    await _write_steps(ctx, sequence_id, checked.steps)
    await _sync_campaigns(ctx, sequence_id)
    return await get(ctx, sequence_id)


async def update(ctx: PluginContext, sequence_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Change a sequence; its steps only while nobody is in it (a 409 otherwise)."""
    current = await get(ctx, sequence_id)
    if not isinstance(body, dict):
        raise invalid({"body": "must be a JSON object"})
    new_steps = "steps" in body
    merged = {**current, **body}
    checked = await _check(ctx, merged, steps=new_steps)
    await _name_taken(ctx, checked.name, sequence_id)
    if new_steps and current["enrolments"]["active"]:
        raise StateConflict(
            f"sequence {sequence_id} has {current['enrolments']['active']} contacts in it; "
            "its steps change once they are through (or make a new sequence)"
        )
    await ctx.db.execute(
        """
        UPDATE email_marketing_sequences SET name = $3, trigger = $4::jsonb, from_email = $5,
            from_name = $6, reply_to = $7, quiet_start = $8, quiet_end = $9,
            exit_on_deal_won = $10, updated_at = now()
        WHERE tenant_id = $1 AND id = $2
        """,
        ctx.tenant_id,
        sequence_id,
        checked.name,
        json.dumps(checked.trigger),
        checked.from_email,
        checked.from_name,
        checked.reply_to,
        checked.quiet[0],
        checked.quiet[1],
        checked.exit_on_deal_won,
    )
    if checked.steps is not None:
        await _write_steps(ctx, sequence_id, checked.steps)
    await _sync_campaigns(ctx, sequence_id)
    return await get(ctx, sequence_id)


async def set_status(ctx: PluginContext, sequence_id: UUID, status: str) -> dict[str, Any]:
    """Activate (contacts enter, steps run) or pause (nobody enters, steps wait) a sequence."""
    current = await get(ctx, sequence_id)
    if status == "paused" and current["status"] == "draft":
        raise StateConflict(f"sequence {sequence_id} is a draft; activate it first")
    await ctx.db.execute(
        "UPDATE email_marketing_sequences SET status = $3, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        sequence_id,
        status,
    )
    await _sync_campaigns(ctx, sequence_id)
    return await get(ctx, sequence_id)


# --- time --------------------------------------------------------------------------------


def settings_problems(settings: dict[str, Any]) -> list[str]:
    """What is wrong with the sequences' settings (the workspace's time zone)."""
    name = settings.get("time_zone")
    if not name:
        return []
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return [f"time_zone: {name!r} is not an IANA time zone (e.g. Europe/Athens)"]
    return []


def zone_of(ctx: PluginContext, contact: Contact) -> ZoneInfo:
    """The contact's time zone (their custom field), else the workspace's, else UTC."""
    key = str(ctx.settings.get("time_zone_field") or "time_zone")
    for name in (contact.custom.get(key), ctx.settings.get("time_zone")):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _at_local(day: Any, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock).replace(tzinfo=zone).astimezone(UTC)


def in_quiet(local: time, start: time, end: time) -> bool:
    """Whether a local time of day falls in quiet hours (which may span midnight)."""
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_allowed(at: datetime, zone: ZoneInfo, start: time | None, end: time | None) -> datetime:
    """``at``, or the end of the quiet hours it falls in (in the contact's time zone)."""
    if start is None or end is None:
        return at
    local = at.astimezone(zone)
    if not in_quiet(local.time().replace(tzinfo=None), start, end):
        return at
    day = local.date() if local.time().replace(tzinfo=None) < end else local.date() + timedelta(1)
    return _at_local(day, end, zone)


def wait_until(at: datetime, zone: ZoneInfo, clock: time, days: list[str]) -> datetime:
    """The first moment after ``at`` that is ``clock`` on one of ``days`` (any day: [])."""
    local = at.astimezone(zone)
    for ahead in range(8):
        day = local.date() + timedelta(ahead)
        if days and WEEKDAYS[day.weekday()] not in days:
            continue
        candidate = _at_local(day, clock, zone)
        if candidate > at:
            return candidate
    return at + timedelta(days=7)  # unreachable: some day of the next eight matches


# --- enrolling ---------------------------------------------------------------------------


@dataclass
class Step:
    """One step of a loaded sequence."""

    id: UUID
    position: int
    kind: str
    config: dict[str, Any]


@dataclass
class Flow:
    """A sequence loaded for walking its enrolments."""

    id: UUID
    name: str
    status: str
    exit_on_deal_won: bool
    quiet: tuple[time | None, time | None]
    steps: list[Step] = field(default_factory=list)

    def by_id(self, step_id: UUID | None) -> Step | None:
        """The step with this id (``None``: past the end)."""
        return next((s for s in self.steps if s.id == step_id), None)

    def at(self, position: int) -> Step | None:
        """The step at a 1-based position."""
        return self.steps[position - 1] if 1 <= position <= len(self.steps) else None

    def after(self, step: Step, outcome: str) -> Step | None:
        """The step that follows ``step`` given its outcome (a condition's ``yes``/``no``)."""
        target: Any = "next"
        if step.kind == "condition":
            target = step.config.get("yes" if outcome == "yes" else "no", "end")
        if target == "end":
            return None
        if target == "next":
            return self.at(step.position + 1)
        return self.at(int(target))


async def load(ctx: PluginContext, sequence_id: UUID) -> Flow | None:
    """A sequence and its steps, for walking."""
    row = await ctx.db.fetchrow(
        "SELECT id, name, status, exit_on_deal_won, quiet_start, quiet_end "
        "FROM email_marketing_sequences WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        sequence_id,
    )
    if row is None:
        return None
    return Flow(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        exit_on_deal_won=row["exit_on_deal_won"],
        quiet=(row["quiet_start"], row["quiet_end"]),
        steps=[
            Step(s["id"], s["position"], s["kind"], _loaded(s["config"]))
            for s in await _steps(ctx, sequence_id)
        ],
    )


def entry_due(step: Step | None, at: datetime, zone: ZoneInfo) -> datetime | None:
    """When a step entered at ``at`` comes due: a wait's end, any other step at once."""
    if step is None:
        return None
    if step.kind != "wait":
        return at
    until = step.config.get("until")
    if until:
        hours, minutes = str(until["time"]).split(":")
        return wait_until(at, zone, time(int(hours), int(minutes)), until.get("days") or [])
    return at + timedelta(
        days=step.config.get("days") or 0,
        hours=step.config.get("hours") or 0,
        minutes=step.config.get("minutes") or 0,
    )


async def enrol(
    ctx: PluginContext,
    flow: Flow,
    contact: Contact,
    at: datetime,
    *,
    deal_id: UUID | None = None,
    source: str = "",
) -> bool:
    """Put a contact into an active sequence (once: ``False`` when they were in it already)."""
    if flow.status != "active" or not flow.steps:
        return False
    first = flow.steps[0]
    row = await ctx.db.fetchrow(
        """
        INSERT INTO email_marketing_enrolments (tenant_id, id, sequence_id, contact_id, deal_id,
            step_id, due_at, source, enrolled_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (tenant_id, sequence_id, contact_id) DO NOTHING RETURNING id
        """,
        ctx.tenant_id,
        uuid7(),
        flow.id,
        contact.id,
        deal_id,
        first.id,
        entry_due(first, at, zone_of(ctx, contact)),
        source[:200],
        at,
    )
    return row is not None


async def enrol_contacts(
    ctx: PluginContext, sequence_id: UUID, contact_ids: Any, at: datetime | None = None
) -> dict[str, Any]:
    """Enrol contacts by hand (API); how many entered. Unknown ids are a 400."""
    flow = await load(ctx, sequence_id)
    if flow is None:
        raise not_found("sequence", sequence_id)
    if flow.status != "active":
        raise StateConflict(
            f"sequence {sequence_id} is {flow.status}; contacts enter once it is active"
        )
    problems = Problems()
    if not isinstance(contact_ids, list) or not 1 <= len(contact_ids) <= audiences.MAX_ADD:
        problems.add("contact_ids", f"must be a list of 1 to {audiences.MAX_ADD} contact ids")
        problems.raise_any()
    ids = [_uuid(raw, f"contact_ids[{i}]", problems) for i, raw in enumerate(contact_ids)]
    problems.raise_any()
    found: list[Contact] = []
    for index, ident in enumerate(ids):
        contact = await ctx.contacts.get(ident) if ident else None
        if contact is None:
            problems.add(f"contact_ids[{index}]", f"contact {ident} not found in this workspace")
        else:
            found.append(contact)
    problems.raise_any()
    when = at or datetime.now(UTC)
    entered = 0
    for contact in found:
        entered += await enrol(ctx, flow, contact, when, source="enrolled by hand")
    return {"enrolled": entered}


async def _active(ctx: PluginContext, trigger: str) -> list[tuple[Flow, dict[str, Any]]]:
    rows = await ctx.db.fetch(
        "SELECT id, trigger FROM email_marketing_sequences "
        "WHERE tenant_id = $1 AND status = 'active' AND trigger ->> 'type' = $2",
        ctx.tenant_id,
        trigger,
    )
    found = []
    for row in rows:
        flow = await load(ctx, row["id"])
        if flow is not None:
            found.append((flow, _loaded(row["trigger"])))
    return found


async def matches(ctx: PluginContext, filters: Any, contact_id: UUID) -> bool:
    """Whether one contact passes saved-view filters (one indexed query through Orbit)."""
    before = UUID(int=contact_id.int - 1) if contact_id.int else None
    found = await ctx.contacts.query(filters or None, after=before, limit=1)
    return bool(found) and found[0].id == contact_id


async def in_segment(ctx: PluginContext, segment: dict[str, Any], contact_id: UUID) -> bool:
    """Whether one contact is in a segment now (its filters and people's email behaviour)."""
    if not await matches(ctx, segment["filters"], contact_id):
        return False
    problems = Problems()
    for condition in audiences.check_behaviour(segment["behaviour"], problems):
        did = await ctx.db.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM email_marketing_events
            WHERE tenant_id = $1 AND contact_id = $2 AND kind = $3 AND NOT machine
              AND ($4::uuid IS NULL OR campaign_id = $4)
              AND ($5::int IS NULL OR occurred_at >= now() - make_interval(days => $5)))
            """,
            ctx.tenant_id,
            contact_id,
            audiences.BEHAVIOUR_EVENTS[condition.event],
            condition.campaign_id,
            condition.days,
        )
        if bool(did) == condition.negative:
            return False
    return True


def _value_matches(data: dict[str, Any], name: str, wanted: Any) -> bool:
    if name == "tags":
        return any(str(tag).lower() == str(wanted).lower() for tag in data.get("tags") or [])
    if name.startswith("custom."):
        value = (data.get("custom") or {}).get(name.removeprefix("custom."))
    else:
        value = data.get(name)
    return value is not None and str(value) == str(wanted)


async def _contact_changed(ctx: PluginContext, data: dict[str, Any], at: datetime) -> None:
    contact_id = UUID(str(data["id"]))
    contact: Contact | None = None
    for flow, trigger in await _active(ctx, "field_changed"):
        if _value_matches(data, str(trigger.get("field")), trigger.get("value")):
            contact = contact or await ctx.contacts.get(contact_id)
            if contact is not None:
                source = f"{trigger['field']} is {trigger['value']}"
                await enrol(ctx, flow, contact, at, source=source)
    for flow, trigger in await _active(ctx, "segment_entered"):
        try:
            segment = await audiences.get_segment(ctx, UUID(trigger["segment_id"]))
        except ClientException:
            continue  # the segment is gone: nobody enters any more
        if await in_segment(ctx, segment, contact_id):
            contact = contact or await ctx.contacts.get(contact_id)
            if contact is not None:
                await enrol(ctx, flow, contact, at, source=f"entered segment {segment['name']}")


async def _enrol_ids(
    ctx: PluginContext,
    flows: list[Flow],
    contact_ids: list[UUID],
    at: datetime,
    source: str,
    deal_id: UUID | None = None,
) -> None:
    for contact_id in contact_ids:
        contact = await ctx.contacts.get(contact_id)
        if contact is None:
            continue
        for flow in flows:
            await enrol(ctx, flow, contact, at, deal_id=deal_id, source=source)


async def exit_contacts(
    ctx: PluginContext, contact_ids: list[UUID], reason: str, *, deal_won: bool = False
) -> int:
    """Take contacts out of every sequence they are in; how many enrolments ended.

    With ``deal_won``, only sequences that end on a won deal let them go.
    """
    if not contact_ids:
        return 0
    status = await ctx.db.execute(
        """
        UPDATE email_marketing_enrolments e SET status = 'exited', exit_reason = $3,
            due_at = NULL, waiting = '', finished_at = now(), updated_at = now()
        FROM email_marketing_sequences s
        WHERE e.tenant_id = $1 AND s.tenant_id = e.tenant_id AND s.id = e.sequence_id
          AND e.status = 'active' AND e.contact_id = ANY($2::uuid[])
          AND (NOT $4 OR s.exit_on_deal_won)
        """,
        ctx.tenant_id,
        contact_ids,
        reason,
        deal_won,
    )
    return int(status.split()[-1])


async def record_reply(
    ctx: PluginContext, *, contact_id: UUID | None = None, email: str | None = None
) -> int:
    """The contact replied: they leave every sequence; how many enrolments ended."""
    if contact_id is None and email:
        contact = await ctx.contacts.by_email(email)
        contact_id = contact.id if contact else None
    if contact_id is None:
        return 0
    return await exit_contacts(ctx, [contact_id], "replied")


def _ids(raw: Any) -> list[UUID]:
    found = []
    for item in raw or []:
        try:
            found.append(UUID(str(item)))
        except ValueError:
            continue
    return found


async def _deal_moved(ctx: PluginContext, data: dict[str, Any], at: datetime) -> None:
    stage = str(data.get("stage_id"))
    flows = [f for f, t in await _active(ctx, "deal_stage") if t.get("stage_id") == stage]
    if flows and data.get("status", "open") == "open":
        source = f"deal {data.get('title', '')} reached {data.get('stage_name', 'a stage')}"
        await _enrol_ids(
            ctx, flows, _ids(data.get("contact_ids")), at, source, UUID(str(data["id"]))
        )


async def _opted_in(ctx: PluginContext, data: dict[str, Any], at: datetime) -> None:
    purpose = str(data.get("purpose") or "")
    flows = [
        f
        for f, t in await _active(ctx, "opt_in_confirmed")
        if not t.get("purpose") or t.get("purpose") == purpose
    ]
    if not flows:
        return
    contact_ids = _ids([data.get("contact_id")] if data.get("contact_id") else [])
    if not contact_ids and data.get("email"):
        contact = await ctx.contacts.by_email(str(data["email"]))
        contact_ids = [contact.id] if contact else []
    await _enrol_ids(ctx, flows, contact_ids, at, f"confirmed opt-in {purpose}".strip())


async def _exits(ctx: PluginContext, event: Event) -> None:
    """Contacts leave on a won deal, a suppressed address, deletion or merge."""
    data = event.data
    if event.type == "deal.won":
        await exit_contacts(ctx, _ids(data.get("contact_ids")), "a deal was won", deal_won=True)
    elif event.type == ADDRESS_SUPPRESSED and data.get("email"):
        contact = await ctx.contacts.by_email(str(data["email"]))
        if contact is not None:
            await exit_contacts(ctx, [contact.id], f"suppressed ({data.get('reason', '')})")
    elif event.type == "contact.deleted":
        await exit_contacts(ctx, _ids([data.get("id")]), "the contact was deleted")
    elif event.type == "contact.merged":
        await exit_contacts(ctx, _ids(data.get("merged_ids")), "merged into another contact")


async def on_event(ctx: PluginContext, event: Event) -> None:
    """Enrol on triggers and let contacts go on exits; safe to deliver twice."""
    data, at = event.data, event.occurred_at
    if event.type in {"contact.created", "contact.updated"}:
        await _contact_changed(ctx, data, at)
    elif event.type in {"deal.created", "deal.stage_changed"}:
        await _deal_moved(ctx, data, at)
    elif event.type == LIST_JOINED:
        wanted = str(data.get("list_id"))
        flows = [f for f, t in await _active(ctx, "list_joined") if t.get("list_id") == wanted]
        if flows:
            await _enrol_ids(ctx, flows, _ids(data.get("contact_ids")), at, "joined a list")
    elif event.type == OPT_IN_CONFIRMED:
        await _opted_in(ctx, data, at)
    else:
        await _exits(ctx, event)


# --- the sequence job ------------------------------------------------------------------


async def _claim(ctx: PluginContext, now: datetime, limit: int) -> list[Any]:
    return await ctx.db.fetch(
        """
        SELECT e.id, e.sequence_id, e.contact_id, e.deal_id, e.step_id, e.due_at, e.attempts
        FROM email_marketing_enrolments e
        JOIN email_marketing_sequences s
          ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id AND s.status = 'active'
        WHERE e.tenant_id = $1 AND e.status = 'active' AND e.due_at <= $2
        ORDER BY e.due_at, e.id
        LIMIT $3
        FOR UPDATE OF e SKIP LOCKED
        """,
        ctx.tenant_id,
        now,
        limit,
    )


async def _finish(ctx: PluginContext, enrolment_id: UUID, status: str, reason: str | None) -> None:
    await ctx.db.execute(
        """
        UPDATE email_marketing_enrolments SET status = $3, exit_reason = $4, due_at = NULL,
            waiting = '', finished_at = now(), updated_at = now(),
            step_id = CASE WHEN $3 = 'completed' THEN NULL ELSE step_id END
        WHERE tenant_id = $1 AND id = $2
        """,
        ctx.tenant_id,
        enrolment_id,
        status,
        reason,
    )


async def _exit_reason(
    ctx: PluginContext, flow: Flow, contact: Contact, deal_id: UUID | None
) -> str | None:
    """Why the contact must leave before the next step, if they must."""
    email = (contact.email or "").strip().lower()
    if email and await sending.suppressed(ctx, [email]):
        reasons = [row["reason"] for row in await suppression.for_email(ctx, email)]
        return f"suppressed ({', '.join(reasons) or 'unsubscribe'})"
    if flow.exit_on_deal_won and deal_id is not None:
        deal = await ctx.deals.get(deal_id)
        if deal is not None and deal.status == "won":
            return "a deal was won"
    return None


async def _clicked_or_opened(
    ctx: PluginContext, flow: Flow, step: Step, enrolment_id: UUID, now: datetime
) -> bool:
    email_step = flow.at(int(step.config["email"])) if step.config.get("email") else None
    return bool(
        await ctx.db.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM email_marketing_sequence_runs r
            JOIN email_marketing_events ev
              ON ev.tenant_id = r.tenant_id AND ev.message_id = r.message_id
            WHERE r.tenant_id = $1 AND r.enrolment_id = $2
              AND ($3::uuid IS NULL OR r.step_id = $3)
              AND ev.kind = $4 AND NOT ev.machine AND ev.occurred_at <= $5)
            """,
            ctx.tenant_id,
            enrolment_id,
            email_step.id if email_step else None,
            "click" if step.config["when"] == "clicked" else "open",
            now,
        )
    )


async def _condition(
    ctx: PluginContext, flow: Flow, step: Step, enrolment: Any, contact: Contact, now: datetime
) -> bool:
    when = step.config["when"]
    if when in {"clicked", "opened"}:
        return await _clicked_or_opened(ctx, flow, step, enrolment["id"], now)
    if when == "fields":
        return await matches(ctx, step.config["filters"], contact.id)
    stage = UUID(str(step.config["stage_id"]))
    if enrolment["deal_id"] is not None:
        deal = await ctx.deals.get(enrolment["deal_id"])
        return deal is not None and deal.stage_id == stage
    return any(deal.stage_id == stage for deal in await ctx.deals.for_contact(contact.id))


async def _send(
    ctx: PluginContext, step: Step, contact: Contact
) -> tuple[str, dict[str, Any], UUID | None]:
    """Queue the step's email for the contact through the campaign pipeline."""
    email = (contact.email or "").strip().lower()
    if "@" not in email:
        return "skipped", {"reason": "the contact has no email address"}, None
    row = await ctx.db.fetchrow(
        """
        INSERT INTO email_marketing_messages
            (tenant_id, id, campaign_id, contact_id, email, domain, status, merge_values)
        VALUES ($1, $2, $3, $4, $5, split_part($5, '@', 2), 'queued', $6::jsonb)
        ON CONFLICT (tenant_id, campaign_id, email) DO NOTHING RETURNING id
        """,
        ctx.tenant_id,
        uuid7(),
        step.id,
        contact.id,
        email,
        json.dumps(templates.contact_values(contact), default=str),
    )
    if row is None:
        return "skipped", {"reason": "this address was sent this email already"}, None
    return "queued", {}, row["id"]


class NonPublicAddressError(httpx.ConnectError):
    """A webhook host that resolves to an address inside the network (loopback, private…)."""


class _PublicOnly(httpx.AsyncBaseTransport):
    """Connects only to globally routable addresses, to the very address it checked.

    A sequence's webhook URL is chosen by a workspace's user: without this it could
    reach the cloud metadata service or anything else inside Orbit's network.
    ``ORBIT_WEBHOOK_ALLOW_PRIVATE=1`` lets it reach private addresses (a self-hoster's
    LAN, tests), as for Orbit's own webhooks.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._allow_private = os.environ.get("ORBIT_WEBHOOK_ALLOW_PRIVATE", "") in {"1", "true"}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        refused = [a for a in addresses if not a.is_global]
        if not addresses or (refused and not self._allow_private):
            msg = f"refused: {host} resolves to a non-public address"
            raise NonPublicAddressError(msg, request=request)
        request.headers["Host"] = request.url.netloc.decode("ascii")
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host=str(addresses[0]))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``Orbit-Signature`` as Orbit's own webhooks sign: ``v1=`` HMAC-SHA256 of ``{ts}.{body}``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


async def _webhook(
    ctx: PluginContext, flow: Flow, step: Step, enrolment: Any, contact: Contact
) -> dict[str, Any]:
    body = {
        "sequence": {"id": str(flow.id), "name": flow.name},
        "step": step.position,
        "enrolment_id": str(enrolment["id"]),
        "deal_id": str(enrolment["deal_id"]) if enrolment["deal_id"] else None,
        "contact": {
            "id": str(contact.id),
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "email": contact.email,
        },
    }
    content = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": f"{enrolment['id']}:{step.id}",
        "User-Agent": "Orbit-Sequences/1",
    }
    secret = str(ctx.settings.get("sequence_webhook_secret") or "")
    if secret:
        timestamp = int(clock.time())
        headers["Orbit-Timestamp"] = str(timestamp)
        headers["Orbit-Signature"] = webhook_signature(secret, timestamp, content)
    async with httpx.AsyncClient(
        transport=_PublicOnly(), timeout=WEBHOOK_TIMEOUT, follow_redirects=False
    ) as client:
        response = await client.post(str(step.config["url"]), content=content, headers=headers)
    response.raise_for_status()
    return {"status": response.status_code}


async def _act(
    ctx: PluginContext, flow: Flow, step: Step, enrolment: Any, contact: Contact, now: datetime
) -> tuple[str, dict[str, Any], UUID | None]:
    """Do one step; (outcome, detail, message id)."""
    if step.kind == "email":
        return await _send(ctx, step, contact)
    if step.kind == "condition":
        met = await _condition(ctx, flow, step, enrolment, contact, now)
        return ("yes" if met else "no"), {"when": step.config["when"]}, None
    if step.kind == "task":
        owner = contact.owner_id
        if owner is None and enrolment["deal_id"] is not None:
            deal = await ctx.deals.get(enrolment["deal_id"])
            owner = deal.owner_id if deal else None
        task_id = await ctx.tasks.create(
            str(step.config["title"]),
            due_at=now + timedelta(hours=step.config.get("due_in_hours") or 0),
            assignee_id=owner,
            contact_id=contact.id,
            deal_id=enrolment["deal_id"],
            notes=step.config.get("notes") or f"From the sequence {flow.name}",
        )
        return "done", {"task_id": str(task_id)}, None
    if step.kind == "tag":
        await ctx.contacts.add_tags(contact.id, list(step.config["tags"]))
        return "done", {"tags": step.config["tags"]}, None
    return "done", await _webhook(ctx, flow, step, enrolment, contact), None


async def _ran(ctx: PluginContext, enrolment_id: UUID) -> dict[UUID, str]:
    """The steps this enrolment did already, with their outcomes (the ledger)."""
    rows = await ctx.db.fetch(
        "SELECT step_id, outcome FROM email_marketing_sequence_runs "
        "WHERE tenant_id = $1 AND enrolment_id = $2",
        ctx.tenant_id,
        enrolment_id,
    )
    return {row["step_id"]: row["outcome"] for row in rows}


async def _record(
    ctx: PluginContext,
    enrolment_id: UUID,
    step: Step,
    done: tuple[str, dict[str, Any], UUID | None],
    now: datetime,
) -> None:
    outcome, detail, message_id = done
    await ctx.db.execute(
        """
        INSERT INTO email_marketing_sequence_runs
            (tenant_id, enrolment_id, step_id, kind, outcome, message_id, detail, ran_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
        ON CONFLICT (tenant_id, enrolment_id, step_id) DO NOTHING
        """,
        ctx.tenant_id,
        enrolment_id,
        step.id,
        step.kind,
        outcome,
        message_id,
        json.dumps(detail),
        now,
    )


async def _save(
    ctx: PluginContext,
    enrolment_id: UUID,
    step_id: UUID,
    due: datetime | None,
    waiting: str = "",
    *,
    attempts: int = 0,
    error: str | None = None,
) -> None:
    await ctx.db.execute(
        """
        UPDATE email_marketing_enrolments SET step_id = $3, due_at = $4, waiting = $5,
            attempts = $6, last_error = $7, updated_at = now()
        WHERE tenant_id = $1 AND id = $2
        """,
        ctx.tenant_id,
        enrolment_id,
        step_id,
        due,
        waiting,
        attempts,
        error,
    )


async def _failed(
    ctx: PluginContext, enrolment: Any, step: Step, error: Exception, now: datetime
) -> None:
    """A step failed: try it again later, and after a few times let the contact go."""
    attempts = enrolment["attempts"] + 1
    message = f"step {step.position} ({step.kind}): {error}"[:500]
    ctx.log.warning("sequence enrolment %s %s", enrolment["id"], message)
    if attempts >= MAX_ATTEMPTS:
        await _finish(ctx, enrolment["id"], "exited", f"{message} (after {attempts} tries)")
        return
    retry = now + timedelta(minutes=RETRY_MINUTES[min(attempts, len(RETRY_MINUTES)) - 1])
    await _save(ctx, enrolment["id"], step.id, retry, "retry", attempts=attempts, error=message)


async def walk(ctx: PluginContext, flow: Flow, enrolment: Any, now: datetime) -> int:
    """Take one enrolment through every step due by ``now``; how many steps it did."""
    contact = await ctx.contacts.get(enrolment["contact_id"])
    if contact is None:
        await _finish(ctx, enrolment["id"], "exited", "the contact was deleted")
        return 0
    # Checked once a walk: every step it does happens at the same ``now``.
    if reason := await _exit_reason(ctx, flow, contact, enrolment["deal_id"]):
        await _finish(ctx, enrolment["id"], "exited", reason)
        return 0
    zone = zone_of(ctx, contact)
    step, due = flow.by_id(enrolment["step_id"]), enrolment["due_at"]
    ran = await _ran(ctx, enrolment["id"])
    done = 0
    while step is not None:
        if due is None or due > now:
            await _save(ctx, enrolment["id"], step.id, due)
            return done
        if step.kind == "wait":
            # The next step starts when the wait ended, however late the job runs.
            step = flow.after(step, "done")
            due = entry_due(step, due, zone)
            done += 1
            continue
        outcome = ran.get(step.id)
        if outcome is None:
            if step.kind == "email" and (allowed := next_allowed(now, zone, *flow.quiet)) > now:
                await _save(ctx, enrolment["id"], step.id, allowed, "quiet hours")
                return done
            try:
                result = await _act(ctx, flow, step, enrolment, contact, now)
            except Exception as exc:  # noqa: BLE001 - any failure of one step is retried
                await _failed(ctx, enrolment, step, exc, now)
                return done
            await _record(ctx, enrolment["id"], step, result, now)
            outcome = result[0]
        step = flow.after(step, outcome)
        due = entry_due(step, now, zone)
        done += 1
    await _finish(ctx, enrolment["id"], "completed", None)
    return done


async def run_due(ctx: PluginContext, now: datetime | None = None, limit: int = BATCH) -> int:
    """One run of the sequence job: every due enrolment walked; how many steps were done."""
    now = now or datetime.now(UTC)
    flows: dict[UUID, Flow | None] = {}
    done = 0
    deadline = clock.monotonic() + RUN_SECONDS
    for enrolment in await _claim(ctx, now, limit):
        if clock.monotonic() > deadline:
            break  # the rest stay due (their locks go with this run's commit)
        sequence_id = enrolment["sequence_id"]
        if sequence_id not in flows:
            flows[sequence_id] = await load(ctx, sequence_id)
        flow = flows[sequence_id]
        if flow is not None:
            done += await walk(ctx, flow, enrolment, now)
    return done


# --- what the pages and the API show ---------------------------------------------------


async def enrolments(
    ctx: PluginContext, sequence_id: UUID, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A sequence's enrolments, newest first, with the step each is on and what it did."""
    await get(ctx, sequence_id)
    if status is not None and status not in {"active", "completed", "exited"}:
        raise invalid({"status": "must be active, completed or exited"})
    rows = await ctx.db.fetch(
        """
        SELECT e.id, e.contact_id, e.deal_id, e.status, e.step_id, st.position AS step,
               st.kind AS step_type, e.due_at, e.waiting, e.exit_reason, e.attempts,
               e.last_error, e.source, e.enrolled_at, e.finished_at,
               coalesce((SELECT json_agg(json_build_object('step', s2.position,
                    'type', r.kind, 'outcome', r.outcome, 'message_id', r.message_id,
                    'detail', r.detail, 'ran_at', r.ran_at) ORDER BY r.ran_at, s2.position)
                 FROM email_marketing_sequence_runs r
                 LEFT JOIN email_marketing_sequence_steps s2
                   ON s2.tenant_id = r.tenant_id AND s2.id = r.step_id
                 WHERE r.tenant_id = e.tenant_id AND r.enrolment_id = e.id), '[]') AS history
        FROM email_marketing_enrolments e
        LEFT JOIN email_marketing_sequence_steps st
          ON st.tenant_id = e.tenant_id AND st.id = e.step_id
        WHERE e.tenant_id = $1 AND e.sequence_id = $2 AND ($3::text IS NULL OR e.status = $3)
        ORDER BY e.enrolled_at DESC, e.id DESC LIMIT $4
        """,
        ctx.tenant_id,
        sequence_id,
        status,
        min(max(limit, 1), MAX_PAGE),
    )
    return [{**dict(row), "history": _loaded(row["history"])} for row in rows]


async def timeline(ctx: PluginContext, contact_id: UUID) -> list[TimelineEntry]:
    """The contact entering, completing and leaving sequences, for their timeline."""
    rows = await ctx.db.fetch(
        "SELECT s.name, e.status, e.exit_reason, e.source, e.enrolled_at, e.finished_at "
        "FROM email_marketing_enrolments e JOIN email_marketing_sequences s "
        "ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id "
        "WHERE e.tenant_id = $1 AND e.contact_id = $2 ORDER BY e.enrolled_at DESC LIMIT 25",
        ctx.tenant_id,
        contact_id,
    )
    found: list[TimelineEntry] = []
    for row in rows:
        found.append(
            TimelineEntry(
                occurred_at=row["enrolled_at"],
                title=_("Entered the sequence “{name}”").format(name=row["name"]),
                body=str(escape(row["source"])),
            )
        )
        if row["finished_at"] is None:
            continue
        title = (
            _("Completed the sequence “{name}”")
            if row["status"] == "completed"
            else _("Left the sequence “{name}”")
        )
        found.append(
            TimelineEntry(
                occurred_at=row["finished_at"],
                title=title.format(name=row["name"]),
                body=str(escape(row["exit_reason"] or "")),
            )
        )
    return found


async def export(ctx: PluginContext, contact_id: UUID) -> list[dict[str, Any]]:
    """The contact's enrolments (a data export), JSON-ready."""
    rows = await ctx.db.fetch(
        "SELECT s.name AS sequence, e.status, e.exit_reason, e.source, e.enrolled_at, "
        "e.finished_at FROM email_marketing_enrolments e JOIN email_marketing_sequences s "
        "ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id "
        "WHERE e.tenant_id = $1 AND e.contact_id = $2 ORDER BY e.enrolled_at",
        ctx.tenant_id,
        contact_id,
    )
    return [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(row).items()}
        for row in rows
    ]


async def erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Forget the contact's enrolments and their step ledger."""
    await ctx.db.execute(
        "DELETE FROM email_marketing_enrolments WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )
