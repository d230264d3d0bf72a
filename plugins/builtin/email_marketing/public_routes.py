"""What recipients reach without an Orbit login (``/p/email_marketing/…``).

- ``GET /o/{token}``: the open pixel (a 1×1 GIF), recording an open;
- ``GET /c/{token}``: a tracked link, recording a click and redirecting to its target;
- ``GET /u/{token}``: the unsubscribe page and preference centre. It changes nothing:
  mail scanners and link previews open every link of an email;
- ``POST /u/{token}``: unsubscribes at once, idempotently — the RFC 8058 one-click
  ``POST`` a mail provider sends (body ``List-Unsubscribe=One-Click``) or the page's
  button;
- ``POST /u/{token}/lists``: the preference centre's choice of lists.

Tokens carry only the message's id (signed, per purpose): no address or name in URLs.
"""

from __future__ import annotations

import base64
import json
from gettext import gettext as _
from typing import TYPE_CHECKING, Any
from uuid import UUID

from orbit.plugins.api import (
    PublicGate,
    PublicPage,
    Request,
    Response,
    escape,
    get,
    post,
)
from orbit.plugins.builtin.email_marketing import suppression, templates, tracking

if TYPE_CHECKING:
    from orbit.plugins.api import PluginContext

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0"}


def _client(request: Request[Any, Any, Any]) -> tuple[str | None, str | None]:
    host = request.client.host if request.client else None
    return host, request.headers.get("user-agent")


@get("/o/{token:str}", include_in_schema=False)
async def open_pixel(
    public: PublicGate, request: Request[Any, Any, Any], token: str
) -> Response[bytes]:
    """The open pixel: an open is recorded (a machine's or a person's), the image returned."""
    ip, agent = _client(request)
    async with public.open(token.removesuffix(".gif"), "open") as (ctx, data):
        await tracking.record_open(ctx, UUID(data["m"]), ip=ip, user_agent=agent)
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


async def _target(ctx: PluginContext, message_id: UUID, index: int) -> str | None:
    row = await ctx.db.fetchrow(
        """
        SELECT t.id, t.updated_at, t.subject, t.preheader, t.blocks
        FROM email_marketing_messages m
        JOIN email_marketing_campaigns c ON c.tenant_id = m.tenant_id AND c.id = m.campaign_id
        JOIN email_marketing_templates t ON t.tenant_id = c.tenant_id AND t.id = c.template_id
        WHERE m.tenant_id = $1 AND m.id = $2
        """,
        ctx.tenant_id,
        message_id,
    )
    if row is None:
        return None
    blocks = json.loads(row["blocks"]) if isinstance(row["blocks"], str) else row["blocks"]
    made = templates.compiled(
        (ctx.tenant_id, row["id"], row["updated_at"]), row["subject"], row["preheader"], blocks
    )
    return made.links[index] if 0 <= index < len(made.links) else None


@get("/c/{token:str}", include_in_schema=False)
async def click(public: PublicGate, request: Request[Any, Any, Any], token: str) -> Response[Any]:
    """A tracked link: the click is recorded and the browser sent on to the link's target."""
    ip, agent = _client(request)
    async with public.open(token, "click") as (ctx, data):
        message_id, index = UUID(data["m"]), int(data["l"])
        target = await _target(ctx, message_id, index)
        await tracking.record_click(
            ctx, message_id, link=index, url=target or "(hidden link)", ip=ip, user_agent=agent
        )
    if target is None:
        return PublicPage(_("Nothing here"), "<p>" + escape(_("This link leads nowhere.")) + "</p>")
    return Response(b"", status_code=302, headers={"Location": target, **_NO_STORE})


def _masked(email: str) -> str:
    local, _at, domain = email.partition("@")
    return f"{local[:1]}{'•' * max(1, len(local) - 1)}@{domain}"


async def _recipient(ctx: PluginContext, message_id: UUID) -> Any:
    return await ctx.db.fetchrow(
        "SELECT m.id, m.email, m.contact_id, m.unsubscribed_at, c.from_name, c.from_email "
        "FROM email_marketing_messages m JOIN email_marketing_campaigns c "
        "ON c.tenant_id = m.tenant_id AND c.id = m.campaign_id "
        "WHERE m.tenant_id = $1 AND m.id = $2",
        ctx.tenant_id,
        message_id,
    )


async def _lists_of(ctx: PluginContext, contact_id: UUID | None) -> list[Any]:
    if contact_id is None:
        return []
    return await ctx.db.fetch(
        "SELECT l.id, l.name FROM email_marketing_list_members m JOIN email_marketing_lists l "
        "ON l.tenant_id = m.tenant_id AND l.id = m.list_id "
        "WHERE m.tenant_id = $1 AND m.contact_id = $2 ORDER BY lower(l.name)",
        ctx.tenant_id,
        contact_id,
    )


