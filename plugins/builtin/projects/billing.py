"""Billing a project: the ledger that puts each entry and milestone on exactly one live line.

``projects_billing_lines`` records what went onto which invoice line. A row with status
``billed`` holds its time entry (or milestone) — unique indexes allow one live row per
entry and per milestone, so nothing is billed twice even by two clicks at once — and the
entry carries the invoice and line it is on, which locks it. A credit note names the
lines it credits: exactly their rows turn ``credited`` and their entries are free again,
to be billed on a later invoice. Nothing else frees an entry, so none is dropped.

Modes:

- time and materials: approved, billable, uninvoiced entries, one line per task and rate;
- fixed price: milestones marked done, each line its amount;
- prepaid hours: a block of hours billed up front; approved entries then burn it down
  (each linked to the block's line) and what no longer fits is billed as overage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from gettext import gettext as _
from typing import TYPE_CHECKING, Any
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.projects.errors import conflict, invalid
from orbit.plugins.builtin.projects.service import get_project

if TYPE_CHECKING:
    from orbit.plugins.api import PluginContext

CreateDraft = Callable[[dict[str, Any], list[dict[str, Any]], dict[str, Any]], Awaitable[Any]]
"""``(customer, lines, source) -> {"id": invoice id, …}``: the invoicing app's hook."""

NOT_ENABLED = _(
    "the Invoices app is not enabled in this workspace: enable it on the Marketplace to bill "
    "projects"
)
CENT = Decimal("0.01")
HOUR = Decimal(60)


def hours_of(minutes: int) -> Decimal:
    """Minutes as hours, exact to the hundredth (0.25 h for 15 minutes)."""
    return (Decimal(minutes) / HOUR).quantize(CENT, ROUND_HALF_UP)


@dataclass
class _Line:
    """An invoice line in the making, and the ledger rows behind it."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    kind: str
    ref: str = field(default_factory=lambda: f"projects:{uuid7()}")
    entries: list[tuple[UUID, Decimal, Decimal]] = field(default_factory=list)
    """(entry id, hours, amount) of the time on this line."""
    task_id: UUID | None = None

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT, ROUND_HALF_UP)

    def out(self) -> dict[str, Any]:
        """The line as the Invoices app's hook takes it."""
        return {
            "description": self.description,
            "quantity": str(self.quantity),
            "unit_price": str(self.unit_price),
            "unit_code": "C62" if self.kind == "milestone" else "HUR",
            "ref": self.ref,
        }


@dataclass
class BillResult:
    """What "Bill project" did."""

    invoice: dict[str, Any] | None
    lines: int
    entries: int
    milestones: int
    consumed: int = 0


async def _billable_entries(ctx: PluginContext, project_id: UUID) -> list[Any]:
    # FOR UPDATE: an entry edited or billed by another request waits for this one.
    return await ctx.db.fetch(
        """
        SELECT e.id, e.task_id, e.minutes, e.rate, e.day, coalesce(t.title, '') AS task
        FROM projects_time_entries e
        LEFT JOIN projects_tasks t ON t.tenant_id = e.tenant_id AND t.id = e.task_id
        WHERE e.tenant_id = $1 AND e.project_id = $2 AND e.status = 'approved' AND e.billable
          AND NOT e.running AND e.invoice_id IS NULL
        ORDER BY e.day, e.id
        FOR UPDATE OF e
        """,
        ctx.tenant_id,
        project_id,
    )


def _time_lines(rows: list[Any], project_name: str) -> list[_Line]:
    """One line per task and rate, in the order the work was done."""
    lines: dict[tuple[UUID | None, Decimal], _Line] = {}
    for row in rows:
        key = (row["task_id"], row["rate"])
        line = lines.get(key)
        if line is None:
            what = row["task"] or project_name
            line = lines[key] = _Line(_("%s (hours)") % what, Decimal(0), row["rate"], "time")
        hours = hours_of(row["minutes"])
        line.entries.append((row["id"], hours, (hours * row["rate"]).quantize(CENT)))
    for line in lines.values():
        # The sum of the entries' own hours: the ledger adds up to the line exactly.
        line.quantity = sum((hours for _e, hours, _a in line.entries), Decimal(0))
    return list(lines.values())


