"""10,000 random steps against the real ledger: no entry is ever billed twice or dropped.

Entries are added, edited, approved and deleted; the project is billed (only what is
approved at that moment: partial invoices) and random subsets of invoice lines are
credited. A plain model tracks which entry should be on which live line; the database
is compared with it every few hundred steps and at the end, in one transaction that is
rolled back (a few seconds in all).
"""

from __future__ import annotations

import os
import random
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.exceptions import ClientException

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.projects import billing, service, timesheets
from tests.conftest import Member
from tests.integration.projects.conftest import plugin_context

STEPS = int(os.environ.get("PROJECTS_LEDGER_STEPS", "10000"))


POPULATION = 250
"""Entries kept at most: the run stays in one transaction, whose tables are never analyzed."""


class Rollback(Exception):  # noqa: N818 - a signal, not an error
    """Ends the run's transaction without keeping its rows."""


async def test_ten_thousand_random_steps_never_bill_an_entry_twice_or_drop_one(
    manager: Member, runtime: Runtime
) -> None:
    rng = random.Random(20261125)  # noqa: S311 - reproducible, not secret
    stats = {"bills": 0, "credits": 0, "billed": 0, "freed": 0, "locked_refused": 0}
    with pytest.raises(Rollback):  # noqa: PT012 - the run, then the rollback that undoes it
        async with plugin_context(runtime, manager) as ctx:
            await _run(ctx, rng, stats)
            raise Rollback
    # Every kind of step happened often enough to mean something.
    assert stats["bills"] > STEPS // 25
    assert stats["credits"] > STEPS // 25
    assert stats["freed"] > STEPS // 20
    assert stats["locked_refused"] > STEPS // 50


