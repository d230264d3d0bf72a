"""Quotes from deals, revisions, and the customer's portal: sign bound to the document's hash."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.outbox import run_due
from tests.conftest import Member, make_client
from tests.integration.invoicing.conftest import API, catalogue, created, error_fields

# A 1×1 PNG, what the canvas sends (a real drawing is larger, the same kind).
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


async def _deal(member: Member) -> dict[str, Any]:
    company = await member.client.post(
        "/api/v1/companies", json={"name": "Buyer GmbH", "address": "Hauptstr. 1, Berlin"}
    )
    assert company.status_code == 201, company.text
    contact = await member.client.post(
        "/api/v1/contacts",
        json={"first_name": "Ada", "last_name": "Buyer", "email": "ada@buyer.example"},
    )
    assert contact.status_code == 201, contact.text
    deal = await member.client.post(
        "/api/v1/deals",
        json={
            "title": "Website rebuild",
            "amount": "5000",
            "currency": "EUR",
            "company_id": company.json()["id"],
            "contact_ids": [contact.json()["id"]],
        },
    )
    assert deal.status_code == 201, deal.text
    return deal.json()


async def _quote_from_deal(member: Member) -> tuple[dict[str, Any], dict[str, Any]]:
    made = await catalogue(member)
    deal = await _deal(member)
    quote = await created(
        member,
        "/quotes",
        {
            "deal_id": deal["id"],
            "terms": "50 % on signature.",
            "discount_percent": "10",
            "lines": [
                {"kind": "section", "description": "Design"},
                {"product_id": made["product"]["id"], "quantity": "10"},
                {
                    "description": "Extra workshop",
                    "unit_price": "400",
                    "tax_rate_ids": [made["vat"]["id"]],
                    "optional": True,
                    "selected": False,
                },
            ],
        },
    )
    return deal, quote


async def _issue(runtime: Runtime, member: Member) -> None:
    """What the worker's outbox job does for the workspace."""
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, member.slug)
        assert await run_due(plugins.context("invoicing")) >= 1


def _path(url: str) -> str:
    return urlsplit(url).path


async def test_a_quote_from_a_deal_is_signed_in_the_portal_and_becomes_a_draft_invoice(
    seller: Member, runtime: Runtime
) -> None:
    deal, quote = await _quote_from_deal(seller)
    assert quote["deal_id"] == deal["id"]
    assert quote["currency"] == "EUR"
    assert quote["title"] == "Website rebuild"
    assert quote["customer"]["name"] == "Buyer GmbH"
    assert quote["customer"]["email"] == "ada@buyer.example"
    assert quote["number"].startswith("Q-")
    # 10 h × 100, 10 % off, the unselected optional line left out: 900 + 19 % = 1071.
    assert quote["totals"]["net_total"] == "900.00"
    assert quote["totals"]["payable"] == "1071.00"
    assert [line["net"] for line in quote["lines"]] == [None, "1000.00", None]

    sent = await seller.client.post(f"{API}/quotes/{quote['id']}/send")
    assert sent.status_code == 201, sent.text
    portal = _path(sent.json()["portal_url"])
    assert portal.startswith("/p/invoicing/quotes/")
    customer = make_client(seller.client._transport.app)  # type: ignore[attr-defined]
    preparing = await customer.get(portal)
    assert 'data-status="preparing"' in preparing.text
    await _issue(runtime, seller)

    page = await customer.get(portal)
    assert page.status_code == 200
    assert "50 % on signature." in page.text  # the terms come before the signature
    assert page.text.index("50 % on signature.") < page.text.index('id="accept-form"')
    document = await customer.get(portal + "/document")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/pdf")
    assert document.content.startswith(b"%PDF-")
    sha = hashlib.sha256(document.content).hexdigest()
    assert f'<code id="document-sha256">{sha}</code>' in page.text

    # A signature bound to other bytes is refused, and nothing changes.
    wrong = await customer.post(
        portal + "/accept",
        data={
            "name": "Ada Buyer",
            "accept_terms": "yes",
            "document_sha256": "0" * 64,
            "signature": f"data:image/png;base64,{PNG}",
        },
    )
    assert wrong.status_code == 400
    unsigned = await customer.post(
        portal + "/accept",
        data={"name": "Ada Buyer", "accept_terms": "yes", "document_sha256": sha, "signature": ""},
    )
    assert unsigned.status_code == 400
    assert (await seller.client.get(f"{API}/quotes/{quote['id']}")).json()["status"] == "sent"

    accepted = await customer.post(
        portal + "/accept",
        data={
            "name": "Ada Buyer",
            "accept_terms": "yes",
            "document_sha256": sha,
            "signature": f"data:image/png;base64,{PNG}",
        },
        headers={"User-Agent": "Test Browser/1.0"},
    )
    assert accepted.status_code == 200, accepted.text
    assert 'data-status="accepted"' in accepted.text
    after = (await seller.client.get(f"{API}/quotes/{quote['id']}")).json()
    assert after["status"] == "accepted"
    assert after["accepted_name"] == "Ada Buyer"
    assert after["accepted_document_sha256"] == sha
    assert after["accepted_user_agent"] == "Test Browser/1.0"
    assert after["accepted_ip"]
    tenant = UUID(seller.workspace_id)
    async with runtime.db.transaction(tenant):
        stored = await runtime.db.fetchval(
            "SELECT accepted_signature FROM invoicing_quotes WHERE id = $1", UUID(quote["id"])
        )
    assert bytes(stored) == base64.b64decode(PNG)

    invoice = (await seller.client.get(f"{API}/invoices/{after['invoice_id']}")).json()
    assert invoice["status"] == "draft"
    assert invoice["quote_id"] == quote["id"]
    assert invoice["totals"]["payable"] == "1071.00"  # the same money as the quote
    assert [line["description"] for line in invoice["lines"]] == ["Design", "Consulting"]
    won = (await seller.client.get(f"/api/v1/deals/{deal['id']}")).json()
    assert won["status"] == "won"
    # Accepting twice is refused.
    again = await customer.post(
        portal + "/accept",
        data={
            "name": "Ada Buyer",
            "accept_terms": "yes",
            "document_sha256": sha,
            "signature": f"data:image/png;base64,{PNG}",
        },
    )
    assert again.status_code == 409
    timeline = await seller.client.get(f"/t/{seller.slug}/deals/{deal['id']}")
    assert f"Quote {quote['number']} accepted" in timeline.text
    await customer.aclose()


