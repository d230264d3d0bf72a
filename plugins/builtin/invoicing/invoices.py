"""Invoices and credit notes: drafts without numbers, gapless numbers at finalization.

Finalizing is one short transaction, in this order so that the series' row lock is
held for milliseconds: the draft is locked and checked and its totals computed first;
then the counter row of the series and year is incremented with ``UPDATE … RETURNING``
(the row lock makes concurrent finalizations queue, and a rollback returns the number
with the transaction, so no gap and no duplicate — never a PostgreSQL sequence, whose
values are not given back on rollback); then the invoice is written with its number
(``UNIQUE (tenant_id, series, number)`` stands guard) and the after-commit work (PDF,
email, payment link) is queued in the plugin's outbox, run by a scheduled job.

A finalized invoice never changes (a database trigger refuses it too); corrections
are credit notes, finalized in their own series.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from litestar import Controller
from litestar.status_codes import HTTP_204_NO_CONTENT
from uuid_utils.compat import uuid7

from orbit.plugins.api import PluginContext, delete, get, patch, post
from orbit.plugins.builtin.invoicing.errors import conflict, invalid, not_found
from orbit.plugins.builtin.invoicing.lines import (
    LINE_COLUMNS,
    Header,
    LineIn,
    StoredLine,
    check_header,
    line_from_row,
    lines_json,
    resolve,
    taxes_json,
    totals,
)
from orbit.plugins.builtin.invoicing.parts import load_parts
from orbit.plugins.builtin.invoicing.rates import SOURCE, ecb_rate

if TYPE_CHECKING:
    from orbit.plugins.builtin.invoicing.money import Totals

SERIES = {"invoice": "invoice_prefix", "credit_note": "credit_note_prefix", "quote": "quote_prefix"}
DEFAULT_PREFIX = {"invoice": "INV-", "credit_note": "CN-", "quote": "Q-"}

EMITS = ("invoicing.invoice_finalized", "invoicing.credit_note_finalized")

INVOICE_TOKEN = "invoice"  # noqa: S105 - what a link is for, not a secret
FINALIZE_TASKS = ((30, "send_invoice"),)
"""After the documents are rendered (position 10): email the customer their link."""


class CustomerIn(msgspec.Struct, forbid_unknown_fields=True):
    """Who is billed, as printed on the invoice (a snapshot: later CRM edits do not change it)."""

    name: str
    email: str | None = None
    address: str = ""
    country: str | None = None
    vat_id: str | None = None


class InvoiceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A draft invoice."""

    lines: list[LineIn]
    customer: CustomerIn | None = None
    currency: str | None = None
    """ISO 4217; the price list's, else the workspace's company currency."""
    company_id: UUID | None = None
    contact_id: UUID | None = None
    deal_id: UUID | None = None
    price_list_id: UUID | None = None
    prices_include_tax: bool | None = None
    discount_percent: Decimal = Decimal(0)
    discount_amount: Decimal = Decimal(0)
    due_date: date | None = None
    notes: str = ""
    terms: str = ""


class InvoicePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a draft; ``lines`` replaces every line."""

    lines: list[LineIn] | None = None
    customer: CustomerIn | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    due_date: date | None = None
    notes: str | None = None
    terms: str | None = None


class FinalizeIn(msgspec.Struct, forbid_unknown_fields=True):
    """Finalizing: the issue date (today by default) and, in a foreign currency, the rate."""

    issue_date: date | None = None
    exchange_rate: Decimal | None = None
    """Units of the company currency per unit of the invoice's currency."""
    exchange_rate_source: str = "manual"
    exchange_rate_date: date | None = None


class CreditNoteIn(msgspec.Struct, forbid_unknown_fields=True):
    """A credit note of some (default: all) lines of a finalized invoice."""

    positions: list[int] | None = None
    quantities: dict[str, Decimal] | None = None
    """Position → quantity to credit, when less than the invoiced one."""
    notes: str = ""


_INVOICE_COLUMNS = (
    "id, kind, status, series, year, seq, number, issue_date, due_date, finalized_at, sent_at, "
    "deal_id, company_id, contact_id, quote_id, credited_invoice_id, customer, currency, "
    "prices_include_tax, discount_percent, discount_amount, company_currency, exchange_rate, "
    "exchange_rate_source, exchange_rate_date, net_total, tax_total, gross_total, "
    "payable_total, totals, notes, terms, source, created_at, updated_at"
)


