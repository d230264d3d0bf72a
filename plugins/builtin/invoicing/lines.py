"""Lines of quotes and invoices: checked input, catalogue look-ups, stored form, totals.

A line written to a quote or an invoice keeps its own copy of everything it was
priced with (description, unit, price, taxes), so a later change to the catalogue
never changes a document. Section lines are headings: they carry no amount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID  # noqa: TC003 - msgspec reads the annotations at run time

import msgspec

from orbit.plugins.builtin.invoicing.catalog import priced_product, taxes_by_id
from orbit.plugins.builtin.invoicing.errors import invalid
from orbit.plugins.builtin.invoicing.money import (
    Document,
    Line,
    MoneyError,
    Tax,
    Totals,
    check_currency,
    compute,
)

if TYPE_CHECKING:
    import asyncpg

    from orbit.plugins.api import PluginContext

MAX_LINES = 500
MAX_PLACES = 6
MAX_AMOUNT = Decimal("1e12")


class LineIn(msgspec.Struct, forbid_unknown_fields=True):
    """A line as the API takes it: from a product (price from the price list) or free."""

    kind: str = "item"
    product_id: UUID | None = None
    description: str = ""
    quantity: Decimal = Decimal(1)
    unit_code: str | None = None
    unit_price: Decimal | None = None
    """Required without a product; overrides the price list's price with one."""
    discount_percent: Decimal = Decimal(0)
    tax_rate_ids: list[UUID] | None = None
    """The line's taxes in order; ``None`` takes the product's (none for a free line)."""
    optional: bool = False
    """Quotes only: the customer may leave the line out."""
    selected: bool = True
    """Quotes only: whether an optional line is in the total."""
    ref: str | None = None
    """Invoices only: the caller's reference (a project's time entry, say), kept as is."""


@dataclass(frozen=True, slots=True)
class StoredLine:
    """One line as a document keeps it."""

    position: int
    kind: str
    product_id: UUID | None
    description: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    discount_percent: Decimal
    taxes: tuple[Tax, ...]
    optional: bool = False
    selected: bool = True
    ref: str | None = None

    @property
    def counts(self) -> bool:
        """Whether the line is in the document's totals."""
        return self.kind == "item" and (not self.optional or self.selected)

    def to_json(self) -> dict[str, Any]:
        """The line as the API returns it."""
        return {
            "position": self.position,
            "kind": self.kind,
            "product_id": None if self.product_id is None else str(self.product_id),
            "description": self.description,
            "quantity": str(self.quantity),
            "unit_code": self.unit_code,
            "unit_price": str(self.unit_price),
            "discount_percent": str(self.discount_percent),
            "taxes": [t.to_json() for t in self.taxes],
            "optional": self.optional,
            "selected": self.selected,
            "ref": self.ref,
        }


def _number(value: Decimal, where: str, *, allow_negative: bool = True) -> Decimal:
    if not value.is_finite():
        raise invalid(where, "must be a finite number")
    if abs(value) >= MAX_AMOUNT:
        raise invalid(where, "is too large")
    if not allow_negative and value < 0:
        raise invalid(where, "must not be negative")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise invalid(where, f"at most {MAX_PLACES} decimal places")
    return value


async def _units(ctx: PluginContext) -> set[str]:
    rows = await ctx.db.fetch(
        "SELECT code FROM invoicing_units WHERE tenant_id = $1", ctx.tenant_id
    )
    return {row["code"] for row in rows}


async def _item(
    ctx: PluginContext,
    line: LineIn,
    position: int,
    units: set[str],
    *,
    currency: str,
    price_list_id: UUID | None,
    prices_include_tax: bool,
) -> StoredLine:
    """One item line, checked and priced."""
    where = f"lines[{position}]"
    quantity = _number(line.quantity, f"{where}.quantity")
    discount = _number(line.discount_percent, f"{where}.discount_percent")
    if not 0 <= discount <= 100:  # noqa: PLR2004
        raise invalid(f"{where}.discount_percent", "must be between 0 and 100")
    description, unit = line.description.strip(), line.unit_code
    price: Decimal | None = None
    taxes: tuple[Tax, ...] = ()
    if line.product_id is not None:
        product = await priced_product(
            ctx, line.product_id, price_list_id, currency, f"{where}.product_id"
        )
        if line.unit_price is None and product.prices_include_tax != prices_include_tax:
            raise invalid(
                f"{where}.product_id",
                "the price list's prices "
                + ("include" if product.prices_include_tax else "exclude")
                + " tax and this document's do not",
            )
        description = description or product.name
        unit = unit or product.unit_code
        price = product.unit_price
        taxes = product.taxes
    if line.unit_price is not None:
        price = _number(line.unit_price, f"{where}.unit_price")
    if price is None:
        raise invalid(f"{where}.unit_price", "required for a line without a product")
    if not description:
        raise invalid(f"{where}.description", "required for a line without a product")
    if line.tax_rate_ids is not None:
        taxes = await taxes_by_id(ctx, line.tax_rate_ids, f"{where}.tax_rate_ids")
    unit = unit or "C62"
    if unit not in units:
        raise invalid(f"{where}.unit_code", f"{unit!r} is not a unit of this workspace")
    return StoredLine(
        position=position,
        kind="item",
        product_id=line.product_id,
        description=description[:2000],
        quantity=quantity,
        unit_code=unit,
        unit_price=price,
        discount_percent=discount,
        taxes=taxes,
        optional=line.optional,
        selected=line.selected or not line.optional,
        ref=None if line.ref is None else line.ref[:200],
    )


