"""Invoices: drafts without numbers, gapless numbers at finalization, immutability, credit notes."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.invoices import FinalizeIn, finalize
from tests.conftest import Member
from tests.integration.invoicing.conftest import API, catalogue, created, error_fields


async def _draft(member: Member, made: dict[str, Any], **more: Any) -> dict[str, Any]:
    body = {
        "customer": {"name": "Buyer GmbH", "country": "DE", "email": "ap@buyer.example"},
        "lines": [
            {"kind": "section", "description": "Work"},
            {"product_id": made["product"]["id"], "quantity": "3"},
            {
                "description": "Travel",
                "quantity": "1",
                "unit_price": "80.50",
                "tax_rate_ids": [made["vat"]["id"]],
            },
        ],
        **more,
    }
    return await created(member, "/invoices", body)


async def _finalize(member: Member, invoice_id: str, body: dict[str, Any] | None = None) -> Any:
    return await member.client.post(f"{API}/invoices/{invoice_id}/finalize", json=body or {})


async def test_a_draft_has_no_number_and_finalizing_numbers_and_freezes_it(seller: Member) -> None:
    made = await catalogue(seller)
    draft = await _draft(seller, made)
    assert draft["status"] == "draft"
    assert draft["number"] is None
    assert draft["totals"]["net_total"] == "380.50"  # 3 × 100 + 80.50
    assert draft["totals"]["vat_total"] == "72.30"  # round(380.50 × 19 %) once
    assert draft["totals"]["payable"] == "452.80"
    assert [line["net"] for line in draft["lines"]] == [None, "300.00", "80.50"]

    done = await _finalize(seller, draft["id"], {"issue_date": "2026-11-26"})
    assert done.status_code == 201, done.text
    assert done.json()["number"] == "INV-2026-00001"
    assert done.json()["due_date"] == "2026-12-26"  # 30 days' terms by default
    final = (await seller.client.get(f"{API}/invoices/{draft['id']}")).json()
    assert final["status"] == "finalized"
    assert final["totals"]["payable"] == "452.80"
    assert final["exchange_rate"] == "1"
    assert final["exchange_rate_source"] == "identity"

    changed = await seller.client.patch(f"{API}/invoices/{draft['id']}", json={"notes": "x"})
    assert changed.status_code == 409
    deleted = await seller.client.delete(f"{API}/invoices/{draft['id']}")
    assert deleted.status_code == 409
    again = await _finalize(seller, draft["id"])
    assert again.status_code == 409
    second = await _draft(seller, made)
    assert (await _finalize(seller, second["id"], {"issue_date": "2026-11-27"})).json()[
        "number"
    ] == "INV-2026-00002"


async def test_the_database_refuses_to_change_a_finalized_invoice(
    seller: Member, runtime: Runtime
) -> None:
    made = await catalogue(seller)
    draft = await _draft(seller, made)
    assert (await _finalize(seller, draft["id"])).status_code == 201
    async with runtime.db.transaction(UUID(seller.workspace_id)):
        with pytest.raises(Exception, match="finalized"):
            await runtime.db.execute(
                "UPDATE invoicing_invoices SET payable_total = 1 WHERE id = $1", UUID(draft["id"])
            )
    async with runtime.db.transaction(UUID(seller.workspace_id)):
        with pytest.raises(Exception, match="finalized"):
            await runtime.db.execute(
                "UPDATE invoicing_invoice_lines SET unit_price = 1 WHERE invoice_id = $1",
                UUID(draft["id"]),
            )


async def test_a_foreign_currency_invoice_fixes_its_exchange_rate_at_issue(seller: Member) -> None:
    no_tax = await created(seller, "/tax-rates", {"name": "No tax", "rate": "0", "category": "O"})

    async def draft(currency: str) -> str:
        made = await created(
            seller,
            "/invoices",
            {
                "currency": currency,
                "customer": {"name": "Foreign Buyer"},
                "lines": [
                    {"description": "Licence", "unit_price": "1000", "tax_rate_ids": [no_tax["id"]]}
                ],
            },
        )
        return str(made["id"])

    # Given with the request: kept as given.
    given = await draft("USD")
    done = await _finalize(
        seller,
        given,
        {
            "exchange_rate": "0.9215",
            "exchange_rate_source": "bank",
            "exchange_rate_date": "2026-11-25",
        },
    )
    assert done.status_code == 201, done.text
    final = (await seller.client.get(f"{API}/invoices/{given}")).json()
    assert (final["exchange_rate"], final["exchange_rate_source"], final["exchange_rate_date"]) == (
        "0.9215",
        "bank",
        "2026-11-25",
    )
    assert final["company_currency"] == "EUR"
    # Not given: the ECB's reference rate of the issue date (a Thursday), or the last one before.
    looked_up = await draft("USD")
    assert (await _finalize(seller, looked_up, {"issue_date": "2026-10-15"})).status_code == 201
    final = (await seller.client.get(f"{API}/invoices/{looked_up}")).json()
    assert final["exchange_rate_source"] == "ECB euro reference rate"
    assert final["exchange_rate_date"] == "2026-10-15"
    assert Decimal("0.5") < Decimal(final["exchange_rate"]) < Decimal("1.5")
    weekend = await draft("CHF")
    assert (await _finalize(seller, weekend, {"issue_date": "2026-10-18"})).status_code == 201
    assert (await seller.client.get(f"{API}/invoices/{weekend}")).json()[
        "exchange_rate_date"
    ] == "2026-10-16"
    # A currency the ECB does not publish needs a rate from the user, and nothing is numbered.
    unknown = await draft("KWD")
    missing = await _finalize(seller, unknown, {"issue_date": "2026-10-15"})
    assert missing.status_code == 400
    assert "exchange_rate" in error_fields(missing)
    assert (await seller.client.get(f"{API}/invoices/{unknown}")).json()["number"] is None


async def test_credit_notes_have_their_own_series_and_never_exceed_the_invoice(
    seller: Member,
) -> None:
    made = await catalogue(seller)
    draft = await _draft(seller, made, discount_amount="30.50")
    invoice_number = (await _finalize(seller, draft["id"])).json()["number"]
    note = await created(
        seller,
        f"/invoices/{draft['id']}/credit-note",
        {"positions": [1], "quantities": {"1": "1"}},
    )
    assert note["kind"] == "credit_note"
    assert note["credited_invoice_id"] == draft["id"]
    assert [line["quantity"] for line in note["lines"]] == ["1"]
    finalized = await _finalize(seller, note["id"])
    assert finalized.status_code == 201, finalized.text
    year = finalized.json()["issue_date"][:4]
    assert finalized.json()["number"] == f"CN-{year}-00001"
    assert invoice_number == f"INV-{year}-00001"
    # Crediting everything again would exceed what is left.
    whole = await created(seller, f"/invoices/{draft['id']}/credit-note", {})
    over = await _finalize(seller, whole["id"])
    assert over.status_code == 409
    assert (await seller.client.get(f"{API}/invoices/{whole['id']}")).json()["number"] is None
    bad = await seller.client.post(
        f"{API}/invoices/{draft['id']}/credit-note", json={"quantities": {"1": "4"}}
    )
    assert bad.status_code == 400
    assert "quantities.1" in error_fields(bad)


async def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(seller: Member) -> None:
    made = await catalogue(seller)
    cases = [
        ({"lines": [{"description": "x"}]}, "lines[0].unit_price"),
        ({"lines": [{"unit_price": "1"}]}, "lines[0].description"),
        ({"lines": [{"product_id": made["vat"]["id"]}]}, "lines[0].product_id"),
        (
            {"lines": [{"description": "x", "unit_price": "1", "quantity": "1e40"}]},
            "lines[0].quantity",
        ),
        (
            {"lines": [{"description": "x", "unit_price": "1", "discount_percent": "120"}]},
            "lines[0].discount_percent",
        ),
        (
            {"lines": [{"description": "x", "unit_price": "1", "unit_code": "ZZZ"}]},
            "lines[0].unit_code",
        ),
        (
            {"lines": [{"description": "x", "unit_price": "1", "optional": True}]},
            "lines[0].optional",
        ),
        ({"lines": [], "currency": "EURO"}, "currency"),
        ({"lines": [], "discount_percent": "5", "discount_amount": "1"}, "discount_amount"),
        ({"lines": [], "customer": {"name": ""}}, "customer.name"),
        ({"lines": [], "customer": {"name": "A", "country": "Germany"}}, "customer.country"),
        ({"lines": [], "shipping": 1}, "shipping"),
    ]
    for body, field in cases:
        response = await seller.client.post(f"{API}/invoices", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in error_fields(response), (body, response.json())
    assert (await seller.client.get(f"{API}/invoices")).json() == []
    empty = await created(seller, "/invoices", {"lines": [], "customer": {"name": "A"}})
    refused = await _finalize(seller, empty["id"])
    assert refused.status_code == 400
    assert "lines" in error_fields(refused)
    nameless = await created(
        seller, "/invoices", {"lines": [{"description": "x", "unit_price": "1"}]}
    )
    refused = await _finalize(seller, nameless["id"])
    assert "customer.name" in error_fields(refused)
    # Nothing was numbered by the refused finalizations.
    good = await _draft(seller, made)
    assert (await _finalize(seller, good["id"])).json()["seq"] == 1


async def test_another_workspace_sees_no_invoice_and_has_its_own_number_series(
    seller: Member, rival: Member
) -> None:
    made = await catalogue(seller)
    draft = await _draft(seller, made)
    assert (await _finalize(seller, draft["id"])).json()["seq"] == 1
    assert (await rival.client.get(f"{API}/invoices")).json() == []
    for method, path, body in [
        ("GET", f"/invoices/{draft['id']}", None),
        ("PATCH", f"/invoices/{draft['id']}", {"notes": "mine"}),
        ("DELETE", f"/invoices/{draft['id']}", None),
        ("POST", f"/invoices/{draft['id']}/finalize", {}),
        ("POST", f"/invoices/{draft['id']}/credit-note", {}),
    ]:
        response = await rival.client.request(method, API + path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    theirs = await created(
        rival,
        "/invoices",
        {"customer": {"name": "C"}, "lines": [{"description": "x", "unit_price": "5"}]},
    )
    # The rival's series starts at 1: number series never cross workspaces.
    assert (await _finalize(rival, theirs["id"])).json()["seq"] == 1
    mine = await _draft(seller, made)
    assert (await _finalize(seller, mine["id"])).json()["seq"] == 2


async def test_two_hundred_concurrent_finalizations_take_two_hundred_consecutive_numbers(
    seller: Member, runtime: Runtime
) -> None:
    drafts = [
        (
            await created(
                seller,
                "/invoices",
                {"customer": {"name": f"C{i}"}, "lines": [{"description": "x", "unit_price": "1"}]},
            )
        )["id"]
        for i in range(201)
    ]
    # A finalization that rolls back after taking its number gives the number back.
    tenant = UUID(seller.workspace_id)
    with pytest.raises(RuntimeError, match="rolled back"):
        await _finalize_then_fail(runtime, seller, drafts[0])
    started = time.perf_counter()
    responses = await asyncio.gather(*(_finalize(seller, d) for d in drafts[1:]))
    elapsed = time.perf_counter() - started
    assert [r.status_code for r in responses] == [201] * 200, [
        r.text for r in responses if r.status_code != 201
    ][:3]
    numbers = sorted(r.json()["seq"] for r in responses)
    assert numbers == list(range(1, 201))  # no gap (the rolled-back 1 was reused), no duplicate
    assert elapsed < 60
    rows = await _rows(runtime, tenant)
    assert rows == (200, 1, 200)
    last = await _finalize(seller, drafts[0])
    assert last.json()["seq"] == 201


async def _finalize_then_fail(runtime: Runtime, member: Member, draft: str) -> None:
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, member.slug)
        taken = await finalize(plugins.context("invoicing"), UUID(draft), FinalizeIn())
        assert taken["seq"] == 1
        raise RuntimeError("rolled back")


async def _rows(runtime: Runtime, tenant: UUID) -> tuple[int, int, int]:
    async with runtime.db.transaction(tenant):
        row = await runtime.db.fetchrow(
            "SELECT count(*) AS n, min(seq) AS low, max(seq) AS high FROM invoicing_invoices "
            "WHERE tenant_id = $1 AND status = 'finalized'",
            tenant,
        )
    assert row is not None
    return row["n"], row["low"], row["high"]


async def test_finalizing_emits_an_event_with_the_line_refs(
    seller: Member, runtime: Runtime
) -> None:
    draft = await created(
        seller,
        "/invoices",
        {
            "customer": {"name": "C"},
            "lines": [
                {"description": "Design", "unit_price": "10", "quantity": "2", "ref": "time:41"},
                {"description": "Build", "unit_price": "10", "ref": "time:42"},
            ],
        },
    )
    number = (await _finalize(seller, draft["id"])).json()["number"]
    note = await created(seller, f"/invoices/{draft['id']}/credit-note", {"positions": [1]})
    await _finalize(seller, note["id"])
    tenant = UUID(seller.workspace_id)
    async with runtime.db.transaction(tenant):
        rows = await runtime.db.fetch(
            "SELECT type, data FROM outbox_events WHERE tenant_id = $1 AND type LIKE 'invoicing.%' "
            "ORDER BY occurred_at",
            tenant,
        )
    events = [
        (r["type"], json.loads(r["data"]) if isinstance(r["data"], str) else r["data"])
        for r in rows
    ]
    assert [t for t, _ in events] == [
        "invoicing.invoice_finalized",
        "invoicing.credit_note_finalized",
    ]
    invoice_event, credit_event = events[0][1], events[1][1]
    assert invoice_event["number"] == number
    assert [x["ref"] for x in invoice_event["lines"]] == ["time:41", "time:42"]
    assert credit_event["credited_invoice_id"] == draft["id"]
    assert [x["ref"] for x in credit_event["lines"]] == ["time:42"]


async def test_an_invoice_for_a_company_prints_the_crm_name_unless_told_otherwise(
    seller: Member,
) -> None:
    company = await seller.client.post(
        "/api/v1/companies", json={"name": "Acme SAS", "address": "1 rue X, Lyon"}
    )
    line = {"description": "x", "unit_price": "10"}
    from_crm = await created(
        seller, "/invoices", {"company_id": company.json()["id"], "lines": [line]}
    )
    assert from_crm["customer"]["name"] == "Acme SAS"
    assert from_crm["customer"]["address"] == "1 rue X, Lyon"
    named = await created(
        seller,
        "/invoices",
        {
            "company_id": company.json()["id"],
            "customer": {"name": "Acme (billing)"},
            "lines": [line],
        },
    )
    assert named["customer"]["name"] == "Acme (billing)"
    assert (await _finalize(seller, from_crm["id"])).status_code == 201