async def _run(  # noqa: C901, PLR0912 - one branch per kind of step
    ctx: Any, rng: random.Random, stats: dict[str, int]
) -> None:
    tenant = ctx.tenant_id
    project_id, _ = await service.create_project(
        ctx,
        service.NewProject(
            name="Ledger", start_date=date(2026, 11, 2), hourly_rate=service.Decimal("90.00")
        ),
    )
    user = uuid4()
    tasks = [await service.create_task(ctx, project_id, {"title": f"Task {i}"}) for i in range(12)]
    # Model: entry -> [minutes, approved, line ref or None, version]; invoice -> line refs.
    entries: dict[UUID, list[Any]] = {}
    lines_of: dict[UUID, list[str]] = {}
    on_line: dict[str, set[UUID]] = {}

    async def create_draft(customer: Any, lines: list[dict[str, Any]], source: Any) -> Any:
        invoice = uuid4()
        lines_of[invoice] = [line["ref"] for line in lines]
        return {"id": str(invoice)}

    for step in range(STEPS):
        roll = rng.random()
        if len(entries) > POPULATION and roll < 0.35:
            roll = 0.80  # a full project: delete instead of adding (planner stats stay small)
        if roll < 0.35 or not entries:
            entry_id = uuid4()
            minutes = rng.randint(1, 480)
            approved = rng.random() < 0.5
            await ctx.db.execute(
                "INSERT INTO projects_time_entries (tenant_id, id, project_id, task_id, user_id, "
                "day, minutes, rate, currency, status) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'USD', $9)",
                tenant,
                entry_id,
                project_id,
                rng.choice(tasks),
                user,
                date(2026, 11, 2),
                minutes,
                rng.choice((90, 120)),
                "approved" if approved else "open",
            )
            entries[entry_id] = [minutes, approved, None, 1]
        elif roll < 0.60:
            entry_id = rng.choice(list(entries))
            minutes = rng.randint(1, 480)
            fields: dict[str, Any] = {"minutes": minutes}
            if rng.random() < 0.5:
                fields["status"] = "approved"
            try:
                await timesheets.edit_entry(
                    ctx, entry_id, entries[entry_id][3], fields, approver=True
                )
            except ClientException:
                assert entries[entry_id][2] is not None  # only invoiced entries refuse edits
                stats["locked_refused"] += 1
                continue
            assert entries[entry_id][2] is None
            entries[entry_id][:2] = [minutes, fields.get("status") == "approved"]
            entries[entry_id][3] += 1
        elif roll < 0.80:
            chosen = rng.sample(list(entries), min(len(entries), rng.randint(1, 5)))
            await timesheets.set_status(ctx, project_id, chosen, "approved")
            for entry_id in chosen:
                if entries[entry_id][2] is None:  # invoiced entries are left alone
                    entries[entry_id][1] = True
                    entries[entry_id][3] += 1
        elif roll < 0.85:
            entry_id = rng.choice(list(entries))
            try:
                await timesheets.delete_entry(ctx, entry_id)
            except ClientException:
                assert entries[entry_id][2] is not None
                stats["locked_refused"] += 1
                continue
            del entries[entry_id]
        elif roll < 0.93:
            expected = {e for e, (_m, ok, ref, _v) in entries.items() if ok and ref is None}
            try:
                result = await billing.bill_project(ctx, project_id, create_draft)
            except ClientException:
                assert not expected  # refused only when nothing is billable
                continue
            stats["bills"] += 1
            invoice = UUID(str(result.invoice["id"])) if result.invoice else None
            rows = await ctx.db.fetch(
                "SELECT id, invoice_line_ref FROM projects_time_entries WHERE tenant_id = $1 "
                "AND invoice_id = $2",
                tenant,
                invoice,
            )
            assert {r["id"] for r in rows} == expected, step
            for r in rows:
                entries[r["id"]][2] = r["invoice_line_ref"]
                entries[r["id"]][3] += 1
                on_line.setdefault(r["invoice_line_ref"], set()).add(r["id"])
            stats["billed"] += len(rows)
        elif lines_of:
            invoice = rng.choice(list(lines_of))
            refs = rng.sample(lines_of[invoice], rng.randint(1, len(lines_of[invoice])))
            await billing.credit(ctx, invoice, refs)
            stats["credits"] += 1
            for ref in refs:
                for entry_id in on_line.pop(ref, set()):
                    if entry_id in entries:
                        entries[entry_id][2] = None
                        entries[entry_id][3] += 1
                        stats["freed"] += 1
            lines_of[invoice] = [r for r in lines_of[invoice] if r not in refs]
            if not lines_of[invoice]:
                del lines_of[invoice]
        if step % 2000 == 0 or step == STEPS - 1:
            await _matches(ctx, project_id, entries)

    # Finally bill everything approved: nothing approved is left behind (none dropped).
    for values in entries.values():
        values[1] = True  # approving all that is not invoiced yet
    await ctx.db.execute(
        "UPDATE projects_time_entries SET status = 'approved' WHERE tenant_id = $1 "
        "AND project_id = $2 AND invoice_id IS NULL",
        tenant,
        project_id,
    )
    await billing.bill_project(ctx, project_id, create_draft)
    left = await ctx.db.fetchval(
        "SELECT count(*) FROM projects_time_entries WHERE tenant_id = $1 AND project_id = $2 "
        "AND invoice_id IS NULL",
        tenant,
        project_id,
    )
    assert left == 0
    live = await ctx.db.fetch(
        "SELECT entry_id, count(*) AS n FROM projects_billing_lines WHERE tenant_id = $1 "
        "AND status = 'billed' AND entry_id IS NOT NULL GROUP BY entry_id",
        tenant,
    )
    assert all(r["n"] == 1 for r in live)
    assert {r["entry_id"] for r in live} == set(entries)
    # Billed hours on live lines are exactly the hours of the entries on them.
    total = await ctx.db.fetchval(
        "SELECT sum(hours) FROM projects_billing_lines WHERE tenant_id = $1 AND status = 'billed'",
        tenant,
    )
    assert total == sum(billing.hours_of(values[0]) for values in entries.values())


async def _matches(ctx: Any, project_id: UUID, entries: dict[UUID, list[Any]]) -> None:
    """The database holds the model's entries, each on the model's line (or none)."""
    rows = await ctx.db.fetch(
        "SELECT e.id, e.minutes, e.invoice_line_ref, "
        "(SELECT count(*) FROM projects_billing_lines b WHERE b.tenant_id = e.tenant_id "
        " AND b.entry_id = e.id AND b.status = 'billed') AS live "
        "FROM projects_time_entries e WHERE e.tenant_id = $1 AND e.project_id = $2",
        ctx.tenant_id,
        project_id,
    )
    assert {r["id"]: (r["minutes"], r["invoice_line_ref"]) for r in rows} == {
        e: (values[0], values[2]) for e, values in entries.items()
    }
    assert all(r["live"] == (r["invoice_line_ref"] is not None) for r in rows)
