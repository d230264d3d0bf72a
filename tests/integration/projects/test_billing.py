"""Billing: each entry and milestone on exactly one live invoice line; credit notes free them.

The Invoices app's hook is reached through ``ctx.hooks`` over HTTP; the ledger itself is
exercised here with a recording stand-in for the hook (``Drafts``), the real database
and the plugin's own event handler for credit notes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from litestar.exceptions import ClientException

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from orbit.plugins import api
from orbit.plugins.builtin import projects
from orbit.plugins.builtin.projects import billing
from tests.conftest import Member
from tests.integration.projects.conftest import (
    API,
    deliver,
    new_project,
    new_task,
    plugin_context,
)


class Drafts:
    """Records the draft invoices asked for, as the Invoices app's hook would create them."""

    def __init__(self) -> None:
        self.invoices: list[dict[str, Any]] = []

    async def __call__(
        self, customer: dict[str, Any], lines: list[dict[str, Any]], source: dict[str, Any]
    ) -> dict[str, Any]:
        invoice = {"id": str(uuid4()), "customer": customer, "lines": lines, "source": source}
        self.invoices.append(invoice)
        return invoice


async def _approved(
    member: Member, project_id: str, *minutes: int, task: str | None = None
) -> list[str]:
    ids = []
    for m in minutes:
        response = await member.client.post(
            f"{API}/projects/{project_id}/time",
            json={"day": "2026-11-20", "minutes": m, "task_id": task},
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    done = await member.client.post(
        f"{API}/projects/{project_id}/time/status", json={"ids": ids, "status": "approved"}
    )
    assert done.json() == {"updated": len(ids)}
    return ids


async def _credit(
    runtime: Runtime,
    member: Member,
    invoice: dict[str, Any],
    refs: list[str],
    event_id: UUID | None = None,
) -> UUID:
    event = api.Event(
        id=event_id or uuid4(),
        type="invoicing.credit_note_finalized",
        occurred_at=datetime.now(UTC),
        data={"credited_invoice_id": invoice["id"], "lines": [{"ref": r} for r in refs]},
    )
    async with plugin_context(runtime, member) as ctx:
        await projects.orbit_event(ctx, event)
    return event.id


async def test_billing_without_the_invoices_app_says_so_and_writes_nothing(
    manager: Member, endpoints: Endpoints
) -> None:
    project = await new_project(manager)
    await _approved(manager, project["id"], 60)
    response = await manager.client.post(f"{API}/projects/{project['id']}/bill")
    assert response.status_code == 409
    assert "Invoices app is not enabled" in response.json()["detail"]
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM projects_billing_lines WHERE tenant_id = $1::uuid",
                manager.workspace_id,
            )
            == 0
        )
    finally:
        await admin.close()


