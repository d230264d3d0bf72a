"""Exact money for quotes and invoices: one :func:`compute` for every total Orbit shows.

The screen, the PDF, the e-invoice XML and the reports all call :func:`compute` on the
same :class:`Document` and print what it returns, so they agree to the cent by
construction. The arithmetic is EN 16931's:

- amounts are :class:`~decimal.Decimal`, rounded half away from zero to the currency's
  ISO 4217 minor unit (JPY 0 decimals, EUR 2, KWD 3);
- a line's net is rounded once: ``round(quantity × price) − round(that × discount %)``;
- document discounts (allowances) are shared out over the lines' tax groups;
- each tax is computed **once on its taxable base** (BR-CO-17):
  ``round(Σ bases of the lines carrying it × rate)``, never as a sum of rounded line taxes;
- several taxes per line are applied in order; a *compound* tax is levied on the net
  plus the taxes before it; *withholding* taxes (negative rates) are not part of the
  gross but are deducted from the amount due;
- exempt, zero-rated, reverse-charge and out-of-scope categories carry a 0 % rate and an
  exemption reason;
- with **tax-inclusive prices** the customer saw gross amounts: each tax group's net is
  derived from its gross, the cent residue goes to the group's largest line, and if the
  per-rate taxes still miss the shown gross by a minor unit, the difference is the
  document's rounding amount (BT-114), so the amount due is exactly what was shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from babel.numbers import format_currency, get_currency_precision, list_currencies

ZERO = Decimal(0)
HUNDRED = Decimal(100)

TAX_CATEGORIES = {
    "S": "Standard rate",
    "Z": "Zero rated",
    "E": "Exempt from tax",
    "AE": "Reverse charge",
    "K": "Intra-community supply",
    "G": "Export outside the EU",
    "O": "Not subject to VAT",
    "L": "Canary Islands general indirect tax",
    "M": "Ceuta and Melilla tax",
}
"""UNTDID 5305 tax category codes (EN 16931 BT-118/BT-151) and what they mean."""

ZERO_RATED_CATEGORIES = frozenset({"Z", "E", "AE", "K", "G", "O"})
"""Categories whose rate is 0 %; all but ``Z`` need an exemption reason on an e-invoice."""

TAX_KINDS = frozenset({"vat", "withholding", "other"})


class MoneyError(ValueError):
    """A document that cannot be computed; ``field`` names what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def check_currency(code: str) -> str:
    """``code`` if it is an ISO 4217 currency Orbit knows, else :class:`MoneyError`."""
    if not isinstance(code, str) or code not in _currencies() or len(code) != 3:  # noqa: PLR2004
        raise MoneyError("currency", f"{code!r} is not an ISO 4217 currency code")
    return code


