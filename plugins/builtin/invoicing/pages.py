# ruff: noqa: E501 - the pages' HTML reads best unwrapped
"""The invoicing pages inside Orbit's layout, and the deal sidebar's "Create quote" panel.

Pages read and write through the same services as the API (one computation of every
amount), and plain forms carry the CSRF field; the deal panel posts with htmx (the
layout sends the CSRF header) and is redirected to the new quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID

from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from orbit.plugins.api import (
    Fragment,
    Page,
    PluginContext,
    Request,
    Response,
    escape,
    get,
    post,
)
from orbit.plugins.builtin.invoicing import catalog
from orbit.plugins.builtin.invoicing.errors import invalid
from orbit.plugins.builtin.invoicing.invoices import (
    CreditNoteIn,
    FinalizeIn,
    credit_note,
    finalize,
    invoice,
    invoices,
)
from orbit.plugins.builtin.invoicing.lines import LineIn
from orbit.plugins.builtin.invoicing.money import format_money
from orbit.plugins.builtin.invoicing.quotes import (
    QuoteIn,
    QuotePatch,
    add_lines,
    create_quote,
    portal_token,
    quote_json,
    quote_lines,
    quote_row,
    quotes,
    revise,
    send,
    update_quote,
)

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _base(ctx: PluginContext) -> str:
    return f"/t/{ctx.tenant_slug}/apps/{ctx.plugin_id}"


def _money(value: Any, currency: str) -> str:
    return escape(format_money(Decimal(str(value)), currency)) if value is not None else "—"


def _go(request: Request[Any, Any, Any], path: str) -> Response[Any]:
    """After a post: htmx follows ``HX-Redirect``, a plain form a 303."""
    if request.headers.get("hx-request"):
        return Response(b"", status_code=200, headers={"HX-Redirect": path})
    return Redirect(path, status_code=303)


def _table(headers: list[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    empty = f'<tr><td colspan="{len(headers)}" class="muted">Nothing yet.</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body or empty}</tbody></table>'


def _lines_table(doc: dict[str, Any]) -> str:
    currency = doc["currency"]
    rows = []
    for line in doc["lines"]:
        if line["kind"] == "section":
            rows.append([f"<strong>{escape(line['description'])}</strong>", "", "", "", ""])
            continue
        note = " (optional)" if line["optional"] else ""
        amount = line["gross"] if line["gross"] is not None else line["net"]
        rows.append(
            [
                escape(line["description"]) + escape(note),
                escape(f"{Decimal(line['quantity']).normalize():f} {line['unit_code']}"),
                _money(line["unit_price"], currency),
                escape(", ".join(t["name"] for t in line["taxes"]) or "—"),
                _money(amount, currency) if amount is not None else "not included",
            ]
        )
    return _table(["Description", "Quantity", "Unit price", "Taxes", "Amount"], rows, "lines")


def _totals(doc: dict[str, Any]) -> str:
    t, currency = doc["totals"], doc["currency"]
    rows = [["Net", _money(t["net_total"], currency)]]
    if t["allowance_total"] not in (None, "0", "0.00") and Decimal(t["allowance_total"]):
        rows.insert(0, ["Discount", _money(-Decimal(t["allowance_total"]), currency)])
    rows += [
        [
            escape(f"{x['name']} on {format_money(Decimal(x['base']), currency)}"),
            _money(x["amount"], currency),
        ]
        for x in t["taxes"]
    ]
    if Decimal(t["rounding"] or 0):
        rows.append(["Rounding", _money(t["rounding"], currency)])
    rows.append(
        [
            "<strong>Total due</strong>",
            f'<strong id="payable">{_money(t["payable"], currency)}</strong>',
        ]
    )
    return _table(["", ""], rows, "totals")


# --- overview ------------------------------------------------------------------------


@get("/")
async def overview(plugin: PluginContext) -> Page:
    """Recent quotes and invoices."""
    base = _base(plugin)
    quote_rows = [
        [
            f'<a href="{base}/quotes/{q["id"]}">{escape(q["number"])}</a>'
            + (f" rev. {q['revision']}" if q["revision"] > 1 else ""),
            escape(q["customer"].get("name", "")),
            escape(q["status"]),
            _money(q["gross_total"], q["currency"]),
        ]
        for q in await quotes(plugin, limit=50)
    ]
    invoice_rows = [
        [
            f'<a href="{base}/invoices/{i["id"]}">{escape(i["number"] or "draft")}</a>',
            escape("credit note" if i["kind"] == "credit_note" else "invoice"),
            escape(i["customer"].get("name", "")),
            escape(i["status"]),
            _money(i["payable_total"], i["currency"]),
        ]
        for i in await invoices(plugin, limit=50)
    ]
    html = (
        f'<p><a href="{base}/catalog">Products, prices and taxes</a></p>'
        "<h2>Quotes</h2>"
        + _table(["Quote", "Customer", "Status", "Total"], quote_rows, "quotes")
        + "<h2>Invoices</h2>"
        + _table(["Number", "Kind", "Customer", "Status", "Total due"], invoice_rows, "invoices")
    )
    return Page("Quotes & invoices", html)


# --- quotes --------------------------------------------------------------------------


@post("/quotes/new")
async def new_quote(
    plugin: PluginContext, request: Request[Any, Any, Any], data: Form
) -> Response[Any]:
    """A draft quote from a deal (the deal sidebar's button)."""
    try:
        deal_id = UUID(data.get("deal_id", ""))
    except ValueError:
        raise invalid("deal_id", "pick a deal") from None
    made = await create_quote(plugin, QuoteIn(deal_id=deal_id))
    return _go(request, f"{_base(plugin)}/quotes/{made['id']}")


async def _product_options(ctx: PluginContext) -> str:
    options = "".join(
        f'<option value="{p["id"]}">{escape(p["name"])}</option>'
        for p in await catalog.products(ctx, limit=500)
        if p["active"]
    )
    return f'<option value="">(free line)</option>{options}'


async def _tax_options(ctx: PluginContext) -> str:
    return "".join(
        f'<option value="{t["id"]}">{escape(t["name"])}</option>'
        for t in await catalog.tax_rates(ctx, active_only=True)
    )


@get("/quotes/{quote_id:uuid}")
async def quote_page(plugin: PluginContext, quote_id: UUID) -> Page:
    """A quote: its lines, totals, status and what can be done with it."""
    row = await quote_row(plugin, quote_id)
    q = quote_json(row, await quote_lines(plugin, quote_id))
    base = f"{_base(plugin)}/quotes/{quote_id}"
    csrf = plugin.csrf_field()
    status = q["status"]
    parts = [
        (
            f'<p id="quote-status" data-status="{escape(status)}">Status: <strong>{escape(status)}</strong>'
            f" · {escape(q['customer'].get('name', ''))} · valid until {escape(q['expires_on'] or '—')}</p>"
        ),
        _lines_table(q),
        _totals(q),
    ]
    if status == "draft":
        parts.append(
            f'<h2>Add a line</h2><form method="post" action="{base}/lines" id="add-line">{csrf}'
            f'<label>Product <select name="product_id">{await _product_options(plugin)}</select></label>'
            '<label>Description <input name="description"></label>'
            '<label>Quantity <input name="quantity" value="1"></label>'
            '<label>Unit price <input name="unit_price" placeholder="from the price list"></label>'
            f'<label>Tax <select name="tax_rate_id"><option value="">(the product\'s)</option>'
            f"{await _tax_options(plugin)}</select></label>"
            '<label><input type="checkbox" name="optional" value="yes"> optional</label>'
            '<button type="submit">Add</button></form>'
        )
    if status == "draft":
        discount = q["discount_percent"] if Decimal(q["discount_percent"]) else ""
        parts.append(
            f'<h2>Details</h2><form method="post" action="{base}/details" id="quote-details">{csrf}'
            f'<label>Title <input name="title" value="{escape(q["title"])}"></label>'
            f'<label>Valid until <input type="date" name="expires_on" value="{escape(q["expires_on"] or "")}"></label>'
            f'<label>Discount % <input name="discount_percent" value="{escape(discount)}"></label>'
            f'<label>Notes <textarea name="notes">{escape(q["notes"])}</textarea></label>'
            f'<label>Terms <textarea name="terms">{escape(q["terms"])}</textarea></label>'
            '<button type="submit">Save</button></form>'
        )
    if status in {"draft", "sent"}:
        parts.append(
            f'<form method="post" action="{base}/send">{csrf}'
            '<button type="submit" id="send-quote">Send to the customer</button></form>'
        )
    if status == "sent":
        link = plugin.url(f"/quotes/{portal_token(plugin, row)}", public=True)
        parts.append(
            f'<p>The customer\'s link: <a href="{escape(link)}" id="portal-link">{escape(link)}</a></p>'
        )
    if status in {"sent", "declined", "expired"}:
        parts.append(
            f'<form method="post" action="{base}/revise">{csrf}'
            '<button type="submit" id="revise-quote">Make a new revision</button></form>'
        )
    if q.get("declined_reason"):
        parts.append(f"<p>Declined: {escape(q['declined_reason'])}</p>")
    if q.get("invoice_id"):
        parts.append(
            f"<p>Accepted by {escape(q['accepted_name'])}: "
            f'<a href="{_base(plugin)}/invoices/{q["invoice_id"]}" id="quote-invoice">the invoice</a></p>'
        )
    title = f"Quote {q['number']}" + (f" (rev. {q['revision']})" if q["revision"] > 1 else "")
    return Page(title, "".join(parts))


def _decimal(raw: str, field: str) -> Decimal | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return Decimal(raw.replace(",", "."))
    except InvalidOperation:
        raise invalid(field, f"{raw!r} is not a number") from None


@post("/quotes/{quote_id:uuid}/lines")
async def add_quote_line(
    plugin: PluginContext, request: Request[Any, Any, Any], quote_id: UUID, data: Form
) -> Response[Any]:
    """Add a line to a draft quote."""
    product = data.get("product_id") or None
    tax = data.get("tax_rate_id") or None
    await add_lines(
        plugin,
        quote_id,
        LineIn(
            product_id=UUID(product) if product else None,
            description=data.get("description", ""),
            quantity=_decimal(data.get("quantity", "1"), "quantity") or Decimal(1),
            unit_price=_decimal(data.get("unit_price", ""), "unit_price"),
            tax_rate_ids=[UUID(tax)] if tax else None,
            optional=data.get("optional") == "yes",
        ),
    )
    return _go(request, f"{_base(plugin)}/quotes/{quote_id}")


@post("/quotes/{quote_id:uuid}/details")
async def quote_details(
    plugin: PluginContext, request: Request[Any, Any, Any], quote_id: UUID, data: Form
) -> Response[Any]:
    """Title, expiry, discount, notes and terms of a draft quote."""
    raw_date = data.get("expires_on", "").strip()
    try:
        expires = date.fromisoformat(raw_date) if raw_date else None
    except ValueError:
        raise invalid("expires_on", f"{raw_date!r} is not a date") from None
    await update_quote(
        plugin,
        quote_id,
        QuotePatch(
            title=data.get("title"),
            expires_on=expires,
            discount_percent=_decimal(data.get("discount_percent", ""), "discount_percent")
            or Decimal(0),
            notes=data.get("notes"),
            terms=data.get("terms"),
        ),
    )
    return _go(request, f"{_base(plugin)}/quotes/{quote_id}")


@post("/quotes/{quote_id:uuid}/send")
async def send_quote(
    plugin: PluginContext, request: Request[Any, Any, Any], quote_id: UUID
) -> Response[Any]:
    """Send the quote (its document and link follow)."""
    await send(plugin, quote_id)
    return _go(request, f"{_base(plugin)}/quotes/{quote_id}")


@post("/quotes/{quote_id:uuid}/revise")
async def revise_quote(
    plugin: PluginContext, request: Request[Any, Any, Any], quote_id: UUID
) -> Response[Any]:
    """A new revision of the quote."""
    made = await revise(plugin, quote_id)
    return _go(request, f"{_base(plugin)}/quotes/{made['id']}")


# --- invoices ------------------------------------------------------------------------


@get("/invoices/{invoice_id:uuid}")
async def invoice_page(plugin: PluginContext, invoice_id: UUID) -> Page:
    """An invoice or credit note, with finalize, downloads and credit note."""
    doc = await invoice(plugin, invoice_id)
    base = f"{_base(plugin)}/invoices/{invoice_id}"
    csrf = plugin.csrf_field()
    kind = "Credit note" if doc["kind"] == "credit_note" else "Invoice"
    parts = [
        f'<p id="invoice-status" data-status="{escape(doc["status"])}">'
        f"{escape(kind)} · <strong>{escape(doc['status'])}</strong> · "
        f"{escape(doc['customer'].get('name', ''))}"
        + (
            f" · issued {escape(doc['issue_date'])}, due {escape(doc['due_date'])}"
            if doc["issue_date"]
            else ""
        )
        + "</p>",
        _lines_table(doc),
        _totals(doc),
    ]
    if doc["status"] == "draft":
        parts.append(
            f'<form method="post" action="{base}/finalize">{csrf}'
            '<label>Exchange rate (foreign currency only) <input name="exchange_rate"></label>'
            '<button type="submit" id="finalize">Finalize (takes the next number)</button></form>'
        )
    else:
        parts.append(
            f'<p><a href="{base}/pdf" id="download-pdf">PDF (Factur-X)</a> · '
            f'<a href="{base}/ubl.xml">UBL</a></p>'
        )
        if doc["kind"] == "invoice":
            parts.append(
                f'<p><a href="{base}/collection/" id="collection">Payments and reminders</a></p>'
            )
        if doc["kind"] == "invoice":
            parts.append(
                f'<form method="post" action="{base}/credit-note">{csrf}'
                '<button type="submit" id="credit-note">Credit note…</button></form>'
            )
    title = f"{kind} {doc['number'] or '(draft)'}"
    return Page(title, "".join(parts))


@post("/invoices/{invoice_id:uuid}/finalize")
async def finalize_invoice(
    plugin: PluginContext, request: Request[Any, Any, Any], invoice_id: UUID, data: Form
) -> Response[Any]:
    """Finalize a draft from its page."""
    rate = _decimal(data.get("exchange_rate", ""), "exchange_rate")
    await finalize(plugin, invoice_id, FinalizeIn(exchange_rate=rate))
    return _go(request, f"{_base(plugin)}/invoices/{invoice_id}")


@post("/invoices/{invoice_id:uuid}/credit-note")
async def credit_invoice(
    plugin: PluginContext, request: Request[Any, Any, Any], invoice_id: UUID
) -> Response[Any]:
    """A draft credit note of the whole invoice, to adjust before finalizing."""
    note = await credit_note(plugin, invoice_id, CreditNoteIn())
    return _go(request, f"{_base(plugin)}/invoices/{note['id']}")


# --- catalogue -----------------------------------------------------------------------


@get("/catalog")
async def catalog_page(plugin: PluginContext) -> Page:
    """Products with their prices, tax rates and price lists, with forms to add them."""
    base = f"{_base(plugin)}/catalog"
    csrf = plugin.csrf_field()
    taxes = await catalog.tax_rates(plugin)
    names = {t["id"]: t["name"] for t in taxes}
    lists = await catalog.price_lists(plugin)
    product_rows = []
    for p in await catalog.products(plugin, limit=500):
        detail = await catalog.product(plugin, UUID(p["id"]))
        prices = ", ".join(
            format_money(Decimal(x["unit_price"]), x["currency"].strip()) + f" ({x['name']})"
            for x in detail["prices"]
        )
        product_rows.append(
            [
                escape(p["name"]),
                escape(p["sku"] or ""),
                escape(p["unit_code"]),
                escape(", ".join(names.get(t, "?") for t in p["tax_rate_ids"])),
                escape(prices or "—"),
            ]
        )
    tax_rows = [
        [
            escape(t["name"]),
            escape(f"{Decimal(t['rate']).normalize():f} %"),
            escape(t["category"]),
            escape(t["kind"]),
            "yes" if t["active"] else "retired",
        ]
        for t in taxes
    ]
    list_rows = [
        [
            escape(x["name"]),
            escape(x["currency"].strip()),
            "gross" if x["prices_include_tax"] else "net",
            "default" if x["is_default"] else "",
        ]
        for x in lists
    ]
    unit_options = "".join(
        f'<option value="{escape(u["code"])}">{escape(u["name"])} ({escape(u["code"])})</option>'
        for u in await catalog.units(plugin)
    )
    tax_options = "".join(
        f'<option value="{t["id"]}">{escape(t["name"])}</option>' for t in taxes if t["active"]
    )
    product_options = "".join(
        f'<option value="{p["id"]}">{escape(p["name"])}</option>'
        for p in await catalog.products(plugin, limit=500)
    )
    list_options = "".join(
        f'<option value="{x["id"]}">{escape(x["name"])} ({escape(x["currency"].strip())})</option>'
        for x in lists
    )
    html = (
        "<h2>Products</h2>"
        + _table(["Name", "SKU", "Unit", "Taxes", "Prices"], product_rows, "products")
        + f'<form method="post" action="{base}/products" id="add-product">{csrf}'
        '<label>Name <input name="name" required></label><label>SKU <input name="sku"></label>'
        f'<label>Unit <select name="unit_code">{unit_options}</select></label>'
        f'<label>Tax <select name="tax_rate_id"><option value="">none</option>{tax_options}</select></label>'
        '<button type="submit">Add product</button></form>'
        "<h2>Prices</h2>"
        f'<form method="post" action="{base}/prices" id="set-price">{csrf}'
        f'<label>Price list <select name="price_list_id">{list_options}</select></label>'
        f'<label>Product <select name="product_id">{product_options}</select></label>'
        '<label>Unit price <input name="unit_price" required></label>'
        '<button type="submit">Set price</button></form>'
        "<h2>Tax rates</h2>"
        + _table(["Name", "Rate", "Category", "Kind", "Active"], tax_rows, "tax-rates")
        + f'<form method="post" action="{base}/tax-rates" id="add-tax-rate">{csrf}'
        '<label>Name <input name="name" required></label><label>Rate % <input name="rate" required></label>'
        '<label>Category <select name="category"><option>S</option><option>Z</option><option>E</option>'
        "<option>AE</option><option>K</option><option>G</option><option>O</option></select></label>"
        '<label>Kind <select name="kind"><option>vat</option><option>withholding</option>'
        "<option>other</option></select></label>"
        '<label>Exemption reason <input name="exemption_reason"></label>'
        '<button type="submit">Add tax rate</button></form>'
        "<h2>Price lists</h2>"
        + _table(["Name", "Currency", "Prices", ""], list_rows, "price-lists")
        + f'<form method="post" action="{base}/price-lists" id="add-price-list">{csrf}'
        '<label>Name <input name="name" required></label>'
        '<label>Currency <input name="currency" required maxlength="3" size="3"></label>'
        '<label><input type="checkbox" name="prices_include_tax" value="yes"> prices include tax</label>'
        '<label><input type="checkbox" name="is_default" value="yes"> default for the currency</label>'
        '<button type="submit">Add price list</button></form>'
    )
    return Page("Products, prices and taxes", html)


@post("/catalog/products")
async def add_product(
    plugin: PluginContext, request: Request[Any, Any, Any], data: Form
) -> Response[Any]:
    """Add a product from the catalogue page."""
    tax = data.get("tax_rate_id") or None
    await catalog.add_product(
        plugin,
        catalog.ProductIn(
            name=data.get("name", ""),
            sku=data.get("sku") or None,
            unit_code=data.get("unit_code") or "C62",
            tax_rate_ids=[UUID(tax)] if tax else [],
        ),
    )
    return _go(request, f"{_base(plugin)}/catalog")


@post("/catalog/tax-rates")
async def add_tax_rate(
    plugin: PluginContext, request: Request[Any, Any, Any], data: Form
) -> Response[Any]:
    """Add a tax rate from the catalogue page."""
    rate = _decimal(data.get("rate", ""), "rate")
    if rate is None:
        raise invalid("rate", "a percentage is required")
    await catalog.add_tax_rate(
        plugin,
        catalog.TaxRateIn(
            name=data.get("name", ""),
            rate=rate,
            category=data.get("category", "S"),
            kind=data.get("kind", "vat"),
            exemption_reason=data.get("exemption_reason", ""),
        ),
    )
    return _go(request, f"{_base(plugin)}/catalog")


@post("/catalog/price-lists")
async def add_price_list(
    plugin: PluginContext, request: Request[Any, Any, Any], data: Form
) -> Response[Any]:
    """Add a price list from the catalogue page."""
    await catalog.add_price_list(
        plugin,
        catalog.PriceListIn(
            name=data.get("name", ""),
            currency=data.get("currency", ""),
            prices_include_tax=data.get("prices_include_tax") == "yes",
            is_default=data.get("is_default") == "yes",
        ),
    )
    return _go(request, f"{_base(plugin)}/catalog")


@post("/catalog/prices")
async def set_price(
    plugin: PluginContext, request: Request[Any, Any, Any], data: Form
) -> Response[Any]:
    """Set a product's price from the catalogue page."""
    price = _decimal(data.get("unit_price", ""), "unit_price")
    if price is None:
        raise invalid("unit_price", "a price is required")
    try:
        list_id, product_id = UUID(data.get("price_list_id", "")), UUID(data.get("product_id", ""))
    except ValueError:
        raise invalid("price_list_id", "pick a price list and a product") from None
    await catalog.set_price(plugin, list_id, product_id, catalog.PriceIn(unit_price=price))
    return _go(request, f"{_base(plugin)}/catalog")


def page_routes() -> list[Any]:
    """The invoicing pages."""
    return [
        overview,
        new_quote,
        quote_page,
        add_quote_line,
        quote_details,
        send_quote,
        revise_quote,
        invoice_page,
        finalize_invoice,
        credit_invoice,
        catalog_page,
        add_product,
        add_tax_rate,
        add_price_list,
        set_price,
    ]


# --- the deal sidebar ----------------------------------------------------------------


async def ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """On a deal: its quotes and a "Create quote" button."""
    if slot != "deal.sidebar" or subject_id is None:
        return None
    base = _base(ctx)
    items = "".join(
        f'<li><a href="{base}/quotes/{q["id"]}">{escape(q["number"])}</a> · {escape(q["status"])} · '
        f"{_money(q['gross_total'], q['currency'])}</li>"
        for q in await quotes(ctx, deal_id=subject_id, limit=10)
    )
    listing = f'<ul id="deal-quotes">{items}</ul>' if items else ""
    button = (
        f'<form method="post" action="{base}/quotes/new" hx-post="{base}/quotes/new" id="create-quote">'
        f'{ctx.csrf_field()}<input type="hidden" name="deal_id" value="{subject_id}">'
        '<button type="submit">Create quote</button></form>'
    )
    return Fragment("Quotes", listing + button)
