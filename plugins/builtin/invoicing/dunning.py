"""Dunning: the chain from a reminder email to a call in the staff queue to a lawyer.

Each workspace has a policy of levels: an offset in days after the invoice's due date,
an action (``reminder`` email, ``call`` task in the call queue assigned round-robin
among the call team, ``lawyer`` escalation with a dossier), an optional fee, statutory
interest and a new due date. A daily job (and the manual trigger, with the same
rules) walks every overdue invoice:

- a level is *due* on ``due date + offset``, never before the new due date an earlier
  level gave, and at most one level fires per invoice and day, so a run after missed
  days catches up one level at a time instead of firing the whole chain at once;
- each level fires **once** per invoice: the step's key is ``(invoice, level)`` and it
  is written before the action, in the same transaction, with the case row locked;
- the current policy is read at every run (editing it applies to open cases);
- the chain stops when the invoice is paid, disputed, or escalated to the lawyer, and
  waits while a promise to pay runs.

Every step lands on the customer's timeline.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID  # noqa: TC003 - Litestar reads the handlers' hints at run time

import msgspec
from litestar import Controller
from litestar.exceptions import ValidationException
from litestar.response import Redirect
from uuid_utils.compat import uuid7

from orbit.plugins.api import (
    Page,
    PluginContext,
    Request,
    Response,
    ScheduledJob,
    Setting,
    TimelineEntry,
    escape,
    get,
    post,
    put,
)
from orbit.plugins.builtin.invoicing.errors import invalid, not_found
from orbit.plugins.builtin.invoicing.money import format_money, round_money
from orbit.plugins.builtin.invoicing.payments import (
    BALANCE_SQL,
    METHODS,
    AllocationIn,
    Balance,
    PaymentIn,
    balance,
    balance_from_row,
    record_payment,
)

TABLES = (
    "invoicing_dunning_levels",
    "invoicing_dunning_cases",
    "invoicing_dunning_steps",
    "invoicing_dunning_notes",
    "invoicing_dunning_rotation",
    "invoicing_dunning_dossiers",
)
SCOPES = ("tasks:read", "tasks:write", "users:read", "mail:send")
SETTINGS = (
    Setting(
        name="dunning_call_team",
        label="Call team (member emails, comma-separated; empty: every member)",
        default="",
    ),
    Setting(name="dunning_lawyer_email", label="Lawyer's email for escalations", default=""),
    Setting(
        name="dunning_interest_rate",
        label="Statutory interest, % a year (EU: ECB rate + 8 points)",
        type="number",
        default=10.15,
        minimum=0,
        maximum=50,
    ),
)
ACTIONS = ("reminder", "call", "lawyer")
RUN_LIMIT = 300
"""Invoices looked at per run (the oldest due first), to stay inside the job's 60 s."""
DEFAULT_POLICY = (
    (1, "Friendly reminder", 3, "reminder", Decimal(0), False, 7),
    (2, "Call the customer", 14, "call", Decimal(0), False, 7),
    (3, "Hand over to the lawyer", 30, "lawyer", Decimal(40), True, None),
)
"""(level, name, offset days, action, fee, interest, extend days) set up on install."""


@dataclass(frozen=True, slots=True)
class Level:
    """One level of the policy."""

    level: int
    name: str
    offset_days: int
    action: str
    fee: Decimal
    interest: bool
    extend_days: int | None

    def to_json(self) -> dict[str, Any]:
        """As the API sends it."""
        return {
            "level": self.level,
            "name": self.name,
            "offset_days": self.offset_days,
            "action": self.action,
            "fee": str(self.fee),
            "interest": self.interest,
            "extend_days": self.extend_days,
        }


async def policy(ctx: PluginContext) -> list[Level]:
    """The workspace's levels in order."""
    rows = await ctx.db.fetch(
        "SELECT level, name, offset_days, action, fee, interest, extend_days "
        "FROM invoicing_dunning_levels WHERE tenant_id = $1 ORDER BY level",
        ctx.tenant_id,
    )
    return [Level(**dict(row)) for row in rows]


async def on_installed(ctx: PluginContext) -> None:
    """The default policy: reminder, call, lawyer."""
    for level, name, offset, action, fee, interest, extend in DEFAULT_POLICY:
        await ctx.db.execute(
            "INSERT INTO invoicing_dunning_levels (tenant_id, level, name, offset_days, action, "
            "fee, interest, extend_days) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT DO NOTHING",
            ctx.tenant_id,
            level,
            name,
            offset,
            action,
            fee,
            interest,
            extend,
        )


class LevelIn(msgspec.Struct, forbid_unknown_fields=True):
    """A level of the policy as the API takes it."""

    name: str
    offset_days: int
    action: str
    fee: str = "0"
    interest: bool = False
    extend_days: int | None = None


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    """The whole policy, level 1 first (it replaces the current one)."""

    levels: list[LevelIn]


