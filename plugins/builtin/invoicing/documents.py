"""Issued documents: the invoice PDF (Factur-X PDF/A-3b), CII and UBL XML.

Rendered once, in the worker, after the invoice is finalized (the outbox task
``render_documents``), from a Jinja2 template with the workspace's logo, colour and
language; the bytes are stored in ``invoicing_documents`` and served as issued, never
rendered again (a trigger refuses any change). Every amount printed or written to the
XML comes from the one :func:`~.money.compute` of the invoice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

from jinja2 import Environment, FileSystemLoader, select_autoescape

from orbit.plugins.api import (  # Litestar reads the handlers' hints at run time
    PluginContext,
    Response,
    Setting,
    get,
)
from orbit.plugins.builtin.invoicing.einvoice import (
    Address,
    AllowanceCharge,
    EInvoice,
    Line,
    Party,
    TaxRate,
    TaxSubtotal,
    Totals,
    to_cii,
    to_ubl,
)
from orbit.plugins.builtin.invoicing.einvoice.validate import check_xsd
from orbit.plugins.builtin.invoicing.money import (
    TAX_CATEGORIES,
    Document,
    Tax,
    compute,
    format_money,
)
from orbit.plugins.builtin.invoicing.money import Line as MoneyLine
from orbit.plugins.builtin.invoicing.money import Totals as MoneyTotals

TABLES = ("invoicing_documents",)
TEMPLATES = Path(__file__).parent / "templates"

SETTINGS = (
    Setting(name="seller_name", label="Your legal name (on invoices)", default=""),
    Setting(name="seller_street", label="Street", default=""),
    Setting(name="seller_postcode", label="Postcode", default=""),
    Setting(name="seller_city", label="City", default=""),
    Setting(name="seller_country", label="Country (ISO 3166 code)", default="FR"),
    Setting(name="seller_vat_id", label="VAT ID", default=""),
    Setting(name="seller_legal_id", label="Registration number", default=""),
    Setting(name="seller_email", label="Billing email", default=""),
    Setting(name="seller_iban", label="IBAN", default=""),
    Setting(name="seller_bic", label="BIC", default=""),
    Setting(
        name="document_language",
        label="Document language",
        type="choice",
        choices=("en", "el", "ru", "tl", "fr", "de"),
        default="en",
    ),
    Setting(name="document_accent", label="Accent colour (#rrggbb)", default="#1f4e79"),
    Setting(
        name="document_logo",
        label="Logo (a data: URL, PNG or SVG)",
        default="",
        help="Only embedded images: documents never fetch anything from the network.",
    ),
    Setting(name="document_footer", label="Footer line", default=""),
    Setting(
        name="einvoice",
        label="E-invoice in the PDF",
        type="choice",
        choices=("factur-x", "none"),
        default="factur-x",
        help="Factur-X / ZUGFeRD EN 16931: the CII XML embedded in a PDF/A-3b.",
    ),
)

OUTBOX_TASKS: dict[str, Any] = {}
FINALIZE_TASKS = ((10, "render_documents"),)

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice", "credit_note": "Credit note", "number": "Number",
        "issued": "Issued", "due": "Due", "corrects": "Corrects invoice", "from": "From",
        "to": "Bill to", "vat_id": "VAT ID", "description": "Description", "quantity": "Qty",
        "price": "Unit price", "tax": "Tax", "amount": "Amount", "discount": "Discount",
        "subtotal": "Subtotal", "doc_discount": "Discount", "net": "Total excl. tax",
        "rounding": "Rounding", "total": "Total", "withholding": "Withholding",
        "payable": "Amount due", "pay_to": "Pay to", "page": "Page",
    },
    "fr": {
        "invoice": "Facture", "credit_note": "Avoir", "number": "Numéro", "issued": "Émise le",
        "due": "Échéance", "corrects": "Rectifie la facture", "from": "De",
        "to": "Facturé à", "vat_id": "N° TVA", "description": "Désignation",
        "quantity": "Qté", "price": "Prix unitaire", "tax": "TVA", "amount": "Montant",
        "discount": "Remise", "subtotal": "Sous-total", "doc_discount": "Remise",
        "net": "Total HT", "rounding": "Arrondi", "total": "Total TTC",
        "withholding": "Retenue", "payable": "Net à payer", "pay_to": "Paiement",
        "page": "Page",
    },
    "de": {
        "invoice": "Rechnung", "credit_note": "Gutschrift", "number": "Nummer",
        "issued": "Datum", "due": "Fällig", "corrects": "Korrigiert Rechnung", "from": "Von",
        "to": "Rechnung an", "vat_id": "USt-IdNr.", "description": "Beschreibung",
        "quantity": "Menge", "price": "Einzelpreis", "tax": "USt", "amount": "Betrag",
        "discount": "Rabatt", "subtotal": "Zwischensumme", "doc_discount": "Rabatt",
        "net": "Summe netto", "rounding": "Rundung", "total": "Summe brutto",
        "withholding": "Einbehalt", "payable": "Zahlbetrag", "pay_to": "Zahlung an",
        "page": "Seite",
    },
    "el": {
        "invoice": "Τιμολόγιο", "credit_note": "Πιστωτικό τιμολόγιο", "number": "Αριθμός",
        "issued": "Ημερομηνία έκδοσης", "due": "Λήξη", "corrects": "Διορθώνει το τιμολόγιο",
        "from": "Από", "to": "Προς", "vat_id": "ΑΦΜ", "description": "Περιγραφή",
        "quantity": "Ποσότητα", "price": "Τιμή μονάδας", "tax": "ΦΠΑ", "amount": "Ποσό",
        "discount": "Έκπτωση", "subtotal": "Μερικό σύνολο", "doc_discount": "Έκπτωση",
        "net": "Σύνολο χωρίς ΦΠΑ", "rounding": "Στρογγυλοποίηση", "total": "Σύνολο",
        "withholding": "Παρακράτηση", "payable": "Πληρωτέο ποσό", "pay_to": "Πληρωμή σε",
        "page": "Σελίδα",
    },
    "ru": {
        "invoice": "Счёт", "credit_note": "Кредит-нота", "number": "Номер",
        "issued": "Дата", "due": "Оплатить до", "corrects": "Исправляет счёт", "from": "От",
        "to": "Плательщик", "vat_id": "ИНН / VAT", "description": "Описание",
        "quantity": "Кол-во", "price": "Цена", "tax": "НДС", "amount": "Сумма",
        "discount": "Скидка", "subtotal": "Промежуточный итог", "doc_discount": "Скидка",
        "net": "Итого без НДС", "rounding": "Округление", "total": "Итого",
        "withholding": "Удержание", "payable": "К оплате", "pay_to": "Реквизиты для оплаты",
        "page": "Страница",
    },
    "tl": {
        "invoice": "Invoice", "credit_note": "Credit memo", "number": "Numero",
        "issued": "Petsa", "due": "Takdang petsa", "corrects": "Itinatama ang invoice",
        "from": "Mula kay", "to": "Para kay", "vat_id": "TIN", "description": "Paglalarawan",
        "quantity": "Dami", "price": "Presyo bawat isa", "tax": "Buwis", "amount": "Halaga",
        "discount": "Diskwento", "subtotal": "Subtotal", "doc_discount": "Diskwento",
        "net": "Kabuuan bago buwis", "rounding": "Pag-round", "total": "Kabuuan",
        "withholding": "Withholding", "payable": "Babayaran", "pay_to": "Magbayad sa",
        "page": "Pahina",
    },
}  # fmt: skip

VATEX = {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC", "G": "VATEX-EU-G", "O": "VATEX-EU-O"}


class DocumentError(ValueError):
    """An invoice that cannot be written as asked; ``field`` names what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """A finalized invoice or credit note as stored, with its one computation."""

    row: dict[str, Any]
    lines: list[dict[str, Any]]
    document: Document
    totals: MoneyTotals
    preceding: tuple[str, date | None] | None = None
    """A credit note's invoice: its number and issue date."""

    @property
    def id(self) -> UUID:
        """The invoice's id."""
        return UUID(str(self.row["id"]))

    @property
    def currency(self) -> str:
        """ISO 4217 code."""
        return str(self.row["currency"])