async def test_a_customer_declines_with_a_reason_and_a_revision_supersedes_the_link(
    seller: Member, runtime: Runtime
) -> None:
    _, quote = await _quote_from_deal(seller)
    portal = _path(
        (await seller.client.post(f"{API}/quotes/{quote['id']}/send")).json()["portal_url"]
    )
    await _issue(runtime, seller)
    customer = make_client(seller.client._transport.app)  # type: ignore[attr-defined]
    empty = await customer.post(portal + "/decline", data={"reason": " "})
    assert empty.status_code == 400
    declined = await customer.post(portal + "/decline", data={"reason": "Too expensive"})
    assert declined.status_code == 200
    assert 'data-status="declined"' in declined.text
    changed = await seller.client.patch(f"{API}/quotes/{quote['id']}", json={"title": "x"})
    assert changed.status_code == 409
    revised = await created(seller, f"/quotes/{quote['id']}/revise", {})
    assert (revised["number"], revised["revision"], revised["status"]) == (
        quote["number"],
        2,
        "draft",
    )
    cheaper = await seller.client.patch(
        f"{API}/quotes/{revised['id']}", json={"discount_percent": "20"}
    )
    assert cheaper.json()["totals"]["payable"] == "952.00"
    await seller.client.post(f"{API}/quotes/{revised['id']}/send")
    old = await customer.get(portal)
    assert "replaced by a newer revision" in old.text
    assert re.search(r'id="latest-revision"', old.text)
    assert (await seller.client.get(f"{API}/quotes/{quote['id']}")).json()["status"] == "superseded"
    await customer.aclose()


async def test_an_expired_quote_cannot_be_accepted(seller: Member, runtime: Runtime) -> None:
    _, quote = await _quote_from_deal(seller)
    portal = _path(
        (await seller.client.post(f"{API}/quotes/{quote['id']}/send")).json()["portal_url"]
    )
    await _issue(runtime, seller)
    tenant = UUID(seller.workspace_id)
    async with runtime.db.transaction(tenant):
        await runtime.db.execute(
            "UPDATE invoicing_quotes SET expires_on = current_date - 1 WHERE id = $1",
            UUID(quote["id"]),
        )
    customer = make_client(seller.client._transport.app)  # type: ignore[attr-defined]
    page = await customer.get(portal)
    assert 'data-status="expired"' in page.text
    late = await customer.post(portal + "/decline", data={"reason": "late"})
    assert late.status_code == 410
    assert (await seller.client.get(f"{API}/quotes/{quote['id']}")).json()["status"] == "expired"
    await customer.aclose()


