"""Payments: partial and over-payments, credit, refunds, allocations, aged receivables, Stripe.

A payment is money received from a customer (a company or a contact). It is
*allocated* to finalized invoices of that customer in the same currency; what is not
allocated is the customer's *credit*, which later allocations or a refund use up. A
finalized credit note is allocated to invoices the same way. An invoice's status is
derived, never stored: paid when its allocations reach its amount due.

Online payment goes through Stripe on the workspace's own connected account (Stripe
Connect): one Checkout Session per invoice with ``metadata.invoice_id``, created with the
``Stripe-Account`` header. Stripe's webhook reaches a public route whose signed token
names the workspace; events are recorded by id (a redelivery changes nothing) and a
payment is keyed on its PaymentIntent, so ``checkout.session.completed`` and
``payment_intent.succeeded`` in any order record it once.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller
from litestar.exceptions import ClientException
from uuid_utils.compat import uuid7

from orbit.plugins.api import (
    Markup,
    Page,
    PluginContext,
    PublicGate,
    PublicPage,
    Request,
    Setting,
    escape,
    get,
    post,
)
from orbit.plugins.builtin.invoicing.errors import conflict, invalid, not_found
from orbit.plugins.builtin.invoicing.money import (
    MoneyError,
    check_currency,
    format_money,
    minor_unit,
    round_money,
)

if TYPE_CHECKING:
    from orbit.plugins.api import TimelineEntry

TABLES = (
    "invoicing_payments",
    "invoicing_allocations",
    "invoicing_checkout_sessions",
    "invoicing_stripe_events",
)
SETTINGS = (
    Setting(
        name="stripe_account_id",
        label="Stripe connected account (acct_…)",
        default="",
        help="Customers pay invoices online into this account (Stripe Connect).",
    ),
    Setting(
        name="stripe_webhook_secret",
        label="Stripe webhook signing secret (whsec_…)",
        type="secret",
        required=False,
    ),
)
FINALIZE_TASKS = ((20, "apply_credit_note"),)
"""A finalized credit note is allocated to the invoice it corrects (what that still owes)."""
ZERO = Decimal(0)
METHODS = ("bank_transfer", "card", "cash", "cheque", "stripe", "other")
WEBHOOK_PURPOSE = "stripe-webhook"
BUCKETS = (("current", None), ("1-30", 30), ("31-60", 60), ("61-90", 90), ("90+", None))


# --- derived status ------------------------------------------------------------------

Status = Literal["draft", "open", "partially_paid", "paid", "overdue"]


def derive_status(
    *, finalized: bool, payable: Decimal, allocated: Decimal, due_date: date | None, today: date
) -> Status:
    """An invoice's payment status from its amount due and what is allocated to it."""
    if not finalized:
        return "draft"
    if allocated >= payable:
        return "paid"
    if due_date is not None and due_date < today:
        return "overdue"
    return "partially_paid" if allocated > 0 else "open"


@dataclass(frozen=True, slots=True)
class Balance:
    """What an invoice (or a credit note, as a source of credit) stands at."""

    invoice_id: UUID
    kind: str
    number: str | None
    currency: str
    payable: Decimal
    allocated: Decimal
    """To an invoice: payments and credit notes allocated to it. Of a credit note: what
    it has been allocated to invoices."""
    due_date: date | None
    company_id: UUID | None
    contact_id: UUID | None
    finalized: bool
    credited: UUID | None = None
    """A credit note's invoice."""
    customer_name: str = ""
    """The name the invoice bills (its customer snapshot)."""

    @property
    def due(self) -> Decimal:
        """What is left to pay (an invoice) or to use (a credit note)."""
        return self.payable - self.allocated

    def status(self, today: date) -> Status:
        """The derived status on ``today``."""
        return derive_status(
            finalized=self.finalized,
            payable=self.payable,
            allocated=self.allocated,
            due_date=self.due_date,
            today=today,
        )

    def to_json(self, today: date) -> dict[str, Any]:
        """The balance as the API sends it."""
        return {
            "invoice_id": str(self.invoice_id),
            "number": self.number,
            "currency": self.currency,
            "payable": str(self.payable),
            "paid": str(self.allocated),
            "due": str(self.due),
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "status": self.status(today),
        }


BALANCE_SQL = """
    SELECT i.id, i.kind, i.number, i.currency, i.payable_total, i.due_date, i.company_id,
           i.contact_id, i.status, i.credited_invoice_id, i.customer->>'name' AS customer_name,
           COALESCE((SELECT sum(a.amount) FROM invoicing_allocations a
                     WHERE a.tenant_id = i.tenant_id
                       AND (CASE WHEN i.kind = 'invoice' THEN a.invoice_id
                            ELSE a.credit_note_id END) = i.id), 0) AS allocated
    FROM invoicing_invoices i WHERE i.tenant_id = $1
"""


