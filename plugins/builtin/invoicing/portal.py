# ruff: noqa: E501 - the document template and the page's HTML read best unwrapped
"""The customer's side of a quote: its document, and a page to accept (sign) or decline it.

Sending a quote queues ``issue_quote``: the outbox job renders the quote's document once
(a PDF through the documents part when it is there, else the HTML itself), stores the
exact bytes and their SHA-256, and emails the customer a signed, expiring link. The
link's page shows the quote and its terms *before* the signature, offers the exact
bytes for download, and accepts with a typed name and a signature drawn on a canvas
(a PNG) bound to that SHA-256 — with the client's address, user agent and the time as
evidence — or declines with a reason. Accepting makes the draft invoice and wins the deal.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from functools import cache
from typing import Annotated, Any
from uuid import UUID

from jinja2 import Environment, select_autoescape
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_410_GONE

from orbit.plugins.api import (
    PluginContext,
    PublicGate,
    PublicPage,
    Request,
    Response,
    escape,
    get,
    post,
)
from orbit.plugins.builtin.invoicing.invoices import INVOICE_TOKEN
from orbit.plugins.builtin.invoicing.lines import lines_json, totals
from orbit.plugins.builtin.invoicing.money import format_money
from orbit.plugins.builtin.invoicing.parts import load_parts
from orbit.plugins.builtin.invoicing.quotes import (
    TOKEN_PURPOSE,
    accept,
    decline,
    header_of,
    portal_token,
    quote_lines,
    quote_row,
    state,
)

MAX_SIGNATURE = 300_000
"""Bytes of a drawn signature's PNG (a canvas of a few hundred pixels is far smaller)."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_DOCUMENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quote {{ q.number }}</title>
<style>
body { font-family: sans-serif; font-size: 10pt; color: #222; margin: 2em; }
h1 { font-size: 16pt; margin: 0 0 .5em; } table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #ddd; vertical-align: top; }
td.n, th.n { text-align: right; } tr.section td { font-weight: bold; background: #f3f3f3; }
tr.optional td { color: #666; font-style: italic; } .totals { width: 50%; margin-left: 50%; }
</style></head><body>
<h1>Quote {{ q.number }}{% if q.revision > 1 %} (revision {{ q.revision }}){% endif %}</h1>
<p>{{ seller }}</p>
<p><strong>For:</strong> {{ customer.name }}{% if customer.address %}<br>{{ customer.address }}{% endif %}</p>
<p>{% if q.title %}<strong>{{ q.title }}</strong><br>{% endif %}
Valid until {{ q.expires_on }} · {{ q.currency }}{% if q.prices_include_tax %} · prices include tax{% endif %}</p>
<table><thead><tr><th>Description</th><th class="n">Quantity</th><th class="n">Unit price</th>
<th>Taxes</th><th class="n">Amount</th></tr></thead><tbody>
{% for line in lines %}{% if line.kind == 'section' %}
<tr class="section"><td colspan="5">{{ line.description }}</td></tr>
{% else %}<tr class="{{ 'optional' if line.optional and not line.selected else '' }}">
<td>{{ line.description }}{% if line.optional %} (optional{% if not line.selected %}, not included{% endif %}){% endif %}</td>
<td class="n">{{ line.quantity }} {{ line.unit_code }}</td><td class="n">{{ line.price }}</td>
<td>{{ line.taxes }}</td><td class="n">{{ line.amount }}</td></tr>{% endif %}{% endfor %}
</tbody></table>
<table class="totals">{% for label, value in summary %}<tr><td>{{ label }}</td><td class="n">{{ value }}</td></tr>{% endfor %}</table>
{% if q.notes %}<h2>Notes</h2><p>{{ q.notes }}</p>{% endif %}
{% if q.terms %}<h2>Terms</h2><p>{{ q.terms }}</p>{% endif %}
</body></html>
"""


@cache
def _environment() -> Environment:
    return Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_quote_html(ctx: PluginContext, row: Any, lines: list[Any]) -> str:
    """The quote as a standalone HTML document, every amount from the one :func:`compute`."""
    result, _ = totals(header_of(row), lines)
    currency = row["currency"].strip()

    def money(value: Any) -> str:
        return format_money(value, currency)

    rendered = []
    for item in lines_json(lines, result):
        amount = item["gross"] if item["gross"] is not None else item["net"]
        rendered.append(
            {
                **item,
                "price": money(item["unit_price"]) if item["kind"] == "item" else "",
                "taxes": ", ".join(t["name"] for t in item["taxes"]) or "—",
                "amount": money(amount) if amount is not None else "—",
            }
        )
    summary = [("Net", money(result.net_total))]
    if result.allowance_total:
        summary.insert(0, ("Discount", money(-result.allowance_total)))
    summary += [(f"{t.tax.name} on {money(t.base)}", money(t.amount)) for t in result.taxes]
    if result.rounding:
        summary.append(("Rounding", money(result.rounding)))
    summary.append(("Total", money(result.payable)))
    customer = row["customer"]
    customer = json.loads(customer) if isinstance(customer, str) else customer
    return (
        _environment()
        .from_string(_DOCUMENT)
        .render(
            q=row,
            customer=customer,
            lines=rendered,
            summary=summary,
            seller=ctx.settings.get("seller_name") or ctx.tenant_slug,
        )
    )


def _pdf_renderer() -> Any:
    for part in load_parts():
        render = getattr(part, "render_pdf", None)
        if part.__name__.endswith(".documents") and render is not None:
            return render
    return None


async def render_document(ctx: PluginContext, row: Any, lines: list[Any]) -> tuple[bytes, str]:
    """The quote's document bytes and media type: a PDF/A when the renderer is there.

    The PDF is CPU work (about 0.4 s): it runs in a thread, as the invoices' does, so the
    worker's event loop keeps serving the other workspaces meanwhile.
    """
    html = render_quote_html(ctx, row, lines)
    render_pdf = _pdf_renderer()
    if render_pdf is not None:
        return await asyncio.to_thread(render_pdf, html), "application/pdf"
    return html.encode(), "text/html; charset=utf-8"


async def issue_quote(ctx: PluginContext, task: dict[str, Any]) -> None:
    """Outbox task: render the sent quote once, keep its bytes and hash, email the link."""
    row = await quote_row(ctx, task["quote_id"], lock=True)
    if row["document_sha256"] is None:
        lines = await quote_lines(ctx, row["id"])
        document, media_type = await render_document(ctx, row, lines)
        await ctx.db.execute(
            "UPDATE invoicing_quotes SET document = $3, document_type = $4, document_sha256 = $5 "
            "WHERE tenant_id = $1 AND id = $2 AND document_sha256 IS NULL",
            ctx.tenant_id,
            row["id"],
            document,
            media_type,
            hashlib.sha256(document).hexdigest(),
        )
    customer = row["customer"]
    customer = json.loads(customer) if isinstance(customer, str) else customer
    email = customer.get("email")
    if email and "mail:send" in ctx.scopes:
        link = ctx.url(f"/quotes/{portal_token(ctx, row)}", public=True)
        await ctx.mail.send(
            email,
            f"Quote {row['number']}",
            f"Hello {customer.get('contact_name') or customer.get('name')},\n\n"
            f"your quote {row['number']} is ready. Read it, then accept or decline it here:\n"
            f"{link}\n\nIt is valid until {row['expires_on']}.\n",
        )


OUTBOX_TASKS = {"issue_quote": issue_quote}


# --- the customer's page -------------------------------------------------------------

_SIGN_SCRIPT = """
<script>
(function () {
  var canvas = document.getElementById('signature-pad');
  var field = document.getElementById('signature');
  var ctx = canvas.getContext('2d');
  var drawing = false, drawn = false;
  ctx.lineWidth = 2; ctx.lineCap = 'round'; ctx.strokeStyle = '#111';
  function point(e) {
    var r = canvas.getBoundingClientRect();
    var t = e.touches ? e.touches[0] : e;
    return [(t.clientX - r.left) * canvas.width / r.width, (t.clientY - r.top) * canvas.height / r.height];
  }
  function start(e) { drawing = true; var p = point(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); e.preventDefault(); }
  function move(e) { if (!drawing) return; var p = point(e); ctx.lineTo(p[0], p[1]); ctx.stroke(); drawn = true; e.preventDefault(); }
  function stop() { if (drawing && drawn) { field.value = canvas.toDataURL('image/png'); } drawing = false; }
  canvas.addEventListener('mousedown', start); canvas.addEventListener('mousemove', move);
  window.addEventListener('mouseup', stop);
  canvas.addEventListener('touchstart', start); canvas.addEventListener('touchmove', move);
  canvas.addEventListener('touchend', stop);
  document.getElementById('signature-clear').addEventListener('click', function () {
    ctx.clearRect(0, 0, canvas.width, canvas.height); field.value = ''; drawn = false;
  });
})();
</script>
"""


def _page(title: str, html: str, status_code: int = 200) -> PublicPage:
    return PublicPage(title, html, status_code=status_code)


def _quote_body(ctx: PluginContext, row: Any, lines: list[Any]) -> str:
    html = render_quote_html(ctx, row, lines)
    start, end = html.index("<body>") + len("<body>"), html.index("</body>")
    return f'<div class="quote-document">{html[start:end]}</div>'


async def _view(ctx: PluginContext, token: str, row: Any, message: str = "") -> PublicPage:
    lines = await quote_lines(ctx, row["id"])
    title = f"Quote {row['number']}"
    notice = f'<p class="notice" id="quote-notice">{escape(message)}</p>' if message else ""
    body = notice + _quote_body(ctx, row, lines)
    status = state(row)
    if status == "superseded":
        latest = await ctx.db.fetchrow(
            "SELECT id, expires_on FROM invoicing_quotes WHERE tenant_id = $1 AND root_id = $2 "
            "AND status <> 'draft' ORDER BY revision DESC LIMIT 1",
            ctx.tenant_id,
            row["root_id"],
        )
        text = "This quote was replaced by a newer revision."
        if latest is not None and latest["id"] != row["id"]:
            link = escape(f"{portal_token(ctx, latest)}")
            text += f' <a href="{link}" id="latest-revision">Open the latest revision</a>.'
        return _page(title, f'<p id="quote-status">{text}</p>' + body)
    if status == "accepted":
        info = (
            f'<p id="quote-status" data-status="accepted">Accepted by '
            f"{escape(row['accepted_name'])} on {escape(row['accepted_at'].isoformat())} "
            f"(document SHA-256 <code>{escape(row['accepted_document_sha256'])}</code>).</p>"
        )
        return _page(title, info + body)
    if status == "declined":
        info = (
            f'<p id="quote-status" data-status="declined">Declined: '
            f"{escape(row['declined_reason'])}</p>"
        )
        return _page(title, info + body)
    if status == "expired":
        info = f'<p id="quote-status" data-status="expired">This quote expired on {row["expires_on"]}.</p>'
        return _page(title, info + body)
    if row["document_sha256"] is None or status == "draft":
        info = '<p id="quote-status" data-status="preparing">Your quote is being prepared; reload this page in a moment.</p>'
        return _page(title, info + body)
    sha = escape(row["document_sha256"])
    actions = f"""
<p id="quote-status" data-status="sent"><a href="{escape(token)}/document" id="quote-document">Download the quote
({escape(row["document_type"].split(";")[0])})</a> · SHA-256 <code id="document-sha256">{sha}</code></p>
<h2>Accept</h2>
<form method="post" action="{escape(token)}/accept" id="accept-form">
  <input type="hidden" name="document_sha256" value="{sha}">
  <label><input type="checkbox" name="accept_terms" value="yes" required>
    I have read the quote and its terms above and accept them.</label>
  <label>Your full name <input name="name" required minlength="2" maxlength="200" autocomplete="name"></label>
  <p>Sign below:</p>
  <canvas id="signature-pad" width="480" height="160"
    style="border:1px solid #888;touch-action:none;max-width:100%"></canvas>
  <input type="hidden" name="signature" id="signature">
  <p><button type="button" id="signature-clear">Clear</button>
  <button type="submit" id="accept">Accept and sign</button></p>
</form>
<h2>Decline</h2>
<form method="post" action="{escape(token)}/decline" id="decline-form">
  <label>Why? <textarea name="reason" required maxlength="2000"></textarea></label>
  <button type="submit" id="decline">Decline</button>
</form>
{_SIGN_SCRIPT}"""
    return _page(title, body + actions)


async def _open_row(ctx: PluginContext, data: dict[str, Any]) -> Any:
    return await quote_row(ctx, UUID(data["quote"]), lock=True)


def _client(request: Request[Any, Any, Any]) -> tuple[str | None, str | None]:
    host = request.client.host if request.client is not None else None
    return host, request.headers.get("user-agent")


def _signature(value: str) -> bytes:
    prefix = "data:image/png;base64,"
    if not value.startswith(prefix):
        raise _refused("signature", "draw your signature in the box")
    try:
        png = base64.b64decode(value[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise _refused("signature", "the signature is not a PNG image") from None
    if not png.startswith(PNG_MAGIC) or len(png) > MAX_SIGNATURE:
        raise _refused("signature", "the signature is not a PNG image")
    return png


def _refused(field: str, message: str) -> HTTPException:
    from orbit.plugins.builtin.invoicing.errors import invalid  # noqa: PLC0415

    return invalid(field, message)


@get("/quotes/{token:str}")
async def view_quote(token: str, public: PublicGate) -> PublicPage:
    """The quote as the customer sees it, with accept and decline."""
    async with public.open(token, TOKEN_PURPOSE) as (ctx, data):
        row = await quote_row(ctx, UUID(data["quote"]))
        return await _view(ctx, token, row)


@get("/quotes/{token:str}/document")
async def quote_document(token: str, public: PublicGate) -> Response[bytes]:
    """The exact bytes the signature is bound to."""
    async with public.open(token, TOKEN_PURPOSE) as (ctx, data):
        row = await ctx.db.fetchrow(
            "SELECT number, document, document_type FROM invoicing_quotes "
            "WHERE tenant_id = $1 AND id = $2 AND document IS NOT NULL",
            ctx.tenant_id,
            UUID(data["quote"]),
        )
        if row is None:
            raise HTTPException(status_code=404, detail="the quote's document is not ready yet")
        extension = "pdf" if row["document_type"].startswith("application/pdf") else "html"
        return Response(
            bytes(row["document"]),
            media_type=row["document_type"],
            headers={
                "Content-Disposition": f'inline; filename="{row["number"]}.{extension}"',
                "Cache-Control": "no-store",
            },
        )


def _check_open(row: Any) -> None:
    status = state(row)
    if status == "expired":
        raise HTTPException(
            status_code=HTTP_410_GONE, detail=f"the quote expired on {row['expires_on']}"
        )
    if status != "sent" or row["document_sha256"] is None:
        raise HTTPException(
            status_code=HTTP_409_CONFLICT, detail=f"the quote is {status}, not open"
        )


@post("/quotes/{token:str}/accept", status_code=200)
async def accept_quote(
    token: str,
    public: PublicGate,
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> PublicPage:
    """Accept with a typed name and a drawn signature, bound to the document's SHA-256."""
    async with public.open(token, TOKEN_PURPOSE) as (ctx, claims):
        row = await _open_row(ctx, claims)
        _check_open(row)
        name = " ".join(str(data.get("name", "")).split())
        if not 2 <= len(name) <= 200:  # noqa: PLR2004
            raise _refused("name", "type your full name")
        if data.get("accept_terms") != "yes":
            raise _refused("accept_terms", "accept the quote's terms to sign it")
        if data.get("document_sha256") != row["document_sha256"]:
            raise _refused("document_sha256", "the quote changed since you opened it; reload it")
        signature = _signature(str(data.get("signature", "")))
        ip, agent = _client(request)
        await accept(
            ctx,
            row,
            name=name,
            signature=signature,
            document_sha256=row["document_sha256"],
            ip=ip,
            user_agent=agent,
        )
        row = await quote_row(ctx, row["id"])
        return await _view(ctx, token, row, "Thank you: the quote is accepted.")


@post("/quotes/{token:str}/decline", status_code=200)
async def decline_quote(
    token: str,
    public: PublicGate,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> PublicPage:
    """Decline with a reason."""
    async with public.open(token, TOKEN_PURPOSE) as (ctx, claims):
        row = await _open_row(ctx, claims)
        _check_open(row)
        reason = str(data.get("reason", "")).strip()
        if not 1 <= len(reason) <= 2000:  # noqa: PLR2004
            raise _refused("reason", "say why you decline (up to 2000 characters)")
        await decline(ctx, row, reason)
        row = await quote_row(ctx, row["id"])
        return await _view(ctx, token, row, "The quote is declined; thank you for telling us why.")


@get("/invoices/{token:str}")
async def view_invoice(token: str, public: PublicGate) -> PublicPage:
    """The customer's invoice: its number, amount, due date and documents."""
    async with public.open(token, INVOICE_TOKEN) as (ctx, data):
        row = await ctx.db.fetchrow(
            "SELECT i.kind, i.number, i.issue_date, i.due_date, i.payable_total, i.currency, "
            "array(SELECT d.kind FROM invoicing_documents d WHERE d.tenant_id = i.tenant_id "
            "AND d.invoice_id = i.id ORDER BY d.kind) AS documents "
            "FROM invoicing_invoices i WHERE i.tenant_id = $1 AND i.id = $2 "
            "AND i.status = 'finalized'",
            ctx.tenant_id,
            UUID(data["invoice"]),
        )
        if row is None:
            raise HTTPException(status_code=404, detail="this invoice is not available")
        what = "Credit note" if row["kind"] == "credit_note" else "Invoice"
        links = (
            " · ".join(
                f'<a href="{escape(token)}/{escape(kind)}" id="invoice-{escape(kind)}">{escape(kind.upper())}</a>'
                for kind in row["documents"]
            )
            or "The documents are being prepared; reload this page in a moment."
        )
        due = f", due on {row['due_date']}" if row["kind"] == "invoice" else ""
        amount = format_money(row["payable_total"], row["currency"].strip())
        html = (
            f'<p id="invoice-summary">{escape(what)} {escape(row["number"])} of {escape(row["issue_date"].isoformat())}: '
            f"<strong>{escape(amount)}</strong>{escape(due)}</p><p>{links}</p>"
        )
        return _page(f"{what} {row['number']}", html)


@get("/invoices/{token:str}/{kind:str}")
async def invoice_document(token: str, kind: str, public: PublicGate) -> Response[bytes]:
    """One of the invoice's issued documents, exactly as stored."""
    async with public.open(token, INVOICE_TOKEN) as (ctx, data):
        row = await ctx.db.fetchrow(
            "SELECT content, media_type, filename FROM invoicing_documents "
            "WHERE tenant_id = $1 AND invoice_id = $2 AND kind = $3",
            ctx.tenant_id,
            UUID(data["invoice"]),
            kind,
        )
        if row is None:
            raise HTTPException(status_code=404, detail="no such document for this invoice")
        return Response(
            bytes(row["content"]),
            media_type=row["media_type"],
            headers={
                "Content-Disposition": f'inline; filename="{row["filename"]}"',
                "Cache-Control": "no-store",
            },
        )


def public_routes() -> list[Any]:
    """The customer's quote and invoice pages under ``/p/invoicing/``."""
    return [view_quote, quote_document, accept_quote, decline_quote, view_invoice, invoice_document]