async def _milestone_lines(ctx: PluginContext, project_id: UUID) -> list[_Line]:
    rows = await ctx.db.fetch(
        """
        SELECT t.id, t.title, t.milestone_amount FROM projects_tasks t
        WHERE t.tenant_id = $1 AND t.project_id = $2 AND t.milestone AND t.status = 'done'
          AND t.milestone_amount > 0
          AND NOT EXISTS (SELECT 1 FROM projects_billing_lines b WHERE b.tenant_id = t.tenant_id
                          AND b.task_id = t.id AND b.status = 'billed')
        ORDER BY t.due_date, t.position
        FOR UPDATE OF t
        """,
        ctx.tenant_id,
        project_id,
    )
    return [
        _Line(
            _("Milestone: %s") % r["title"],
            Decimal(1),
            r["milestone_amount"],
            "milestone",
            task_id=r["id"],
        )
        for r in rows
    ]


async def prepaid_block(ctx: PluginContext, project_id: UUID) -> dict[str, Any] | None:
    """The live prepaid block: its invoice line, hours bought and hours burnt."""
    row = await ctx.db.fetchrow(
        """
        SELECT b.invoice_id, b.line_ref, b.hours,
               (SELECT coalesce(sum(c.hours), 0) FROM projects_billing_lines c
                WHERE c.tenant_id = b.tenant_id AND c.invoice_id = b.invoice_id
                  AND c.line_ref = b.line_ref AND c.kind = 'consumed'
                  AND c.status = 'billed') AS used
        FROM projects_billing_lines b
        WHERE b.tenant_id = $1 AND b.project_id = $2 AND b.kind = 'prepaid'
          AND b.status = 'billed'
        ORDER BY b.created_at DESC LIMIT 1
        """,
        ctx.tenant_id,
        project_id,
    )
    if row is None:
        return None
    return {
        "invoice_id": row["invoice_id"],
        "line_ref": row["line_ref"],
        "hours": row["hours"],
        "used": row["used"],
        "left": row["hours"] - row["used"],
    }


async def burn_down(ctx: PluginContext, project_id: UUID) -> dict[str, Any]:
    """The prepaid block and its hours burnt per day (for the chart)."""
    block = await prepaid_block(ctx, project_id)
    if block is None:
        return {"block": None, "days": []}
    rows = await ctx.db.fetch(
        """
        SELECT e.day, sum(c.hours) AS hours FROM projects_billing_lines c
        JOIN projects_time_entries e ON e.tenant_id = c.tenant_id AND e.id = c.entry_id
        WHERE c.tenant_id = $1 AND c.invoice_id = $2 AND c.line_ref = $3 AND c.kind = 'consumed'
          AND c.status = 'billed'
        GROUP BY e.day ORDER BY e.day
        """,
        ctx.tenant_id,
        block["invoice_id"],
        block["line_ref"],
    )
    left = block["hours"]
    days = []
    for r in rows:
        left -= r["hours"]
        days.append({"day": r["day"], "hours": r["hours"], "left": left})
    return {"block": block, "days": days}


