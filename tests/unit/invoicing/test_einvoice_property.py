"""Random invoices through compute() → CII and UBL: XSD + EN 16931 Schematron pass, and the
XML carries exactly the computation's amounts (what the screen and the PDF show)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from orbit.plugins.builtin.invoicing.documents import build_view, einvoice_from, render_html
from orbit.plugins.builtin.invoicing.einvoice import to_cii, to_ubl
from orbit.plugins.builtin.invoicing.einvoice.validate import check_xsd, schematron_failures
from orbit.plugins.builtin.invoicing.money import format_money

pytest.importorskip("saxonche")

RAM = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
CBC = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
SETTINGS = {"seller_name": "S", "seller_country": "FR", "seller_vat_id": "FR32123456789",
            "document_language": "en"}  # fmt: skip
RATES = [("S", "20"), ("S", "5.5"), ("S", "19"), ("S", "7"), ("S", "21"), ("Z", "0")]

lines = st.lists(
    st.fixed_dictionaries(
        {
            "quantity": st.decimals("0.5", "40", places=2),
            "unit_price": st.decimals("0.01", "2500", places=2),
            "discount_percent": st.sampled_from(
                [Decimal(0), Decimal(0), Decimal(10), Decimal("12.5")]
            ),
            "rate": st.sampled_from(RATES),
        }
    ),
    min_size=1,
    max_size=8,
)


def _row(currency: str, inclusive: bool, discount: Decimal) -> dict[str, Any]:
    return {
        "id": uuid4(), "kind": "invoice", "status": "finalized", "number": "INV-1",
        "issue_date": date(2026, 11, 25), "due_date": date(2026, 12, 25), "currency": currency,
        "prices_include_tax": inclusive, "discount_percent": discount,
        "discount_amount": Decimal(0), "notes": "", "terms": "",
        "customer": {"name": "B", "country": "DE", "vat_id": "DE123456789"},
        "credited_invoice_id": None,
    }  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=lines,
    currency=st.sampled_from(["EUR", "JPY", "USD"]),
    inclusive=st.booleans(),
    discount=st.sampled_from([Decimal(0), Decimal(5), Decimal("2.5")]),
)
def test_random_invoices_pass_the_schematron_with_computes_amounts(
    lines: list[dict[str, Any]], currency: str, inclusive: bool, discount: Decimal
) -> None:
    stored = []
    for index, line in enumerate(lines):
        category, rate = line["rate"]
        price = line["unit_price"] if currency != "JPY" else line["unit_price"].quantize(Decimal(1))
        stored.append({
            "kind": "item", "position": index, "description": f"Line {index}", "unit_code": "C62",
            "quantity": line["quantity"], "unit_price": max(price, Decimal(1)),
            "discount_percent": line["discount_percent"],
            "taxes": [{"name": "VAT", "rate": rate, "category": category, "kind": "vat"}],
        })  # fmt: skip
    view = build_view(_row(currency, inclusive, discount), stored)
    totals = view.totals
    einvoice = einvoice_from(view, SETTINGS)
    cii, ubl = to_cii(einvoice), to_ubl(einvoice)
    for xml in (cii, ubl):
        check_xsd(xml)
        assert schematron_failures(xml) == [], (lines, currency, inclusive, discount)
    cii_root, ubl_root = etree.fromstring(cii), etree.fromstring(ubl)
    assert cii_root.findtext(".//ram:DuePayableAmount", namespaces=RAM) == str(totals.payable)
    assert cii_root.findtext(".//ram:TaxTotalAmount", namespaces=RAM) == str(totals.vat_total)
    assert ubl_root.findtext(".//cbc:PayableAmount", namespaces=CBC) == str(totals.payable)
    assert ubl_root.findtext(".//cbc:TaxExclusiveAmount", namespaces=CBC) == str(totals.net_total)
    # The screen/PDF HTML prints the same amount due.
    assert format_money(totals.payable, currency, "en") in render_html(view, SETTINGS)