def _taxes(raw: Any) -> tuple[Tax, ...]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    return tuple(Tax.from_json(item) for item in items or ())


def build_view(
    row: dict[str, Any],
    lines: list[dict[str, Any]],
    preceding: tuple[str, date | None] | None = None,
) -> InvoiceView:
    """The invoice's money :class:`Document` from its rows, and its totals."""
    items = [line for line in lines if line.get("kind", "item") == "item"]
    document = Document(
        currency=str(row["currency"]).strip(),
        lines=tuple(
            MoneyLine(
                quantity=Decimal(line["quantity"]),
                unit_price=Decimal(line["unit_price"]),
                taxes=_taxes(line["taxes"]),
                discount_percent=Decimal(line["discount_percent"]),
            )
            for line in items
        ),
        prices_include_tax=bool(row["prices_include_tax"]),
        discount_percent=Decimal(row["discount_percent"]),
        discount_amount=Decimal(row["discount_amount"]),
    )
    return InvoiceView(row, lines, document, compute(document), preceding)


async def load_invoice(ctx: PluginContext, invoice_id: UUID) -> InvoiceView | None:
    """The workspace's invoice (any status) with its lines and totals, or ``None``."""
    row = await ctx.db.fetchrow(
        "SELECT * FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        invoice_id,
    )
    if row is None:
        return None
    lines = await ctx.db.fetch(
        "SELECT * FROM invoicing_invoice_lines WHERE tenant_id = $1 AND invoice_id = $2 "
        "ORDER BY position",
        ctx.tenant_id,
        invoice_id,
    )
    preceding = None
    if row["credited_invoice_id"] is not None:
        original = await ctx.db.fetchrow(
            "SELECT number, issue_date FROM invoicing_invoices WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            row["credited_invoice_id"],
        )
        if original is not None and original["number"]:
            preceding = (str(original["number"]), original["issue_date"])
    return build_view(dict(row), [dict(line) for line in lines], preceding)