async def bill_project(  # noqa: C901, PLR0912, PLR0915 - one branch per billing mode, read top to bottom
    ctx: PluginContext, project_id: UUID, create_draft: CreateDraft | None
) -> BillResult:
    """Put what is billable on a new draft invoice and record every line in the ledger.

    ``create_draft`` is the invoicing app's hook (``None`` when it is not enabled: a 409
    that says so, nothing written). The project row is locked first, so two "Bill
    project" clicks run one after the other and the second finds nothing left.
    """
    await ctx.db.execute(
        "SELECT 1 FROM projects_projects WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        ctx.tenant_id,
        project_id,
    )
    project = await get_project(ctx, project_id)
    mode = project["billing_mode"]
    lines: list[_Line] = []
    consumed: list[tuple[UUID, Decimal]] = []
    block: dict[str, Any] | None = None
    if mode == "fixed_price":
        lines = await _milestone_lines(ctx, project_id)
    elif mode == "time_and_materials":
        lines = _time_lines(await _billable_entries(ctx, project_id), project["name"])
    else:
        block = await prepaid_block(ctx, project_id)
        new_block: _Line | None = None
        if block is None:
            if project["prepaid_hours"] <= 0:
                raise invalid("prepaid_hours", _("set the hours of the prepaid block first"))
            new_block = _Line(
                _("Prepaid hours: %s h") % project["prepaid_hours"],
                project["prepaid_hours"],
                project["hourly_rate"],
                "prepaid",
            )
            lines.append(new_block)
            block = {
                "line_ref": new_block.ref,
                "left": project["prepaid_hours"],
                "invoice_id": None,
            }
        over = []
        left = block["left"]
        for row in await _billable_entries(ctx, project_id):
            hours = hours_of(row["minutes"])
            if hours <= left:
                consumed.append((row["id"], hours))
                left -= hours
            else:
                over.append(row)
        lines += _time_lines(over, project["name"])
        for line in lines:
            if line.kind == "time":
                line.description = _("Overage: %s") % line.description
        if not lines and consumed:
            await _record_consumed(ctx, project_id, block, consumed)
            return BillResult(None, 0, 0, 0, len(consumed))
    if not lines:
        raise conflict(_("nothing to bill: no approved, uninvoiced time or reached milestones"))
    if create_draft is None:
        raise conflict(NOT_ENABLED)
    customer: dict[str, Any] = {
        k: str(project[k]) for k in ("company_id", "contact_id") if project[k] is not None
    }
    if not customer:
        customer["name"] = project["name"]
    source = {
        "plugin": "projects",
        "project_id": str(project_id),
        "deal_id": str(project["deal_id"]) if project["deal_id"] else None,
        "currency": project["currency"],
    }
    answer = await create_draft(customer, [x.out() for x in lines], source)
    if answer is None:
        raise conflict(NOT_ENABLED)
    if answer.get("ok") is False:
        raise conflict(_("the Invoices app refused the draft: %s") % answer.get("error", ""))
    invoice = answer.get("invoice", answer)
    invoice_id = UUID(str(invoice["id"]))
    await record_lines(ctx, project_id, invoice_id, lines)
    if block is not None:
        if block["invoice_id"] is None:
            block["invoice_id"] = invoice_id
        await _record_consumed(ctx, project_id, block, consumed)
    return BillResult(
        invoice,
        len(lines),
        sum(len(x.entries) for x in lines),
        sum(1 for x in lines if x.kind == "milestone"),
        len(consumed),
    )


async def record_lines(
    ctx: PluginContext, project_id: UUID, invoice_id: UUID, lines: list[_Line]
) -> None:
    """Write the ledger rows of new invoice lines and lock their entries."""
    rows: list[tuple[str, str, UUID | None, UUID | None, Decimal, Decimal]] = []
    for line in lines:
        if line.kind in ("milestone", "prepaid"):
            hours = line.quantity if line.kind == "prepaid" else Decimal(0)
            rows.append((line.ref, line.kind, None, line.task_id, hours, line.amount))
        rows += [(line.ref, "time", e, None, hours, amount) for e, hours, amount in line.entries]
    await _insert(ctx, project_id, invoice_id, rows)
    await _lock_on_lines(
        ctx, invoice_id, [(e[0], line.ref) for line in lines for e in line.entries]
    )


async def _record_consumed(
    ctx: PluginContext,
    project_id: UUID,
    block: dict[str, Any],
    consumed: list[tuple[UUID, Decimal]],
) -> None:
    if not consumed:
        return
    ref = block["line_ref"]
    await _insert(
        ctx,
        project_id,
        block["invoice_id"],
        [(ref, "consumed", entry_id, None, hours, Decimal(0)) for entry_id, hours in consumed],
    )
    await _lock(ctx, [c[0] for c in consumed], block["invoice_id"], ref)


