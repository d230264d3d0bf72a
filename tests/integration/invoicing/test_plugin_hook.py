"""Other plugins create draft invoices through the hook ``invoicing_create_draft_invoice``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.invoicing.conftest import API, catalogue


async def _call(runtime: Runtime, member: Member, **kwargs: Any) -> Any:
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, member.slug)
        return await plugins.context("invoicing").hooks.first(
            "invoicing_create_draft_invoice", **kwargs
        )


async def test_a_plugin_creates_a_draft_invoice_for_a_company_with_its_line_refs(
    seller: Member, runtime: Runtime
) -> None:
    made = await catalogue(seller)
    company = await seller.client.post("/api/v1/companies", json={"name": "Client SA"})
    answer = await _call(
        runtime,
        seller,
        customer={"company_id": company.json()["id"]},
        lines=[
            {
                "description": "Design, 6 h",
                "quantity": "6",
                "unit_price": "90",
                "unit_code": "HUR",
                "tax_rate_ids": [made["vat"]["id"]],
                "ref": "time-entry:1",
            },
            {"product_id": made["product"]["id"], "quantity": "2", "ref": "time-entry:2"},
        ],
        source={"plugin": "projects", "project_id": "p-1"},
    )
    assert answer["ok"] is True, answer
    invoice = (await seller.client.get(f"{API}/invoices/{answer['invoice']['id']}")).json()
    assert invoice["status"] == "draft"
    assert invoice["customer"]["name"] == "Client SA"
    assert invoice["company_id"] == company.json()["id"]
    assert invoice["source"] == {"plugin": "projects", "project_id": "p-1"}
    assert [line["ref"] for line in invoice["lines"]] == ["time-entry:1", "time-entry:2"]
    assert invoice["totals"]["net_total"] == "740.00"  # 6 × 90 + 2 × 100


async def test_bad_lines_are_answered_with_the_field_and_nothing_is_written(
    seller: Member, runtime: Runtime
) -> None:
    answer = await _call(
        runtime,
        seller,
        customer={"name": "Someone"},
        lines=[{"description": "x", "unit_price": "1", "unit_code": "NOPE"}],
        source={"plugin": "projects"},
    )
    assert answer["ok"] is False
    assert answer["field"] == "lines[0].unit_code"
    assert (await seller.client.get(f"{API}/invoices")).json() == []
