"""E-invoice goldens: CII (Factur-X EN 16931) and UBL (Peppol BIS 3) pass XSD and Schematron.

Each golden is a named business case (multi-rate, exempt, reverse charge, intra-EU,
export, credit note 381, allowances and charges, JPY, withholding, cash rounding…);
the EN 16931 Schematron shipped with ``factur-x`` (compiled to XSLT 2, run by Saxon)
checks every business rule, including VAT per rate (BR-CO-17) and the totals.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from lxml import etree

from orbit.plugins.builtin.invoicing.einvoice import (
    Address,
    AllowanceCharge,
    EInvoice,
    Line,
    Party,
    TaxRate,
    TaxSubtotal,
    Totals,
    to_cii,
    to_ubl,
)
from orbit.plugins.builtin.invoicing.einvoice.model import minor_unit
from orbit.plugins.builtin.invoicing.einvoice.validate import (
    InvalidEInvoiceError,
    check,
    check_xsd,
    schematron_failures,
)

pytest.importorskip("saxonche")

D = Decimal
S20 = TaxRate("S", D(20))
S19 = TaxRate("S", D(19))
S7 = TaxRate("S", D(7))
S21 = TaxRate("S", D(21))
S10 = TaxRate("S", D(10))
S8 = TaxRate("S", D(8))
S5_5 = TaxRate("S", D("5.5"))
Z = TaxRate("Z", D(0))
EXEMPT = TaxRate("E", D(0), "Exempt under Article 132 of Directive 2006/112/EC", "VATEX-EU-132")
REVERSE = TaxRate("AE", D(0), "Reverse charge", "VATEX-EU-AE")
INTRA = TaxRate("K", D(0), "Intra-community supply", "VATEX-EU-IC")
EXPORT = TaxRate("G", D(0), "Export outside the EU", "VATEX-EU-G")
OUT = TaxRate("O", D(0), "Not subject to VAT", "VATEX-EU-O")

SELLER = Party(
    "Orbit Demo SARL",
    Address("FR", "12 rue de la Paix", "Paris", "75002"),
    vat_id="FR32123456789",
    legal_id="123456789",
    email="billing@orbit-demo.fr",
)
BUYER_DE = Party(
    "Kunde GmbH",
    Address("DE", "Hauptstraße 5", "Berlin", "10115"),
    vat_id="DE123456789",
    email="rechnung@kunde.de",
)
BUYER_US = Party(
    "Client Inc.", Address("US", "1 Main St", "Springfield", "12345"), email="ap@client.us"
)


def _allowance(value: Decimal, reason: str, tax: TaxRate, code: str) -> AllowanceCharge:
    return AllowanceCharge(charge=False, amount=value, reason=reason, tax=tax, reason_code=code)


def _charge(value: Decimal, reason: str, tax: TaxRate, code: str) -> AllowanceCharge:
    return AllowanceCharge(charge=True, amount=value, reason=reason, tax=tax, reason_code=code)


def _round(value: Decimal, currency: str) -> Decimal:
    return value.quantize(D(1).scaleb(-minor_unit(currency)), ROUND_HALF_UP)


def golden(
    number: str,
    lines: list[tuple[str, str, str, TaxRate] | tuple[str, str, str, TaxRate, str]],
    *,
    currency: str = "EUR",
    seller: Party = SELLER,
    buyer: Party = BUYER_DE,
    type_code: str = "380",
    doc: tuple[AllowanceCharge, ...] = (),
    prepaid: str = "0",
    rounding: str = "0",
    **extra: Any,
) -> EInvoice:
    """An EN 16931 document from (name, quantity, unit price, tax[, line discount]) lines.

    The arithmetic is EN 16931's: line nets in the currency's minor unit, VAT once per
    category and rate on its taxable base, totals from those.
    """
    built: list[Line] = []
    bases: dict[TaxRate, Decimal] = {}
    for index, (name, quantity, price, tax, *discount) in enumerate(lines, start=1):
        allowance = D(discount[0]) if discount else D(0)
        net = _round(D(quantity) * D(price), currency) - allowance
        built.append(
            Line(str(index), name, D(quantity), "C62", D(price), net, tax, allowance=allowance)
        )
        bases[tax] = bases.get(tax, D(0)) + net
    for item in doc:
        bases[item.tax] = bases.get(item.tax, D(0)) + (item.amount if item.charge else -item.amount)
    taxes = tuple(
        TaxSubtotal(tax, base, _round(base * tax.rate / 100, currency))
        for tax, base in bases.items()
    )
    line_total = sum((line.net_amount for line in built), D(0))
    allowances = sum((i.amount for i in doc if not i.charge), D(0))
    charges = sum((i.amount for i in doc if i.charge), D(0))
    exclusive = line_total - allowances + charges
    tax_total = sum((t.amount for t in taxes), D(0))
    inclusive = exclusive + tax_total
    payable = inclusive - D(prepaid) + D(rounding)
    return EInvoice(
        number=number,
        type_code=type_code,  # type: ignore[arg-type]
        issue_date=date(2026, 11, 25),
        due_date=date(2026, 12, 25),
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=tuple(built),
        taxes=taxes,
        totals=Totals(
            line_total,
            allowances,
            charges,
            exclusive,
            tax_total,
            inclusive,
            D(prepaid),
            D(rounding),
            payable,
        ),
        allowances_charges=doc,
        iban="FR7630006000011234567890189",
        payment_terms="30 days net",
        **extra,
    )


GOLDENS = {
    "single_rate": golden("INV-2026-0001", [("Consulting", "3", "150.00", S20)]),
    "multi_rate_19_7": golden(
        "INV-2026-0002", [("Laptop", "1", "999.99", S19), ("Book", "3", "12.49", S7)]
    ),
    "three_rates_odd_cents": golden(
        "INV-2026-0003",
        [("A", "7", "0.333", S20), ("B", "3", "1.115", S5_5), ("C", "11", "2.005", S10)],
    ),
    "exempt": golden("INV-2026-0004", [("Medical care", "1", "80.00", EXEMPT)]),
    "exempt_and_standard": golden(
        "INV-2026-0005", [("Training", "2", "400.00", EXEMPT), ("Lunch", "2", "15.00", S10)]
    ),
    "reverse_charge": golden("INV-2026-0006", [("Software services", "10", "95.00", REVERSE)]),
    "intra_community_supply": golden(
        "INV-2026-0007",
        [("Machine parts", "4", "250.00", INTRA)],
        delivery_date=date(2026, 11, 20),
    ),
    "export": golden(
        "INV-2026-0008", [("Export goods", "5", "60.00", EXPORT)], buyer=BUYER_US, currency="USD"
    ),
    "zero_rated": golden("INV-2026-0009", [("Newspaper", "30", "1.20", Z)]),
    "credit_note_381": golden(
        "CN-2026-0001",
        [("Returned laptop", "1", "999.99", S19)],
        type_code="381",
        preceding_invoice="INV-2026-0002",
        preceding_invoice_date=date(2026, 11, 1),
    ),
    "credit_note_reverse_charge": golden(
        "CN-2026-0002",
        [("Refunded hours", "2", "95.00", REVERSE)],
        type_code="381",
        preceding_invoice="INV-2026-0006",
    ),
    "document_discount_19": golden(
        "INV-2026-0010",
        [("Service", "1", "1000.00", S19)],
        doc=(_allowance(D("50.00"), "Loyalty discount", S19, "95"),),
    ),
    "shipping_charge": golden(
        "INV-2026-0011",
        [("Chair", "4", "89.90", S20)],
        doc=(_charge(D("25.00"), "Shipping", S20, "FC"),),
    ),
    "allowances_and_charges_multi_rate": golden(
        "INV-2026-0012",
        [("Wine", "6", "12.50", S20), ("Bread", "10", "1.10", S5_5)],
        doc=(
            _allowance(D("7.50"), "Volume discount", S20, "95"),
            _allowance(D("1.00"), "Volume discount", S5_5, "95"),
            _charge(D("9.90"), "Delivery", S20, "FC"),
        ),
    ),
    "line_discounts": golden(
        "INV-2026-0013",
        [("Desk", "2", "300.00", S21, "60.00"), ("Lamp", "3", "45.00", S21, "13.50")],
    ),
    "jpy_two_rates": golden(
        "INV-2026-0014",
        [("Rice 5kg", "3", "2480", S8), ("Kettle", "1", "5980", S10)],
        currency="JPY",
    ),
    "withholding_as_prepaid": golden(
        "INV-2026-0015",
        [("Design work", "1", "1000.00", S21)],
        prepaid="150.00",
        notes=("IRPF withholding 15 %: 150.00 EUR withheld by the buyer (BT-113).",),
    ),
    "deposit_paid": golden("INV-2026-0016", [("Kitchen", "1", "8400.00", S20)], prepaid="2000.00"),
    "cash_rounding_chf": golden(
        "INV-2026-0017",
        [("Coffee", "3", "4.33", TaxRate("S", D("8.1")))],
        currency="CHF",
        rounding="0.01",
    ),
    "out_of_scope": golden(
        "INV-2026-0018",
        [("Membership fee", "1", "120.00", OUT)],
        seller=dataclasses.replace(SELLER, vat_id=None),
        buyer=dataclasses.replace(BUYER_DE, vat_id=None),
    ),
    "many_lines_fractional": golden(
        "INV-2026-0019",
        [(f"Item {i}", f"{i}.5", f"{i}.{i:02d}", S20 if i % 3 else S5_5) for i in range(1, 51)],
    ),
    "usd_hours_buyer_reference": golden(
        "INV-2026-0020",
        [("Support hours", "7.25", "120.00", Z)],
        currency="USD",
        buyer_reference="PO-77-AX",
        order_reference="PO-77",
    ),
    "gbp_terms_only": dataclasses.replace(
        golden("INV-2026-0021", [("Licence", "1", "499.00", TaxRate("S", D(20)))], currency="GBP"),
        iban=None,
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_cii_passes_factur_x_en16931_xsd_and_schematron(name: str) -> None:
    xml = to_cii(GOLDENS[name])
    check_xsd(xml)
    assert schematron_failures(xml) == []


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_ubl_passes_ubl_21_xsd_and_en16931_schematron(name: str) -> None:
    xml = to_ubl(GOLDENS[name])
    check_xsd(xml)
    assert schematron_failures(xml) == []


def test_there_are_at_least_twenty_goldens() -> None:
    assert len(GOLDENS) >= 20


def test_xml_amounts_are_the_models_to_the_minor_unit() -> None:
    invoice = GOLDENS["jpy_two_rates"]
    cii = etree.fromstring(to_cii(invoice))
    ram = {
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    }
    grand = cii.findtext(".//ram:GrandTotalAmount", namespaces=ram)
    assert grand == str(invoice.totals.tax_inclusive)
    assert "." not in (grand or "")  # JPY has no minor unit
    ubl = etree.fromstring(to_ubl(GOLDENS["multi_rate_19_7"]))
    cbc = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    assert (
        ubl.findtext(".//cbc:PayableAmount", namespaces=cbc) == "1230.08"
    )  # 999.99 + 190.00 + 37.47 + 2.62


def test_credit_note_is_a_ubl_creditnote_with_its_invoice_reference() -> None:
    xml = to_ubl(GOLDENS["credit_note_381"])
    root = etree.fromstring(xml)
    assert etree.QName(root).localname == "CreditNote"
    assert b"<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>" in xml
    assert b"INV-2026-0002" in xml


def test_wrong_vat_total_fails_the_schematron() -> None:
    good = GOLDENS["multi_rate_19_7"]
    wrong = dataclasses.replace(
        good, totals=dataclasses.replace(good.totals, tax_total=good.totals.tax_total + D("0.01"))
    )
    for xml in (to_cii(wrong), to_ubl(wrong)):
        check_xsd(xml)
        with pytest.raises(InvalidEInvoiceError, match="BR-CO-14"):
            check(xml)


def test_reverse_charge_without_buyer_vat_id_fails_the_schematron() -> None:
    case = dataclasses.replace(
        GOLDENS["reverse_charge"], buyer=dataclasses.replace(BUYER_DE, vat_id=None)
    )
    assert any("BR-AE" in failure for failure in schematron_failures(to_cii(case)))
    assert any("BR-AE" in failure for failure in schematron_failures(to_ubl(case)))