async def resolve(
    ctx: PluginContext,
    given: list[LineIn],
    *,
    currency: str,
    price_list_id: UUID | None,
    prices_include_tax: bool,
    quote: bool,
) -> list[StoredLine]:
    """Check the lines and price them from the catalogue; a 400 naming the bad field."""
    if len(given) > MAX_LINES:
        raise invalid("lines", f"at most {MAX_LINES} lines")
    units = await _units(ctx)
    stored: list[StoredLine] = []
    for position, line in enumerate(given):
        where = f"lines[{position}]"
        if line.kind not in {"item", "section"}:
            raise invalid(f"{where}.kind", "item or section")
        if not quote and (line.optional or not line.selected):
            raise invalid(f"{where}.optional", "only quotes have optional lines")
        if line.kind == "section":
            title = line.description.strip()
            if not title:
                raise invalid(f"{where}.description", "a section needs a title")
            stored.append(
                StoredLine(
                    position,
                    "section",
                    None,
                    title[:500],
                    Decimal(0),
                    "C62",
                    Decimal(0),
                    Decimal(0),
                    (),
                )
            )
            continue
        stored.append(
            await _item(
                ctx,
                line,
                position,
                units,
                currency=currency,
                price_list_id=price_list_id,
                prices_include_tax=prices_include_tax,
            )
        )
    return stored


@dataclass(frozen=True, slots=True)
class Header:
    """What a document's totals depend on besides its lines."""

    currency: str
    prices_include_tax: bool = False
    discount_percent: Decimal = Decimal(0)
    discount_amount: Decimal = Decimal(0)
    extra: dict[str, Any] = field(default_factory=dict)


def check_header(header: Header) -> Header:
    """The header, or a 400 naming the bad field."""
    try:
        check_currency(header.currency)
    except MoneyError as exc:
        raise invalid("currency", f"{header.currency!r} is not an ISO 4217 currency code") from exc
    _number(header.discount_percent, "discount_percent", allow_negative=False)
    _number(header.discount_amount, "discount_amount", allow_negative=False)
    if header.discount_percent > 100:  # noqa: PLR2004
        raise invalid("discount_percent", "must be between 0 and 100")
    if header.discount_percent and header.discount_amount:
        raise invalid("discount_amount", "give a discount as a percentage or an amount")
    return header


def totals(header: Header, lines: list[StoredLine]) -> tuple[Totals, list[StoredLine]]:
    """:func:`~.money.compute` over the lines that count; also those lines, in order."""
    counted = [line for line in lines if line.counts]
    document = Document(
        currency=header.currency,
        lines=tuple(
            Line(line.quantity, line.unit_price, line.taxes, line.discount_percent)
            for line in counted
        ),
        prices_include_tax=header.prices_include_tax,
        discount_percent=header.discount_percent,
        discount_amount=header.discount_amount,
    )
    try:
        return compute(document), counted
    except MoneyError as exc:
        raise invalid(exc.field, str(exc).split(": ", 1)[1]) from exc


def lines_json(lines: list[StoredLine], result: Totals) -> list[dict[str, Any]]:
    """Lines for the API with their computed amounts (``null`` for lines out of the total)."""
    amounts = iter(result.lines)
    out = []
    for line in lines:
        item = line.to_json()
        if line.counts:
            amount = next(amounts)
            item["net"] = str(amount.net)
            item["gross"] = None if amount.gross is None else str(amount.gross)
        else:
            item["net"] = None
            item["gross"] = None
        out.append(item)
    return out


LINE_COLUMNS = (
    "position, kind, product_id, description, quantity, unit_code, unit_price, "
    "discount_percent, taxes"
)


def line_from_row(row: asyncpg.Record) -> StoredLine:
    """A stored line from its row (quote or invoice lines)."""
    raw = row["taxes"]
    taxes = json.loads(raw) if isinstance(raw, str) else raw
    keys = set(row.keys())
    return StoredLine(
        position=row["position"],
        kind=row["kind"],
        product_id=row["product_id"],
        description=row["description"],
        quantity=row["quantity"],
        unit_code=row["unit_code"],
        unit_price=row["unit_price"],
        discount_percent=row["discount_percent"],
        taxes=tuple(Tax.from_json(t) for t in taxes),
        optional=row["optional"] if "optional" in keys else False,
        selected=row["selected"] if "selected" in keys else True,
        ref=row["ref"] if "ref" in keys else None,
    )


def taxes_json(line: StoredLine) -> str:
    """The line's taxes as stored in its ``taxes`` column."""
    return json.dumps([t.to_json() for t in line.taxes])