@get("/u/{token:str}", include_in_schema=False)
async def unsubscribe_page(public: PublicGate, token: str) -> PublicPage:
    """The unsubscribe page and preference centre: shows, changes nothing."""
    async with public.open(token, "unsubscribe") as (ctx, data):
        recipient = await _recipient(ctx, UUID(data["m"]))
        lists = await _lists_of(ctx, recipient["contact_id"]) if recipient else []
    if recipient is None:
        return PublicPage(
            _("Unsubscribe"),
            "<p>" + escape(_("This link is no longer valid.")) + "</p>",
            status_code=404,
        )
    sender = recipient["from_name"] or recipient["from_email"]
    if recipient["unsubscribed_at"] is not None:
        done = _("{address} is unsubscribed from {sender}'s emails.").format(
            address=_masked(recipient["email"]), sender=sender
        )
        return PublicPage(_("Unsubscribed"), f"<p>{escape(done)}</p>")
    question = _("Stop all emails from {sender} to {address}?").format(
        sender=sender, address=_masked(recipient["email"])
    )
    html = [
        f"<p>{escape(question)}</p>",
        (
            f'<form method="post" action="{escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{escape(_("Unsubscribe"))}</button></form>'
        ),
    ]
    if lists:
        boxes = "".join(
            f'<label><input type="checkbox" name="keep" value="{row["id"]}" checked> '
            f"{escape(row['name'])}</label><br>"
            for row in lists
        )
        html.append(
            f"<h2>{escape(_('Or choose what you get'))}</h2>"
            f'<form method="post" action="{escape(token)}/lists">{boxes}'
            f'<button type="submit">{escape(_("Save my choice"))}</button></form>'
        )
    return PublicPage(_("Unsubscribe"), "".join(html))


async def unsubscribe(
    ctx: PluginContext, message_id: UUID, ip: str | None, agent: str | None
) -> Any:
    """Unsubscribe a message's recipient (idempotent), withdraw consents, suppress the address."""
    message = await tracking.record_unsubscribe(
        ctx, message_id, ip=ip, user_agent=agent, source="one-click"
    )
    recipient = await _recipient(ctx, message_id) if message is not None else None
    if recipient is not None:
        # Suppressed, and the address's consents withdrawn in the ledger.
        await suppression.suppress(
            ctx, recipient["email"], suppression.Reason.UNSUBSCRIBE, f"one-click:{message_id}"
        )
    return recipient


@post("/u/{token:str}", status_code=200, include_in_schema=False)
async def unsubscribe_now(
    public: PublicGate, request: Request[Any, Any, Any], token: str
) -> PublicPage:
    """RFC 8058 one-click (or the page's button): unsubscribed at once, no confirmation."""
    ip, agent = _client(request)
    async with public.open(token, "unsubscribe") as (ctx, data):
        recipient = await unsubscribe(ctx, UUID(data["m"]), ip, agent)
    if recipient is None:
        return PublicPage(
            _("Unsubscribe"),
            "<p>" + escape(_("This link is no longer valid.")) + "</p>",
            status_code=404,
        )
    done = _("{address} will get no more emails from {sender}.").format(
        address=_masked(recipient["email"]),
        sender=recipient["from_name"] or recipient["from_email"],
    )
    return PublicPage(_("Unsubscribed"), f"<p>{escape(done)}</p>")


@post("/u/{token:str}/lists", status_code=200, include_in_schema=False)
async def choose_lists(
    public: PublicGate, request: Request[Any, Any, Any], token: str
) -> PublicPage:
    """The preference centre: the contact leaves the lists they unticked."""
    form = await request.form()
    keep = set(form.getall("keep")) if hasattr(form, "getall") else set()
    async with public.open(token, "unsubscribe") as (ctx, data):
        recipient = await _recipient(ctx, UUID(data["m"]))
        lists = await _lists_of(ctx, recipient["contact_id"]) if recipient else []
        leave = [row["id"] for row in lists if str(row["id"]) not in keep]
        if recipient is not None and leave:
            await ctx.db.execute(
                "DELETE FROM email_marketing_list_members WHERE tenant_id = $1 "
                "AND contact_id = $2 AND list_id = ANY($3::uuid[])",
                ctx.tenant_id,
                recipient["contact_id"],
                leave,
            )
    left = len(leave)
    message = _("Saved: you left {count} list(s).").format(count=left) if left else _("Saved.")
    return PublicPage(_("Your choice"), f"<p>{escape(message)}</p>")


def routes() -> list[Any]:
    """Every public route handler."""
    return [open_pixel, click, unsubscribe_page, unsubscribe_now, choose_lists]