def seller_party(settings: Any) -> Party:
    """The workspace as seller, from the plugin's settings."""
    return Party(
        name=str(settings.get("seller_name") or "—"),
        address=Address(
            country=str(settings.get("seller_country") or "FR").upper(),
            street=str(settings.get("seller_street") or ""),
            city=str(settings.get("seller_city") or ""),
            postcode=str(settings.get("seller_postcode") or ""),
        ),
        vat_id=str(settings.get("seller_vat_id") or "") or None,
        legal_id=str(settings.get("seller_legal_id") or "") or None,
        email=str(settings.get("seller_email") or "") or None,
    )


def buyer_party(customer: Any, default_country: str = "FR") -> Party:
    """The customer snapshot stored on the invoice as buyer (flat or nested address).

    Without a country the buyer is taken to be in the seller's (``default_country``).
    """
    data: dict[str, Any] = json.loads(customer) if isinstance(customer, str) else dict(customer)
    nested = data.get("address")
    address: dict[str, Any] = nested if isinstance(nested, dict) else data
    if isinstance(nested, str):  # the invoice's snapshot keeps the address as free text
        address = {"street": ", ".join(p.strip() for p in nested.splitlines() if p.strip())}
        address["country"] = data.get("country") or ""

    def text(source: dict[str, Any], *keys: str) -> str:
        return next((str(source[k]) for k in keys if source.get(k)), "")

    return Party(
        name=text(data, "name", "company_name", "contact_name") or "—",
        address=Address(
            country=(text(address, "country", "country_code") or default_country).upper()[:2],
            street=text(address, "street", "line1", "address"),
            city=text(address, "city"),
            postcode=text(address, "postcode", "postal_code", "zip"),
        ),
        vat_id=text(data, "vat_id", "tax_id") or None,
        legal_id=text(data, "legal_id", "registration") or None,
        email=text(data, "email") or None,
    )


