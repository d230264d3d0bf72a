"""Quotes: made from deals, revised in versions, sent as a fixed document, accepted or declined.

A quote starts as a draft (its lines priced from the catalogue, its customer taken from
the deal's company and contact, its currency the deal's). Sending it freezes it: the
document the customer will see is rendered once (after commit, by the outbox job) and
its SHA-256 kept; the customer's acceptance is bound to that hash (:mod:`.portal`). A
change after sending is a new revision (same number, revision + 1); the old one is
superseded and its link says so. Accepting makes a draft invoice of the quote's
counted lines and marks the deal won.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID  # noqa: TC003 - msgspec and Litestar read the annotations at run time

import msgspec
from litestar import Controller
from uuid_utils.compat import uuid7

from orbit.plugins.api import PluginContext, ScopeError, TimelineEntry, get, patch, post
from orbit.plugins.builtin.invoicing.errors import conflict, invalid, not_found
from orbit.plugins.builtin.invoicing.invoices import (
    CustomerIn,
    company_currency,
    customer_from_crm,
    customer_of,
    customer_snapshot,
    export_json,
    insert_draft,
    next_number,
    plain,
    price_list_row,
    setting,
)
from orbit.plugins.builtin.invoicing.invoices import (
    header_of as header_of,  # noqa: PLC0414 - re-exported: the quote portal imports it from here
)
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

TOKEN_PURPOSE = "quote"  # noqa: S105 - what a link is for, not a secret
GRACE = timedelta(days=30)
"""How long after expiry a quote's link still shows it (as expired)."""


class QuoteIn(msgspec.Struct, forbid_unknown_fields=True):
    """A draft quote; with ``deal_id`` the customer and currency come from the deal."""

    lines: list[LineIn] = []
    deal_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    customer: CustomerIn | None = None
    currency: str | None = None
    price_list_id: UUID | None = None
    prices_include_tax: bool | None = None
    title: str = ""
    discount_percent: Decimal = Decimal(0)
    discount_amount: Decimal = Decimal(0)
    expires_on: date | None = None
    notes: str = ""
    terms: str = ""


class QuotePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a draft quote; ``lines`` replaces every line."""

    lines: list[LineIn] | None = None
    customer: CustomerIn | None = None
    title: str | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    expires_on: date | None = None
    notes: str | None = None
    terms: str | None = None


_COLUMNS = (
    "id, root_id, revision, number, status, title, deal_id, company_id, contact_id, customer, "
    "currency, price_list_id, prices_include_tax, discount_percent, discount_amount, "
    "expires_on, notes, terms, net_total, gross_total, totals, sent_at, document_type, "
    "document_sha256, accepted_at, accepted_name, accepted_ip, accepted_user_agent, "
    "accepted_document_sha256, declined_at, declined_reason, invoice_id, created_at, updated_at"
)


def today() -> date:
    """Today in UTC (quotes expire at the end of their day)."""
    return datetime.now(UTC).date()


def state(row: Any) -> str:
    """The quote's status as people see it: a sent quote past its date is ``expired``."""
    if row["status"] in {"draft", "sent"} and row["expires_on"] and row["expires_on"] < today():
        return "expired"
    return str(row["status"])


async def quote_row(ctx: PluginContext, quote_id: UUID, *, lock: bool = False) -> Any:
    """The quote's row, or a 404."""
    row = await ctx.db.fetchrow(
        f"SELECT {_COLUMNS} FROM invoicing_quotes WHERE tenant_id = $1 AND id = $2"
        + (" FOR UPDATE" if lock else ""),
        ctx.tenant_id,
        quote_id,
    )
    if row is None:
        raise not_found(f"quote {quote_id}")
    return row


async def quote_lines(ctx: PluginContext, quote_id: UUID) -> list[StoredLine]:
    """The quote's lines in order."""
    rows = await ctx.db.fetch(
        f"SELECT {LINE_COLUMNS}, optional, selected FROM invoicing_quote_lines "
        "WHERE tenant_id = $1 AND quote_id = $2 ORDER BY position",
        ctx.tenant_id,
        quote_id,
    )
    return [line_from_row(r) for r in rows]