def checked_policy(data: PolicyIn) -> list[Level]:
    """The levels, or a 400 naming the first bad field."""
    if len(data.levels) > 9:  # noqa: PLR2004
        raise invalid("levels", "at most 9 levels")
    levels: list[Level] = []
    previous = -1
    for index, item in enumerate(data.levels):
        field = f"levels[{index}]"
        name = item.name.strip()
        if not 1 <= len(name) <= 80:  # noqa: PLR2004
            raise invalid(f"{field}.name", "1 to 80 characters")
        if not 0 <= item.offset_days <= 365 or item.offset_days <= previous:  # noqa: PLR2004
            raise invalid(f"{field}.offset_days", "0 to 365, later than the level before")
        if item.action not in ACTIONS:
            raise invalid(f"{field}.action", f"one of {', '.join(ACTIONS)}")
        try:
            fee = Decimal(item.fee)
        except InvalidOperation:
            raise invalid(f"{field}.fee", f"{item.fee!r} is not an amount") from None
        if not fee.is_finite() or fee < 0:
            raise invalid(f"{field}.fee", "a positive amount or 0")
        if item.extend_days is not None and not 1 <= item.extend_days <= 365:  # noqa: PLR2004
            raise invalid(f"{field}.extend_days", "1 to 365 days, or null")
        previous = item.offset_days
        levels.append(
            Level(
                index + 1, name, item.offset_days, item.action, fee, item.interest, item.extend_days
            )
        )
    return levels


async def save_policy(ctx: PluginContext, levels: list[Level]) -> None:
    """Replace the workspace's policy (steps already fired stay as they are)."""
    await ctx.db.execute("DELETE FROM invoicing_dunning_levels WHERE tenant_id = $1", ctx.tenant_id)
    for level in levels:
        await ctx.db.execute(
            "INSERT INTO invoicing_dunning_levels (tenant_id, level, name, offset_days, action, "
            "fee, interest, extend_days) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ctx.tenant_id,
            level.level,
            level.name,
            level.offset_days,
            level.action,
            level.fee,
            level.interest,
            level.extend_days,
        )


# --- the run -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fired:
    """A level that fired for an invoice."""

    invoice_id: UUID
    number: str
    level: int
    action: str
    fired_on: date


def level_due_on(due_date: date, level: Level, last_new_due: date | None) -> date:
    """When ``level`` is due: its offset after the due date, after any new due date given."""
    due_on = due_date + timedelta(days=level.offset_days)
    if last_new_due is not None:
        due_on = max(due_on, last_new_due + timedelta(days=1))
    return due_on


def interest(outstanding: Decimal, rate: Decimal, days: int, currency: str) -> Decimal:
    """Simple statutory interest on ``outstanding`` for ``days`` at ``rate`` % a year."""
    if days <= 0 or rate <= 0:
        return Decimal(0)
    return round_money(outstanding * rate / 100 * days / 365, currency)


async def _case(ctx: PluginContext, invoice_id: UUID, due_date: date) -> Any:
    await ctx.db.execute(
        "INSERT INTO invoicing_dunning_cases (tenant_id, invoice_id, due_date) "
        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        ctx.tenant_id,
        invoice_id,
        due_date,
    )
    return await ctx.db.fetchrow(
        "SELECT * FROM invoicing_dunning_cases WHERE tenant_id = $1 AND invoice_id = $2 FOR UPDATE",
        ctx.tenant_id,
        invoice_id,
    )


def _paused(case: Any, today: date) -> bool:
    if case["status"] in {"disputed", "escalated", "closed"}:
        return True
    return (
        case["status"] == "promised"
        and case["promised_until"] is not None
        and (case["promised_until"] >= today)
    )


async def run_dunning(
    ctx: PluginContext,
    today: date,
    *,
    invoice_id: UUID | None = None,
    trigger: str = "job",
    now: bool = False,
) -> list[Fired]:
    """Fire the levels due on ``today``.

    ``now`` (a person's "send the next reminder now") fires the next level even before
    it is due or when one fired today; each level still fires once, with its fee.
    """
    levels = await policy(ctx)
    if not levels:
        return []
    rows = await ctx.db.fetch(
        "SELECT * FROM (" + BALANCE_SQL + " AND i.kind = 'invoice' AND i.status = 'finalized' "
        "AND i.due_date IS NOT NULL AND ($2::uuid IS NULL OR i.id = $2) "
        "AND ($2::uuid IS NOT NULL OR i.due_date < $3)) b "
        # Open amounts, and paid ones whose case is still to be closed.
        "WHERE b.payable_total > b.allocated OR EXISTS (SELECT 1 FROM invoicing_dunning_cases c "
        "  WHERE c.tenant_id = $1 AND c.invoice_id = b.id AND c.status <> 'closed') "
        "ORDER BY b.due_date, b.id LIMIT $4",
        ctx.tenant_id,
        invoice_id,
        today,
        RUN_LIMIT,
    )
    fired: list[Fired] = []
    for row in rows:
        bal = balance_from_row(row)
        if bal.due <= 0 or bal.due_date is None:  # paid: the chain stops, the case closes
            await ctx.db.execute(
                "UPDATE invoicing_dunning_cases SET status = 'closed', updated_at = now() "
                "WHERE tenant_id = $1 AND invoice_id = $2 AND status <> 'closed'",
                ctx.tenant_id,
                bal.invoice_id,
            )
            continue
        case = await _case(ctx, bal.invoice_id, bal.due_date)
        if _paused(case, today):
            continue
        step = await _next_step(ctx, bal, levels, today, now=now)
        if step is not None:
            fired.append(await _fire(ctx, bal, step, today, trigger))
    return fired


