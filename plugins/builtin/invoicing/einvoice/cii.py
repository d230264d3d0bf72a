"""UN/CEFACT Cross Industry Invoice (D16B) for Factur-X / ZUGFeRD, profile EN 16931."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from orbit.plugins.builtin.invoicing.einvoice.model import (
    AllowanceCharge,
    EInvoice,
    Party,
    TaxRate,
    amount,
    number,
)

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}

EN16931 = "urn:cen.eu:en16931:2017"
"""BT-24 of the Factur-X EN 16931 (COMFORT) profile."""


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _date(parent: etree._Element, tag: str, value: date, ns: str = "udt") -> None:
    holder = _el(parent, tag)
    _el(holder, f"{ns}:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    node = _el(parent, tag)
    _el(node, "ram:Name", party.name)
    if party.legal_id:
        _el(_el(node, "ram:SpecifiedLegalOrganization"), "ram:ID", party.legal_id)
    address = _el(node, "ram:PostalTradeAddress")
    if party.address.postcode:
        _el(address, "ram:PostcodeCode", party.address.postcode)
    if party.address.street:
        _el(address, "ram:LineOne", party.address.street)
    if party.address.city:
        _el(address, "ram:CityName", party.address.city)
    _el(address, "ram:CountryID", party.address.country)
    if party.email:
        _el(_el(node, "ram:URIUniversalCommunication"), "ram:URIID", party.email, schemeID="EM")
    if party.vat_id:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def _category(parent: etree._Element, tax: TaxRate) -> None:
    _el(parent, "ram:TypeCode", "VAT")
    _el(parent, "ram:CategoryCode", tax.category)
    if tax.category != "O":
        _el(parent, "ram:RateApplicablePercent", number(tax.rate))


def _allowance_charge(parent: etree._Element, item: AllowanceCharge, currency: str) -> None:
    node = _el(parent, "ram:SpecifiedTradeAllowanceCharge")
    _el(_el(node, "ram:ChargeIndicator"), "udt:Indicator", "true" if item.charge else "false")
    _el(node, "ram:ActualAmount", amount(item.amount, currency))
    if item.reason_code:
        _el(node, "ram:ReasonCode", item.reason_code)
    _el(node, "ram:Reason", item.reason)
    _category(_el(node, "ram:CategoryTradeTax"), item.tax)


def _money(parent: etree._Element, tag: str, value: Decimal, currency: str) -> None:
    _el(parent, tag, amount(value, currency))


def _line_items(transaction: etree._Element, invoice: EInvoice) -> None:
    cur = invoice.currency
    for line in invoice.lines:
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", line.id)
        product = _el(item, "ram:SpecifiedTradeProduct")
        _el(product, "ram:Name", line.name)
        if line.description:
            _el(product, "ram:Description", line.description)
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        if line.gross_price is not None:
            gross = _el(agreement, "ram:GrossPriceProductTradePrice")
            _el(gross, "ram:ChargeAmount", number(line.gross_price))
        net = _el(agreement, "ram:NetPriceProductTradePrice")
        _el(net, "ram:ChargeAmount", number(line.net_price))
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", number(line.quantity), unitCode=line.unit_code)
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        _category(_el(settlement, "ram:ApplicableTradeTax"), line.tax)
        if line.allowance:
            discount = _el(settlement, "ram:SpecifiedTradeAllowanceCharge")
            _el(_el(discount, "ram:ChargeIndicator"), "udt:Indicator", "false")
            _money(discount, "ram:ActualAmount", line.allowance, cur)
            _el(discount, "ram:ReasonCode", "95")
            _el(discount, "ram:Reason", "Discount")
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _money(summation, "ram:LineTotalAmount", line.net_amount, cur)


def _agreement_and_delivery(transaction: etree._Element, invoice: EInvoice) -> None:
    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if invoice.buyer_reference:
        _el(agreement, "ram:BuyerReference", invoice.buyer_reference)
    _party(agreement, "ram:SellerTradeParty", invoice.seller)
    _party(agreement, "ram:BuyerTradeParty", invoice.buyer)
    if invoice.order_reference:
        order = _el(agreement, "ram:BuyerOrderReferencedDocument")
        _el(order, "ram:IssuerAssignedID", invoice.order_reference)
    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    if invoice.delivery_date is not None:
        ship_to = _el(_el(delivery, "ram:ShipToTradeParty"), "ram:PostalTradeAddress")
        _el(ship_to, "ram:CountryID", invoice.buyer.address.country)
        event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
        _date(event, "ram:OccurrenceDateTime", invoice.delivery_date)


def _payment_means(settlement: etree._Element, invoice: EInvoice) -> None:
    if not invoice.iban:
        return
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _el(means, "ram:TypeCode", "58")
    account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
    _el(account, "ram:IBANID", invoice.iban)
    if invoice.bic:
        institution = _el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
        _el(institution, "ram:BICID", invoice.bic)


def _tax_breakdown(settlement: etree._Element, invoice: EInvoice) -> None:
    cur = invoice.currency
    for subtotal in invoice.taxes:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _money(tax, "ram:CalculatedAmount", subtotal.amount, cur)
        _el(tax, "ram:TypeCode", "VAT")
        if subtotal.tax.exemption_reason:
            _el(tax, "ram:ExemptionReason", subtotal.tax.exemption_reason)
        _money(tax, "ram:BasisAmount", subtotal.base, cur)
        _el(tax, "ram:CategoryCode", subtotal.tax.category)
        if subtotal.tax.exemption_code:
            _el(tax, "ram:ExemptionReasonCode", subtotal.tax.exemption_code)
        if subtotal.tax.category != "O":
            _el(tax, "ram:RateApplicablePercent", number(subtotal.tax.rate))


def _summation(settlement: etree._Element, invoice: EInvoice) -> None:
    cur = invoice.currency
    totals = invoice.totals
    summary = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _money(summary, "ram:LineTotalAmount", totals.line_total, cur)
    if invoice.allowances_charges:
        _money(summary, "ram:ChargeTotalAmount", totals.charge_total, cur)
        _money(summary, "ram:AllowanceTotalAmount", totals.allowance_total, cur)
    _money(summary, "ram:TaxBasisTotalAmount", totals.tax_exclusive, cur)
    _el(summary, "ram:TaxTotalAmount", amount(totals.tax_total, cur), currencyID=cur)
    if totals.rounding:
        _money(summary, "ram:RoundingAmount", totals.rounding, cur)
    _money(summary, "ram:GrandTotalAmount", totals.tax_inclusive, cur)
    if totals.prepaid:
        _money(summary, "ram:TotalPrepaidAmount", totals.prepaid, cur)
    _money(summary, "ram:DuePayableAmount", totals.payable, cur)


def _settlement(transaction: etree._Element, invoice: EInvoice) -> None:
    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    if invoice.payment_reference:
        _el(settlement, "ram:PaymentReference", invoice.payment_reference)
    _el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    _payment_means(settlement, invoice)
    _tax_breakdown(settlement, invoice)
    for item in invoice.allowances_charges:
        _allowance_charge(settlement, item, invoice.currency)
    if invoice.payment_terms or invoice.due_date is not None:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if invoice.payment_terms:
            _el(terms, "ram:Description", invoice.payment_terms)
        if invoice.due_date is not None:
            _date(terms, "ram:DueDateDateTime", invoice.due_date)
    _summation(settlement, invoice)
    if invoice.preceding_invoice:
        reference = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(reference, "ram:IssuerAssignedID", invoice.preceding_invoice)
        if invoice.preceding_invoice_date is not None:
            _date(reference, "ram:FormattedIssueDateTime", invoice.preceding_invoice_date, "qdt")


def to_cii(invoice: EInvoice) -> bytes:
    """The invoice as CII XML (UTF-8, with declaration), Factur-X EN 16931 profile."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931)
    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)
    _el(document, "ram:TypeCode", invoice.type_code)
    _date(document, "ram:IssueDateTime", invoice.issue_date)
    for note in invoice.notes:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", note)
    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    _line_items(transaction, invoice)
    _agreement_and_delivery(transaction, invoice)
    _settlement(transaction, invoice)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