async def _insert(
    ctx: PluginContext,
    project_id: UUID,
    invoice_id: UUID,
    rows: list[tuple[str, str, UUID | None, UUID | None, Decimal, Decimal]],
) -> None:
    """Ledger rows ``(line ref, kind, entry, milestone, hours, amount)`` in one statement."""
    if not rows:
        return
    refs, kinds, entries, tasks, hours, amounts = (
        list(column) for column in zip(*rows, strict=True)
    )
    await ctx.db.execute(
        """
        INSERT INTO projects_billing_lines (tenant_id, id, project_id, invoice_id, line_ref, kind,
            entry_id, task_id, hours, amount)
        SELECT $1, r.id, $2, $3, r.ref, r.kind, r.entry_id, r.task_id, r.hours, r.amount
        FROM unnest($4::uuid[], $5::text[], $6::text[], $7::uuid[], $8::uuid[], $9::numeric[],
                    $10::numeric[]) AS r(id, ref, kind, entry_id, task_id, hours, amount)
        """,
        ctx.tenant_id,
        project_id,
        invoice_id,
        [uuid7() for _ in rows],
        refs,
        kinds,
        entries,
        tasks,
        hours,
        amounts,
    )


async def _lock(ctx: PluginContext, entry_ids: list[UUID], invoice_id: UUID, ref: str) -> None:
    status = await ctx.db.execute(
        "UPDATE projects_time_entries SET invoice_id = $3, invoice_line_ref = $4, "
        "version = version + 1 "
        "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND invoice_id IS NULL",
        ctx.tenant_id,
        entry_ids,
        invoice_id,
        ref,
    )
    if int(status.split()[-1]) != len(entry_ids):
        raise conflict(_("some of the time was invoiced meanwhile: bill the project again"))


async def _lock_on_lines(
    ctx: PluginContext, invoice_id: UUID, entries: list[tuple[UUID, str]]
) -> None:
    """Lock each entry onto its line of ``invoice_id``, all in one statement."""
    if not entries:
        return
    status = await ctx.db.execute(
        """
        UPDATE projects_time_entries e SET invoice_id = $2, invoice_line_ref = u.ref,
            version = e.version + 1
        FROM unnest($3::uuid[], $4::text[]) AS u(id, ref)
        WHERE e.tenant_id = $1 AND e.id = u.id AND e.invoice_id IS NULL
        """,
        ctx.tenant_id,
        invoice_id,
        [entry for entry, _ref in entries],
        [ref for _entry, ref in entries],
    )
    if int(status.split()[-1]) != len(entries):
        raise conflict(_("some of the time was invoiced meanwhile: bill the project again"))


async def credit(
    ctx: PluginContext,
    invoice_id: UUID,
    refs: list[str],
    quantities: dict[str, Decimal] | None = None,
) -> int:
    """A credit note for lines ``refs`` of ``invoice_id``: free exactly their entries.

    A line credited for less than its whole quantity (a price correction) frees
    nothing: which of its entries would be "the" credited ones is not knowable.
    Crediting a line twice changes nothing the second time (its rows are already
    ``credited``). The number of ledger rows freed.
    """
    if quantities:
        billed = await ctx.db.fetch(
            """
            SELECT line_ref, kind, sum(hours) AS hours FROM projects_billing_lines
            WHERE tenant_id = $1 AND invoice_id = $2 AND line_ref = ANY($3::text[])
              AND status = 'billed' AND kind IN ('time', 'milestone', 'prepaid')
            GROUP BY line_ref, kind
            """,
            ctx.tenant_id,
            invoice_id,
            refs,
        )
        whole = {
            r["line_ref"]: Decimal(1) if r["kind"] == "milestone" else r["hours"] for r in billed
        }
        partial = [r for r in refs if r in quantities and abs(quantities[r]) < whole.get(r, 0)]
        if partial:
            ctx.log.info("credit note for part of lines %s: their time stays invoiced", partial)
        refs = [r for r in refs if r not in partial]
    if not refs:
        return 0
    rows = await ctx.db.fetch(
        """
        UPDATE projects_billing_lines SET status = 'credited', credited_at = now()
        WHERE tenant_id = $1 AND invoice_id = $2 AND line_ref = ANY($3::text[])
          AND status = 'billed'
        RETURNING entry_id
        """,
        ctx.tenant_id,
        invoice_id,
        refs,
    )
    entries = [r["entry_id"] for r in rows if r["entry_id"] is not None]
    if entries:
        await ctx.db.execute(
            "UPDATE projects_time_entries SET invoice_id = NULL, invoice_line_ref = NULL, "
            "version = version + 1 WHERE tenant_id = $1 AND id = ANY($2::uuid[]) "
            "AND invoice_id = $3 AND invoice_line_ref = ANY($4::text[])",
            ctx.tenant_id,
            entries,
            invoice_id,
            refs,
        )
    return len(rows)