def balance_from_row(row: Any) -> Balance:
    """A row of :data:`BALANCE_SQL` as a :class:`Balance`."""
    return Balance(
        invoice_id=row["id"],
        kind=row["kind"],
        number=row["number"],
        currency=str(row["currency"]).strip(),
        payable=Decimal(row["payable_total"]),
        allocated=Decimal(row["allocated"]),
        due_date=row["due_date"],
        company_id=row["company_id"],
        contact_id=row["contact_id"],
        finalized=row["status"] != "draft",
        credited=row["credited_invoice_id"],
        customer_name=row["customer_name"] or "",
    )


async def balance(ctx: PluginContext, invoice_id: UUID, *, lock: bool = False) -> Balance | None:
    """The invoice's balance (``lock``: its row locked until the transaction ends)."""
    if lock:
        await ctx.db.execute(
            "SELECT 1 FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            ctx.tenant_id,
            invoice_id,
        )
    row = await ctx.db.fetchrow(BALANCE_SQL + " AND i.id = $2", ctx.tenant_id, invoice_id)
    return None if row is None else balance_from_row(row)


# --- request bodies ------------------------------------------------------------------


class AllocationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Part of a payment (or credit) put on one invoice."""

    invoice_id: UUID
    amount: str


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    """Money received; allocated as listed, the rest kept as the customer's credit."""

    amount: str
    currency: str
    received_on: date
    company_id: UUID | None = None
    contact_id: UUID | None = None
    method: str = "bank_transfer"
    reference: str = ""
    allocations: list[AllocationIn] = msgspec.field(default_factory=list)


class CreditIn(msgspec.Struct, forbid_unknown_fields=True):
    """Use a customer's credit (unallocated payments) or a credit note on invoices."""

    allocations: list[AllocationIn]
    credit_note_id: UUID | None = None
    company_id: UUID | None = None
    contact_id: UUID | None = None
    currency: str | None = None


class RefundIn(msgspec.Struct, forbid_unknown_fields=True):
    """Money paid back to a customer out of their credit."""

    amount: str
    currency: str
    paid_on: date
    company_id: UUID | None = None
    contact_id: UUID | None = None
    method: str = "bank_transfer"
    reference: str = ""