async def _next_step(
    ctx: PluginContext, bal: Balance, levels: list[Level], today: date, *, now: bool
) -> Level | None:
    steps = await ctx.db.fetch(
        "SELECT level, fired_on, new_due_date FROM invoicing_dunning_steps "
        "WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY fired_on, level",
        ctx.tenant_id,
        bal.invoice_id,
    )
    done = {step["level"] for step in steps}
    pending = [level for level in levels if level.level not in done]
    if not pending or bal.due_date is None:
        return None
    last = steps[-1] if steps else None
    if not now and last is not None and last["fired_on"] >= today:
        return None  # one level a day per invoice (a person may move on sooner)
    level = pending[0]
    new_due = next((s["new_due_date"] for s in reversed(steps) if s["new_due_date"]), None)
    if not now and level_due_on(bal.due_date, level, new_due) > today:
        return None
    return level


async def _fire(ctx: PluginContext, bal: Balance, level: Level, today: date, trigger: str) -> Fired:
    rate = Decimal(str(ctx.settings.get("dunning_interest_rate") or 0))
    days_late = (today - bal.due_date).days if bal.due_date else 0
    owed_interest = (
        interest(bal.due, rate, days_late, bal.currency) if level.interest else Decimal(0)
    )
    fee = round_money(level.fee, bal.currency)
    new_due = today + timedelta(days=level.extend_days) if level.extend_days else None
    written = await ctx.db.fetchval(
        "INSERT INTO invoicing_dunning_steps (tenant_id, invoice_id, level, action, fired_on, "
        "trigger, fee, interest, new_due_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT DO NOTHING RETURNING level",
        ctx.tenant_id,
        bal.invoice_id,
        level.level,
        level.action,
        today,
        trigger,
        fee,
        owed_interest,
        new_due,
    )
    if written is None:  # raced by another run: it fired this level
        return Fired(bal.invoice_id, bal.number or "", level.level, level.action, today)
    invoice = await ctx.db.fetchrow(
        "SELECT number, customer, contact_id, company_id, deal_id FROM invoicing_invoices "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        bal.invoice_id,
    )
    facts = _Facts(bal, level, today, fee, owed_interest, new_due, invoice)
    detail: dict[str, Any]
    if level.action == "reminder":
        detail = await _remind(ctx, facts)
    elif level.action == "call":
        detail = await _call(ctx, facts)
    else:
        detail = await _escalate(ctx, facts)
    await ctx.db.execute(
        "UPDATE invoicing_dunning_steps SET task_id = $4, assignee_id = $5, detail = $6::jsonb "
        "WHERE tenant_id = $1 AND invoice_id = $2 AND level = $3",
        ctx.tenant_id,
        bal.invoice_id,
        level.level,
        detail.pop("task_id", None),
        detail.pop("assignee_id", None),
        json.dumps(detail),
    )
    await ctx.db.execute(
        "UPDATE invoicing_dunning_cases SET status = $3, updated_at = now() "
        "WHERE tenant_id = $1 AND invoice_id = $2",
        ctx.tenant_id,
        bal.invoice_id,
        "escalated" if level.action == "lawyer" else "active",
    )
    return Fired(bal.invoice_id, bal.number or "", level.level, level.action, today)


@dataclass(frozen=True, slots=True)
class _Facts:
    bal: Balance
    level: Level
    today: date
    fee: Decimal
    interest: Decimal
    new_due: date | None
    invoice: Any

    def money(self, value: Decimal, language: str = "en") -> str:
        return format_money(value, self.bal.currency, language)

    def summary(self) -> str:
        lines = [
            (
                f"Invoice {self.bal.number}, due {self.bal.due_date}: "
                f"{self.money(self.bal.due)} still to pay."
            ),
        ]
        if self.fee:
            lines.append(f"Reminder fee: {self.money(self.fee)}.")
        if self.interest:
            lines.append(f"Statutory interest so far: {self.money(self.interest)}.")
        if self.new_due:
            lines.append(f"Please pay by {self.new_due}.")
        return "\n".join(lines)