async def test_bad_quote_input_is_a_4xx_naming_the_field(seller: Member) -> None:
    made = await catalogue(seller)
    cases = [
        ({"deal_id": made["vat"]["id"]}, "deal_id"),
        ({"company_id": made["vat"]["id"]}, "company_id"),
        ({"lines": [{"description": "x"}]}, "lines[0].unit_price"),
        ({"currency": "XXXX"}, "currency"),
        ({"discount_percent": "150"}, "discount_percent"),
    ]
    for body, field in cases:
        response = await seller.client.post(f"{API}/quotes", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in error_fields(response), (body, response.json())
    assert (await seller.client.get(f"{API}/quotes")).json() == []
    nameless = await created(
        seller, "/quotes", {"lines": [{"description": "x", "unit_price": "1"}]}
    )
    refused = await seller.client.post(f"{API}/quotes/{nameless['id']}/send")
    assert refused.status_code == 400
    assert "customer.name" in error_fields(refused)


async def test_another_workspace_cannot_see_or_open_a_quote_or_its_link(
    seller: Member, rival: Member, runtime: Runtime
) -> None:
    _, quote = await _quote_from_deal(seller)
    sent = (await seller.client.post(f"{API}/quotes/{quote['id']}/send")).json()
    assert (await rival.client.get(f"{API}/quotes")).json() == []
    for method, path in [
        ("GET", f"/quotes/{quote['id']}"),
        ("PATCH", f"/quotes/{quote['id']}"),
        ("POST", f"/quotes/{quote['id']}/send"),
        ("POST", f"/quotes/{quote['id']}/revise"),
    ]:
        response = await rival.client.request(
            method, API + path, json={} if method != "GET" else None
        )
        assert response.status_code == 404, (method, path, response.text)
    # A link token altered to point elsewhere, or signed for the rival, opens nothing.
    token = sent["portal_url"].rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    customer = make_client(seller.client._transport.app)  # type: ignore[attr-defined]
    assert (await customer.get(f"/p/invoicing/quotes/{tampered}")).status_code == 404
    tenant = UUID(rival.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, rival.slug)
        forged = plugins.context("invoicing").sign({"quote": quote["id"]}, "quote")
    assert (await customer.get(f"/p/invoicing/quotes/{forged}")).status_code == 404
    await customer.aclose()


async def test_a_person_export_lists_their_quotes_and_erase_keeps_only_signed_ones(
    seller: Member, runtime: Runtime
) -> None:
    deal, quote = await _quote_from_deal(seller)
    contact_id = quote["contact_id"]
    line = {"description": "x", "unit_price": "1"}
    signed = await created(seller, "/quotes", {"deal_id": deal["id"], "lines": [line]})
    await created(seller, "/invoices", {"contact_id": contact_id, "lines": [line]})
    tenant = UUID(seller.workspace_id)
    async with runtime.db.transaction(tenant):
        # As if the customer had signed it (the portal's own test covers signing).
        await runtime.db.execute(
            "UPDATE invoicing_quotes SET status = 'accepted', accepted_name = 'Ada' WHERE id = $1",
            UUID(signed["id"]),
        )
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, seller.slug)
        ctx = plugins.context("invoicing")
        module = runtime.plugins.registry.plugin("invoicing")
        exported = await module.orbit_contact_export(ctx=ctx, contact_id=UUID(contact_id))  # type: ignore[attr-defined]
        assert [q["number"] for q in exported["quotes"]] == [quote["number"], signed["number"]]
        assert len(exported["invoices"]) == 1
        await module.orbit_contact_erase(ctx=ctx, contact_id=UUID(contact_id))  # type: ignore[attr-defined]
        await ctx.db.settle(ok=True)
    assert (await seller.client.get(f"{API}/quotes/{quote['id']}")).status_code == 404
    kept = (await seller.client.get(f"{API}/quotes/{signed['id']}")).json()
    assert (kept["status"], kept["accepted_name"], kept["contact_id"]) == ("accepted", "Ada", None)
    assert (await seller.client.get(f"{API}/invoices")).json() == []
    assert deal["id"]