def plain(value: Any) -> Any:
    """A column's value as JSON has it (amounts and ids as strings, dates in ISO 8601)."""
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def header_of(row: Any) -> Header:
    """The money header of an invoice or quote row."""
    return Header(
        currency=row["currency"].strip(),
        prices_include_tax=row["prices_include_tax"],
        discount_percent=row["discount_percent"],
        discount_amount=row["discount_amount"],
    )


def customer_of(row: Any) -> dict[str, Any]:
    """The customer snapshot of an invoice or quote row, as a dict of its own."""
    customer = row["customer"]
    return json.loads(customer) if isinstance(customer, str) else dict(customer)


def export_json(row: Any) -> dict[str, Any]:
    """An invoice or quote row as a person's data export lists it."""
    out = {key: plain(value) for key, value in dict(row).items()}
    out["customer"] = customer_of(row)
    out["currency"] = row["currency"].strip()
    return out


def customer_snapshot(raw: CustomerIn | None) -> dict[str, Any]:
    """The customer as the document keeps it, checked (a 400 naming the bad field)."""
    if raw is None:
        return {}
    name = raw.name.strip()
    if not name or len(name) > 200:  # noqa: PLR2004
        raise invalid("customer.name", "must be 1 to 200 characters")
    country = (raw.country or "").strip().upper() or None
    if country is not None and not (len(country) == 2 and country.isalpha()):  # noqa: PLR2004
        raise invalid("customer.country", "an ISO 3166-1 alpha-2 code, e.g. DE")
    email = (raw.email or "").strip() or None
    if email is not None and ("@" not in email or len(email) > 254):  # noqa: PLR2004
        raise invalid("customer.email", f"{email!r} is not an email address")
    return {
        "name": name,
        "email": email,
        "address": raw.address.strip()[:1000],
        "country": country,
        "vat_id": (raw.vat_id or "").strip().upper() or None,
    }


def setting(ctx: PluginContext, name: str, default: Any) -> Any:
    """A setting of the workspace, or ``default``."""
    value = ctx.settings.get(name)
    return default if value is None or value == "" else value


def company_currency(ctx: PluginContext) -> str:
    """The currency the workspace keeps its books in."""
    return str(setting(ctx, "company_currency", "EUR")).upper()


async def customer_from_crm(
    ctx: PluginContext, company_id: UUID | None, contact_id: UUID | None
) -> dict[str, Any]:
    """The customer as printed: the company's name and address, the contact's email."""
    customer: dict[str, Any] = {}
    if company_id is not None:
        company = await ctx.companies.get(company_id)
        if company is None:
            raise invalid("company_id", f"company {company_id} is not in this workspace")
        customer["name"] = company.name
        customer["address"] = company.address or ""
    if contact_id is not None:
        contact = await ctx.contacts.get(contact_id)
        if contact is None:
            raise invalid("contact_id", f"contact {contact_id} is not in this workspace")
        customer.setdefault("name", contact.name)
        customer["contact_name"] = contact.name
        customer["email"] = contact.email
    return customer


async def draft_for_plugin(
    ctx: PluginContext,
    customer: dict[str, Any],
    lines: list[dict[str, Any]],
    source: dict[str, Any],
) -> dict[str, Any]:
    """``invoicing_create_draft_invoice`` (see :mod:`.hookspecs`): a draft from another plugin."""
    from litestar.exceptions import ValidationException  # noqa: PLC0415

    try:
        given = msgspec.convert(
            {"lines": lines, **({"currency": source["currency"]} if "currency" in source else {})},
            InvoiceIn,
            strict=False,
        )
        ids = {k: UUID(str(customer[k])) for k in ("company_id", "contact_id") if customer.get(k)}
        snapshot = await customer_from_crm(ctx, ids.get("company_id"), ids.get("contact_id"))
        extra = {
            k: customer[k]
            for k in ("name", "email", "address", "country", "vat_id")
            if k in customer
        }
        if extra.get("name") or not snapshot.get("name"):
            snapshot.update(customer_snapshot(msgspec.convert(extra, CustomerIn)))
        snapshot.pop("contact_name", None)
        data = msgspec.structs.replace(given, **ids)
        draft = await create_draft(ctx, data, customer=snapshot, source=dict(source))
    except ValidationException as exc:
        fields = [item.get("key") for item in exc.extra or [] if isinstance(item, dict)]
        return {"ok": False, "field": fields[0] if fields else None, "error": exc.detail}
    except (msgspec.ValidationError, ValueError, KeyError) as exc:
        return {"ok": False, "field": None, "error": str(exc)}
    return {"ok": True, "invoice": draft}