async def _customer_email(ctx: PluginContext, facts: _Facts) -> str | None:
    raw = facts.invoice["customer"]
    customer = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    if customer.get("email"):
        return str(customer["email"])
    if facts.invoice["contact_id"] is not None:
        contact = await ctx.contacts.get(facts.invoice["contact_id"])
        if contact is not None and contact.email:
            return contact.email
    return None


async def _remind(ctx: PluginContext, facts: _Facts) -> dict[str, Any]:
    to = await _customer_email(ctx, facts)
    if to is None:
        return {"sent": False, "reason": "the customer has no email address"}
    seller = str(ctx.settings.get("seller_name") or "")
    subject = f"Reminder: invoice {facts.bal.number} is overdue"
    text = (
        f"Hello,\n\nour records show that the following is still open:\n\n{facts.summary()}\n\n"
        f"If you have already paid, please ignore this message.\n\n{seller}".rstrip()
    )
    email_id = await ctx.mail.send(to, subject, text)
    return {"sent": True, "to": to, "subject": subject, "text": text, "email_id": str(email_id)}


async def _call_team(ctx: PluginContext) -> list[Any]:
    members = [user for user in await ctx.users.list() if user.role != "viewer"]
    wanted = {
        email.strip().lower()
        for email in str(ctx.settings.get("dunning_call_team") or "").split(",")
        if email.strip()
    }
    team = [user for user in members if user.email.lower() in wanted] if wanted else members
    return sorted(team, key=lambda user: str(user.id))


async def _call(ctx: PluginContext, facts: _Facts) -> dict[str, Any]:
    team = await _call_team(ctx)
    assignee = None
    if team:
        turn = await ctx.db.fetchval(
            "INSERT INTO invoicing_dunning_rotation (tenant_id, turn) VALUES ($1, 1) "
            "ON CONFLICT (tenant_id) DO UPDATE SET turn = invoicing_dunning_rotation.turn + 1 "
            "RETURNING turn",
            ctx.tenant_id,
        )
        assignee = team[(int(turn) - 1) % len(team)]
    notes = facts.summary() + "\n\nRecord the call's outcome (promise, dispute) on the invoice."
    task_id = await ctx.tasks.create(
        f"Call about overdue invoice {facts.bal.number}",
        due_at=datetime.now(UTC),
        assignee_id=assignee.id if assignee else None,
        contact_id=facts.invoice["contact_id"],
        company_id=facts.invoice["company_id"],
        deal_id=facts.invoice["deal_id"],
        notes=notes,
    )
    return {
        "task_id": task_id,
        "assignee_id": assignee.id if assignee else None,
        "assignee": assignee.email if assignee else None,
    }


async def _escalate(ctx: PluginContext, facts: _Facts) -> dict[str, Any]:
    content = await dossier(ctx, facts)
    digest = hashlib.sha256(content).hexdigest()
    await ctx.db.execute(
        "INSERT INTO invoicing_dunning_dossiers (tenant_id, invoice_id, content, sha256) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        ctx.tenant_id,
        facts.bal.invoice_id,
        content,
        digest,
    )
    lawyer = str(ctx.settings.get("dunning_lawyer_email") or "").strip()
    detail: dict[str, Any] = {"dossier_sha256": digest, "dossier_bytes": len(content)}
    if lawyer:
        link = ctx.url(f"/dunning/invoices/{facts.bal.invoice_id}/dossier.zip")
        await ctx.mail.send(
            lawyer,
            f"Collection case: invoice {facts.bal.number}",
            f"{facts.summary()}\n\nThe dossier (invoice PDF, reminders sent, call notes): {link}",
        )
        detail["lawyer"] = lawyer
    return detail