def _vat_rate(taxes: tuple[Tax, ...], where: str) -> TaxRate:
    vat = [tax for tax in taxes if tax.kind == "vat"]
    if any(tax.kind == "other" for tax in taxes) or len(vat) > 1:
        raise DocumentError(where, "EN 16931 allows one VAT rate per line and no other taxes")
    if not vat:
        return TaxRate("O", Decimal(0), TAX_CATEGORIES["O"], VATEX["O"])
    tax = vat[0]
    if tax.category in {"S", "Z", "L", "M"}:
        return TaxRate(tax.category, tax.rate)  # type: ignore[arg-type]
    reason = tax.exemption_reason or TAX_CATEGORIES.get(tax.category, tax.category)
    return TaxRate(tax.category, tax.rate, reason, VATEX.get(tax.category))  # type: ignore[arg-type]


def _sum(values: Any) -> Decimal:
    return sum(values, Decimal(0))


def einvoice_from(view: InvoiceView, settings: Any) -> EInvoice:
    """The invoice in the EN 16931 model: every amount from its computation."""
    row, totals = view.row, view.totals
    items = [line for line in view.lines if line.get("kind", "item") == "item"]
    lines = []
    for index, (line, money, total) in enumerate(
        zip(items, view.document.lines, totals.lines, strict=True), start=1
    ):
        price = money.unit_price
        if view.document.prices_include_tax and money.quantity:
            price = ((total.net + total.discount) / money.quantity).quantize(Decimal("0.000001"))
        lines.append(
            Line(
                id=str(index),
                name=str(line.get("description") or "—")[:200],
                quantity=money.quantity,
                unit_code=str(line.get("unit_code") or "C62"),
                net_price=price.normalize(),
                net_amount=total.net,
                tax=_vat_rate(money.taxes, f"lines[{index - 1}].taxes"),
                allowance=total.discount,
            )
        )
    allowances = tuple(
        AllowanceCharge(
            charge=False,
            amount=allowance.amount,
            reason="Discount",
            tax=_vat_rate(allowance.taxes, "discount"),
            reason_code="95",
        )
        for allowance in totals.allowances
        if allowance.amount
    )
    taxes = tuple(
        TaxSubtotal(_vat_rate((t.tax,), "taxes"), t.base, t.amount)
        for t in totals.taxes
        if t.tax.kind == "vat"
    )
    if not taxes:
        base = totals.net_total
        taxes = (TaxSubtotal(_vat_rate((), "taxes"), base, Decimal(0)),)
    notes = tuple(n for n in (str(row.get("notes") or ""),) if n)
    if totals.withholding_total:
        notes += (f"Withholding {-totals.withholding_total} {view.currency} (BT-113).",)
    credit = row.get("kind") == "credit_note"
    return EInvoice(
        number=str(row["number"]),
        type_code="381" if credit else "380",
        issue_date=row["issue_date"] or date.today(),  # noqa: DTZ011 - a date, no zone
        due_date=row.get("due_date"),
        currency=view.currency,
        seller=seller_party(settings),
        buyer=buyer_party(row.get("customer") or {}, seller_party(settings).address.country),
        lines=tuple(lines),
        taxes=taxes,
        totals=Totals(
            line_total=totals.line_net_total,
            allowance_total=totals.allowance_total,
            charge_total=Decimal(0),
            tax_exclusive=totals.net_total,
            tax_total=totals.vat_total,
            tax_inclusive=totals.gross_total,
            prepaid=-totals.withholding_total,
            rounding=totals.rounding,
            payable=totals.payable,
        ),
        allowances_charges=allowances,
        notes=notes,
        payment_terms=str(row.get("terms") or ""),
        iban=str(settings.get("seller_iban") or "") or None,
        bic=str(settings.get("seller_bic") or "") or None,
        payment_reference=str(row["number"]),
        preceding_invoice=view.preceding[0] if view.preceding else None,
        preceding_invoice_date=view.preceding[1] if view.preceding else None,
    )


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), cache_size=10
    )


def _safe_colour(value: str) -> str:
    text = value.strip()
    return text if re.fullmatch(r"#[0-9a-fA-F]{6}", text) else "#1f4e79"