@cache
def minor_unit(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit (ISO 4217): JPY 0, EUR 2, KWD 3."""
    return int(get_currency_precision(check_currency(currency)))


@cache
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half away from zero to ``currency``'s minor unit."""
    return amount.quantize(_quantum(currency), rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, currency: str, locale: str = "en") -> str:
    """``amount`` as the locale writes it, with the currency's own number of decimals."""
    return str(format_currency(amount, currency, locale=locale, currency_digits=True))


@dataclass(frozen=True, slots=True)
class Tax:
    """One tax a line carries; ``rate`` is a percentage (``19``, ``9.975``, ``-15``)."""

    name: str
    rate: Decimal
    category: str = "S"
    kind: str = "vat"
    compound: bool = False
    """Levied on the net plus the line's taxes listed before it."""
    exemption_reason: str = ""

    @property
    def key(self) -> tuple[str, str, Decimal, bool]:
        """What makes two taxes the same line of the tax breakdown (BG-23)."""
        return (self.kind, self.category, self.rate.normalize(), self.compound)

    def to_json(self) -> dict[str, Any]:
        """The tax as stored in a line's ``taxes`` column and sent by the API."""
        return {
            "name": self.name,
            "rate": str(self.rate),
            "category": self.category,
            "kind": self.kind,
            "compound": self.compound,
            "exemption_reason": self.exemption_reason,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Tax:
        """The tax from its stored form."""
        return cls(
            name=str(raw["name"]),
            rate=Decimal(str(raw["rate"])),
            category=str(raw.get("category", "S")),
            kind=str(raw.get("kind", "vat")),
            compound=bool(raw.get("compound", False)),
            exemption_reason=str(raw.get("exemption_reason", "")),
        )


NOT_SUBJECT = Tax(name="Not subject to VAT", rate=ZERO, category="O")
"""The VAT category of a line that carries no VAT at all (EN 16931 needs one per line)."""


@dataclass(frozen=True, slots=True)
class Line:
    """One priced line: ``unit_price`` is net, or gross when the document says so."""

    quantity: Decimal
    unit_price: Decimal
    taxes: tuple[Tax, ...] = ()
    discount_percent: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Document:
    """What :func:`compute` needs of a quote, invoice or credit note."""

    currency: str
    lines: tuple[Line, ...]
    prices_include_tax: bool = False
    discount_percent: Decimal = ZERO
    """A document discount as a percentage of the lines' total."""
    discount_amount: Decimal = ZERO
    """A document discount as an amount (net, or gross with inclusive prices)."""


@dataclass(frozen=True, slots=True)
class LineTotal:
    """A line's amounts: ``net`` is EN 16931's line net amount (BT-131)."""

    amount: Decimal
    """``round(quantity × unit price)``, before the line discount."""
    discount: Decimal
    """The line allowance (BT-136)."""
    net: Decimal
    gross: Decimal | None
    """With inclusive prices: the line's gross as the customer saw it."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """The document discount's share of one tax group (BG-20: amount, base, its taxes)."""

    base: Decimal
    amount: Decimal
    taxes: tuple[Tax, ...]


@dataclass(frozen=True, slots=True)
class TaxTotal:
    """One line of the tax breakdown: ``amount = round(base × rate / 100)``."""

    tax: Tax
    base: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    """Every total of a document, each rounded to the currency's minor unit."""

    currency: str
    lines: tuple[LineTotal, ...]
    line_net_total: Decimal
    """Σ line nets (BT-106)."""
    allowance_total: Decimal
    """Document discounts (BT-107)."""
    net_total: Decimal
    """Total without tax (BT-109) = line net total − allowances."""
    allowances: tuple[Allowance, ...]
    taxes: tuple[TaxTotal, ...]
    vat_total: Decimal
    """Σ VAT amounts (BT-110)."""
    other_tax_total: Decimal
    withholding_total: Decimal
    """Σ withholding taxes (≤ 0 for positive documents), deducted from the amount due."""
    gross_total: Decimal
    """Total with tax (BT-112) = net + VAT + other taxes."""
    rounding: Decimal
    """Rounding amount (BT-114), non-zero only to keep an inclusive gross as shown."""
    payable: Decimal
    """Amount due (BT-115) = gross + rounding + withholding."""
    shown_gross: Decimal | None = None
    """With inclusive prices: Σ line gross − gross discount, what the customer saw."""

    def to_json(self) -> dict[str, Any]:
        """Decimals as strings, the shape stored in ``totals`` and sent by the API."""

        def s(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "currency": self.currency,
            "lines": [
                {
                    "amount": s(x.amount),
                    "discount": s(x.discount),
                    "net": s(x.net),
                    "gross": s(x.gross),
                }
                for x in self.lines
            ],
            "line_net_total": s(self.line_net_total),
            "allowance_total": s(self.allowance_total),
            "net_total": s(self.net_total),
            "allowances": [
                {
                    "base": s(a.base),
                    "amount": s(a.amount),
                    "taxes": [t.to_json() for t in a.taxes],
                }
                for a in self.allowances
            ],
            "taxes": [
                {**t.tax.to_json(), "base": s(t.base), "amount": s(t.amount)} for t in self.taxes
            ],
            "vat_total": s(self.vat_total),
            "other_tax_total": s(self.other_tax_total),
            "withholding_total": s(self.withholding_total),
            "gross_total": s(self.gross_total),
            "rounding": s(self.rounding),
            "payable": s(self.payable),
            "shown_gross": s(self.shown_gross),
        }


def _check(document: Document) -> None:
    check_currency(document.currency)
    if not ZERO <= document.discount_percent <= HUNDRED:
        raise MoneyError("discount_percent", "must be between 0 and 100")
    if document.discount_amount < ZERO:
        raise MoneyError("discount_amount", "must not be negative")
    if document.discount_percent and document.discount_amount:
        raise MoneyError("discount_amount", "give a discount as a percentage or an amount")
    for index, line in enumerate(document.lines):
        where = f"lines[{index}]"
        for name in ("quantity", "unit_price", "discount_percent"):
            value = getattr(line, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise MoneyError(f"{where}.{name}", "must be a finite decimal number")
        if not ZERO <= line.discount_percent <= HUNDRED:
            raise MoneyError(f"{where}.discount_percent", "must be between 0 and 100")
        keys = [tax.key for tax in line.taxes]
        if len(set(keys)) != len(keys):
            raise MoneyError(f"{where}.taxes", "the same tax twice on one line")
        for tax in line.taxes:
            check_tax(tax, f"{where}.taxes")


def check_tax(tax: Tax, where: str) -> None:
    """Raise :class:`MoneyError` (about ``where``) for a tax that cannot be levied."""
    if tax.kind not in TAX_KINDS:
        raise MoneyError(f"{where}.kind", f"{tax.kind!r} is not one of vat, withholding, other")
    if tax.category not in TAX_CATEGORIES:
        raise MoneyError(f"{where}.category", f"{tax.category!r} is not a UNTDID 5305 code")
    if not tax.rate.is_finite() or not Decimal(-100) < tax.rate < Decimal(1000):
        raise MoneyError(f"{where}.rate", "must be a percentage between -100 and 1000")
    if tax.category in ZERO_RATED_CATEGORIES and tax.rate != ZERO:
        raise MoneyError(f"{where}.rate", f"category {tax.category} has a 0 % rate")
    if tax.kind == "withholding" and tax.rate > ZERO:
        raise MoneyError(f"{where}.rate", "a withholding tax has a negative rate")
    if tax.compound and tax.kind == "withholding":
        raise MoneyError(f"{where}.compound", "a withholding tax is not compound")


def effective_taxes(line: Line) -> tuple[Tax, ...]:
    """The line's taxes, with :data:`NOT_SUBJECT` when it carries no VAT (BT-151 is required)."""
    if any(tax.kind == "vat" for tax in line.taxes):
        return line.taxes
    return (NOT_SUBJECT, *line.taxes)


def _tax_factors(taxes: tuple[Tax, ...]) -> list[Decimal]:
    """Per tax, the amount it levies on a net of 1 (compound taxes on the running total)."""
    factors: list[Decimal] = []
    for tax in taxes:
        base = Decimal(1) + (sum(factors, ZERO) if tax.compound else ZERO)
        factors.append(base * tax.rate / HUNDRED)
    return factors


def _gross_factor(taxes: tuple[Tax, ...]) -> Decimal:
    """Gross of a net of 1: 1 + every tax but withholding."""
    factors = _tax_factors(taxes)
    return Decimal(1) + sum(
        (f for f, t in zip(factors, taxes, strict=True) if t.kind != "withholding"), ZERO
    )


def _share(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """``total`` split in proportion to ``weights``, the residue on the largest weight."""
    whole = sum(weights, ZERO)
    if not weights:
        return []
    if whole == ZERO:
        shares = [ZERO] * len(weights)
    else:
        shares = [round_money(total * w / whole, currency) for w in weights]
    largest = max(range(len(weights)), key=lambda i: (abs(weights[i]), -i))
    shares[largest] += total - sum(shares, ZERO)
    return shares


@dataclass
class _Group:
    """Lines carrying the same taxes, in the same order."""

    taxes: tuple[Tax, ...]
    indexes: list[int] = field(default_factory=list)
    net: Decimal = ZERO
    """Σ line nets of the group."""
    allowance: Decimal = ZERO
    gross: Decimal = ZERO
    """Inclusive prices: Σ shown line gross − the group's share of a gross discount."""
    largest: int = 0
    """Inclusive prices: the line that absorbs the group's rounding residue."""

    @property
    def base(self) -> Decimal:
        return self.net - self.allowance


def _tax_totals(groups: list[_Group], currency: str) -> list[TaxTotal]:
    """The breakdown: per tax, its exact base over all groups, rounded once, times its rate."""
    bases: dict[tuple[str, str, Decimal, bool], Decimal] = {}
    first: dict[tuple[str, str, Decimal, bool], Tax] = {}
    for group in groups:
        factors = _tax_factors(group.taxes)
        for index, tax in enumerate(group.taxes):
            # A compound tax's base is the net plus the taxes before it on the same lines.
            multiplier = Decimal(1) + (sum(factors[:index], ZERO) if tax.compound else ZERO)
            bases[tax.key] = bases.get(tax.key, ZERO) + group.base * multiplier
            first.setdefault(tax.key, tax)
    totals = []
    for key, exact in bases.items():
        tax = first[key]
        base = round_money(exact, currency)
        totals.append(TaxTotal(tax, base, round_money(base * tax.rate / HUNDRED, currency)))
    # VAT first, then other taxes, then withholding; within a kind, as the lines list them.
    order = {"vat": 0, "other": 1, "withholding": 2}
    totals.sort(key=lambda t: order[t.tax.kind])
    return totals


def compute(document: Document) -> Totals:
    """Every total of ``document``, EN 16931-exact (see the module's description).

    Raises :class:`MoneyError` naming the field when the document cannot be computed.
    """
    _check(document)
    currency = document.currency
    lines = document.lines
    inclusive = document.prices_include_tax
    taxes_of = [effective_taxes(line) for line in lines]

    groups: dict[tuple[Any, ...], _Group] = {}
    for index, taxes in enumerate(taxes_of):
        key = tuple(tax.key for tax in taxes)
        groups.setdefault(key, _Group(taxes)).indexes.append(index)
    ordered = list(groups.values())

    amounts = [round_money(line.quantity * line.unit_price, currency) for line in lines]
    discounts = [
        round_money(amount * line.discount_percent / HUNDRED, currency)
        for amount, line in zip(amounts, lines, strict=True)
    ]
    priced = [a - d for a, d in zip(amounts, discounts, strict=True)]

    if not inclusive:
        nets = priced
        for group in ordered:
            group.net = sum((nets[i] for i in group.indexes), ZERO)
        line_net_total = sum(nets, ZERO)
        if document.discount_percent:
            for group in ordered:
                group.allowance = round_money(
                    group.net * document.discount_percent / HUNDRED, currency
                )
        elif document.discount_amount:
            amount = round_money(document.discount_amount, currency)
            for group, share in zip(
                ordered, _share(amount, [g.net for g in ordered], currency), strict=True
            ):
                group.allowance = share
        shown_gross = None
        line_totals = tuple(
            LineTotal(a, d, n, None) for a, d, n in zip(amounts, discounts, nets, strict=True)
        )
    else:
        nets, line_totals, shown_gross = _inclusive(document, ordered, priced, amounts, discounts)
        line_net_total = sum(nets, ZERO)

    tax_totals = _tax_totals(ordered, currency)
    if inclusive:
        tax_totals = _settle_inclusive(ordered, nets, currency, tax_totals)
        line_totals = tuple(
            LineTotal(x.amount, x.discount, n, x.gross)
            for x, n in zip(line_totals, nets, strict=True)
        )
        line_net_total = sum(nets, ZERO)

    allowances = tuple(
        Allowance(g.net, g.allowance, g.taxes) for g in ordered if g.allowance != ZERO
    )
    allowance_total = sum((g.allowance for g in ordered), ZERO)
    net_total = line_net_total - allowance_total
    vat_total = sum((t.amount for t in tax_totals if t.tax.kind == "vat"), ZERO)
    other_total = sum((t.amount for t in tax_totals if t.tax.kind == "other"), ZERO)
    withholding_total = sum((t.amount for t in tax_totals if t.tax.kind == "withholding"), ZERO)
    gross_total = net_total + vat_total + other_total
    rounding = ZERO if shown_gross is None else shown_gross - gross_total

    def r(amount: Decimal) -> Decimal:
        # Every amount is already whole minor units; this only writes zeros as 0.00.
        return round_money(amount, currency)

    return Totals(
        currency=currency,
        lines=line_totals,
        line_net_total=r(line_net_total),
        allowance_total=r(allowance_total),
        net_total=r(net_total),
        allowances=allowances,
        taxes=tuple(tax_totals),
        vat_total=r(vat_total),
        other_tax_total=r(other_total),
        withholding_total=r(withholding_total),
        gross_total=r(gross_total),
        rounding=r(rounding),
        payable=r(gross_total + rounding + withholding_total),
        shown_gross=None if shown_gross is None else r(shown_gross),
    )


def _inclusive(
    document: Document,
    groups: list[_Group],
    gross: list[Decimal],
    amounts: list[Decimal],
    discounts: list[Decimal],
) -> tuple[list[Decimal], tuple[LineTotal, ...], Decimal]:
    """Nets of lines priced gross: per group net = round(gross / factor), residue to a line."""
    currency = document.currency
    nets = [ZERO] * len(gross)
    line_groups = [ZERO] * len(gross)
    for group in groups:
        factor = _gross_factor(group.taxes)
        group_gross = sum((gross[i] for i in group.indexes), ZERO)
        group.net = round_money(group_gross / factor, currency) if factor else ZERO
        shares = [
            round_money(gross[i] / factor, currency) if factor else ZERO for i in group.indexes
        ]
        largest = max(range(len(shares)), key=lambda k: (abs(gross[group.indexes[k]]), -k))
        shares[largest] += group.net - sum(shares, ZERO)
        group.largest = group.indexes[largest]
        for i, share in zip(group.indexes, shares, strict=True):
            nets[i] = share
            line_groups[i] = factor
        group.gross = group_gross
    total_gross = sum(gross, ZERO)
    if document.discount_percent:
        gross_discounts = [
            round_money(g.gross * document.discount_percent / HUNDRED, currency) for g in groups
        ]
    elif document.discount_amount:
        gross_discounts = _share(
            round_money(document.discount_amount, currency), [g.gross for g in groups], currency
        )
    else:
        gross_discounts = [ZERO] * len(groups)
    for group, cut in zip(groups, gross_discounts, strict=True):
        if cut:
            factor = _gross_factor(group.taxes)
            group.gross -= cut
            after = round_money(group.gross / factor, currency) if factor else ZERO
            group.allowance = group.net - after
    shown = total_gross - sum(gross_discounts, ZERO)
    line_totals = tuple(
        LineTotal(a, d, n, g) for a, d, n, g in zip(amounts, discounts, nets, gross, strict=True)
    )
    return nets, line_totals, shown


def _gross_of(taxes: list[TaxTotal], groups: list[_Group]) -> Decimal:
    net = sum((g.base for g in groups), ZERO)
    return net + sum((t.amount for t in taxes if t.tax.kind != "withholding"), ZERO)


def _settle_inclusive(
    groups: list[_Group], nets: list[Decimal], currency: str, taxes: list[TaxTotal]
) -> list[TaxTotal]:
    """Move a net by a minor unit while that brings the gross nearer the shown one.

    Taxes are computed per rate on the summed bases (BR-CO-17), so the gross can miss
    the shown gross by a unit or two; nudging the net of the group with the largest gross
    (on its largest line) closes the gap whenever such a net exists. What is left is
    the rounding amount. Returns the taxes for the settled nets.
    """
    target = sum((g.gross for g in groups), ZERO)
    unit = _quantum(currency)
    best = max(groups, key=lambda g: abs(g.gross), default=None)
    for _ in range(4):
        gap = target - _gross_of(taxes, groups)
        if gap == ZERO or best is None:
            break
        step = unit if gap > ZERO else -unit
        best.net += step
        moved = _tax_totals(groups, currency)
        if abs(target - _gross_of(moved, groups)) >= abs(gap):
            best.net -= step
            break
        nets[best.largest] += step
        taxes = moved
    return taxes