def _amount(raw: str, field: str, currency: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise invalid(field, f"{raw!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise invalid(field, "must be a positive amount")
    if value != round_money(value, currency):
        raise invalid(field, f"{currency} has {minor_unit(currency)} decimal places")
    return value


def _currency(raw: str, field: str = "currency") -> str:
    try:
        return check_currency(raw)
    except MoneyError as exc:
        raise invalid(field, str(exc).split(": ", 1)[-1]) from None


def _customer(company_id: UUID | None, contact_id: UUID | None) -> tuple[UUID | None, UUID | None]:
    if company_id is None and contact_id is None:
        raise invalid("company_id", "a payment comes from a company or a contact")
    return company_id, contact_id


def _same_customer(bal: Balance, company_id: UUID | None, contact_id: UUID | None) -> bool:
    if company_id is None and contact_id is None:  # a credit note billed to no CRM record
        return bal.company_id is None and bal.contact_id is None
    if company_id is not None and bal.company_id is not None:
        return bal.company_id == company_id
    return contact_id is not None and bal.contact_id == contact_id


async def _checked(
    ctx: PluginContext,
    index: int,
    item: AllocationIn,
    currency: str,
    company_id: UUID | None,
    contact_id: UUID | None,
    credited: UUID | None,
) -> tuple[Balance, Decimal]:
    field = f"allocations[{index}]"
    amount = _amount(item.amount, f"{field}.amount", currency)
    bal = await balance(ctx, item.invoice_id, lock=True)
    if bal is None or bal.kind != "invoice":
        raise invalid(f"{field}.invoice_id", f"invoice {item.invoice_id} not found")
    if not bal.finalized:
        raise invalid(f"{field}.invoice_id", f"invoice {item.invoice_id} is a draft")
    if bal.currency != currency:
        raise invalid(f"{field}.invoice_id", f"invoice {bal.number} is in {bal.currency}")
    if not _same_customer(bal, company_id, contact_id) or (credited and bal.invoice_id != credited):
        raise invalid(f"{field}.invoice_id", f"invoice {bal.number} bills another customer")
    if amount > bal.due:
        raise invalid(f"{field}.amount", f"invoice {bal.number} has {bal.due} left to pay")
    return bal, amount


async def _allocate(
    ctx: PluginContext,
    allocations: list[AllocationIn],
    *,
    currency: str,
    company_id: UUID | None,
    contact_id: UUID | None,
    available: Decimal,
    source: tuple[str, UUID] | None,
    credited: UUID | None = None,
) -> list[dict[str, Any]]:
    """Check then write allocations (each invoice row locked); ``source`` None: credit."""
    checked: list[tuple[Balance, Decimal]] = []
    seen: set[UUID] = set()
    for index, item in enumerate(allocations):
        if item.invoice_id in seen:
            raise invalid(f"allocations[{index}].invoice_id", "an invoice appears once per request")
        seen.add(item.invoice_id)
        checked.append(await _checked(ctx, index, item, currency, company_id, contact_id, credited))
    total = sum((amount for _, amount in checked), ZERO)
    if total > available:
        raise invalid("allocations", f"{total} allocated, {available} available")
    written = []
    for bal, amount in checked:
        if source is None:  # from credit: take the oldest unallocated payments first
            written += await _allocate_from_credit(ctx, bal, amount, company_id, contact_id)
            continue
        column = "payment_id" if source[0] == "payment" else "credit_note_id"
        allocation_id = uuid7()
        await ctx.db.execute(
            f"INSERT INTO invoicing_allocations (tenant_id, id, invoice_id, {column}, amount) "
            "VALUES ($1, $2, $3, $4, $5)",
            ctx.tenant_id,
            allocation_id,
            bal.invoice_id,
            source[1],
            amount,
        )
        written.append(
            {"id": str(allocation_id), "invoice_id": str(bal.invoice_id), "amount": str(amount)}
        )
    return written


async def _open_payments(
    ctx: PluginContext, currency: str, company_id: UUID | None, contact_id: UUID | None
) -> list[Any]:
    return await ctx.db.fetch(
        "SELECT p.id, p.amount - COALESCE((SELECT sum(a.amount) FROM invoicing_allocations a "
        "WHERE a.tenant_id = p.tenant_id AND a.payment_id = p.id), 0) AS left "
        "FROM invoicing_payments p WHERE p.tenant_id = $1 AND p.kind = 'payment' "
        "AND p.currency = $2 AND p.company_id IS NOT DISTINCT FROM $3 "
        "AND p.contact_id IS NOT DISTINCT FROM $4 ORDER BY p.received_on, p.id FOR UPDATE",
        ctx.tenant_id,
        currency,
        company_id,
        contact_id,
    )


async def credit_balance(
    ctx: PluginContext, currency: str, company_id: UUID | None, contact_id: UUID | None
) -> Decimal:
    """The customer's credit: payments not allocated, less refunds."""
    value = await ctx.db.fetchval(
        "SELECT COALESCE(sum(CASE WHEN p.kind = 'payment' THEN p.amount ELSE -p.amount END), 0) "
        "- COALESCE((SELECT sum(a.amount) FROM invoicing_allocations a "
        "  JOIN invoicing_payments q ON q.tenant_id = a.tenant_id AND q.id = a.payment_id "
        "  WHERE a.tenant_id = $1 AND q.currency = $2 "
        "  AND q.company_id IS NOT DISTINCT FROM $3 AND q.contact_id IS NOT DISTINCT FROM $4), 0) "
        "FROM invoicing_payments p WHERE p.tenant_id = $1 AND p.currency = $2 "
        "AND p.company_id IS NOT DISTINCT FROM $3 AND p.contact_id IS NOT DISTINCT FROM $4",
        ctx.tenant_id,
        currency,
        company_id,
        contact_id,
    )
    return Decimal(value)


async def _allocate_from_credit(
    ctx: PluginContext,
    bal: Balance,
    amount: Decimal,
    company_id: UUID | None,
    contact_id: UUID | None,
) -> list[dict[str, Any]]:
    # Refunds are taken out of credit as a whole (not tied to a payment), so the usable
    # credit is capped by the balance; then the oldest payments with money left pay.
    written = []
    left = amount
    for payment in await _open_payments(ctx, bal.currency, company_id, contact_id):
        if left <= 0:
            break
        take = min(left, Decimal(payment["left"]))
        if take <= 0:
            continue
        allocation_id = uuid7()
        await ctx.db.execute(
            "INSERT INTO invoicing_allocations (tenant_id, id, invoice_id, payment_id, amount) "
            "VALUES ($1, $2, $3, $4, $5)",
            ctx.tenant_id,
            allocation_id,
            bal.invoice_id,
            payment["id"],
            take,
        )
        left -= take
        written.append(
            {"id": str(allocation_id), "invoice_id": str(bal.invoice_id), "amount": str(take)}
        )
    return written


def _payment_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "company_id": str(row["company_id"]) if row["company_id"] else None,
        "contact_id": str(row["contact_id"]) if row["contact_id"] else None,
        "currency": str(row["currency"]).strip(),
        "amount": str(row["amount"]),
        "method": row["method"],
        "received_on": row["received_on"].isoformat(),
        "reference": row["reference"],
    }


async def record_payment(
    ctx: PluginContext,
    data: PaymentIn,
    *,
    external_id: str | None = None,
    keep_unallocated: bool = False,
) -> dict[str, Any]:
    """Record money received and allocate it; the rest becomes the customer's credit.

    A payment naming no customer must be allocated in full, unless ``keep_unallocated``
    (money already received online: it is recorded, its rest shown as unallocated).
    """
    currency = _currency(data.currency)
    amount = _amount(data.amount, "amount", currency)
    anonymous = data.company_id is None and data.contact_id is None
    if anonymous and not data.allocations and not keep_unallocated:
        raise invalid(
            "company_id",
            "a payment comes from a company or a contact, or pays invoices billed to neither",
        )
    company_id, contact_id = data.company_id, data.contact_id
    if data.method not in METHODS:
        raise invalid("method", f"one of {', '.join(METHODS)}")
    if len(data.reference) > 200:  # noqa: PLR2004
        raise invalid("reference", "at most 200 characters")
    payment_id = uuid7()
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_payments (tenant_id, id, kind, company_id, contact_id, currency, "
        "amount, method, received_on, reference, external_id) "
        "VALUES ($1, $2, 'payment', $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (tenant_id, external_id) DO NOTHING RETURNING *",
        ctx.tenant_id,
        payment_id,
        company_id,
        contact_id,
        currency,
        amount,
        data.method,
        data.received_on,
        data.reference,
        external_id,
    )
    if row is None:  # the same external payment, already recorded
        existing = await ctx.db.fetchrow(
            "SELECT * FROM invoicing_payments WHERE tenant_id = $1 AND external_id = $2",
            ctx.tenant_id,
            external_id,
        )
        return {**_payment_json(existing), "allocations": [], "duplicate": True}
    allocations = await _allocate(
        ctx,
        data.allocations,
        currency=currency,
        company_id=company_id,
        contact_id=contact_id,
        available=amount,
        source=("payment", payment_id),
    )
    allocated = sum((Decimal(a["amount"]) for a in allocations), ZERO)
    if anonymous and allocated != amount and not keep_unallocated:
        # Raised after the writes: the request (or the page's savepoint) is rolled back.
        raise invalid(
            "amount",
            f"{amount - allocated} {currency} more than is allocated: a customer without a "
            "CRM company or contact keeps no credit",
        )
    return {
        **_payment_json(row),
        "allocations": allocations,
        "credit": str(amount - allocated),
        "duplicate": False,
    }


async def apply_credit(ctx: PluginContext, data: CreditIn) -> list[dict[str, Any]]:
    """Allocate a credit note, or the customer's credit, to invoices."""
    if data.credit_note_id is not None:
        note = await balance(ctx, data.credit_note_id, lock=True)
        if note is None or note.kind != "credit_note" or not note.finalized:
            raise invalid(
                "credit_note_id", f"finalized credit note {data.credit_note_id} not found"
            )
        return await _allocate(
            ctx,
            data.allocations,
            currency=note.currency,
            company_id=note.company_id,
            contact_id=note.contact_id,
            available=note.due,
            source=("credit_note", note.invoice_id),
            # A credit note for no CRM record settles only the invoice it credits.
            credited=note.credited if note.company_id is None and note.contact_id is None else None,
        )
    company_id, contact_id = _customer(data.company_id, data.contact_id)
    currency = _currency(data.currency or "", "currency")
    await _open_payments(ctx, currency, company_id, contact_id)  # lock the customer's payments
    available = await credit_balance(ctx, currency, company_id, contact_id)
    return await _allocate(
        ctx,
        data.allocations,
        currency=currency,
        company_id=company_id,
        contact_id=contact_id,
        available=available,
        source=None,
    )


async def refund(ctx: PluginContext, data: RefundIn) -> dict[str, Any]:
    """Pay credit back to the customer (never more than their credit)."""
    currency = _currency(data.currency)
    amount = _amount(data.amount, "amount", currency)
    company_id, contact_id = _customer(data.company_id, data.contact_id)
    if data.method not in METHODS:
        raise invalid("method", f"one of {', '.join(METHODS)}")
    await _open_payments(ctx, currency, company_id, contact_id)  # lock the customer's payments
    available = await credit_balance(ctx, currency, company_id, contact_id)
    if amount > available:
        raise invalid("amount", f"the customer's credit is {available} {currency}")
    row = await ctx.db.fetchrow(
        "INSERT INTO invoicing_payments (tenant_id, id, kind, company_id, contact_id, currency, "
        "amount, method, received_on, reference) "
        "VALUES ($1, $2, 'refund', $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        ctx.tenant_id,
        uuid7(),
        company_id,
        contact_id,
        currency,
        amount,
        data.method,
        data.paid_on,
        data.reference[:200],
    )
    return {**_payment_json(row), "credit": str(available - amount)}


async def apply_credit_note(ctx: PluginContext, credit_note_id: UUID) -> Decimal:
    """Allocate a finalized credit note to the invoice it credits, up to what that owes.

    Runs once per credit note (the outbox task after finalizing); what the invoice no
    longer owes stays on the credit note, for other invoices or a refund.
    """
    note = await balance(ctx, credit_note_id, lock=True)
    if note is None or note.kind != "credit_note" or not note.finalized or note.credited is None:
        return ZERO
    target = await balance(ctx, note.credited, lock=True)
    if target is None or not target.finalized or target.currency != note.currency:
        return ZERO
    done = await ctx.db.fetchval(
        "SELECT 1 FROM invoicing_allocations WHERE tenant_id = $1 AND credit_note_id = $2 "
        "AND invoice_id = $3",
        ctx.tenant_id,
        credit_note_id,
        target.invoice_id,
    )
    amount = min(note.due, target.due)
    if done or amount <= 0:
        return ZERO
    await ctx.db.execute(
        "INSERT INTO invoicing_allocations (tenant_id, id, invoice_id, credit_note_id, amount) "
        "VALUES ($1, $2, $3, $4, $5)",
        ctx.tenant_id,
        uuid7(),
        target.invoice_id,
        credit_note_id,
        amount,
    )
    return amount


async def _apply_credit_note_task(ctx: PluginContext, row: Any) -> None:
    await apply_credit_note(ctx, UUID(str(row["invoice_id"])))


OUTBOX_TASKS = {"apply_credit_note": _apply_credit_note_task}


# --- aged receivables ----------------------------------------------------------------


def bucket(days_overdue: int) -> str:
    """The ageing bucket of an amount ``days_overdue`` past its due date."""
    if days_overdue <= 0:
        return "current"
    for name, limit in BUCKETS[1:-1]:
        if limit is not None and days_overdue <= limit:
            return name
    return "90+"


async def aged_receivables(ctx: PluginContext, as_of: date) -> dict[str, Any]:
    """Open invoice amounts per currency and customer, in ageing buckets on ``as_of``."""
    rows = await ctx.db.fetch(
        BALANCE_SQL + " AND i.kind = 'invoice' AND i.status <> 'draft' "
        "AND i.issue_date <= $2 ORDER BY i.due_date NULLS FIRST, i.number",
        ctx.tenant_id,
        as_of,
    )
    names = [name for name, _ in BUCKETS]
    currencies: dict[str, dict[str, Any]] = {}
    for row in rows:
        bal = balance_from_row(row)
        if bal.due <= 0:
            continue
        days = (as_of - bal.due_date).days if bal.due_date else 0
        where = bucket(days)
        per = currencies.setdefault(
            bal.currency, {"totals": dict.fromkeys(names, ZERO), "customers": {}}
        )
        if bal.company_id or bal.contact_id:
            key = f"company:{bal.company_id}" if bal.company_id else f"contact:{bal.contact_id}"
        else:  # billed to no CRM record: its snapshot's name
            key = f"name:{bal.customer_name}"
        customer = per["customers"].setdefault(
            key,
            {
                "name": bal.customer_name,
                "company_id": str(bal.company_id) if bal.company_id else None,
                "contact_id": str(bal.contact_id) if bal.contact_id else None,
                "buckets": dict.fromkeys(names, ZERO),
                "invoices": [],
            },
        )
        customer["buckets"][where] += bal.due
        per["totals"][where] += bal.due
        customer["invoices"].append({**bal.to_json(as_of), "days_overdue": max(days, 0)})

    def money(values: dict[str, Decimal]) -> dict[str, str]:
        return {k: str(v) for k, v in values.items()} | {"total": str(sum(values.values(), ZERO))}

    return {
        "as_of": as_of.isoformat(),
        "buckets": names,
        "currencies": {
            code: {
                "totals": money(per["totals"]),
                "customers": [
                    {**c, "buckets": money(c["buckets"])} for c in per["customers"].values()
                ],
            }
            for code, per in sorted(currencies.items())
        },
    }


# --- Stripe ----------------------------------------------------------------------------


def stripe_client() -> Any:
    """Stripe's client with the platform's key (the connected account goes per request)."""
    import stripe  # noqa: PLC0415 - only when paying online

    key = os.environ.get("ORBIT_STRIPE_SECRET_KEY")
    if not key:
        raise ClientException(detail="online payment is not configured on this Orbit")
    base = os.environ.get("ORBIT_STRIPE_API_BASE")
    return stripe.StripeClient(key, base_addresses={"api": base} if base else None)


def _minor(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_unit(currency)))