def render_html(view: InvoiceView, settings: Any) -> str:
    """The invoice as HTML for the PDF, in the workspace's language and colours."""
    language = str(settings.get("document_language") or "en")
    labels = LABELS.get(language, LABELS["en"])
    cur = view.currency

    def money(value: Decimal) -> str:
        return format_money(value, cur, language)

    rows: list[dict[str, Any]] = []
    totals_iter = iter(zip(view.document.lines, view.totals.lines, strict=True))
    for line in view.lines:
        if line.get("kind", "item") == "section":
            rows.append({"section": True, "description": line.get("description", "")})
            continue
        money_line, total = next(totals_iter)
        rows.append(
            {
                "section": False,
                "description": line.get("description", ""),
                "quantity": format(money_line.quantity.normalize(), "f"),
                "unit": line.get("unit_code", ""),
                "price": money(money_line.unit_price),
                "tax": ", ".join(f"{t.rate.normalize():f} %" for t in money_line.taxes) or "—",
                "discount": money(total.discount) if total.discount else "",
                "amount": money(total.gross if total.gross is not None else total.net),
            }
        )
    t = view.totals
    summary: list[tuple[str, str]] = [(labels["subtotal"], money(t.line_net_total))]
    if t.allowance_total:
        summary.append((labels["doc_discount"], money(-t.allowance_total)))
    summary.append((labels["net"], money(t.net_total)))
    summary += [
        (f"{tax.tax.name} {tax.tax.rate.normalize():f} % · {money(tax.base)}", money(tax.amount))
        for tax in t.taxes
        if tax.tax.kind != "withholding"
    ]
    if t.rounding:
        summary.append((labels["rounding"], money(t.rounding)))
    summary.append((labels["total"], money(t.gross_total)))
    summary += [
        (f"{labels['withholding']} {tax.tax.rate.normalize():f} %", money(tax.amount))
        for tax in t.taxes
        if tax.tax.kind == "withholding"
    ]
    summary.append((labels["payable"], money(t.payable)))
    row = view.row
    credit = row.get("kind") == "credit_note"
    logo = str(settings.get("document_logo") or "")
    return (
        _environment()
        .get_template("invoice.html")
        .render(
            language=language,
            title=labels["credit_note" if credit else "invoice"],
            number=row.get("number") or "",
            issue_date=row["issue_date"].isoformat() if row.get("issue_date") else "",
            due_date=row["due_date"].isoformat() if row.get("due_date") else "",
            preceding=view.preceding[0] if view.preceding else "",
            seller=seller_party(settings),
            buyer=buyer_party(row.get("customer") or {}, seller_party(settings).address.country),
            rows=rows,
            totals=summary,
            notes=row.get("notes") or "",
            terms=row.get("terms") or "",
            iban=settings.get("seller_iban") or "",
            bic=settings.get("seller_bic") or "",
            accent=_safe_colour(str(settings.get("document_accent") or "")),
            logo=logo if logo.startswith("data:image/") else "",
            footer=str(settings.get("document_footer") or ""),
            **{f"{key}_label": value for key, value in labels.items()},
        )
    )


def render_pdf(html: str, cii: bytes | None = None) -> bytes:
    """PDF/A-3b of ``html``; with ``cii``, a Factur-X EN 16931 (XML attached as Alternative)."""
    import facturx  # noqa: PLC0415 - heavy imports, worker only
    from weasyprint import HTML  # noqa: PLC0415
    from weasyprint.urls import URLFetcher  # noqa: PLC0415

    # Only embedded (data:) images: a document never fetches anything from the network.
    fetcher = URLFetcher(allowed_protocols={"data"})
    pdf: bytes = HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant="pdf/a-3b")
    if cii is None:
        return pdf
    out: bytes = facturx.generate_from_binary(
        pdf,
        cii,
        flavor="factur-x",
        level="en16931",
        afrelationship="alternative",
        check_xsd=False,  # checked below against the cached schema (factur-x re-reads it)
    )
    check_xsd(cii)
    return out


@dataclass(frozen=True, slots=True)
class Issued:
    """The documents written for one invoice."""

    pdf: bytes
    cii: bytes | None
    ubl: bytes | None


def issue(view: InvoiceView, settings: Any) -> Issued:
    """Render the PDF and both XML syntaxes (CPU work: run it in a thread)."""
    try:
        einvoice: EInvoice | None = einvoice_from(view, settings)
    except DocumentError:
        einvoice = None  # not EN 16931 (e.g. GST + QST on one line): the PDF alone
    cii = to_cii(einvoice) if einvoice is not None else None
    ubl = to_ubl(einvoice) if einvoice is not None else None
    embed = cii if settings.get("einvoice", "factur-x") == "factur-x" else None
    return Issued(render_pdf(render_html(view, settings), embed), cii, ubl)