async def test_time_is_billed_once_locked_and_freed_exactly_by_its_credit_note(
    manager: Member, outsider: Member, runtime: Runtime
) -> None:
    project = await new_project(manager, hourly_rate="80.00")
    design = await new_task(manager, project["id"], title="Design")
    build = await new_task(manager, project["id"], title="Build")
    design_entries = await _approved(manager, project["id"], 90, 30, task=design["id"])
    build_entries = await _approved(manager, project["id"], 45, task=build["id"])
    unapproved = await manager.client.post(
        f"{API}/projects/{project['id']}/time", json={"day": "2026-11-20", "minutes": 15}
    )
    drafts = Drafts()
    async with plugin_context(runtime, manager) as ctx:
        result = await billing.bill_project(ctx, UUID(project["id"]), drafts)
    assert (result.lines, result.entries) == (2, 3)
    invoice = drafts.invoices[0]
    assert invoice["source"]["project_id"] == project["id"]
    lines = {line["description"]: line for line in invoice["lines"]}
    assert lines["Design (hours)"]["quantity"] == "2.00"
    assert lines["Design (hours)"]["unit_price"] == "80.00"
    assert lines["Build (hours)"]["quantity"] == "0.75"

    # Invoiced entries are locked.
    entry = (await manager.client.get(f"{API}/projects/{project['id']}/time")).json()["items"]
    locked = next(e for e in entry if e["id"] == design_entries[0])
    assert locked["invoice_id"] == invoice["id"]
    edit = await manager.client.patch(
        f"{API}/time/{locked['id']}", json={"version": locked["version"], "minutes": 5}
    )
    assert edit.status_code == 409
    assert "locked" in edit.json()["detail"]
    assert (await manager.client.delete(f"{API}/time/{locked['id']}")).status_code == 409

    # Nothing left: a second bill is refused, nothing new invoiced.
    with pytest.raises(ClientException, match="nothing to bill"):
        async with plugin_context(runtime, manager) as ctx:
            await billing.bill_project(ctx, UUID(project["id"]), drafts)
    assert len(drafts.invoices) == 1

    # A credit note for the Build line frees exactly the Build entry, once.
    build_ref = lines["Build (hours)"]["ref"]
    event_id = await _credit(runtime, manager, invoice, [build_ref])
    await _credit(runtime, manager, invoice, [build_ref], event_id)  # redelivered
    await _credit(runtime, manager, invoice, [build_ref])  # another event, same line: no-op
    entries = {
        e["id"]: e
        for e in (await manager.client.get(f"{API}/projects/{project['id']}/time")).json()["items"]
    }
    assert entries[build_entries[0]]["invoice_id"] is None
    assert all(entries[i]["invoice_id"] == invoice["id"] for i in design_entries)
    async with plugin_context(runtime, manager) as ctx:
        again = await billing.bill_project(ctx, UUID(project["id"]), drafts)
    assert (again.lines, again.entries) == (1, 1)
    assert [x["quantity"] for x in drafts.invoices[1]["lines"]] == ["0.75"]
    summary = (await manager.client.get(f"{API}/projects/{project['id']}/billing")).json()
    assert summary["billed"] == "220.00"  # 2 h + 0.75 h at 80
    assert summary["credited"] == "60.00"
    assert summary["to_bill_entries"] == 0
    assert unapproved.json()["invoice_id"] is None

    # A credit note from another workspace frees nothing here.
    await _credit(runtime, outsider, drafts.invoices[1], [drafts.invoices[1]["lines"][0]["ref"]])
    still = (await manager.client.get(f"{API}/projects/{project['id']}/time")).json()["items"]
    assert (
        next(e for e in still if e["id"] == build_entries[0])["invoice_id"]
        == (drafts.invoices[1]["id"])
    )
    assert (await outsider.client.get(f"{API}/projects/{project['id']}/billing")).status_code == 404


async def test_fixed_price_bills_reached_milestones_once(manager: Member, runtime: Runtime) -> None:
    project = await new_project(manager, billing_mode="fixed_price")
    first = await new_task(
        manager,
        project["id"],
        title="Design signed off",
        milestone=True,
        milestone_amount="3000.00",
    )
    await new_task(
        manager, project["id"], title="Launch", milestone=True, milestone_amount="7000.00"
    )
    await _approved(manager, project["id"], 120)  # time is tracked, not billed, at fixed price
    drafts = Drafts()
    with pytest.raises(ClientException, match="nothing to bill"):
        async with plugin_context(runtime, manager) as ctx:
            await billing.bill_project(ctx, UUID(project["id"]), drafts)
    moved = await manager.client.post(
        f"{API}/tasks/{first['id']}/move", json={"version": first["version"], "status": "done"}
    )
    assert moved.status_code == 200
    async with plugin_context(runtime, manager) as ctx:
        result = await billing.bill_project(ctx, UUID(project["id"]), drafts)
    assert result.milestones == 1
    assert drafts.invoices[0]["lines"] == [
        {
            "description": "Milestone: Design signed off",
            "quantity": "1",
            "unit_price": "3000.00",
            "unit_code": "C62",
            "ref": drafts.invoices[0]["lines"][0]["ref"],
        }
    ]
    deleting = await manager.client.delete(f"{API}/tasks/{first['id']}")
    assert deleting.status_code == 409