async def price_list_row(ctx: PluginContext, price_list_id: UUID | None) -> Any:
    """The price list's currency and tax mode (``None`` without one); a 400 if it is not here."""
    if price_list_id is None:
        return None
    row = await ctx.db.fetchrow(
        "SELECT id, currency, prices_include_tax FROM invoicing_price_lists "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        price_list_id,
    )
    if row is None:
        raise invalid("price_list_id", f"price list {price_list_id} is not in this workspace")
    return row


async def _write_lines(ctx: PluginContext, invoice_id: UUID, lines: list[StoredLine]) -> None:
    await ctx.db.execute(
        "DELETE FROM invoicing_invoice_lines WHERE tenant_id = $1 AND invoice_id = $2",
        ctx.tenant_id,
        invoice_id,
    )
    if not lines:
        return
    await ctx.db.execute(
        "INSERT INTO invoicing_invoice_lines (tenant_id, invoice_id, position, kind, product_id, "
        "description, quantity, unit_code, unit_price, discount_percent, taxes, ref) "
        "SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::uuid[], $6::text[], "
        "$7::numeric[], $8::text[], $9::numeric[], $10::numeric[], $11::jsonb[], $12::text[])",
        ctx.tenant_id,
        invoice_id,
        [x.position for x in lines],
        [x.kind for x in lines],
        [x.product_id for x in lines],
        [x.description for x in lines],
        [x.quantity for x in lines],
        [x.unit_code for x in lines],
        [x.unit_price for x in lines],
        [x.discount_percent for x in lines],
        [taxes_json(x) for x in lines],
        [x.ref for x in lines],
    )


async def _store_totals(ctx: PluginContext, invoice_id: UUID, result: Totals) -> None:
    await ctx.db.execute(
        "UPDATE invoicing_invoices SET net_total = $3, tax_total = $4, gross_total = $5, "
        "payable_total = $6, totals = $7::jsonb, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2 AND status = 'draft'",
        ctx.tenant_id,
        invoice_id,
        result.net_total,
        result.vat_total + result.other_tax_total,
        result.gross_total,
        result.payable,
        json.dumps(result.to_json()),
    )