async def create_checkout(ctx: PluginContext, invoice_id: UUID) -> dict[str, Any]:
    """A Checkout Session on the workspace's connected account for what is left to pay."""
    account = str(ctx.settings.get("stripe_account_id") or "")
    if not account.startswith("acct_"):
        raise conflict("connect a Stripe account in the app's settings first")
    bal = await balance(ctx, invoice_id)
    if bal is None or bal.kind != "invoice":
        raise not_found(f"invoice {invoice_id}")
    if not bal.finalized or bal.due <= 0:
        raise conflict(f"invoice {bal.number or invoice_id} has nothing to pay")
    existing = await ctx.db.fetchrow(
        "SELECT session_id, url FROM invoicing_checkout_sessions WHERE tenant_id = $1 "
        "AND invoice_id = $2 AND status = 'open' AND amount = $3 ORDER BY created_at DESC",
        ctx.tenant_id,
        invoice_id,
        bal.due,
    )
    if existing is not None:
        return {"session_id": existing["session_id"], "url": existing["url"]}
    metadata = {"invoice_id": str(invoice_id), "tenant_id": str(ctx.tenant_id)}
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": bal.currency.lower(),
                    "unit_amount": _minor(bal.due, bal.currency),
                    "product_data": {"name": f"Invoice {bal.number}"},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": ctx.url("/checkout/paid", public=True),
        "cancel_url": ctx.url("/checkout/cancelled", public=True),
    }
    options = {
        "stripe_account": account,
        "idempotency_key": f"orbit-invoice-{invoice_id}-{_minor(bal.due, bal.currency)}",
    }
    import stripe  # noqa: PLC0415 - only when paying online

    client = stripe_client()
    try:
        session = await asyncio.to_thread(
            client.v1.checkout.sessions.create, params=params, options=options
        )
    except stripe.StripeError as exc:
        message = exc.user_message or str(exc) or type(exc).__name__
        raise ClientException(
            detail=f"Stripe did not open a checkout: {message}", status_code=502
        ) from exc
    await ctx.db.execute(
        "INSERT INTO invoicing_checkout_sessions (tenant_id, session_id, invoice_id, account_id, "
        "amount, currency, url) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        ctx.tenant_id,
        session["id"],
        invoice_id,
        account,
        bal.due,
        bal.currency,
        session["url"],
    )
    return {"session_id": session["id"], "url": session["url"]}