async def issued_kinds(ctx: PluginContext, invoice_id: UUID) -> set[str]:
    """Which documents of the invoice are stored."""
    rows = await ctx.db.fetch(
        "SELECT kind FROM invoicing_documents WHERE tenant_id = $1 AND invoice_id = $2",
        ctx.tenant_id,
        invoice_id,
    )
    return {row["kind"] for row in rows}


async def render_documents(ctx: PluginContext, invoice_id: UUID) -> bool:
    """Issue the invoice's documents once; ``False`` when they already exist (or draft)."""
    if "pdf" in await issued_kinds(ctx, invoice_id):
        return False
    view = await load_invoice(ctx, invoice_id)
    if view is None or view.row["status"] == "draft":
        return False
    issued = await asyncio.to_thread(issue, view, ctx.settings)
    number = str(view.row["number"])
    for kind, content, media, filename in (
        ("pdf", issued.pdf, "application/pdf", f"{number}.pdf"),
        ("cii", issued.cii, "application/xml", f"{number}-factur-x.xml"),
        ("ubl", issued.ubl, "application/xml", f"{number}-ubl.xml"),
    ):
        if content is None:
            continue
        await ctx.db.execute(
            "INSERT INTO invoicing_documents (tenant_id, invoice_id, kind, content, sha256, "
            "media_type, filename) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            ctx.tenant_id,
            invoice_id,
            kind,
            content,
            hashlib.sha256(content).hexdigest(),
            media,
            filename,
        )
    return True


async def _render_task(ctx: PluginContext, row: Any) -> None:
    await render_documents(ctx, UUID(str(row["invoice_id"])))


OUTBOX_TASKS["render_documents"] = _render_task


async def stored_document(ctx: PluginContext, invoice_id: UUID, kind: str) -> Any:
    """The stored document row (content, media type, file name, digest) or ``None``."""
    return await ctx.db.fetchrow(
        "SELECT content, media_type, filename, sha256 FROM invoicing_documents "
        "WHERE tenant_id = $1 AND invoice_id = $2 AND kind = $3",
        ctx.tenant_id,
        invoice_id,
        kind,
    )


async def _download(plugin: PluginContext, invoice_id: UUID, kind: str) -> Response[bytes]:
    row = await stored_document(plugin, invoice_id, kind)
    if row is None:
        return Response(
            content=json.dumps(
                {"detail": f"invoice {invoice_id} has no issued {kind} document (yet)"}
            ).encode(),
            status_code=404,
            media_type="application/json",
        )
    return Response(
        content=bytes(row["content"]),
        media_type=row["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{row["filename"]}"',
            "X-Content-SHA256": row["sha256"],
            "Cache-Control": "private, max-age=0",
        },
    )


@get("/invoices/{invoice_id:uuid}/pdf")
async def download_pdf(plugin: PluginContext, invoice_id: UUID) -> Response[bytes]:
    """The issued PDF (Factur-X) exactly as sent."""
    return await _download(plugin, invoice_id, "pdf")


@get("/invoices/{invoice_id:uuid}/factur-x.xml")
async def download_cii(plugin: PluginContext, invoice_id: UUID) -> Response[bytes]:
    """The issued CII XML (Factur-X EN 16931)."""
    return await _download(plugin, invoice_id, "cii")


@get("/invoices/{invoice_id:uuid}/ubl.xml")
async def download_ubl(plugin: PluginContext, invoice_id: UUID) -> Response[bytes]:
    """The issued UBL 2.1 XML (Peppol BIS 3)."""
    return await _download(plugin, invoice_id, "ubl")


def api_routes() -> list[Any]:
    """Downloads under ``/api/v1/apps/invoicing/``."""
    return [download_pdf, download_cii, download_ubl]


def page_routes() -> list[Any]:
    """The same downloads for the pages (session sign-in)."""
    return [download_pdf, download_cii, download_ubl]