def quote_json(row: Any, lines: list[StoredLine]) -> dict[str, Any]:
    """A quote as the API returns it, with its lines and freshly computed totals."""
    result, _ = totals(header_of(row), lines)
    out = {key: plain(value) for key, value in dict(row).items()}
    for key in ("customer", "totals"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    out["currency"] = row["currency"].strip()
    out["status"] = state(row)
    out["totals"] = result.to_json()
    out["lines"] = lines_json(lines, result)
    return out


async def quote(ctx: PluginContext, quote_id: UUID) -> dict[str, Any]:
    """One quote with its lines."""
    row = await quote_row(ctx, quote_id)
    return quote_json(row, await quote_lines(ctx, quote_id))


async def _write_lines(ctx: PluginContext, quote_id: UUID, lines: list[StoredLine]) -> None:
    await ctx.db.execute(
        "DELETE FROM invoicing_quote_lines WHERE tenant_id = $1 AND quote_id = $2",
        ctx.tenant_id,
        quote_id,
    )
    if not lines:
        return
    await ctx.db.execute(
        "INSERT INTO invoicing_quote_lines (tenant_id, quote_id, position, kind, product_id, "
        "description, quantity, unit_code, unit_price, discount_percent, taxes, optional, "
        "selected) SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::uuid[], $6::text[], "
        "$7::numeric[], $8::text[], $9::numeric[], $10::numeric[], $11::jsonb[], $12::bool[], "
        "$13::bool[])",
        ctx.tenant_id,
        quote_id,
        [x.position for x in lines],
        [x.kind for x in lines],
        [x.product_id for x in lines],
        [x.description for x in lines],
        [x.quantity for x in lines],
        [x.unit_code for x in lines],
        [x.unit_price for x in lines],
        [x.discount_percent for x in lines],
        [taxes_json(x) for x in lines],
        [x.optional for x in lines],
        [x.selected for x in lines],
    )


async def _store_totals(
    ctx: PluginContext, quote_id: UUID, header: Header, lines: list[StoredLine]
) -> None:
    result, _ = totals(header, lines)
    await ctx.db.execute(
        "UPDATE invoicing_quotes SET net_total = $3, gross_total = $4, totals = $5::jsonb, "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        quote_id,
        result.net_total,
        result.payable,
        json.dumps(result.to_json()),
    )


async def create_quote(ctx: PluginContext, data: QuoteIn) -> dict[str, Any]:
    """A draft quote, from a deal when ``deal_id`` is given."""
    company_id, contact_id, currency, title = (
        data.company_id,
        data.contact_id,
        data.currency,
        data.title,
    )
    if data.deal_id is not None:
        deal = await ctx.deals.get(data.deal_id)
        if deal is None:
            raise invalid("deal_id", f"deal {data.deal_id} is not in this workspace")
        company_id = company_id or deal.company_id
        contact_id = contact_id or deal.contact_id
        currency = currency or deal.currency
        title = title or deal.title
    prices = await price_list_row(ctx, data.price_list_id)
    currency = (
        (currency or (prices["currency"] if prices else company_currency(ctx))).strip().upper()
    )
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
        quote=True,
    )
    customer = await customer_from_crm(ctx, company_id, contact_id)
    customer.update({k: v for k, v in customer_snapshot(data.customer).items() if v})
    expires = data.expires_on or today() + timedelta(
        days=int(setting(ctx, "quote_validity_days", 30))
    )
    _, number = await next_number(ctx, "quote", today().year)
    quote_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO invoicing_quotes (tenant_id, id, root_id, number, title, deal_id, company_id, "
        "contact_id, customer, currency, price_list_id, prices_include_tax, discount_percent, "
        "discount_amount, expires_on, notes, terms) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, "
        "$8::jsonb, $9, $10, $11, $12, $13, $14, $15, $16)",
        ctx.tenant_id,
        quote_id,
        number,
        title.strip()[:200],
        data.deal_id,
        company_id,
        contact_id,
        json.dumps(customer),
        currency,
        data.price_list_id,
        inclusive,
        header.discount_percent,
        header.discount_amount,
        expires,
        data.notes[:10000],
        data.terms[:10000],
    )
    await _write_lines(ctx, quote_id, lines)
    await _store_totals(ctx, quote_id, header, lines)
    return await quote(ctx, quote_id)