async def test_prepaid_hours_burn_down_and_overage_is_billed(
    manager: Member, runtime: Runtime
) -> None:
    project = await new_project(
        manager, billing_mode="prepaid", prepaid_hours="2.00", hourly_rate="50.00"
    )
    await _approved(manager, project["id"], 60, 30)
    drafts = Drafts()
    async with plugin_context(runtime, manager) as ctx:
        first = await billing.bill_project(ctx, UUID(project["id"]), drafts)
    assert (first.lines, first.consumed) == (1, 2)
    assert drafts.invoices[0]["lines"][0]["quantity"] == "2.00"
    burn = (await manager.client.get(f"{API}/projects/{project['id']}/billing")).json()["burn_down"]
    assert burn["block"]["left"] == "0.50"
    # 45 minutes more: does not fit in the 0.5 h left, so it is billed as overage.
    await _approved(manager, project["id"], 45, 30)
    async with plugin_context(runtime, manager) as ctx:
        second = await billing.bill_project(ctx, UUID(project["id"]), drafts)
    assert second.consumed == 1  # the 30 minutes fit
    assert [x["quantity"] for x in drafts.invoices[1]["lines"]] == ["0.75"]
    assert drafts.invoices[1]["lines"][0]["description"].startswith("Overage")
    burn = (await manager.client.get(f"{API}/projects/{project['id']}/billing")).json()["burn_down"]
    assert burn["block"]["left"] == "0.00"
    assert Decimal(burn["days"][-1]["left"]) == 0


async def test_bill_project_through_the_invoices_app_and_a_credit_note_frees_the_time(
    manager: Member, runtime: Runtime
) -> None:
    """The whole path over HTTP: bill, finalize, credit one line, the event frees its time."""
    listed = (await manager.client.get("/api/v1/marketplace/invoicing")).json()
    enabled = await manager.client.post(
        "/api/v1/marketplace/invoicing/enable", json={"scopes": listed["scopes"]}
    )
    assert enabled.status_code == 201, enabled.text
    company = await manager.client.post("/api/v1/companies", json={"name": "Client SA"})
    project = await new_project(
        manager, hourly_rate="90.00", currency="EUR", company_id=company.json()["id"]
    )
    design = await new_task(manager, project["id"], title="Design")
    build = await new_task(manager, project["id"], title="Build")
    design_ids = await _approved(manager, project["id"], 120, 60, task=design["id"])
    build_ids = await _approved(manager, project["id"], 30, task=build["id"])

    billed = await manager.client.post(f"{API}/projects/{project['id']}/bill")
    assert billed.status_code == 200, billed.text
    assert (billed.json()["lines"], billed.json()["entries"]) == (2, 3)
    invoice_id = billed.json()["invoice"]["id"]
    invoices = "/api/v1/apps/invoicing/invoices"
    invoice = (await manager.client.get(f"{invoices}/{invoice_id}")).json()
    assert invoice["status"] == "draft"
    assert invoice["customer"]["name"] == "Client SA"
    assert [(x["description"], x["quantity"]) for x in invoice["lines"]] == [
        ("Design (hours)", "3.00"),
        ("Build (hours)", "0.50"),
    ]
    assert invoice["totals"]["net_total"] == "315.00"
    final = await manager.client.post(f"{invoices}/{invoice_id}/finalize", json={})
    assert final.status_code in (200, 201), final.text

    build_line = next(x for x in invoice["lines"] if x["description"] == "Build (hours)")
    note = await manager.client.post(
        f"{invoices}/{invoice_id}/credit-note", json={"positions": [build_line["position"]]}
    )
    assert note.status_code in (200, 201), note.text
    done = await manager.client.post(f"{invoices}/{note.json()['id']}/finalize", json={})
    assert done.status_code in (200, 201), done.text
    await deliver(runtime)

    entries = {
        e["id"]: e
        for e in (await manager.client.get(f"{API}/projects/{project['id']}/time")).json()["items"]
    }
    assert entries[build_ids[0]]["invoice_id"] is None
    assert all(entries[i]["invoice_id"] == invoice_id for i in design_ids)
    again = await manager.client.post(f"{API}/projects/{project['id']}/bill")
    assert again.status_code == 200, again.text
    assert again.json()["entries"] == 1
    page = await manager.client.get(f"/t/{manager.slug}/apps/projects/{project['id']}/billing")
    assert f"/apps/invoicing/invoices/{invoice_id}" in page.text
    assert f"/apps/invoicing/invoices/{again.json()['invoice']['id']}" in page.text
