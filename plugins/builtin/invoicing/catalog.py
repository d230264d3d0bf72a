"""Products, units, tax rates and price lists per currency (the catalogue quotes draw on).

A product has a unit (UN/ECE Recommendation 20 code) and the taxes it carries, in
order; its price comes from a price list of the document's currency, whose prices
include tax or not. Tax rates are copied into each quote or invoice line when it is
written, so changing or retiring a rate never changes an issued document.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller
from uuid_utils.compat import uuid7

from orbit.plugins.api import PluginContext, get, patch, post, put
from orbit.plugins.builtin.invoicing.errors import conflict, invalid, not_found
from orbit.plugins.builtin.invoicing.money import (
    TAX_CATEGORIES,
    TAX_KINDS,
    MoneyError,
    Tax,
    check_currency,
    check_tax,
)

DEFAULT_UNITS = (
    ("C62", "unit"),
    ("H87", "piece"),
    ("HUR", "hour"),
    ("DAY", "day"),
    ("MON", "month"),
    ("ANN", "year"),
    ("KGM", "kg"),
    ("MTR", "m"),
    ("LTR", "l"),
    ("KMT", "km"),
)
"""Units a workspace starts with (UN/ECE Recommendation 20 codes, as e-invoices need)."""


# --- request bodies ------------------------------------------------------------------


class UnitIn(msgspec.Struct, forbid_unknown_fields=True):
    """A unit: its UN/ECE Rec. 20 code and the name printed on documents."""

    code: str
    name: str


class TaxRateIn(msgspec.Struct, forbid_unknown_fields=True):
    """A tax rate; ``rate`` in percent, negative for withholding."""

    name: str
    rate: Decimal
    category: str = "S"
    kind: str = "vat"
    compound: bool = False
    exemption_reason: str = ""


class TaxRatePatch(msgspec.Struct, forbid_unknown_fields=True):
    """What may change on a tax rate (documents keep their copy of it)."""

    name: str | None = None
    active: bool | None = None


class ProductIn(msgspec.Struct, forbid_unknown_fields=True):
    """A product or service."""

    name: str
    sku: str | None = None
    description: str = ""
    unit_code: str = "C62"
    tax_rate_ids: list[UUID] = []
    active: bool = True


class ProductPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields of a product to change."""

    name: str | None = None
    sku: str | None = None
    description: str | None = None
    unit_code: str | None = None
    tax_rate_ids: list[UUID] | None = None
    active: bool | None = None


class PriceListIn(msgspec.Struct, forbid_unknown_fields=True):
    """A price list in one currency."""

    name: str
    currency: str
    prices_include_tax: bool = False
    is_default: bool = False


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A product's unit price in a price list."""

    unit_price: Decimal


# --- services ------------------------------------------------------------------------


def _text(value: str, field: str, *, low: int = 1, high: int = 200) -> str:
    value = value.strip()
    if not low <= len(value) <= high:
        raise invalid(field, f"must be {low} to {high} characters")
    return value


def _row(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, (Decimal, UUID)):
            out[key] = str(value)
        elif isinstance(value, list):
            out[key] = [str(v) if isinstance(v, UUID) else v for v in value]
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


async def on_installed(ctx: PluginContext) -> None:
    """A new workspace gets the common units."""
    for code, name in DEFAULT_UNITS:
        await ctx.db.execute(
            "INSERT INTO invoicing_units (tenant_id, code, name) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            ctx.tenant_id,
            code,
            name,
        )


async def add_unit(ctx: PluginContext, data: UnitIn) -> dict[str, Any]:
    """Add a unit; its code must be a UN/ECE Rec. 20 code shape (2–3 letters or digits)."""
    code = data.code.strip().upper()
    if not (2 <= len(code) <= 3 and code.isalnum() and code.isascii()):  # noqa: PLR2004
        raise invalid("code", "a UN/ECE Recommendation 20 code, e.g. C62, HUR, KGM")
    name = _text(data.name, "name", high=60)
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_units (tenant_id, code, name) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING code, name",
        ctx.tenant_id,
        code,
        name,
    )
    if row is None:
        raise conflict(f"unit {code} already exists")
    return _row(row)


