"""Issued documents over HTTP: rendered once by the outbox after finalizing, served as issued."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

import pikepdf
import pytest
from lxml import etree

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.documents import render_documents
from orbit.plugins.builtin.invoicing.einvoice.validate import check
from orbit.plugins.builtin.invoicing.outbox import run_due
from orbit.plugins.context import PluginContext
from tests.conftest import Member
from tests.integration.invoicing.conftest import API, catalogue, created

pytest.importorskip("saxonche")

SELLER_SETTINGS = {
    "seller_name": "Seller Co SARL",
    "seller_street": "1 rue du Port",
    "seller_postcode": "13002",
    "seller_city": "Marseille",
    "seller_country": "FR",
    "seller_vat_id": "FR40303265045",
    "seller_iban": "FR7630006000011234567890189",
}
RAM = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


@asynccontextmanager
async def plugin_context(runtime: Runtime, member: Member) -> AsyncIterator[PluginContext]:
    """The invoicing plugin's context for ``member``'s workspace, in one transaction."""
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, member.slug)
        ctx = plugins.context("invoicing")
        try:
            yield ctx
        except BaseException:
            await ctx.db.settle(ok=False)
            raise
        await ctx.db.settle(ok=True)


_CATALOGUES: dict[str, dict[str, Any]] = {}


async def catalogue_once(member: Member) -> dict[str, Any]:
    """The workspace's test catalogue, made on first use."""
    if member.workspace_id not in _CATALOGUES:
        _CATALOGUES[member.workspace_id] = await catalogue(member)
    return _CATALOGUES[member.workspace_id]


async def finalized_invoice(member: Member, **more: Any) -> dict[str, Any]:
    """A finalized invoice: 3 h of consulting at 100.00 + 19 % VAT, and travel."""
    made = await catalogue_once(member)
    body = {
        "customer": {"name": "Buyer GmbH", "country": "DE", "vat_id": "DE123456789",
                     "address": "Hauptstraße 5\n10115 Berlin", "email": "ap@buyer.example"},
        "lines": [
            {"kind": "section", "description": "Work"},
            {"product_id": made["product"]["id"], "quantity": "3"},
            {"description": "Travel", "quantity": "1", "unit_price": "80.50",
             "tax_rate_ids": [made["vat"]["id"]]},
        ],
        **more,
    }  # fmt: skip
    draft = await created(member, "/invoices", body)
    final = await member.client.post(f"{API}/invoices/{draft['id']}/finalize", json={})
    assert final.status_code == 201, final.text
    out: dict[str, Any] = final.json()
    return out


async def _configure(member: Member, settings: dict[str, Any]) -> None:
    saved = await member.client.put(
        "/api/v1/marketplace/invoicing/settings", json={"settings": settings}
    )
    assert saved.status_code == 200, saved.text


async def test_finalizing_issues_the_pdf_and_xml_once_and_serves_them_as_issued(
    runtime: Runtime, seller: Member, rival: Member
) -> None:
    await _configure(seller, SELLER_SETTINGS)
    invoice = await finalized_invoice(seller)
    missing = await seller.client.get(f"{API}/invoices/{invoice['id']}/pdf")
    assert missing.status_code == 404  # not rendered yet: the outbox does it after commit
    async with plugin_context(runtime, seller) as ctx:
        assert await run_due(ctx) >= 1
    pdf = await seller.client.get(f"{API}/invoices/{invoice['id']}/pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-content-sha256"] == hashlib.sha256(pdf.content).hexdigest()
    document = pikepdf.open(io.BytesIO(pdf.content))
    assert document.Root["/AF"][0]["/AFRelationship"] == pikepdf.Name("/Alternative")
    xml = bytes(document.attachments["factur-x.xml"].get_file().read_bytes())
    check(xml)
    cii = etree.fromstring(xml)
    # 3 × 100.00 + 80.50 = 380.50 net, 19 % once on the base: 72.30; due 452.80.
    assert cii.findtext(".//ram:TaxBasisTotalAmount", namespaces=RAM) == "380.50"
    assert cii.findtext(".//ram:TaxTotalAmount", namespaces=RAM) == "72.30"
    assert cii.findtext(".//ram:DuePayableAmount", namespaces=RAM) == invoice["payable_total"]
    ubl = await seller.client.get(f"{API}/invoices/{invoice['id']}/ubl.xml")
    assert ubl.status_code == 200
    check(ubl.content)
    assert (await seller.client.get(f"{API}/invoices/{invoice['id']}/factur-x.xml")).content == xml

    async with plugin_context(runtime, seller) as ctx:
        assert await render_documents(ctx, UUID(invoice["id"])) is False  # never re-rendered
    again = await seller.client.get(f"{API}/invoices/{invoice['id']}/pdf")
    assert again.content == pdf.content
    with pytest.raises(Exception, match="never changes"):
        async with plugin_context(runtime, seller) as ctx:
            await ctx.db.execute(
                "UPDATE invoicing_documents SET content = 'x' WHERE tenant_id = $1",
                ctx.tenant_id,
            )
    # Another workspace sees nothing of it.
    for kind in ("pdf", "ubl.xml", "factur-x.xml"):
        foreign = await rival.client.get(f"{API}/invoices/{invoice['id']}/{kind}")
        assert foreign.status_code == 404
    async with plugin_context(runtime, rival) as ctx:
        assert await render_documents(ctx, UUID(invoice["id"])) is False
        assert await ctx.db.fetchval("SELECT count(*) FROM invoicing_documents") == 0


async def test_a_draft_gets_no_document(runtime: Runtime, seller: Member) -> None:
    made = await catalogue_once(seller)
    draft = await created(
        seller,
        "/invoices",
        {"customer": {"name": "B"}, "lines": [{"product_id": made["product"]["id"]}]},
    )
    async with plugin_context(runtime, seller) as ctx:
        assert await render_documents(ctx, UUID(draft["id"])) is False
    assert (await seller.client.get(f"{API}/invoices/{draft['id']}/pdf")).status_code == 404
    assert Decimal(draft["payable_total"]) == Decimal("119.00")