async def dossier(ctx: PluginContext, facts: _Facts) -> bytes:
    """A zip: the issued invoice (and credit note) PDFs, reminders sent, call notes, a summary."""
    invoice_id = facts.bal.invoice_id
    # The invoice's issued PDF and those of the credit notes that corrected it.
    pdfs = await ctx.db.fetch(
        "SELECT d.content, d.filename, i.kind FROM invoicing_documents d "
        "JOIN invoicing_invoices i ON i.tenant_id = d.tenant_id AND i.id = d.invoice_id "
        "WHERE d.tenant_id = $1 AND d.kind = 'pdf' AND (d.invoice_id = $2 OR "
        "(i.kind = 'credit_note' AND i.credited_invoice_id = $2)) ORDER BY i.kind DESC, i.number",
        ctx.tenant_id,
        invoice_id,
    )
    steps = await ctx.db.fetch(
        "SELECT level, action, fired_on, fee, interest, new_due_date, task_id, detail "
        "FROM invoicing_dunning_steps WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY level",
        ctx.tenant_id,
        invoice_id,
    )
    notes = await ctx.db.fetch(
        "SELECT kind, body, promised_until, created_at FROM invoicing_dunning_notes "
        "WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY created_at",
        ctx.tenant_id,
        invoice_id,
    )
    reminders, calls = [], []
    for step in steps:
        detail = json.loads(step["detail"]) if isinstance(step["detail"], str) else step["detail"]
        if step["action"] == "reminder":
            reminders.append(
                f"Level {step['level']} on {step['fired_on']} to {detail.get('to', '-')}\n"
                f"Subject: {detail.get('subject', '-')}\n\n{detail.get('text', detail)}\n"
            )
        elif step["action"] == "call" and step["task_id"] is not None:
            task = await ctx.tasks.get(step["task_id"])
            if task is not None:
                state = f"done {task.done_at:%Y-%m-%d}" if task.done_at else "open"
                calls.append(f"Call task {task.title} ({state}):\n{task.notes}\n")
    calls += [
        f"{note['created_at']:%Y-%m-%d %H:%M} {note['kind']}"
        + (f" until {note['promised_until']}" if note["promised_until"] else "")
        + f": {note['body']}\n"
        for note in notes
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for pdf in pdfs:
            folder = "invoice" if pdf["kind"] == "invoice" else "credit-notes"
            archive.writestr(f"{folder}/{pdf['filename']}", bytes(pdf["content"]))
        archive.writestr("reminders.txt", "\n".join(reminders) or "No reminder was sent.\n")
        archive.writestr("call-notes.txt", "\n".join(calls) or "No call notes.\n")
        archive.writestr("summary.txt", facts.summary() + "\n")
    return buffer.getvalue()


# --- notes: calls, promises, disputes -------------------------------------------------------


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    """A call's outcome, a promise to pay (until a date), a dispute, or resuming the chain."""

    kind: str
    body: str = ""
    promised_until: date | None = None


async def add_note(
    ctx: PluginContext, invoice_id: UUID, data: NoteIn, today: date
) -> dict[str, Any]:
    """Record a note; promises and disputes pause the chain, ``resume`` restarts it."""
    if data.kind not in {"call", "promise", "dispute", "resume"}:
        raise invalid("kind", "one of call, promise, dispute, resume")
    if len(data.body) > 4000:  # noqa: PLR2004
        raise invalid("body", "at most 4000 characters")
    if data.kind == "promise" and (data.promised_until is None or data.promised_until < today):
        raise invalid("promised_until", "a promise to pay needs a date from today on")
    row = await ctx.db.fetchrow(
        "SELECT due_date FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2 "
        "AND kind = 'invoice' AND status = 'finalized'",
        ctx.tenant_id,
        invoice_id,
    )
    if row is None:
        raise not_found(f"finalized invoice {invoice_id}")
    case = await _case(ctx, invoice_id, row["due_date"] or today)
    status = {"promise": "promised", "dispute": "disputed", "resume": "active"}.get(
        data.kind, case["status"]
    )
    await ctx.db.execute(
        "UPDATE invoicing_dunning_cases SET status = $3, promised_until = $4, updated_at = now() "
        "WHERE tenant_id = $1 AND invoice_id = $2",
        ctx.tenant_id,
        invoice_id,
        status,
        data.promised_until if data.kind == "promise" else case["promised_until"],
    )
    note_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO invoicing_dunning_notes (tenant_id, id, invoice_id, kind, body, "
        "promised_until) VALUES ($1, $2, $3, $4, $5, $6)",
        ctx.tenant_id,
        note_id,
        invoice_id,
        data.kind,
        data.body,
        data.promised_until,
    )
    return {"id": str(note_id), "kind": data.kind, "case": status}


async def case_of(ctx: PluginContext, invoice_id: UUID) -> dict[str, Any] | None:
    """An invoice's dunning case: status and steps."""
    case = await ctx.db.fetchrow(
        "SELECT * FROM invoicing_dunning_cases WHERE tenant_id = $1 AND invoice_id = $2",
        ctx.tenant_id,
        invoice_id,
    )
    if case is None:
        return None
    steps = await ctx.db.fetch(
        "SELECT level, action, fired_on, trigger, fee, interest, new_due_date, task_id, "
        "assignee_id FROM invoicing_dunning_steps WHERE tenant_id = $1 AND invoice_id = $2 "
        "ORDER BY level",
        ctx.tenant_id,
        invoice_id,
    )
    return {
        "invoice_id": str(invoice_id),
        "status": case["status"],
        "promised_until": case["promised_until"].isoformat() if case["promised_until"] else None,
        "steps": [
            {
                "level": s["level"],
                "action": s["action"],
                "fired_on": s["fired_on"].isoformat(),
                "trigger": s["trigger"],
                "fee": str(s["fee"]),
                "interest": str(s["interest"]),
                "new_due_date": s["new_due_date"].isoformat() if s["new_due_date"] else None,
                "task_id": str(s["task_id"]) if s["task_id"] else None,
                "assignee_id": str(s["assignee_id"]) if s["assignee_id"] else None,
            }
            for s in steps
        ],
    }


# --- routes, job, timeline -----------------------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


class RunIn(msgspec.Struct, forbid_unknown_fields=True):
    """The manual trigger: ``now`` fires the next level even before it is due."""

    now: bool = False


class DunningController(Controller):
    """``/dunning``: the policy, cases, notes, the manual trigger and dossiers."""

    path = "/dunning"

    @get("/levels")
    async def get_levels(self, plugin: PluginContext) -> list[dict[str, Any]]:
        """The policy's levels."""
        return [level.to_json() for level in await policy(plugin)]

    @put("/levels")
    async def put_levels(self, plugin: PluginContext, data: PolicyIn) -> list[dict[str, Any]]:
        """Replace the policy (it applies to open cases from the next run on)."""
        levels = checked_policy(data)
        await save_policy(plugin, levels)
        return [level.to_json() for level in levels]

    @post("/run")
    async def run_all(self, plugin: PluginContext) -> list[dict[str, Any]]:
        """Run the chain for every overdue invoice now (what the daily job does)."""
        return [_fired_json(f) for f in await run_dunning(plugin, _today(), trigger="manual")]

    @post("/invoices/{invoice_id:uuid}/run")
    async def run_one(
        self, plugin: PluginContext, invoice_id: UUID, data: RunIn
    ) -> list[dict[str, Any]]:
        """Apply the rules to one invoice (``now``: its next level even if not yet due)."""
        if (
            await plugin.db.fetchval(
                "SELECT 1 FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2",
                plugin.tenant_id,
                invoice_id,
            )
            is None
        ):
            raise not_found(f"invoice {invoice_id}")
        fired = await run_dunning(
            plugin, _today(), invoice_id=invoice_id, trigger="manual", now=data.now
        )
        return [_fired_json(f) for f in fired]

    @get("/invoices/{invoice_id:uuid}")
    async def get_case(self, plugin: PluginContext, invoice_id: UUID) -> dict[str, Any]:
        """The invoice's dunning case."""
        case = await case_of(plugin, invoice_id)
        if case is None:
            raise not_found(f"dunning case of invoice {invoice_id}")
        return case

    @post("/invoices/{invoice_id:uuid}/notes")
    async def post_note(
        self, plugin: PluginContext, invoice_id: UUID, data: NoteIn
    ) -> dict[str, Any]:
        """Record a call, a promise to pay, a dispute, or resume the chain."""
        return await add_note(plugin, invoice_id, data, _today())

    @get("/invoices/{invoice_id:uuid}/dossier.zip")
    async def get_dossier(self, plugin: PluginContext, invoice_id: UUID) -> Response[bytes]:
        """The lawyer's dossier, as built at escalation."""
        row = await plugin.db.fetchrow(
            "SELECT content, sha256 FROM invoicing_dunning_dossiers WHERE tenant_id = $1 "
            "AND invoice_id = $2",
            plugin.tenant_id,
            invoice_id,
        )
        if row is None:
            raise not_found(f"dossier of invoice {invoice_id}")
        return Response(
            content=bytes(row["content"]),
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="dossier-{invoice_id}.zip"',
                "X-Content-SHA256": row["sha256"],
            },
        )


