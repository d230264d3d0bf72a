"""UBL 2.1 Invoice and CreditNote for Peppol BIS Billing 3.0 (EN 16931 compliant)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from orbit.plugins.builtin.invoicing.einvoice.model import (
    EInvoice,
    Party,
    TaxRate,
    amount,
    number,
)

if TYPE_CHECKING:
    from decimal import Decimal

INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
_NS = {"cac": CAC, "cbc": CBC}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{_NS[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _money(parent: etree._Element, tag: str, value: Decimal, currency: str) -> None:
    _el(parent, tag, amount(value, currency), currencyID=currency)


def _tax_category(parent: etree._Element, tag: str, tax: TaxRate, *, reasons: bool) -> None:
    node = _el(parent, tag)
    _el(node, "cbc:ID", tax.category)
    if tax.category != "O":
        _el(node, "cbc:Percent", number(tax.rate))
    if reasons and tax.exemption_code:
        _el(node, "cbc:TaxExemptionReasonCode", tax.exemption_code)
    if reasons and tax.exemption_reason:
        _el(node, "cbc:TaxExemptionReason", tax.exemption_reason)
    _el(_el(node, "cac:TaxScheme"), "cbc:ID", "VAT")


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    node = _el(_el(parent, tag), "cac:Party")
    if party.endpoint is not None:
        _el(node, "cbc:EndpointID", party.endpoint[1], schemeID=party.endpoint[0])
    elif party.email:
        _el(node, "cbc:EndpointID", party.email, schemeID="EM")
    _el(_el(node, "cac:PartyName"), "cbc:Name", party.name)
    address = _el(node, "cac:PostalAddress")
    if party.address.street:
        _el(address, "cbc:StreetName", party.address.street)
    if party.address.city:
        _el(address, "cbc:CityName", party.address.city)
    if party.address.postcode:
        _el(address, "cbc:PostalZone", party.address.postcode)
    _el(_el(address, "cac:Country"), "cbc:IdentificationCode", party.address.country)
    if party.vat_id:
        scheme = _el(node, "cac:PartyTaxScheme")
        _el(scheme, "cbc:CompanyID", party.vat_id)
        _el(_el(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
    legal = _el(node, "cac:PartyLegalEntity")
    _el(legal, "cbc:RegistrationName", party.name)
    if party.legal_id:
        _el(legal, "cbc:CompanyID", party.legal_id)
    if party.email:
        _el(_el(node, "cac:Contact"), "cbc:ElectronicMail", party.email)


def _header(root: etree._Element, invoice: EInvoice) -> None:
    credit = invoice.is_credit_note
    _el(root, "cbc:CustomizationID", PEPPOL_CUSTOMIZATION)
    _el(root, "cbc:ProfileID", PEPPOL_PROFILE)
    _el(root, "cbc:ID", invoice.number)
    _el(root, "cbc:IssueDate", invoice.issue_date.isoformat())
    if not credit and invoice.due_date is not None:
        _el(root, "cbc:DueDate", invoice.due_date.isoformat())
    _el(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", invoice.type_code)
    for note in invoice.notes:
        _el(root, "cbc:Note", note)
    _el(root, "cbc:DocumentCurrencyCode", invoice.currency)
    if invoice.buyer_reference:
        _el(root, "cbc:BuyerReference", invoice.buyer_reference)
    if invoice.order_reference:
        _el(_el(root, "cac:OrderReference"), "cbc:ID", invoice.order_reference)
    if invoice.preceding_invoice:
        reference = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _el(reference, "cbc:ID", invoice.preceding_invoice)
        if invoice.preceding_invoice_date is not None:
            _el(reference, "cbc:IssueDate", invoice.preceding_invoice_date.isoformat())


def _delivery_and_payment(root: etree._Element, invoice: EInvoice) -> None:
    if invoice.delivery_date is not None:
        delivery = _el(root, "cac:Delivery")
        _el(delivery, "cbc:ActualDeliveryDate", invoice.delivery_date.isoformat())
        location = _el(_el(delivery, "cac:DeliveryLocation"), "cac:Address")
        _el(_el(location, "cac:Country"), "cbc:IdentificationCode", invoice.buyer.address.country)
    if invoice.iban:
        means = _el(root, "cac:PaymentMeans")
        _el(means, "cbc:PaymentMeansCode", "58")
        if invoice.is_credit_note and invoice.due_date is not None:
            _el(means, "cbc:PaymentDueDate", invoice.due_date.isoformat())
        if invoice.payment_reference:
            _el(means, "cbc:PaymentID", invoice.payment_reference)
        account = _el(means, "cac:PayeeFinancialAccount")
        _el(account, "cbc:ID", invoice.iban)
        if invoice.bic:
            branch = _el(account, "cac:FinancialInstitutionBranch")
            _el(branch, "cbc:ID", invoice.bic)
    if invoice.payment_terms:
        _el(_el(root, "cac:PaymentTerms"), "cbc:Note", invoice.payment_terms)


def _allowances_and_taxes(root: etree._Element, invoice: EInvoice) -> None:
    cur = invoice.currency
    for item in invoice.allowances_charges:
        node = _el(root, "cac:AllowanceCharge")
        _el(node, "cbc:ChargeIndicator", "true" if item.charge else "false")
        if item.reason_code:
            _el(node, "cbc:AllowanceChargeReasonCode", item.reason_code)
        _el(node, "cbc:AllowanceChargeReason", item.reason)
        _money(node, "cbc:Amount", item.amount, cur)
        _tax_category(node, "cac:TaxCategory", item.tax, reasons=False)
    tax_total = _el(root, "cac:TaxTotal")
    _money(tax_total, "cbc:TaxAmount", invoice.totals.tax_total, cur)
    for subtotal in invoice.taxes:
        node = _el(tax_total, "cac:TaxSubtotal")
        _money(node, "cbc:TaxableAmount", subtotal.base, cur)
        _money(node, "cbc:TaxAmount", subtotal.amount, cur)
        _tax_category(node, "cac:TaxCategory", subtotal.tax, reasons=True)


def _monetary_total(root: etree._Element, invoice: EInvoice) -> None:
    cur = invoice.currency
    totals = invoice.totals
    summary = _el(root, "cac:LegalMonetaryTotal")
    _money(summary, "cbc:LineExtensionAmount", totals.line_total, cur)
    _money(summary, "cbc:TaxExclusiveAmount", totals.tax_exclusive, cur)
    _money(summary, "cbc:TaxInclusiveAmount", totals.tax_inclusive, cur)
    if invoice.allowances_charges:
        _money(summary, "cbc:AllowanceTotalAmount", totals.allowance_total, cur)
        _money(summary, "cbc:ChargeTotalAmount", totals.charge_total, cur)
    if totals.prepaid:
        _money(summary, "cbc:PrepaidAmount", totals.prepaid, cur)
    if totals.rounding:
        _money(summary, "cbc:PayableRoundingAmount", totals.rounding, cur)
    _money(summary, "cbc:PayableAmount", totals.payable, cur)


def _lines(root: etree._Element, invoice: EInvoice) -> None:
    cur = invoice.currency
    credit = invoice.is_credit_note
    for line in invoice.lines:
        node = _el(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        _el(node, "cbc:ID", line.id)
        _el(
            node,
            "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity",
            number(line.quantity),
            unitCode=line.unit_code,
        )
        _money(node, "cbc:LineExtensionAmount", line.net_amount, cur)
        if line.allowance:
            discount = _el(node, "cac:AllowanceCharge")
            _el(discount, "cbc:ChargeIndicator", "false")
            _el(discount, "cbc:AllowanceChargeReasonCode", "95")
            _el(discount, "cbc:AllowanceChargeReason", "Discount")
            _money(discount, "cbc:Amount", line.allowance, cur)
        item_node = _el(node, "cac:Item")
        if line.description:
            _el(item_node, "cbc:Description", line.description)
        _el(item_node, "cbc:Name", line.name)
        _tax_category(item_node, "cac:ClassifiedTaxCategory", line.tax, reasons=False)
        price = _el(node, "cac:Price")
        _el(price, "cbc:PriceAmount", number(line.net_price), currencyID=cur)


def to_ubl(invoice: EInvoice) -> bytes:
    """The invoice as UBL 2.1 XML (``Invoice`` or ``CreditNote``), Peppol BIS 3."""
    root_ns = CREDIT_NOTE if invoice.is_credit_note else INVOICE
    name = "CreditNote" if invoice.is_credit_note else "Invoice"
    nsmap = {None: root_ns, "cac": CAC, "cbc": CBC}
    root = etree.Element(f"{{{root_ns}}}{name}", nsmap=nsmap)  # type: ignore[arg-type]
    _header(root, invoice)
    _party(root, "cac:AccountingSupplierParty", invoice.seller)
    _party(root, "cac:AccountingCustomerParty", invoice.buyer)
    _delivery_and_payment(root, invoice)
    _allowances_and_taxes(root, invoice)
    _monetary_total(root, invoice)
    _lines(root, invoice)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