def credit_note_lines(
    data: dict[str, Any],
) -> tuple[UUID, list[str], dict[str, Decimal]] | None:
    """What an ``invoicing.credit_note_finalized`` event credits: invoice, refs, quantities.

    Only lines this plugin made (refs ``projects:…``) count; ``None`` when there are none.
    """
    invoice = data.get("credited_invoice_id") or data.get("invoice_id")
    refs: list[str] = []
    quantities: dict[str, Decimal] = {}
    for line in data.get("lines") or []:
        ref = line.get("ref") if isinstance(line, dict) else None
        if isinstance(ref, str) and ref.startswith("projects:"):
            refs.append(ref)
            if line.get("quantity") is not None:
                with suppress(ArithmeticError):
                    quantities[ref] = Decimal(str(line["quantity"]))
    if not invoice or not refs:
        return None
    try:
        return UUID(str(invoice)), list(dict.fromkeys(refs)), quantities
    except ValueError:
        return None


async def invoices(ctx: PluginContext, project_id: UUID) -> list[dict[str, Any]]:
    """The project's invoices: amounts still billed and credited on each, newest first."""
    rows = await ctx.db.fetch(
        """
        SELECT invoice_id, min(created_at) AS billed_at,
               coalesce(sum(amount) FILTER (WHERE status = 'billed'), 0) AS billed,
               coalesce(sum(amount) FILTER (WHERE status = 'credited'), 0) AS credited,
               count(entry_id) FILTER (WHERE status = 'billed') AS entries
        FROM projects_billing_lines WHERE tenant_id = $1 AND project_id = $2
        GROUP BY invoice_id ORDER BY billed_at DESC LIMIT 200
        """,
        ctx.tenant_id,
        project_id,
    )
    return [dict(r) for r in rows]


async def ledger_summary(ctx: PluginContext, project_id: UUID) -> dict[str, Any]:
    """Billed and credited amounts, and what is still to bill (approved, uninvoiced)."""
    row = await ctx.db.fetchrow(
        """
        SELECT coalesce(sum(amount) FILTER (WHERE status = 'billed'), 0) AS billed,
               coalesce(sum(amount) FILTER (WHERE status = 'credited'), 0) AS credited,
               count(DISTINCT invoice_id) AS invoices
        FROM projects_billing_lines WHERE tenant_id = $1 AND project_id = $2
        """,
        ctx.tenant_id,
        project_id,
    )
    pending = await ctx.db.fetchrow(
        "SELECT count(*) AS entries, coalesce(sum(minutes), 0) AS minutes "
        "FROM projects_time_entries WHERE tenant_id = $1 AND project_id = $2 "
        "AND status = 'approved' AND billable AND invoice_id IS NULL AND NOT running",
        ctx.tenant_id,
        project_id,
    )
    assert row is not None  # noqa: S101 - aggregates return a row
    assert pending is not None  # noqa: S101
    return {
        "billed": row["billed"],
        "credited": row["credited"],
        "invoices": row["invoices"],
        "to_bill_entries": pending["entries"],
        "to_bill_hours": hours_of(pending["minutes"]),
    }