async def units(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's units."""
    rows = await ctx.db.fetch(
        "SELECT code, name FROM invoicing_units WHERE tenant_id = $1 ORDER BY code", ctx.tenant_id
    )
    return [_row(r) for r in rows]


def _tax_of(data: TaxRateIn) -> Tax:
    if data.category not in TAX_CATEGORIES:
        raise invalid("category", f"one of {', '.join(TAX_CATEGORIES)}")
    if data.kind not in TAX_KINDS:
        raise invalid("kind", "one of vat, withholding, other")
    tax = Tax(
        name=_text(data.name, "name", high=80),
        rate=data.rate,
        category=data.category,
        kind=data.kind,
        compound=data.compound,
        exemption_reason=data.exemption_reason.strip()[:300],
    )
    try:
        check_tax(tax, "tax")
    except MoneyError as exc:
        raise invalid(exc.field.removeprefix("tax."), str(exc).split(": ", 1)[1]) from exc
    return tax


_TAX_COLUMNS = "id, name, rate, category, kind, compound, exemption_reason, active"


async def add_tax_rate(ctx: PluginContext, data: TaxRateIn) -> dict[str, Any]:
    """Add a tax rate."""
    tax = _tax_of(data)
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_tax_rates (tenant_id, id, name, rate, category, kind, compound, "
        "exemption_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING "
        f"RETURNING {_TAX_COLUMNS}",
        ctx.tenant_id,
        uuid7(),
        tax.name,
        tax.rate,
        tax.category,
        tax.kind,
        tax.compound,
        tax.exemption_reason,
    )
    if row is None:
        raise conflict(f"a tax rate named {tax.name!r} already exists")
    return _row(row)


async def tax_rates(ctx: PluginContext, *, active_only: bool = False) -> list[dict[str, Any]]:
    """The workspace's tax rates."""
    rows = await ctx.db.fetch(
        f"SELECT {_TAX_COLUMNS} FROM invoicing_tax_rates WHERE tenant_id = $1 "
        "AND (active OR NOT $2) ORDER BY kind, name",
        ctx.tenant_id,
        active_only,
    )
    return [_row(r) for r in rows]


async def update_tax_rate(ctx: PluginContext, rate_id: UUID, data: TaxRatePatch) -> dict[str, Any]:
    """Rename, retire or bring back a tax rate."""
    name = None if data.name is None else _text(data.name, "name", high=80)
    try:
        row = await ctx.db.fetchrow(
            "UPDATE invoicing_tax_rates SET name = coalesce($3, name), "
            "active = coalesce($4, active) WHERE tenant_id = $1 AND id = $2 "
            f"RETURNING {_TAX_COLUMNS}",
            ctx.tenant_id,
            rate_id,
            name,
            data.active,
        )
    except asyncpg.UniqueViolationError as exc:
        raise conflict(f"a tax rate named {name!r} already exists") from exc
    if row is None:
        raise not_found(f"tax rate {rate_id}")
    return _row(row)


def tax_from_row(row: asyncpg.Record | dict[str, Any]) -> Tax:
    """The :class:`Tax` a document line copies from a tax rate row."""
    return Tax(
        name=row["name"],
        rate=Decimal(str(row["rate"])),
        category=row["category"],
        kind=row["kind"],
        compound=row["compound"],
        exemption_reason=row["exemption_reason"],
    )


async def taxes_by_id(ctx: PluginContext, ids: list[UUID], field: str) -> tuple[Tax, ...]:
    """The tax rates ``ids``, in that order; a 400 on ``field`` for an unknown or retired one."""
    if not ids:
        return ()
    if len(set(ids)) != len(ids):
        raise invalid(field, "the same tax rate twice")
    rows = await ctx.db.fetch(
        f"SELECT {_TAX_COLUMNS} FROM invoicing_tax_rates WHERE tenant_id = $1 AND id = ANY ($2)",
        ctx.tenant_id,
        ids,
    )
    found = {row["id"]: row for row in rows}
    taxes = []
    for rate_id in ids:
        row = found.get(rate_id)
        if row is None or not row["active"]:
            raise invalid(field, f"tax rate {rate_id} is not an active tax rate of this workspace")
        taxes.append(tax_from_row(row))
    return tuple(taxes)


_PRODUCT_COLUMNS = (
    "id, sku, name, description, unit_code, tax_rate_ids, active, created_at, updated_at"
)


async def _check_unit(ctx: PluginContext, code: str) -> str:
    found = await ctx.db.fetchval(
        "SELECT code FROM invoicing_units WHERE tenant_id = $1 AND code = $2", ctx.tenant_id, code
    )
    if found is None:
        raise invalid("unit_code", f"{code!r} is not a unit of this workspace")
    return str(found)


async def add_product(ctx: PluginContext, data: ProductIn) -> dict[str, Any]:
    """Add a product."""
    name = _text(data.name, "name")
    sku = None if data.sku is None or not data.sku.strip() else _text(data.sku, "sku", high=64)
    unit = await _check_unit(ctx, data.unit_code)
    await taxes_by_id(ctx, data.tax_rate_ids, "tax_rate_ids")
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_products (tenant_id, id, sku, name, description, unit_code, "
        "tax_rate_ids, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING "
        f"RETURNING {_PRODUCT_COLUMNS}",
        ctx.tenant_id,
        uuid7(),
        sku,
        name,
        data.description[:5000],
        unit,
        data.tax_rate_ids,
        data.active,
    )
    if row is None:
        raise conflict(f"a product with SKU {sku!r} already exists")
    return _row(row)


async def product(ctx: PluginContext, product_id: UUID) -> dict[str, Any]:
    """One product, with its prices per price list."""
    row = await ctx.db.fetchrow(
        f"SELECT {_PRODUCT_COLUMNS} FROM invoicing_products WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        product_id,
    )
    if row is None:
        raise not_found(f"product {product_id}")
    prices = await ctx.db.fetch(
        "SELECT l.id AS price_list_id, l.name, l.currency, l.prices_include_tax, p.unit_price "
        "FROM invoicing_prices p JOIN invoicing_price_lists l "
        "ON l.tenant_id = p.tenant_id AND l.id = p.price_list_id "
        "WHERE p.tenant_id = $1 AND p.product_id = $2 ORDER BY l.currency, l.name",
        ctx.tenant_id,
        product_id,
    )
    return {**_row(row), "prices": [_row(p) for p in prices]}


async def products(
    ctx: PluginContext, *, q: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Products by name, those matching ``q`` (name or SKU) when given."""
    rows = await ctx.db.fetch(
        f"SELECT {_PRODUCT_COLUMNS} FROM invoicing_products WHERE tenant_id = $1 "
        "AND ($2::text IS NULL OR name ILIKE '%' || $2 || '%' OR sku ILIKE $2 || '%') "
        "ORDER BY name, id LIMIT $3",
        ctx.tenant_id,
        q,
        min(max(limit, 1), 500),
    )
    return [_row(r) for r in rows]


async def update_product(
    ctx: PluginContext, product_id: UUID, data: ProductPatch
) -> dict[str, Any]:
    """Change a product (documents already written keep their own copy of it)."""
    name = None if data.name is None else _text(data.name, "name")
    sku = None if data.sku is None else _text(data.sku, "sku", high=64)
    unit = None if data.unit_code is None else await _check_unit(ctx, data.unit_code)
    if data.tax_rate_ids is not None:
        await taxes_by_id(ctx, data.tax_rate_ids, "tax_rate_ids")
    try:
        row = await ctx.db.fetchrow(
            "UPDATE invoicing_products SET name = coalesce($3, name), sku = coalesce($4, sku), "
            "description = coalesce($5, description), unit_code = coalesce($6, unit_code), "
            "tax_rate_ids = coalesce($7, tax_rate_ids), active = coalesce($8, active), "
            f"updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING {_PRODUCT_COLUMNS}",
            ctx.tenant_id,
            product_id,
            name,
            sku,
            data.description,
            unit,
            data.tax_rate_ids,
            data.active,
        )
    except asyncpg.UniqueViolationError as exc:
        raise conflict(f"a product with SKU {sku!r} already exists") from exc
    if row is None:
        raise not_found(f"product {product_id}")
    return _row(row)


_LIST_COLUMNS = "id, name, currency, prices_include_tax, is_default, created_at"


async def add_price_list(ctx: PluginContext, data: PriceListIn) -> dict[str, Any]:
    """Add a price list; a default one replaces the currency's previous default."""
    name = _text(data.name, "name", high=120)
    try:
        currency = check_currency(data.currency.strip().upper())
    except MoneyError as exc:
        raise invalid("currency", f"{data.currency!r} is not an ISO 4217 currency code") from exc
    if data.is_default:
        await ctx.db.execute(
            "UPDATE invoicing_price_lists SET is_default = false "
            "WHERE tenant_id = $1 AND currency = $2 AND is_default",
            ctx.tenant_id,
            currency,
        )
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_price_lists (tenant_id, id, name, currency, prices_include_tax, "
        "is_default) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING "
        f"RETURNING {_LIST_COLUMNS}",
        ctx.tenant_id,
        uuid7(),
        name,
        currency,
        data.prices_include_tax,
        data.is_default,
    )
    if row is None:
        raise conflict(f"a price list named {name!r} already exists")
    return _row(row)


async def price_lists(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's price lists."""
    rows = await ctx.db.fetch(
        f"SELECT {_LIST_COLUMNS} FROM invoicing_price_lists WHERE tenant_id = $1 "
        "ORDER BY currency, name",
        ctx.tenant_id,
    )
    return [_row(r) for r in rows]


async def price_list(ctx: PluginContext, list_id: UUID) -> dict[str, Any]:
    """One price list with its prices."""
    row = await ctx.db.fetchrow(
        f"SELECT {_LIST_COLUMNS} FROM invoicing_price_lists WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        list_id,
    )
    if row is None:
        raise not_found(f"price list {list_id}")
    prices = await ctx.db.fetch(
        "SELECT p.product_id, pr.name, pr.sku, p.unit_price FROM invoicing_prices p "
        "JOIN invoicing_products pr ON pr.tenant_id = p.tenant_id AND pr.id = p.product_id "
        "WHERE p.tenant_id = $1 AND p.price_list_id = $2 ORDER BY pr.name",
        ctx.tenant_id,
        list_id,
    )
    return {**_row(row), "prices": [_row(p) for p in prices]}


async def set_price(
    ctx: PluginContext, list_id: UUID, product_id: UUID, data: PriceIn
) -> dict[str, Any]:
    """Set a product's unit price in a price list."""
    if not data.unit_price.is_finite() or data.unit_price < 0:
        raise invalid("unit_price", "must be a number of at least 0")
    if data.unit_price.as_tuple().exponent < -6:  # type: ignore[operator]  # noqa: PLR2004
        raise invalid("unit_price", "at most 6 decimal places")
    await price_list(ctx, list_id)
    await product(ctx, product_id)
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_prices (tenant_id, price_list_id, product_id, unit_price) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, price_list_id, product_id) "
        "DO UPDATE SET unit_price = EXCLUDED.unit_price "
        "RETURNING price_list_id, product_id, unit_price",
        ctx.tenant_id,
        list_id,
        product_id,
        data.unit_price,
    )
    assert row is not None  # noqa: S101 - an upsert returns its row
    return _row(row)


@dataclass(frozen=True, slots=True)
class PricedProduct:
    """What a document line takes from the catalogue."""

    id: UUID
    name: str
    description: str
    unit_code: str
    unit_price: Decimal
    taxes: tuple[Tax, ...]
    prices_include_tax: bool


async def priced_product(
    ctx: PluginContext, product_id: UUID, price_list_id: UUID | None, currency: str, field: str
) -> PricedProduct:
    """A product with its price in ``price_list_id`` (or the currency's default list)."""
    row = await ctx.db.fetchrow(
        f"SELECT {_PRODUCT_COLUMNS} FROM invoicing_products WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        product_id,
    )
    if row is None or not row["active"]:
        raise invalid(field, f"product {product_id} is not an active product of this workspace")
    price = await ctx.db.fetchrow(
        "SELECT p.unit_price, l.prices_include_tax FROM invoicing_price_lists l "
        "JOIN invoicing_prices p ON p.tenant_id = l.tenant_id AND p.price_list_id = l.id "
        "WHERE l.tenant_id = $1 AND p.product_id = $2 AND l.currency = $3 "
        "AND (l.id = $4 OR ($4::uuid IS NULL AND l.is_default))",
        ctx.tenant_id,
        product_id,
        currency,
        price_list_id,
    )
    if price is None:
        raise invalid(
            field, f"product {row['name']!r} has no price in {currency} in the price list"
        )
    taxes = await taxes_by_id(ctx, list(row["tax_rate_ids"]), field)
    return PricedProduct(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        unit_code=row["unit_code"],
        unit_price=price["unit_price"],
        taxes=taxes,
        prices_include_tax=price["prices_include_tax"],
    )


# --- routes --------------------------------------------------------------------------


class CatalogController(Controller):
    """``/units``, ``/tax-rates``, ``/products``, ``/price-lists`` and their prices."""

    path = "/"

    @get("/units")
    async def list_units(self, plugin: PluginContext) -> list[dict[str, Any]]:
        """The workspace's units."""
        return await units(plugin)

    @post("/units")
    async def create_unit(self, plugin: PluginContext, data: UnitIn) -> dict[str, Any]:
        """Add a unit (UN/ECE Rec. 20 code)."""
        return await add_unit(plugin, data)

    @get("/tax-rates")
    async def list_tax_rates(self, plugin: PluginContext) -> list[dict[str, Any]]:
        """The workspace's tax rates."""
        return await tax_rates(plugin)

    @post("/tax-rates")
    async def create_tax_rate(self, plugin: PluginContext, data: TaxRateIn) -> dict[str, Any]:
        """Add a tax rate."""
        return await add_tax_rate(plugin, data)

    @patch("/tax-rates/{rate_id:uuid}")
    async def change_tax_rate(
        self, plugin: PluginContext, rate_id: UUID, data: TaxRatePatch
    ) -> dict[str, Any]:
        """Rename, retire or restore a tax rate."""
        return await update_tax_rate(plugin, rate_id, data)

    @get("/products")
    async def list_products(
        self, plugin: PluginContext, q: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Products by name; ``q`` matches name or SKU."""
        return await products(plugin, q=q, limit=limit)

    @post("/products")
    async def create_product(self, plugin: PluginContext, data: ProductIn) -> dict[str, Any]:
        """Add a product."""
        return await add_product(plugin, data)

    @get("/products/{product_id:uuid}")
    async def get_product(self, plugin: PluginContext, product_id: UUID) -> dict[str, Any]:
        """One product with its prices."""
        return await product(plugin, product_id)

    @patch("/products/{product_id:uuid}")
    async def change_product(
        self, plugin: PluginContext, product_id: UUID, data: ProductPatch
    ) -> dict[str, Any]:
        """Change a product."""
        return await update_product(plugin, product_id, data)

    @get("/price-lists")
    async def list_price_lists(self, plugin: PluginContext) -> list[dict[str, Any]]:
        """The workspace's price lists."""
        return await price_lists(plugin)

    @post("/price-lists")
    async def create_price_list(self, plugin: PluginContext, data: PriceListIn) -> dict[str, Any]:
        """Add a price list."""
        return await add_price_list(plugin, data)

    @get("/price-lists/{list_id:uuid}")
    async def get_price_list(self, plugin: PluginContext, list_id: UUID) -> dict[str, Any]:
        """One price list with its prices."""
        return await price_list(plugin, list_id)

    @put("/price-lists/{list_id:uuid}/prices/{product_id:uuid}")
    async def put_price(
        self, plugin: PluginContext, list_id: UUID, product_id: UUID, data: PriceIn
    ) -> dict[str, Any]:
        """Set a product's price in a price list."""
        return await set_price(plugin, list_id, product_id, data)


def api_routes() -> list[Any]:
    """The catalogue's API routes."""
    return [CatalogController]
