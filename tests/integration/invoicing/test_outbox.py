"""After commit: the outbox renders the documents and emails the customer, in order, once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.outbox import run_due
from tests.conftest import Member, make_client
from tests.integration.invoicing.conftest import API, created


async def _run(runtime: Runtime, member: Member) -> int:
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, member.slug)
        return await run_due(plugins.context("invoicing"))


async def _fetch(runtime: Runtime, member: Member, sql: str, *args: Any) -> list[Any]:
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        return await runtime.db.fetch(sql, *args)


async def test_a_finalized_invoice_is_rendered_then_emailed_with_its_link_once(
    seller: Member, runtime: Runtime
) -> None:
    draft = await created(
        seller,
        "/invoices",
        {"customer": {"name": "Buyer", "email": "ap@buyer.example", "country": "DE"},
         "lines": [{"description": "Work", "unit_price": "100"}]},
    )  # fmt: skip
    finalized = await seller.client.post(f"{API}/invoices/{draft['id']}/finalize", json={})
    number = finalized.json()["number"]
    tasks = await _fetch(
        runtime, seller,
        "SELECT task, position FROM invoicing_outbox WHERE invoice_id = $1 ORDER BY position",
        UUID(draft["id"]),
    )  # fmt: skip
    assert [(t["task"], t["position"]) for t in tasks][-1] == ("send_invoice", 30)
    while await _run(runtime, seller):
        pass
    mails = await _fetch(
        runtime, seller,
        "SELECT to_address, subject, body FROM outbox_emails WHERE tenant_id = $1",
        UUID(seller.workspace_id),
    )  # fmt: skip
    assert [(m["to_address"], m["subject"]) for m in mails] == [
        ("ap@buyer.example", f"Invoice {number}")
    ]
    link = next(w for w in mails[0]["body"].split() if "/p/invoicing/invoices/" in w)
    customer = make_client(seller.client._transport.app)  # type: ignore[attr-defined]
    page = await customer.get(urlsplit(link).path)
    assert page.status_code == 200
    assert number in page.text
    assert 'id="invoice-pdf"' in page.text
    pdf = await customer.get(urlsplit(link).path + "/pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    # Run again: nothing is sent twice.
    assert await _run(runtime, seller) == 0
    again = await _fetch(
        runtime,
        seller,
        "SELECT count(*) AS n FROM outbox_emails WHERE tenant_id = $1",
        UUID(seller.workspace_id),
    )
    assert again[0]["n"] == 1
    final = (await seller.client.get(f"{API}/invoices/{draft['id']}")).json()
    assert final["sent_at"] is not None
    await customer.aclose()


async def test_a_finalized_invoice_appears_on_its_company_timeline(seller: Member) -> None:
    company = await seller.client.post("/api/v1/companies", json={"name": "Timeline AG"})
    company_id = company.json()["id"]
    draft = await created(
        seller,
        "/invoices",
        {"company_id": company_id, "lines": [{"description": "x", "unit_price": "5"}]},
    )
    number = (await seller.client.post(f"{API}/invoices/{draft['id']}/finalize", json={})).json()[
        "number"
    ]
    page = await seller.client.get(f"/t/{seller.slug}/companies/{company_id}")
    assert page.status_code == 200
    assert f"Invoice {number} issued" in page.text


async def test_a_failing_task_is_retried_later_with_its_error_and_holds_back_the_next(
    seller: Member, runtime: Runtime
) -> None:
    invoice_id = uuid7()
    tenant = UUID(seller.workspace_id)
    async with runtime.db.transaction(tenant):
        await runtime.db.execute(
            "INSERT INTO invoicing_outbox (tenant_id, id, task, invoice_id, position) "
            "VALUES ($1, $2, 'no_such_task', $3, 1), ($1, $4, 'send_invoice', $3, 2)",
            tenant, uuid7(), invoice_id, uuid7(),
        )  # fmt: skip
    assert await _run(runtime, seller) == 0
    rows = await _fetch(
        runtime, seller,
        "SELECT task, attempts, last_error, done_at, run_after > now() AS later "
        "FROM invoicing_outbox WHERE invoice_id = $1 ORDER BY position",
        invoice_id,
    )  # fmt: skip
    assert (rows[0]["attempts"], rows[0]["done_at"], rows[0]["later"]) == (1, None, True)
    assert "no handler" in rows[0]["last_error"]
    # The next task of the same invoice waits for the failed one.
    assert (rows[1]["attempts"], rows[1]["done_at"]) == (0, None)