def _fired_json(fired: Fired) -> dict[str, Any]:
    return {
        "invoice_id": str(fired.invoice_id),
        "number": fired.number,
        "level": fired.level,
        "action": fired.action,
        "fired_on": fired.fired_on.isoformat(),
    }


def api_routes() -> list[Any]:
    """Dunning API."""
    return [DunningController]


def page_routes() -> list[Any]:
    """The collection page, and the dunning routes for pages (the dossier link)."""
    return [DunningController, CollectionPages]


async def _daily(ctx: PluginContext) -> None:
    await run_dunning(ctx, _today())


def scheduled_jobs() -> list[ScheduledJob]:
    """The daily run, tried every hour.

    Levels fire at most once a day per invoice, so the extra runs only catch up sooner
    after the worker was down (or when more than RUN_LIMIT invoices are open).
    """
    return [ScheduledJob("dunning", timedelta(hours=1), _daily)]


async def timeline_entries(
    ctx: PluginContext, subject_type: str, subject_id: UUID
) -> list[TimelineEntry]:
    """Each dunning step on the customer's (contact's or company's) timeline."""
    if subject_type not in {"contact", "company"}:
        return []
    column = "company_id" if subject_type == "company" else "contact_id"
    rows = await ctx.db.fetch(
        "SELECT s.level, s.action, s.fired_on, s.created_at, s.fee, s.new_due_date, i.number, "
        "i.currency FROM invoicing_dunning_steps s JOIN invoicing_invoices i "
        "ON i.tenant_id = s.tenant_id AND i.id = s.invoice_id "
        f"WHERE s.tenant_id = $1 AND i.{column} = $2 ORDER BY s.created_at DESC LIMIT 50",
        ctx.tenant_id,
        subject_id,
    )
    titles = {
        "reminder": "Payment reminder sent",
        "call": "Collection call queued",
        "lawyer": "Escalated to the lawyer",
    }
    entries = []
    for row in rows:
        body = f"Invoice {row['number']}, level {row['level']}"
        if row["fee"]:
            body += f", fee {format_money(row['fee'], str(row['currency']).strip())}"
        if row["new_due_date"]:
            body += f", new due date {row['new_due_date']}"
        entries.append(
            TimelineEntry(
                occurred_at=row["created_at"],
                title=titles.get(row["action"], row["action"]),
                body=str(escape(body)),
            )
        )
    return entries