def webhook_url(ctx: PluginContext) -> str:
    """The URL to give Stripe for this workspace's events (a signed, non-expiring token)."""
    token = ctx.sign({"a": str(ctx.settings.get("stripe_account_id") or "")}, WEBHOOK_PURPOSE)
    return ctx.url(f"/stripe/{token}", public=True)


async def handle_stripe_event(ctx: PluginContext, event: dict[str, Any]) -> str:
    """Apply one verified Stripe event for this workspace; what happened, for the log.

    Idempotent by event id; safe against disorder (a payment is keyed on its
    PaymentIntent; a session never goes back from ``complete``).
    """
    account = str(ctx.settings.get("stripe_account_id") or "")
    if event.get("account") and event["account"] != account:
        return "ignored: another account"
    fresh = await ctx.db.fetchval(
        "INSERT INTO invoicing_stripe_events (tenant_id, event_id, type) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        ctx.tenant_id,
        str(event["id"]),
        str(event.get("type", "")),
    )
    if fresh is None:
        return "duplicate"
    obj: dict[str, Any] = event.get("data", {}).get("object", {})
    metadata = obj.get("metadata") or {}
    if metadata.get("tenant_id") not in {None, str(ctx.tenant_id)}:
        return "ignored: another workspace"
    return await _apply(ctx, str(event.get("type")), obj, metadata)