async def update_quote(ctx: PluginContext, quote_id: UUID, data: QuotePatch) -> dict[str, Any]:
    """Change a draft quote; once sent, a change is a new revision (409 here)."""
    row = await quote_row(ctx, quote_id, lock=True)
    if row["status"] != "draft":
        raise conflict(f"quote {row['number']} was {row['status']}; revise it to change it")
    header = check_header(
        replace(
            header_of(row),
            discount_percent=row["discount_percent"]
            if data.discount_percent is None
            else data.discount_percent,
            discount_amount=row["discount_amount"]
            if data.discount_amount is None
            else data.discount_amount,
        )
    )
    if data.lines is not None:
        lines = await resolve(
            ctx,
            data.lines,
            currency=header.currency,
            price_list_id=row["price_list_id"],
            prices_include_tax=header.prices_include_tax,
            quote=True,
        )
        await _write_lines(ctx, quote_id, lines)
    else:
        lines = await quote_lines(ctx, quote_id)
    totals(header, lines)  # a 400 before anything is written when the totals cannot be computed
    customer = customer_of(row)
    if data.customer is not None:
        customer.update(customer_snapshot(data.customer))
    await ctx.db.execute(
        "UPDATE invoicing_quotes SET title = coalesce($3, title), discount_percent = $4, "
        "discount_amount = $5, expires_on = coalesce($6, expires_on), "
        "notes = coalesce($7, notes), terms = coalesce($8, terms), customer = $9::jsonb "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        quote_id,
        None if data.title is None else data.title.strip()[:200],
        header.discount_percent,
        header.discount_amount,
        data.expires_on,
        None if data.notes is None else data.notes[:10000],
        None if data.terms is None else data.terms[:10000],
        json.dumps(customer),
    )
    await _store_totals(ctx, quote_id, header, lines)
    return await quote(ctx, quote_id)


async def add_lines(ctx: PluginContext, quote_id: UUID, *given: LineIn) -> dict[str, Any]:
    """Append lines to a draft quote, priced now; the lines already there stay as they are."""
    row = await quote_row(ctx, quote_id, lock=True)
    if row["status"] != "draft":
        raise conflict(f"quote {row['number']} was {row['status']}; revise it to change it")
    header = header_of(row)
    current = await quote_lines(ctx, quote_id)
    added = await resolve(
        ctx,
        list(given),
        currency=header.currency,
        price_list_id=row["price_list_id"],
        prices_include_tax=header.prices_include_tax,
        quote=True,
    )
    lines = current + [replace(x, position=len(current) + i) for i, x in enumerate(added)]
    totals(header, lines)  # a 400 before anything is written when the totals cannot be computed
    await _write_lines(ctx, quote_id, lines)
    await _store_totals(ctx, quote_id, header, lines)
    return await quote(ctx, quote_id)


async def revise(ctx: PluginContext, quote_id: UUID) -> dict[str, Any]:
    """A new draft revision of a sent, declined or expired quote; the old one is superseded."""
    row = await quote_row(ctx, quote_id, lock=True)
    if row["status"] in {"accepted", "superseded"}:
        raise conflict(f"quote {row['number']} is {row['status']} and cannot be revised")
    latest = await ctx.db.fetchval(
        "SELECT max(revision) FROM invoicing_quotes WHERE tenant_id = $1 AND root_id = $2",
        ctx.tenant_id,
        row["root_id"],
    )
    if latest != row["revision"]:
        raise conflict("only the latest revision of a quote can be revised")
    if row["status"] == "draft":
        raise conflict("a draft is changed as it is; revise it once it is sent")
    new_id = uuid7()
    expires = max(
        row["expires_on"] or today(),
        today() + timedelta(days=int(setting(ctx, "quote_validity_days", 30))),
    )
    await ctx.db.execute(
        "INSERT INTO invoicing_quotes (tenant_id, id, root_id, revision, number, title, deal_id, "
        "company_id, contact_id, customer, currency, price_list_id, prices_include_tax, "
        "discount_percent, discount_amount, expires_on, notes, terms, net_total, gross_total, "
        "totals) SELECT tenant_id, $3, root_id, revision + 1, number, title, deal_id, company_id, "
        "contact_id, customer, currency, price_list_id, prices_include_tax, discount_percent, "
        "discount_amount, $4, notes, terms, net_total, gross_total, totals "
        "FROM invoicing_quotes WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        quote_id,
        new_id,
        expires,
    )
    await _write_lines(ctx, new_id, await quote_lines(ctx, quote_id))
    await ctx.db.execute(
        "UPDATE invoicing_quotes SET status = 'superseded', updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        quote_id,
    )
    return await quote(ctx, new_id)


def portal_token(ctx: PluginContext, row: Any) -> str:
    """The customer's link token for this revision, valid until a month after expiry."""
    expires = row["expires_on"] or today() + timedelta(days=90)
    until = datetime.combine(expires, datetime.min.time(), UTC) + timedelta(days=1) + GRACE
    return ctx.sign({"quote": str(row["id"])}, TOKEN_PURPOSE, max_age=until - datetime.now(UTC))