# --- the invoice's collection page: documents, payments, reminders ------------------------


async def _collection_html(ctx: PluginContext, invoice_id: UUID, error: str = "") -> str:
    bal = await balance(ctx, invoice_id)
    if bal is None or bal.kind != "invoice":
        raise not_found(f"invoice {invoice_id}")
    today = _today()
    lang = str(ctx.settings.get("document_language") or "en")

    def money(value: Decimal) -> str:
        return str(escape(format_money(value, bal.currency, lang)))

    base = _path(ctx, f"/invoices/{invoice_id}/collection")
    parts = [f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""]
    kinds = {
        row["kind"]
        for row in await ctx.db.fetch(
            "SELECT kind FROM invoicing_documents WHERE tenant_id = $1 AND invoice_id = $2",
            ctx.tenant_id,
            invoice_id,
        )
    }
    links = [
        f"<a href='{escape(_path(ctx, f'/invoices/{invoice_id}/{path}'))}'>{label}</a>"
        for kind, path, label in (
            ("pdf", "pdf", "PDF (Factur-X)"),
            ("cii", "factur-x.xml", "Factur-X XML"),
            ("ubl", "ubl.xml", "UBL (Peppol)"),
        )
        if kind in kinds
    ]
    parts.append(
        "<h2>Documents</h2><p>"
        + (" · ".join(links) if links else "Being issued (the worker renders them).")
        + "</p>"
    )
    parts.append(
        f"<h2>Payments</h2><p id='balance'>Status: <strong>{escape(bal.status(today))}</strong>"
        f" · paid {money(bal.allocated)} of {money(bal.payable)} · due {money(bal.due)}"
        f"{' by ' + escape(str(bal.due_date)) if bal.due_date else ''}</p>"
    )
    allocations = await ctx.db.fetch(
        "SELECT a.amount, a.created_at, p.method, p.reference, p.received_on, "
        "n.number AS credit_note FROM invoicing_allocations a "
        "LEFT JOIN invoicing_payments p ON p.tenant_id = a.tenant_id AND p.id = a.payment_id "
        "LEFT JOIN invoicing_invoices n ON n.tenant_id = a.tenant_id AND n.id = a.credit_note_id "
        "WHERE a.tenant_id = $1 AND a.invoice_id = $2 ORDER BY a.created_at",
        ctx.tenant_id,
        invoice_id,
    )
    if allocations:
        rows = "".join(
            f"<tr><td>{escape(str(a['received_on'] or a['created_at'].date()))}</td>"
            f"<td>{escape(a['method'] or 'credit note ' + str(a['credit_note']))}</td>"
            f"<td>{escape(a['reference'] or '')}</td><td class='num'>{money(a['amount'])}</td></tr>"
            for a in allocations
        )
        parts.append(f"<table class='table'><tbody>{rows}</tbody></table>")
    if bal.due > 0:
        parts.append(
            f"<form method='post' action='{escape(base)}/payment'>{ctx.csrf_field()}"
            f"<label>Amount <input name='amount' value='{escape(str(bal.due))}' required></label> "
            f"<label>Received on <input type='date' name='received_on' value='{today}'></label> "
            "<label>Method <select name='method'>"
            + "".join(f"<option>{m}</option>" for m in METHODS)
            + "</select></label> <label>Reference <input name='reference'></label> "
            "<button>Record payment</button></form>"
        )
    case = await case_of(ctx, invoice_id)
    parts.append("<h2>Reminders</h2>")
    if case is None:
        parts.append("<p>No reminder yet.</p>")
    else:
        steps = "".join(
            f"<li>Level {s['level']} · {escape(s['action'])} · {escape(s['fired_on'])}"
            f"{' · fee ' + money(Decimal(s['fee'])) if Decimal(s['fee']) else ''}</li>"
            for s in case["steps"]
        )
        parts.append(f"<p>Case: <strong>{escape(case['status'])}</strong></p><ol>{steps}</ol>")
    if bal.due > 0:
        parts.append(
            f"<form method='post' action='{escape(base)}/remind'>{ctx.csrf_field()}"
            "<button>Send the next reminder now</button></form>"
            f"<form method='post' action='{escape(base)}/note'>{ctx.csrf_field()}"
            "<select name='kind'><option value='call'>Call note</option>"
            "<option value='promise'>Promise to pay</option>"
            "<option value='dispute'>Dispute</option>"
            "<option value='resume'>Resume</option></select> "
            "<input name='body' placeholder='What was said'> "
            "<input type='date' name='promised_until'> <button>Add</button></form>"
        )
    if case is not None and case["status"] == "escalated":
        parts.append(
            f"<p><a href='{escape(_path(ctx, f'/dunning/invoices/{invoice_id}/dossier.zip'))}'>"
            "Lawyer's dossier (zip)</a></p>"
        )
    return "".join(parts)