async def _apply(ctx: PluginContext, kind: str, obj: dict[str, Any], metadata: Any) -> str:
    if kind == "checkout.session.expired":
        await ctx.db.execute(
            "UPDATE invoicing_checkout_sessions SET status = 'expired' WHERE tenant_id = $1 "
            "AND session_id = $2 AND status = 'open'",
            ctx.tenant_id,
            obj.get("id"),
        )
        return "expired"
    if kind == "checkout.session.completed" and obj.get("payment_status") == "paid":
        await ctx.db.execute(
            "UPDATE invoicing_checkout_sessions SET status = 'complete' WHERE tenant_id = $1 "
            "AND session_id = $2",
            ctx.tenant_id,
            obj.get("id"),
        )
        intent = obj.get("payment_intent") or obj.get("id")
        return await _paid_online(ctx, metadata, str(intent), obj.get("amount_total"), obj)
    if kind == "payment_intent.succeeded":
        return await _paid_online(
            ctx, metadata, str(obj.get("id")), obj.get("amount_received"), obj
        )
    return "ignored"


async def _paid_online(
    ctx: PluginContext, metadata: dict[str, Any], intent: str, minor: Any, obj: dict[str, Any]
) -> str:
    try:
        invoice_id = UUID(str(metadata.get("invoice_id")))
    except ValueError:
        return "ignored: no invoice"
    bal = await balance(ctx, invoice_id, lock=True)
    if bal is None or minor is None:
        return "ignored: unknown invoice"
    currency = str(obj.get("currency") or bal.currency).upper()
    amount = Decimal(int(minor)).scaleb(-minor_unit(currency))
    if amount <= 0:
        return "ignored: nothing paid"
    allocate = min(amount, bal.due) if currency == bal.currency else ZERO
    created = obj.get("created")
    received = date.fromtimestamp(int(created)) if created else date.today()  # noqa: DTZ012, DTZ011
    result = await record_payment(
        ctx,
        PaymentIn(
            amount=str(amount),
            currency=currency,
            received_on=received,
            company_id=bal.company_id,
            contact_id=bal.contact_id,
            method="stripe",
            reference=intent[:200],
            allocations=[AllocationIn(invoice_id, str(allocate))] if allocate > 0 else [],
        ),
        external_id=f"stripe:{intent}",
        keep_unallocated=True,
    )
    return "duplicate payment" if result["duplicate"] else "paid"


