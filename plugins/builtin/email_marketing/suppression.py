"""The workspace's suppression list: addresses no marketing email goes to.

One row per address and reason: ``bounce-hard`` (the address does not exist),
``bounce-soft`` (``soft_bounce_limit`` soft or policy bounces of different messages
within ``soft_bounce_days``), ``complaint`` (marked as spam: permanent),
``unsubscribe`` and ``manual`` (added by an admin). The send pipeline asks
:func:`suppressed` for a batch of recipients; every path that learns something about
an address (a bounce report, an SMTP reply at send time, a complaint, an unsubscribe,
an admin) goes through :func:`suppress`, which is idempotent.

Admins list the entries and add or remove manual ones and bounces (the address may
have been fixed); complaints and unsubscribes are the person's own decision and are
undone only by their own confirmed opt-in (:mod:`.consent`), never by an admin or an
import.
"""

from __future__ import annotations

from enum import StrEnum
from gettext import gettext as _
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from orbit.plugins.api import Page, PluginContext, Request, delete, escape, get, post
from orbit.plugins.builtin.email_marketing.errors import invalid, not_found

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime


class Reason(StrEnum):
    """Why an address is suppressed."""

    BOUNCE_HARD = "bounce-hard"
    BOUNCE_SOFT = "bounce-soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"


ADMIN_REMOVABLE = frozenset({Reason.MANUAL, Reason.BOUNCE_HARD, Reason.BOUNCE_SOFT})
"""Reasons an admin may lift; a complaint or an unsubscribe only the person can undo."""
MAX_PAGE = 500


def normalise(email: str) -> str:
    """The form addresses are compared in: trimmed, lower case."""
    return email.strip().lower()


async def suppressed(ctx: PluginContext, emails: Iterable[str]) -> set[str]:
    """Those of ``emails`` (as given) that must not be sent to, in one query."""
    given = {email: normalise(email) for email in emails}
    if not given:
        return set()
    rows = await ctx.db.fetch(
        "SELECT DISTINCT email FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = ANY($2::text[])",
        ctx.tenant_id,
        list(set(given.values())),
    )
    hit = {row["email"] for row in rows}
    return {email for email, key in given.items() if key in hit}


async def suppress(
    ctx: PluginContext, email: str, reason: Reason | str, source: str, detail: str = ""
) -> bool:
    """Add ``email`` to the list for ``reason``; ``False`` when it was there already.

    An unsubscribe or a complaint also withdraws the address's consents in the ledger.
    A new entry is announced as ``email_marketing.address_suppressed`` (sequences let
    the contact go at once).
    """
    address = normalise(email)
    if "@" not in address.strip("@"):
        raise ValueError(f"email {email!r} is not an address")
    reason = Reason(reason)
    status = await ctx.db.execute(
        "INSERT INTO email_marketing_suppressions (tenant_id, email, reason, source, detail) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, email, reason) DO NOTHING",
        ctx.tenant_id,
        address,
        reason.value,
        source[:200],
        detail[:1000],
    )
    if reason in {Reason.UNSUBSCRIBE, Reason.COMPLAINT}:
        # The consent ledger shows when the person took their consent back.
        await ctx.db.execute(
            "UPDATE email_marketing_consents SET status = 'withdrawn', withdrawn_at = now() "
            "WHERE tenant_id = $1 AND email = $2 AND status <> 'withdrawn'",
            ctx.tenant_id,
            address,
        )
    added = status.endswith(" 1")
    if added:
        await ctx.events.emit(
            "email_marketing.address_suppressed", {"email": address, "reason": reason.value}
        )
    return added


async def unsuppress(ctx: PluginContext, email: str, reason: Reason | str) -> bool:
    """Lift one entry an admin may lift; ``False`` when there was none."""
    reason = Reason(reason)
    if reason not in ADMIN_REMOVABLE:
        raise PermissionError(
            f"a {reason.value} suppression is the person's own choice: "
            "only their confirmed opt-in lifts it"
        )
    status = await ctx.db.execute(
        "DELETE FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = $2 AND reason = $3",
        ctx.tenant_id,
        normalise(email),
        reason.value,
    )
    return status.endswith(" 1")


async def lift_for_opt_in(ctx: PluginContext, email: str) -> None:
    """The person confirmed an opt-in themselves: their unsubscribe no longer holds.

    A complaint stays (permanent), as do bounces (the address still fails).
    """
    await ctx.db.execute(
        "DELETE FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = $2 AND reason = $3",
        ctx.tenant_id,
        normalise(email),
        Reason.UNSUBSCRIBE.value,
    )