async def send(ctx: PluginContext, quote_id: UUID) -> dict[str, Any]:
    """Freeze the quote and queue its document (rendered once, then emailed with the link)."""
    row = await quote_row(ctx, quote_id, lock=True)
    if state(row) == "expired":
        raise conflict(f"quote {row['number']} expired on {row['expires_on']}; revise it")
    if row["status"] not in {"draft", "sent"}:
        raise conflict(f"quote {row['number']} is {row['status']}")
    lines = await quote_lines(ctx, quote_id)
    _, counted = totals(header_of(row), lines)
    if not counted:
        raise invalid("lines", "a quote needs at least one line")
    customer = customer_of(row)
    if not customer.get("name"):
        raise invalid("customer.name", "a quote names its customer")
    if row["status"] == "draft":
        await ctx.db.execute(
            "UPDATE invoicing_quotes SET status = 'sent', sent_at = now(), updated_at = now() "
            "WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            quote_id,
        )
        await ctx.db.execute(
            "INSERT INTO invoicing_outbox (tenant_id, id, task, quote_id) "
            "VALUES ($1, $2, 'issue_quote', $3)",
            ctx.tenant_id,
            uuid7(),
            quote_id,
        )
    token = portal_token(ctx, row)
    out = await quote(ctx, quote_id)
    out["portal_url"] = ctx.url(f"/quotes/{token}", public=True)
    return out


async def accept(
    ctx: PluginContext,
    row: Any,
    *,
    name: str,
    signature: bytes,
    document_sha256: str,
    ip: str | None,
    user_agent: str | None,
) -> UUID:
    """Record the acceptance with its evidence, make the draft invoice, win the deal."""
    quote_id = row["id"]
    lines = await quote_lines(ctx, quote_id)
    customer = customer_of(row)
    invoice_id = await insert_draft(
        ctx,
        header_of(row),
        [
            replace(x, optional=False, selected=True)
            for x in lines
            if x.kind == "section" or x.counts
        ],
        customer={k: v for k, v in customer.items() if k != "contact_name"},
        company_id=row["company_id"],
        contact_id=row["contact_id"],
        deal_id=row["deal_id"],
        quote_id=quote_id,
        notes=row["notes"],
        terms=row["terms"],
        source={"quote_id": str(quote_id), "quote_number": row["number"]},
    )
    await ctx.db.execute(
        "UPDATE invoicing_quotes SET status = 'accepted', accepted_at = now(), "
        "accepted_name = $3, accepted_signature = $4, accepted_ip = $5, "
        "accepted_user_agent = $6, accepted_document_sha256 = $7, invoice_id = $8, "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        quote_id,
        name,
        signature,
        ip,
        (user_agent or "")[:1000],
        document_sha256,
        invoice_id,
    )
    if row["deal_id"] is not None:
        try:
            deal = await ctx.deals.get(row["deal_id"])
            if deal is not None and deal.status == "open":
                await ctx.deals.mark_won(row["deal_id"])
        except ScopeError:
            ctx.log.warning("quote %s accepted; deals:write not granted, deal left as is", quote_id)
    return invoice_id


async def decline(ctx: PluginContext, row: Any, reason: str) -> None:
    """Record the customer's refusal and their reason."""
    await ctx.db.execute(
        "UPDATE invoicing_quotes SET status = 'declined', declined_at = now(), "
        "declined_reason = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        row["id"],
        reason,
    )