# --- routes ----------------------------------------------------------------------------


class PaymentsController(Controller):
    """``/payments``, ``/refunds``, ``/credit``, invoice balances, aged receivables."""

    path = "/"

    @post("/payments")
    async def create_payment(self, plugin: PluginContext, data: PaymentIn) -> dict[str, Any]:
        """Record a payment and its allocations (the rest is the customer's credit)."""
        return await record_payment(plugin, data)

    @get("/payments")
    async def list_payments(
        self, plugin: PluginContext, company_id: UUID | None = None, contact_id: UUID | None = None
    ) -> list[dict[str, Any]]:
        """Payments and refunds, newest first (of one customer when asked)."""
        rows = await plugin.db.fetch(
            "SELECT * FROM invoicing_payments WHERE tenant_id = $1 "
            "AND ($2::uuid IS NULL OR company_id = $2) AND ($3::uuid IS NULL OR contact_id = $3) "
            "ORDER BY received_on DESC, id DESC LIMIT 500",
            plugin.tenant_id,
            company_id,
            contact_id,
        )
        return [_payment_json(row) for row in rows]

    @post("/credit")
    async def use_credit(self, plugin: PluginContext, data: CreditIn) -> list[dict[str, Any]]:
        """Allocate a credit note or the customer's credit to invoices."""
        return await apply_credit(plugin, data)

    @get("/credit")
    async def customer_credit(
        self,
        plugin: PluginContext,
        currency: str,
        company_id: UUID | None = None,
        contact_id: UUID | None = None,
    ) -> dict[str, str]:
        """A customer's credit in one currency."""
        code = _currency(currency)
        _customer(company_id, contact_id)
        return {
            "currency": code,
            "credit": str(await credit_balance(plugin, code, company_id, contact_id)),
        }

    @post("/refunds")
    async def create_refund(self, plugin: PluginContext, data: RefundIn) -> dict[str, Any]:
        """Pay back part of a customer's credit."""
        return await refund(plugin, data)

    @get("/invoices/{invoice_id:uuid}/balance")
    async def invoice_balance(self, plugin: PluginContext, invoice_id: UUID) -> dict[str, Any]:
        """What is paid and left on an invoice, and its derived status."""
        bal = await balance(plugin, invoice_id)
        if bal is None:
            raise not_found(f"invoice {invoice_id}")
        return bal.to_json(date.today())  # noqa: DTZ011 - the workspace's calendar day

    @post("/invoices/{invoice_id:uuid}/checkout")
    async def checkout(self, plugin: PluginContext, invoice_id: UUID) -> dict[str, Any]:
        """A Stripe Checkout link for what is left to pay."""
        return await create_checkout(plugin, invoice_id)

    @get("/receivables/aged")
    async def aged(self, plugin: PluginContext, as_of: date | None = None) -> dict[str, Any]:
        """Open amounts per currency and customer in ageing buckets."""
        return await aged_receivables(plugin, as_of or date.today())  # noqa: DTZ011

    @get("/stripe/webhook-url")
    async def stripe_webhook_url(self, plugin: PluginContext) -> dict[str, str]:
        """The endpoint URL to register on the connected account for its events."""
        return {"url": webhook_url(plugin)}