async def entries(
    ctx: PluginContext,
    *,
    q: str = "",
    reason: Reason | None = None,
    before: tuple[datetime, str, str] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest entries first (keyset after ``before``: created_at, email, reason)."""
    limit = min(max(limit, 1), MAX_PAGE)
    rows = await ctx.db.fetch(
        "SELECT email, reason, source, detail, created_at FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND ($2 = '' OR email LIKE '%' || $2 || '%') "
        "AND ($3::text IS NULL OR reason = $3) "
        "AND ($4::timestamptz IS NULL OR (created_at, email, reason) < ($4, $5, $6)) "
        "ORDER BY created_at DESC, email DESC, reason DESC LIMIT $7",
        ctx.tenant_id,
        normalise(q).replace("%", "").replace("_", r"\_"),
        reason.value if reason else None,
        before[0] if before else None,
        before[1] if before else "",
        before[2] if before else "",
        limit,
    )
    return [dict(row) for row in rows]


async def for_email(ctx: PluginContext, email: str) -> list[dict[str, Any]]:
    """Every entry of one address (a person's data export)."""
    rows = await ctx.db.fetch(
        "SELECT email, reason, source, detail, created_at FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = $2 ORDER BY created_at",
        ctx.tenant_id,
        normalise(email),
    )
    return [dict(row) for row in rows]


# --- the admin API and page ---------------------------------------------------------------


class ManualEntry(msgspec.Struct, forbid_unknown_fields=True):
    """An address an admin puts on the list."""

    email: str
    detail: str = ""


def _check_email(email: str) -> str:
    address = normalise(email)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or len(address) > 254 or " " in address:  # noqa: PLR2004
        raise invalid({"email": f"{email!r} is not an email address"})
    return address


def _reason(value: str | None, field: str = "reason") -> Reason | None:
    if not value:
        return None
    try:
        return Reason(value)
    except ValueError:
        raise invalid({field: f"one of {', '.join(r.value for r in Reason)}"}) from None


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "created_at": row["created_at"].isoformat(),
        "removable": row["reason"] in ADMIN_REMOVABLE,
    }


@get("/suppressions")
async def list_suppressions(
    plugin: PluginContext, q: str = "", reason: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """The workspace's suppression list, newest first (``q`` filters by address)."""
    rows = await entries(plugin, q=q, reason=_reason(reason), limit=limit)
    return {"items": [_entry(row) for row in rows]}


@post("/suppressions")
async def add_suppression(plugin: PluginContext, data: ManualEntry) -> dict[str, Any]:
    """Put an address on the list by hand (idempotent)."""
    address = _check_email(data.email)
    added = await suppress(plugin, address, Reason.MANUAL, "admin", data.detail)
    return {"email": address, "reason": Reason.MANUAL.value, "added": added}


@delete("/suppressions/{email:str}", status_code=204)
async def remove_suppression(plugin: PluginContext, email: str, reason: str = "manual") -> None:
    """Lift a manual or bounce entry; complaints and unsubscribes are refused (403)."""
    chosen = _reason(reason) or Reason.MANUAL
    if chosen not in ADMIN_REMOVABLE:
        raise PermissionDeniedException(
            f"a {chosen.value} suppression is the person's own choice: only their opt-in lifts it"
        )
    if not await unsuppress(plugin, email, chosen):
        raise not_found(f"{chosen.value} suppression of", normalise(email))


API_ROUTES = [list_suppressions, add_suppression, remove_suppression]
"""Under ``/api/v1/apps/email_marketing/``."""


def _label(reason: Reason) -> str:
    return {
        Reason.BOUNCE_HARD: _("Hard bounce"),
        Reason.BOUNCE_SOFT: _("Repeated soft bounces"),
        Reason.COMPLAINT: _("Spam complaint"),
        Reason.UNSUBSCRIBE: _("Unsubscribed"),
        Reason.MANUAL: _("Added by an admin"),
    }[reason]


@get("/deliverability")
async def deliverability_page(plugin: PluginContext, q: str = "") -> Page:
    """The suppression list with add and remove forms, and where bounces come in."""
    from orbit.plugins.builtin.email_marketing.inbound import webhook_urls  # noqa: PLC0415
    from orbit.plugins.builtin.email_marketing.pages import _menu  # noqa: PLC0415

    rows = await entries(plugin, q=q, limit=200)
    csrf = plugin.csrf_field()
    lines = []
    for row in rows:
        remove = ""
        if row["reason"] in ADMIN_REMOVABLE:
            remove = (
                f'<form method="post" action="{escape(plugin.url("/deliverability/remove"))}">'
                f'{csrf}<input type="hidden" name="email" value="{escape(row["email"])}">'
                f'<input type="hidden" name="reason" value="{escape(row["reason"])}">'
                f'<button type="submit">{escape(_("Remove"))}</button></form>'
            )
        lines.append(
            f"<tr><td>{escape(row['email'])}</td>"
            f"<td>{escape(_label(Reason(row['reason'])))}</td>"
            f"<td>{escape(row['detail'][:120])}</td>"
            f"<td>{escape(row['created_at'].strftime('%Y-%m-%d %H:%M'))} UTC</td>"
            f"<td>{remove}</td></tr>"
        )
    urls = webhook_urls(plugin)
    html = (
        f"{_menu(plugin, '/deliverability')}{await _recent_bounces(plugin)}"
        f"<h2>{escape(_('Suppression list'))}</h2>"
        f'<form method="get"><input name="q" value="{escape(q)}" '
        f'placeholder="{escape(_("Search addresses"))}"></form>'
        f'<form method="post" action="{escape(plugin.url("/deliverability/add"))}" '
        f'id="suppression-add">{csrf}<input name="email" type="email" required '
        f'placeholder="{escape(_("Address to suppress"))}">'
        f'<button type="submit">{escape(_("Suppress"))}</button></form>'
        f'<table id="suppressions"><thead><tr><th>{escape(_("Address"))}</th>'
        f"<th>{escape(_('Reason'))}</th><th>{escape(_('Detail'))}</th>"
        f"<th>{escape(_('Since'))}</th><th></th></tr></thead><tbody>{''.join(lines)}</tbody></table>"
        f"<h2>{escape(_('Bounce webhooks'))}</h2>"
        f"<p>{escape(_('Amazon SES (SNS subscription)'))}: <code>{escape(urls['ses'])}</code></p>"
        f"<p>{escape(_('Signed JSON'))}: <code>{escape(urls['hook'])}</code></p>"
    )
    return Page(_("Deliverability"), html)


async def _recent_bounces(ctx: PluginContext) -> str:
    """Bounces and complaints of the last 30 days, by kind and where they came from."""
    rows = await ctx.db.fetch(
        "SELECT kind, source, count(*) AS n FROM email_marketing_bounces "
        "WHERE tenant_id = $1 AND occurred_at > now() - interval '30 days' "
        "GROUP BY kind, source ORDER BY kind, source",
        ctx.tenant_id,
    )
    if not rows:
        return f"<p>{escape(_('No bounces or complaints in the last 30 days.'))}</p>"
    cells = "".join(
        f"<tr><td>{escape(row['kind'])}</td><td>{escape(row['source'])}</td>"
        f"<td>{row['n']}</td></tr>"
        for row in rows
    )
    return (
        f"<h2>{escape(_('Bounces and complaints, last 30 days'))}</h2>"
        f'<table id="recent-bounces"><thead><tr><th>{escape(_("Kind"))}</th>'
        f"<th>{escape(_('Source'))}</th><th>{escape(_('Count'))}</th></tr></thead>"
        f"<tbody>{cells}</tbody></table>"
    )


@post("/deliverability/add")
async def deliverability_add(plugin: PluginContext, request: Request[Any, Any, Any]) -> Redirect:
    """The page's add form."""
    form = await request.form()
    await suppress(plugin, _check_email(str(form.get("email", ""))), Reason.MANUAL, "admin")
    return Redirect(plugin.url("/deliverability"))


@post("/deliverability/remove")
async def deliverability_remove(plugin: PluginContext, request: Request[Any, Any, Any]) -> Redirect:
    """The page's remove buttons."""
    form = await request.form()
    chosen = _reason(str(form.get("reason", "manual"))) or Reason.MANUAL
    if chosen not in ADMIN_REMOVABLE:
        raise PermissionDeniedException("only manual and bounce entries can be removed")
    await unsuppress(plugin, str(form.get("email", "")), chosen)
    return Redirect(plugin.url("/deliverability"))


PAGE_ROUTES = [deliverability_page, deliverability_add, deliverability_remove]
"""Under ``/t/{slug}/apps/email_marketing/``."""