async def quotes(
    ctx: PluginContext, *, deal_id: UUID | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Quotes (latest change first), a deal's when ``deal_id`` is given; without lines."""
    rows = await ctx.db.fetch(
        f"SELECT {_COLUMNS} FROM invoicing_quotes WHERE tenant_id = $1 "
        "AND ($2::uuid IS NULL OR deal_id = $2) ORDER BY updated_at DESC, id DESC LIMIT $3",
        ctx.tenant_id,
        deal_id,
        min(max(limit, 1), 500),
    )
    out = []
    for r in rows:
        item = {k: plain(v) for k, v in dict(r).items() if k != "totals"}
        item["customer"] = customer_of(r)
        item["currency"] = r["currency"].strip()
        item["status"] = state(r)
        out.append(item)
    return out


async def timeline_entries(ctx: PluginContext, subject_type: str, subject_id: UUID) -> list[Any]:
    """Quotes sent, accepted and declined, on their company's, contact's and deal's timelines."""
    column = {"company": "company_id", "contact": "contact_id", "deal": "deal_id"}.get(subject_type)
    if column is None:
        return []
    rows = await ctx.db.fetch(
        "SELECT id, number, revision, sent_at, accepted_at, accepted_name, declined_at, "
        "declined_reason, gross_total, currency FROM invoicing_quotes "
        f"WHERE tenant_id = $1 AND {column} = $2 AND sent_at IS NOT NULL "
        "ORDER BY sent_at DESC LIMIT 25",
        ctx.tenant_id,
        subject_id,
    )
    entries = []
    for r in rows:
        label = f"{r['number']} (rev. {r['revision']})" if r["revision"] > 1 else r["number"]
        amount = f"{r['gross_total']} {r['currency'].strip()}"
        entries.append(TimelineEntry(r["sent_at"], f"Quote {label} sent", amount))
        if r["accepted_at"]:
            entries.append(
                TimelineEntry(
                    r["accepted_at"],
                    f"Quote {label} accepted",
                    f"Signed by {r['accepted_name']} · {amount}",
                )
            )
        if r["declined_at"]:
            entries.append(
                TimelineEntry(
                    r["declined_at"],
                    f"Quote {label} declined",
                    r["declined_reason"] or "",
                )
            )
    return entries


async def contact_export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any]:
    """The person's quotes, with the acceptance evidence recorded about them."""
    rows = await ctx.db.fetch(
        "SELECT number, revision, status, title, customer, gross_total, currency, sent_at, "
        "accepted_at, accepted_name, accepted_ip, accepted_user_agent, declined_at, "
        "declined_reason FROM invoicing_quotes WHERE tenant_id = $1 AND contact_id = $2 "
        "ORDER BY created_at",
        ctx.tenant_id,
        contact_id,
    )
    return {"quotes": [export_json(r) for r in rows]} if rows else {}


async def contact_erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Delete the person's quotes but accepted ones (a signed contract is kept as evidence).

    An accepted quote keeps its signature and evidence; its link to the erased contact
    goes (the contact no longer exists).
    """
    await ctx.db.execute(
        "DELETE FROM invoicing_quotes WHERE tenant_id = $1 AND contact_id = $2 "
        "AND status <> 'accepted' AND NOT EXISTS (SELECT 1 FROM invoicing_quotes a "
        "WHERE a.tenant_id = invoicing_quotes.tenant_id AND a.root_id = invoicing_quotes.root_id "
        "AND a.status = 'accepted')",
        ctx.tenant_id,
        contact_id,
    )
    await ctx.db.execute(
        "UPDATE invoicing_quotes SET contact_id = NULL WHERE tenant_id = $1 AND contact_id = $2",
        ctx.tenant_id,
        contact_id,
    )


class QuoteController(Controller):
    """``/quotes``: drafts from deals, revisions, sending."""

    path = "/quotes"

    @get("/")
    async def list_quotes(
        self, plugin: PluginContext, deal_id: UUID | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Quotes, latest change first; a deal's with ``deal_id``."""
        return await quotes(plugin, deal_id=deal_id, limit=limit)

    @post("/")
    async def create(self, plugin: PluginContext, data: QuoteIn) -> dict[str, Any]:
        """A draft quote (from a deal with ``deal_id``)."""
        return await create_quote(plugin, data)

    @get("/{quote_id:uuid}")
    async def get_quote(self, plugin: PluginContext, quote_id: UUID) -> dict[str, Any]:
        """One quote with its lines and totals."""
        return await quote(plugin, quote_id)

    @patch("/{quote_id:uuid}")
    async def change(
        self, plugin: PluginContext, quote_id: UUID, data: QuotePatch
    ) -> dict[str, Any]:
        """Change a draft quote."""
        return await update_quote(plugin, quote_id, data)

    @post("/{quote_id:uuid}/revise")
    async def new_revision(self, plugin: PluginContext, quote_id: UUID) -> dict[str, Any]:
        """A new draft revision of a sent quote."""
        return await revise(plugin, quote_id)

    @post("/{quote_id:uuid}/send")
    async def send_quote(self, plugin: PluginContext, quote_id: UUID) -> dict[str, Any]:
        """Freeze the quote and get the customer's link (its document follows by email)."""
        return await send(plugin, quote_id)


def api_routes() -> list[Any]:
    """The quotes' API routes."""
    return [QuoteController]
