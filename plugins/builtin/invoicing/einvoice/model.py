"""The EN 16931 semantic model of one invoice or credit note, as both syntaxes need it.

Nothing here computes money: every amount is taken as given from the invoicing
plugin's one calculation (``money.compute``), so the screen, the PDF and both XML
syntaxes show the same numbers. The builders only format them (the currency's
minor unit) and place them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from datetime import date

TypeCode = Literal["380", "381", "384", "389", "751"]
"""UNTDID 1001: 380 commercial invoice, 381 credit note, 384 corrected invoice."""

TaxCategory = Literal["S", "Z", "E", "AE", "K", "G", "O", "L", "M"]
"""UNCL 5305 VAT category (standard, zero, exempt, reverse charge, intra-EU, export, …)."""

INVOICE_TYPES = frozenset({"380", "384", "389", "751"})
CREDIT_NOTE_TYPES = frozenset({"381"})

_MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "KWD": 3, "BHD": 3, "OMR": 3}


def minor_unit(currency: str) -> int:
    """Decimal places of an ISO 4217 currency (JPY 0, KWD 3, most 2)."""
    return _MINOR_UNITS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address (BG-5 / BG-8); ``country`` is ISO 3166-1 alpha-2."""

    country: str
    street: str = ""
    city: str = ""
    postcode: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """Seller (BG-4) or buyer (BG-7)."""

    name: str
    address: Address
    vat_id: str | None = None
    """BT-31 / BT-48, with its country prefix (``FR32123456789``)."""
    legal_id: str | None = None
    """BT-30 / BT-47: registration number (SIREN, HRB…)."""
    email: str | None = None
    """BT-34 / BT-49 electronic address (scheme EM) unless ``endpoint`` says otherwise."""
    endpoint: tuple[str, str] | None = None
    """(EAS scheme, identifier) of the Peppol participant, e.g. ``("0088", "5790000435944")``."""


@dataclass(frozen=True, slots=True)
class TaxRate:
    """A VAT category and rate (percent) with the exemption reason where one is needed."""

    category: TaxCategory
    rate: Decimal
    exemption_reason: str | None = None
    """BT-120, required for E, AE, K, G, O."""
    exemption_code: str | None = None
    """BT-121 (VATEX code, e.g. ``VATEX-EU-AE``)."""


@dataclass(frozen=True, slots=True)
class AllowanceCharge:
    """A document-level allowance (discount) or charge (fee) with its VAT (BG-20 / BG-21)."""

    charge: bool
    amount: Decimal
    reason: str
    tax: TaxRate
    reason_code: str | None = None
    """UNCL 5189 (allowances, e.g. ``95`` discount) or UNCL 7161 (charges, e.g. ``FC``)."""


@dataclass(frozen=True, slots=True)
class Line:
    """An invoice line (BG-25): ``net_amount`` = quantity × ``net_price`` after line discounts."""

    id: str
    name: str
    quantity: Decimal
    unit_code: str
    """UN/ECE Recommendation 20 (``C62`` one, ``HUR`` hour, ``DAY``, ``KGM``…)."""
    net_price: Decimal
    net_amount: Decimal
    tax: TaxRate
    description: str = ""
    allowance: Decimal = Decimal(0)
    """A line discount already deducted from ``net_amount`` (BG-27), for the reader."""
    gross_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TaxSubtotal:
    """VAT breakdown per category and rate (BG-23): ``amount`` = round(base × rate) once."""

    tax: TaxRate
    base: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    """Document totals (BG-22)."""

    line_total: Decimal
    """BT-106: Σ line net amounts."""
    allowance_total: Decimal
    charge_total: Decimal
    tax_exclusive: Decimal
    """BT-109 = BT-106 − BT-107 + BT-108."""
    tax_total: Decimal
    """BT-110 = Σ BT-117."""
    tax_inclusive: Decimal
    """BT-112 = BT-109 + BT-110."""
    prepaid: Decimal = Decimal(0)
    """BT-113: already paid (also withholding the buyer pays to the tax office)."""
    rounding: Decimal = Decimal(0)
    """BT-114: cash rounding."""
    payable: Decimal = Decimal(0)
    """BT-115 = BT-112 − BT-113 + BT-114."""


@dataclass(frozen=True, slots=True)
class EInvoice:
    """One invoice or credit note in the EN 16931 model."""

    number: str
    type_code: TypeCode
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    taxes: tuple[TaxSubtotal, ...]
    totals: Totals
    due_date: date | None = None
    delivery_date: date | None = None
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    notes: tuple[str, ...] = ()
    payment_terms: str = ""
    buyer_reference: str = ""
    """BT-10 (the German Leitweg-ID goes here)."""
    order_reference: str = ""
    iban: str | None = None
    bic: str | None = None
    payment_reference: str = ""
    preceding_invoice: str | None = None
    """BT-25: the invoice a credit note corrects."""
    preceding_invoice_date: date | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_credit_note(self) -> bool:
        """A credit note (UBL ``CreditNote`` document)."""
        return self.type_code in CREDIT_NOTE_TYPES


def amount(value: Decimal, currency: str) -> str:
    """An amount with exactly the currency's decimals (no rounding beyond that)."""
    places = minor_unit(currency)
    quantum = Decimal(1).scaleb(-places)
    return str(value.quantize(quantum))


def number(value: Decimal) -> str:
    """A quantity, price or percent without trailing zeros or exponent (``20``, ``9.975``)."""
    text = format(value.normalize(), "f")
    return text if text not in {"-0", ""} else "0"