@get("/receivables")
async def receivables_page(plugin: PluginContext, as_of: date | None = None) -> Page:
    """Aged receivables as a page."""
    report = await aged_receivables(plugin, as_of or date.today())  # noqa: DTZ011
    lang = str(plugin.settings.get("document_language") or "en")
    parts = [f"<p>{escape(report['as_of'])}</p>"]
    for code, per in report["currencies"].items():
        head = "".join(f"<th>{escape(b)}</th>" for b in [*report["buckets"], "total"])
        rows = []
        for customer in per["customers"]:
            who = customer["name"] or customer["company_id"] or customer["contact_id"]
            cells = "".join(
                f"<td class='num'>{escape(format_money(Decimal(v), code, lang))}</td>"
                for v in customer["buckets"].values()
            )
            rows.append(f"<tr><td>{escape(str(who))}</td>{cells}</tr>")
        totals = "".join(
            f"<td class='num'><strong>{escape(format_money(Decimal(v), code, lang))}</strong></td>"
            for v in per["totals"].values()
        )
        parts.append(
            f"<h2>{escape(code)}</h2><table class='table'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}<tr><td></td>{totals}</tr></tbody></table>"
        )
    if not report["currencies"]:
        parts.append("<p>Nothing is owed.</p>")
    return Page("Aged receivables", Markup("".join(parts)))


@post("/stripe/{token:str}", status_code=200)
async def stripe_webhook(
    public: PublicGate, token: str, request: Request[Any, Any, Any]
) -> dict[str, str]:
    """Stripe's events for one workspace's connected account (signature checked)."""
    import stripe  # noqa: PLC0415

    payload = await request.body()
    async with public.open(token, WEBHOOK_PURPOSE) as (ctx, _data):
        secret = str(ctx.settings.get("stripe_webhook_secret") or "")
        if not secret:
            raise conflict("this workspace has no Stripe webhook secret")
        try:
            stripe.Webhook.construct_event(
                payload.decode("utf-8"), request.headers.get("stripe-signature", ""), secret
            )
        except (ValueError, stripe.SignatureVerificationError):
            raise invalid("stripe-signature", "the signature does not match") from None
        outcome = await handle_stripe_event(ctx, json.loads(payload))
    return {"outcome": outcome}


@get("/checkout/{outcome:str}")
async def checkout_done(outcome: str) -> PublicPage:
    """Where Stripe sends the customer back: a plain thank-you (or nothing was charged)."""
    if outcome == "paid":
        return PublicPage(
            "Payment received", "<p id='checkout-outcome'>Thank you: your payment went through.</p>"
        )
    return PublicPage("Payment cancelled", "<p id='checkout-outcome'>Nothing was charged.</p>")


def api_routes() -> list[Any]:
    """Payments API."""
    return [PaymentsController]


def page_routes() -> list[Any]:
    """Aged receivables page."""
    return [receivables_page]


def public_routes() -> list[Any]:
    """Stripe's webhook, and the page Checkout returns the customer to."""
    return [stripe_webhook, checkout_done]


async def timeline_entries(
    ctx: PluginContext, subject_type: str, subject_id: UUID
) -> list[TimelineEntry]:
    """Payments and refunds on the customer's timeline."""
    from orbit.plugins.api import TimelineEntry  # noqa: PLC0415

    if subject_type not in {"contact", "company"}:
        return []
    column = "company_id" if subject_type == "company" else "contact_id"
    rows = await ctx.db.fetch(
        f"SELECT * FROM invoicing_payments WHERE tenant_id = $1 AND {column} = $2 "
        "ORDER BY created_at DESC LIMIT 50",
        ctx.tenant_id,
        subject_id,
    )
    lang = str(ctx.settings.get("document_language") or "en")
    return [
        TimelineEntry(
            occurred_at=row["created_at"],
            title=("Payment received" if row["kind"] == "payment" else "Refund paid")
            + f": {format_money(row['amount'], str(row['currency']).strip(), lang)}",
            body=str(escape(row["reference"])),
        )
        for row in rows
    ]