async def _refused(ctx: PluginContext, invoice_id: UUID, exc: Exception) -> Page:
    """The page again with the reason, as a 400 (nothing the form started is kept)."""
    await ctx.db.execute("ROLLBACK TO SAVEPOINT invoicing_form")
    return await _collection_page(ctx, invoice_id, _message(exc), status_code=400)


async def _collection_page(
    ctx: PluginContext, invoice_id: UUID, error: str = "", *, status_code: int = 200
) -> Page:
    number = await ctx.db.fetchval(
        "SELECT number FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        invoice_id,
    )
    html = await _collection_html(ctx, invoice_id, error)
    return Page(f"Invoice {number or ''}: payments and reminders", html, status_code=status_code)


def _back(ctx: PluginContext, invoice_id: UUID) -> Redirect:
    return Redirect(_path(ctx, f"/invoices/{invoice_id}/collection/"), status_code=303)


def _path(ctx: PluginContext, path: str) -> str:
    """A page's path on this host (``ctx.url`` is absolute, for emails)."""
    return urlsplit(ctx.url(path)).path


class CollectionPages(Controller):
    """``/invoices/{id}/collection``: documents, payments and reminders of one invoice."""

    path = "/invoices/{invoice_id:uuid}/collection"

    @get("/")
    async def show(self, plugin: PluginContext, invoice_id: UUID) -> Page:
        """The page."""
        return await _collection_page(plugin, invoice_id)

    @post("/payment", status_code=303)
    async def pay(
        self, plugin: PluginContext, invoice_id: UUID, request: Request[Any, Any, Any]
    ) -> Redirect | Page:
        """Record a payment on this invoice from the page's form."""
        form = await request.form()
        bal = await balance(plugin, invoice_id)
        if bal is None:
            raise not_found(f"invoice {invoice_id}")
        amount = str(form.get("amount", "")).strip()
        await plugin.db.execute("SAVEPOINT invoicing_form")
        try:
            received = date.fromisoformat(str(form.get("received_on") or _today()))
            await record_payment(
                plugin,
                PaymentIn(
                    amount=amount,
                    currency=bal.currency,
                    received_on=received,
                    company_id=bal.company_id,
                    contact_id=bal.contact_id,
                    method=str(form.get("method") or "bank_transfer"),
                    reference=str(form.get("reference") or ""),
                    allocations=[AllocationIn(invoice_id, amount)] if amount else [],
                ),
            )
        except (ValidationException, ValueError) as exc:
            return await _refused(plugin, invoice_id, exc)
        await plugin.db.execute("RELEASE SAVEPOINT invoicing_form")
        return _back(plugin, invoice_id)

    @post("/remind", status_code=303)
    async def remind(self, plugin: PluginContext, invoice_id: UUID) -> Redirect:
        """Fire the next level now (the manual trigger)."""
        await run_dunning(plugin, _today(), invoice_id=invoice_id, trigger="manual", now=True)
        return _back(plugin, invoice_id)

    @post("/note", status_code=303)
    async def note(
        self, plugin: PluginContext, invoice_id: UUID, request: Request[Any, Any, Any]
    ) -> Redirect | Page:
        """Add a call note, promise, dispute or resume from the page's form."""
        form = await request.form()
        until = str(form.get("promised_until") or "")
        await plugin.db.execute("SAVEPOINT invoicing_form")
        try:
            data = NoteIn(
                kind=str(form.get("kind") or ""),
                body=str(form.get("body") or ""),
                promised_until=date.fromisoformat(until) if until else None,
            )
            await add_note(plugin, invoice_id, data, _today())
        except (ValidationException, ValueError) as exc:
            return await _refused(plugin, invoice_id, exc)
        await plugin.db.execute("RELEASE SAVEPOINT invoicing_form")
        return _back(plugin, invoice_id)


def _message(exc: Exception) -> str:
    return str(getattr(exc, "detail", None) or exc)