async def create_draft(
    ctx: PluginContext,
    data: InvoiceIn,
    *,
    customer: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new draft (no number) with its lines priced from the catalogue, and its totals."""
    prices = await price_list_row(ctx, data.price_list_id)
    currency = (data.currency or (prices["currency"] if prices else company_currency(ctx))).upper()
    if prices is not None and prices["currency"].strip() != currency:
        raise invalid("price_list_id", f"the price list is in {prices['currency']}, not {currency}")
    inclusive = data.prices_include_tax
    if inclusive is None:
        inclusive = bool(prices["prices_include_tax"]) if prices is not None else False
    header = check_header(Header(currency, inclusive, data.discount_percent, data.discount_amount))
    lines = await resolve(
        ctx,
        data.lines,
        currency=currency,
        price_list_id=data.price_list_id,
        prices_include_tax=inclusive,
        quote=False,
    )
    if customer is None:
        # The CRM's company and contact, overridden by what the request names.
        customer = await customer_from_crm(ctx, data.company_id, data.contact_id)
        customer.pop("contact_name", None)
        customer.update({k: v for k, v in customer_snapshot(data.customer).items() if v})
    invoice_id = await insert_draft(
        ctx,
        header,
        lines,
        customer=customer,
        company_id=data.company_id,
        contact_id=data.contact_id,
        deal_id=data.deal_id,
        due_date=data.due_date,
        notes=data.notes,
        terms=data.terms,
        source=source,
    )
    return await invoice(ctx, invoice_id)


async def insert_draft(
    ctx: PluginContext,
    header: Header,
    lines: list[StoredLine],
    *,
    customer: dict[str, Any],
    kind: str = "invoice",
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    deal_id: UUID | None = None,
    quote_id: UUID | None = None,
    credited_invoice_id: UUID | None = None,
    due_date: date | None = None,
    notes: str = "",
    terms: str = "",
    source: dict[str, Any] | None = None,
) -> UUID:
    """Write a draft with lines already priced (a quote's, an invoice's being credited)."""
    result, _ = totals(header, lines)
    invoice_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO invoicing_invoices (tenant_id, id, kind, deal_id, company_id, contact_id, "
        "quote_id, credited_invoice_id, customer, currency, prices_include_tax, "
        "discount_percent, discount_amount, due_date, notes, terms, source) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, "
        "$17::jsonb)",
        ctx.tenant_id,
        invoice_id,
        kind,
        deal_id,
        company_id,
        contact_id,
        quote_id,
        credited_invoice_id,
        json.dumps(customer),
        header.currency,
        header.prices_include_tax,
        header.discount_percent,
        header.discount_amount,
        due_date,
        notes[:10000],
        terms[:10000],
        json.dumps(source or {}),
    )
    await _write_lines(ctx, invoice_id, [replace(x, position=i) for i, x in enumerate(lines)])
    await _store_totals(ctx, invoice_id, result)
    return invoice_id


async def _row(ctx: PluginContext, invoice_id: UUID, *, lock: bool = False) -> Any:
    row = await ctx.db.fetchrow(
        f"SELECT {_INVOICE_COLUMNS} FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2"
        + (" FOR UPDATE" if lock else ""),
        ctx.tenant_id,
        invoice_id,
    )
    if row is None:
        raise not_found(f"invoice {invoice_id}")
    return row


async def stored_lines(ctx: PluginContext, invoice_id: UUID) -> list[StoredLine]:
    """An invoice's lines in order."""
    rows = await ctx.db.fetch(
        f"SELECT {LINE_COLUMNS}, ref FROM invoicing_invoice_lines "
        "WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY position",
        ctx.tenant_id,
        invoice_id,
    )
    return [line_from_row(r) for r in rows]


def _json(row: Any) -> dict[str, Any]:
    out = {key: plain(value) for key, value in dict(row).items()}
    for key in ("customer", "totals", "source"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    out["currency"] = row["currency"].strip()
    if row["company_currency"] is not None:
        out["company_currency"] = row["company_currency"].strip()
    return out


async def invoice(ctx: PluginContext, invoice_id: UUID) -> dict[str, Any]:
    """One invoice or credit note with its lines, as the API returns it."""
    row = await _row(ctx, invoice_id)
    lines = await stored_lines(ctx, invoice_id)
    result, _ = totals(header_of(row), lines)
    out = _json(row)
    out["lines"] = lines_json(lines, result)
    if row["status"] == "draft":
        out["totals"] = result.to_json()
    return out


async def invoices(
    ctx: PluginContext,
    *,
    kind: str | None = None,
    status: str | None = None,
    company_id: UUID | None = None,
    contact_id: UUID | None = None,
    deal_id: UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The workspace's invoices, newest change first (without lines)."""
    rows = await ctx.db.fetch(
        f"SELECT {_INVOICE_COLUMNS} FROM invoicing_invoices WHERE tenant_id = $1 "
        "AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR status = $3) "
        "AND ($4::uuid IS NULL OR company_id = $4) AND ($5::uuid IS NULL OR contact_id = $5) "
        "AND ($6::uuid IS NULL OR deal_id = $6) ORDER BY updated_at DESC, id DESC LIMIT $7",
        ctx.tenant_id,
        kind,
        status,
        company_id,
        contact_id,
        deal_id,
        min(max(limit, 1), 500),
    )
    return [_json(r) for r in rows]


async def update_draft(ctx: PluginContext, invoice_id: UUID, data: InvoicePatch) -> dict[str, Any]:
    """Change a draft; a finalized invoice is a 409 (issue a credit note instead)."""
    row = await _row(ctx, invoice_id, lock=True)
    if row["status"] != "draft":
        raise conflict(f"invoice {row['number']} is finalized; correct it with a credit note")
    header = check_header(
        Header(
            row["currency"].strip(),
            row["prices_include_tax"],
            row["discount_percent"] if data.discount_percent is None else data.discount_percent,
            row["discount_amount"] if data.discount_amount is None else data.discount_amount,
        )
    )
    if data.lines is not None:
        lines = await resolve(
            ctx,
            data.lines,
            currency=header.currency,
            price_list_id=None,
            prices_include_tax=header.prices_include_tax,
            quote=False,
        )
    else:
        lines = await stored_lines(ctx, invoice_id)
    result, _ = totals(header, lines)
    customer = None if data.customer is None else json.dumps(customer_snapshot(data.customer))
    await ctx.db.execute(
        "UPDATE invoicing_invoices SET discount_percent = $3, discount_amount = $4, "
        "due_date = coalesce($5, due_date), notes = coalesce($6, notes), "
        "terms = coalesce($7, terms), customer = coalesce($8::jsonb, customer) "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        invoice_id,
        header.discount_percent,
        header.discount_amount,
        data.due_date,
        None if data.notes is None else data.notes[:10000],
        None if data.terms is None else data.terms[:10000],
        customer,
    )
    if data.lines is not None:
        await _write_lines(ctx, invoice_id, lines)
    await _store_totals(ctx, invoice_id, result)
    return await invoice(ctx, invoice_id)


async def delete_draft(ctx: PluginContext, invoice_id: UUID) -> None:
    """Delete a draft (it had no number, so no gap); a finalized invoice is a 409."""
    row = await _row(ctx, invoice_id, lock=True)
    if row["status"] != "draft":
        raise conflict(f"invoice {row['number']} is finalized and is kept; issue a credit note")
    await ctx.db.execute(
        "DELETE FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, invoice_id
    )


async def next_number(ctx: PluginContext, series: str, year: int) -> tuple[int, str]:
    """Take the next number of ``series`` in ``year``: ``(sequence, formatted number)``.

    The counter row stays locked until the caller's transaction ends; a rollback gives
    the number back. Call it last in a short transaction.
    """
    # The series' first number this year creates the counter; after that the upsert is an
    # UPDATE … RETURNING that locks the counter row until the transaction ends.
    seq = await ctx.db.fetchval(
        "INSERT INTO invoicing_number_series (tenant_id, series, year, next_number) "
        "VALUES ($1, $2, $3, 2) ON CONFLICT (tenant_id, series, year) "
        "DO UPDATE SET next_number = invoicing_number_series.next_number + 1 "
        "RETURNING next_number - 1",
        ctx.tenant_id,
        series,
        year,
    )
    prefix = str(setting(ctx, SERIES[series], DEFAULT_PREFIX[series]))
    return int(seq), f"{prefix}{year}-{int(seq):05d}"


@cache
def _finalize_tasks() -> list[tuple[int, str]]:
    tasks = [task for part in load_parts() for task in getattr(part, "FINALIZE_TASKS", ())]
    return sorted(tasks)


async def _credited_so_far(ctx: PluginContext, invoice_id: UUID) -> Decimal:
    value = await ctx.db.fetchval(
        "SELECT coalesce(sum(payable_total), 0) FROM invoicing_invoices WHERE tenant_id = $1 "
        "AND credited_invoice_id = $2 AND kind = 'credit_note' AND status = 'finalized'",
        ctx.tenant_id,
        invoice_id,
    )
    return Decimal(value)


async def _exchange(
    data: FinalizeIn, currency: str, books: str, issue_date: date
) -> tuple[Decimal, str, date]:
    """The rate fixed at issue: ``(rate, source, date)``; 1 in the company currency.

    Given with the request, or else the ECB's last reference rate on or before the issue
    date (:mod:`.rates`), with that rate's own date.
    """
    if currency == books:
        return Decimal(1), "identity", issue_date
    if data.exchange_rate is None:
        found = await ecb_rate(currency, books, issue_date)
        if found is None:
            raise invalid(
                "exchange_rate",
                f"required for an invoice in {currency} (the books are in {books}): the ECB "
                f"publishes no recent rate for it",
            )
        return found[0], SOURCE, found[1]
    if not data.exchange_rate.is_finite() or data.exchange_rate <= 0:
        raise invalid("exchange_rate", "must be a number greater than 0")
    source = data.exchange_rate_source.strip()[:100] or "manual"
    return data.exchange_rate, source, data.exchange_rate_date or issue_date


async def _check_credit(ctx: PluginContext, credited: UUID, amount: Decimal) -> None:
    """A credit note may not credit more than is left of its invoice."""
    original = await _row(ctx, credited, lock=True)
    left = original["payable_total"] - await _credited_so_far(ctx, credited)
    if amount > left:
        raise conflict(
            f"the credit note ({amount}) exceeds what is left to credit on "
            f"{original['number']} ({left})"
        )


async def finalize(ctx: PluginContext, invoice_id: UUID, data: FinalizeIn) -> dict[str, Any]:
    """Give a draft the next number of its series and freeze it (see the module's description)."""
    row = await _row(ctx, invoice_id, lock=True)
    if row["status"] != "draft":
        raise conflict(f"invoice {row['number']} is already finalized")
    lines = await stored_lines(ctx, invoice_id)
    result, counted = totals(header_of(row), lines)
    if not counted:
        raise invalid("lines", "an invoice needs at least one line")
    if result.payable < 0:
        raise invalid("lines", "the amount due is negative; issue a credit note instead")
    customer = customer_of(row)
    if not customer.get("name"):
        raise invalid("customer.name", "an invoice names its customer")
    issue_date = data.issue_date or datetime.now(UTC).date()
    books = company_currency(ctx)
    rate, source, rate_date = await _exchange(data, row["currency"].strip(), books, issue_date)
    if row["kind"] == "credit_note" and row["credited_invoice_id"] is not None:
        await _check_credit(ctx, row["credited_invoice_id"], result.payable)
    due = row["due_date"] or issue_date + timedelta(
        days=int(setting(ctx, "payment_terms_days", 30))
    )
    if due < issue_date:
        raise invalid("due_date", "is before the issue date")
    # Everything above is checked. One statement takes the number (the counter row's lock,
    # held until commit), writes it with the totals and queues the after-commit work: the
    # lock lives for this statement, the event below and the commit.
    tasks = _finalize_tasks()
    series = row["kind"]
    prefix = f"{setting(ctx, SERIES[series], DEFAULT_PREFIX[series])}{issue_date.year}-"
    taken = await ctx.db.fetchrow(
        "WITH counter AS ("
        "  INSERT INTO invoicing_number_series (tenant_id, series, year, next_number) "
        "  VALUES ($1, $3, $4, 2) ON CONFLICT (tenant_id, series, year) "
        "  DO UPDATE SET next_number = invoicing_number_series.next_number + 1 "
        "  RETURNING next_number - 1 AS seq"
        "), done AS ("
        "  UPDATE invoicing_invoices SET status = 'finalized', series = $3, year = $4, "
        "  seq = counter.seq, number = $5 || CASE WHEN counter.seq < 100000 "
        "  THEN lpad(counter.seq::text, 5, '0') ELSE counter.seq::text END, "
        "  issue_date = $6, due_date = $7, finalized_at = now(), company_currency = $8, "
        "  exchange_rate = $9, exchange_rate_source = $10, exchange_rate_date = $11, "
        "  net_total = $12, tax_total = $13, gross_total = $14, payable_total = $15, "
        "  totals = $16::jsonb, updated_at = now() FROM counter "
        "  WHERE invoicing_invoices.tenant_id = $1 AND invoicing_invoices.id = $2 "
        "  RETURNING invoicing_invoices.seq, invoicing_invoices.number"
        "), queued AS ("
        "  INSERT INTO invoicing_outbox (tenant_id, id, task, invoice_id, position) "
        "  SELECT $1, x.id, x.task, $2, x.position FROM done, "
        "  unnest($17::uuid[], $18::text[], $19::int[]) AS x (id, task, position) RETURNING 1"
        ") SELECT seq, number, (SELECT count(*) FROM queued) AS queued FROM done",
        ctx.tenant_id,
        invoice_id,
        series,
        issue_date.year,
        prefix,
        issue_date,
        due,
        books,
        rate,
        source,
        rate_date,
        result.net_total,
        result.vat_total + result.other_tax_total,
        result.gross_total,
        result.payable,
        json.dumps(result.to_json()),
        [uuid7() for _ in tasks],
        [task for _, task in tasks],
        [position for position, _ in tasks],
    )
    assert taken is not None  # noqa: S101 - the draft is locked above: the update finds it
    seq, number = int(taken["seq"]), str(taken["number"])
    await _emit_finalized(ctx, row, number, lines, result)
    return {
        "id": str(invoice_id),
        "kind": row["kind"],
        "status": "finalized",
        "number": number,
        "seq": seq,
        "issue_date": issue_date.isoformat(),
        "due_date": due.isoformat(),
        "payable_total": str(result.payable),
    }


async def _emit_finalized(
    ctx: PluginContext, row: Any, number: str, lines: list[StoredLine], result: Totals
) -> None:
    """``invoicing.invoice_finalized`` / ``credit_note_finalized`` with the line refs."""
    events = getattr(ctx, "events", None)
    if events is None:
        return
    kind = row["kind"]
    await events.emit(
        f"invoicing.{kind}_finalized",
        {
            "id": str(row["id"]),
            "number": number,
            "kind": kind,
            "currency": row["currency"].strip(),
            "payable_total": str(result.payable),
            "company_id": plain(row["company_id"]),
            "contact_id": plain(row["contact_id"]),
            "deal_id": plain(row["deal_id"]),
            "credited_invoice_id": plain(row["credited_invoice_id"]),
            "source": json.loads(row["source"])
            if isinstance(row["source"], str)
            else row["source"],
            "lines": [
                {"position": x.position, "ref": x.ref, "quantity": str(x.quantity)}
                for x in lines
                if x.kind == "item"
            ],
        },
    )


async def credit_note(ctx: PluginContext, invoice_id: UUID, data: CreditNoteIn) -> dict[str, Any]:
    """A draft credit note of a finalized invoice's lines (all, or those named)."""
    row = await _row(ctx, invoice_id)
    if row["kind"] != "invoice" or row["status"] != "finalized":
        raise conflict("only a finalized invoice can be credited")
    lines = [x for x in await stored_lines(ctx, invoice_id) if x.kind == "item"]
    if data.positions is not None:
        wanted = set(data.positions)
        unknown = wanted - {x.position for x in lines}
        if unknown:
            raise invalid("positions", f"the invoice has no item line {sorted(unknown)}")
        lines = [x for x in lines if x.position in wanted]
    quantities = data.quantities or {}
    credited: list[StoredLine] = []
    for position, line in enumerate(lines):
        quantity = line.quantity
        if str(line.position) in quantities:
            quantity = quantities[str(line.position)]
            if not quantity.is_finite() or not 0 < abs(quantity) <= abs(line.quantity):
                raise invalid(
                    f"quantities.{line.position}", f"between 0 and {line.quantity} (invoiced)"
                )
        credited.append(
            StoredLine(
                position=position,
                kind="item",
                product_id=line.product_id,
                description=line.description,
                quantity=quantity,
                unit_code=line.unit_code,
                unit_price=line.unit_price,
                discount_percent=line.discount_percent,
                taxes=line.taxes,
                ref=line.ref,
            )
        )
    if not credited:
        raise invalid("positions", "a credit note needs at least one line")
    header = header_of(row)
    discount_amount = Decimal(0)
    if row["discount_amount"]:
        # A fixed document discount is shared in proportion to what is credited.
        full, _ = totals(header, lines)
        part, _ = totals(Header(header.currency, header.prices_include_tax), credited)
        if full.line_net_total:
            discount_amount = max(
                (row["discount_amount"] * part.line_net_total / full.line_net_total).quantize(
                    Decimal("0.000001")
                ),
                Decimal(0),
            )
    note_id = await insert_draft(
        ctx,
        Header(
            header.currency, header.prices_include_tax, header.discount_percent, discount_amount
        ),
        credited,
        customer=customer_of(row),
        kind="credit_note",
        company_id=row["company_id"],
        contact_id=row["contact_id"],
        deal_id=row["deal_id"],
        credited_invoice_id=invoice_id,
        notes=data.notes or f"Credit note for invoice {row['number']}",
    )
    return await invoice(ctx, note_id)


def invoice_link(ctx: PluginContext, invoice_id: UUID) -> str:
    """The customer's link to the invoice's documents (valid for a year and a half)."""
    token = ctx.sign({"invoice": str(invoice_id)}, INVOICE_TOKEN, max_age=timedelta(days=548))
    return ctx.url(f"/invoices/{token}", public=True)


async def send_invoice(ctx: PluginContext, task: dict[str, Any]) -> None:
    """Outbox task: email the customer the finalized invoice's link, once, then mark it sent."""
    row = await _row(ctx, task["invoice_id"], lock=True)
    customer = customer_of(row)
    email = customer.get("email")
    if row["sent_at"] is not None or not email or "mail:send" not in ctx.scopes:
        return
    what = "credit note" if row["kind"] == "credit_note" else "invoice"
    amount = f"{row['payable_total']} {row['currency'].strip()}"
    due = f", due on {row['due_date']}" if row["kind"] == "invoice" else ""
    await ctx.mail.send(
        email,
        f"{what.capitalize()} {row['number']}",
        f"Hello {customer.get('name', '')},\n\nyour {what} {row['number']} of {amount}{due} "
        f"is ready:\n{invoice_link(ctx, row['id'])}\n",
    )
    await ctx.db.execute(
        "UPDATE invoicing_invoices SET sent_at = now() WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        row["id"],
    )


OUTBOX_TASKS = {"send_invoice": send_invoice}


async def timeline_entries(ctx: PluginContext, subject_type: str, subject_id: UUID) -> list[Any]:
    """Finalized invoices and credit notes on their company's, contact's and deal's timelines."""
    from orbit.plugins.api import TimelineEntry  # noqa: PLC0415 - keeps imports light

    column = {"company": "company_id", "contact": "contact_id", "deal": "deal_id"}.get(subject_type)
    if column is None:
        return []
    rows = await ctx.db.fetch(
        "SELECT id, kind, number, finalized_at, payable_total, currency FROM invoicing_invoices "
        f"WHERE tenant_id = $1 AND {column} = $2 AND status = 'finalized' "
        "ORDER BY finalized_at DESC LIMIT 25",
        ctx.tenant_id,
        subject_id,
    )
    entries = []
    for r in rows:
        what = "Credit note" if r["kind"] == "credit_note" else "Invoice"
        link = ctx.url(f"/invoices/{r['id']}") if ctx.links is not None else ""
        entries.append(
            TimelineEntry(
                r["finalized_at"],
                f"{what} {r['number']} issued",
                f"{r['payable_total']} {r['currency'].strip()}",
                url=link,
            )
        )
    return entries


async def contact_export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any]:
    """The person's invoices and credit notes (finalized ones and drafts)."""
    rows = await ctx.db.fetch(
        "SELECT kind, status, number, issue_date, due_date, customer, currency, payable_total, "
        "sent_at FROM invoicing_invoices WHERE tenant_id = $1 AND contact_id = $2 "
        "ORDER BY created_at",
        ctx.tenant_id,
        contact_id,
    )
    return {"invoices": [export_json(r) for r in rows]} if rows else {}


async def contact_erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Delete the person's drafts; finalized invoices stay (bookkeeping law keeps them).

    A finalized invoice or credit note is immutable and kept for the statutory retention
    period with the customer as issued; only drafts, which were never issued, go.
    """
    await ctx.db.execute(
        "DELETE FROM invoicing_invoices WHERE tenant_id = $1 AND contact_id = $2 "
        "AND status = 'draft'",
        ctx.tenant_id,
        contact_id,
    )


class InvoiceController(Controller):
    """``/invoices``: drafts, finalization, credit notes."""

    path = "/invoices"

    @get("/")
    async def list_invoices(
        self,
        plugin: PluginContext,
        kind: str | None = None,
        status: str | None = None,
        company_id: UUID | None = None,
        contact_id: UUID | None = None,
        deal_id: UUID | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Invoices and credit notes, newest change first."""
        return await invoices(
            plugin,
            kind=kind,
            status=status,
            company_id=company_id,
            contact_id=contact_id,
            deal_id=deal_id,
            limit=limit,
        )

    @post("/")
    async def create_invoice(self, plugin: PluginContext, data: InvoiceIn) -> dict[str, Any]:
        """A draft invoice (no number until it is finalized)."""
        return await create_draft(plugin, data)

    @get("/{invoice_id:uuid}")
    async def get_invoice(self, plugin: PluginContext, invoice_id: UUID) -> dict[str, Any]:
        """One invoice with its lines and totals."""
        return await invoice(plugin, invoice_id)

    @patch("/{invoice_id:uuid}")
    async def change_invoice(
        self, plugin: PluginContext, invoice_id: UUID, data: InvoicePatch
    ) -> dict[str, Any]:
        """Change a draft (409 once finalized)."""
        return await update_draft(plugin, invoice_id, data)

    @delete("/{invoice_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def delete_invoice(self, plugin: PluginContext, invoice_id: UUID) -> None:
        """Delete a draft (409 once finalized)."""
        await delete_draft(plugin, invoice_id)

    @post("/{invoice_id:uuid}/finalize")
    async def finalize_invoice(
        self, plugin: PluginContext, invoice_id: UUID, data: FinalizeIn | None = None
    ) -> dict[str, Any]:
        """Number and freeze a draft."""
        return await finalize(plugin, invoice_id, data or FinalizeIn())

    @post("/{invoice_id:uuid}/credit-note")
    async def credit_invoice(
        self, plugin: PluginContext, invoice_id: UUID, data: CreditNoteIn | None = None
    ) -> dict[str, Any]:
        """A draft credit note of the invoice's lines."""
        return await credit_note(plugin, invoice_id, data or CreditNoteIn())


def api_routes() -> list[Any]:
    """The invoices' API routes."""
    return [InvoiceController]
