"""The consent ledger and double opt-in.

GDPR Art. 7(1): a sender must be able to *demonstrate* consent. Every consent is a
ledger row: the address (and contact), the purpose (``newsletter``, ``list:{id}``), the
legal basis (Art. 6(1)), the version of the text the person agreed to, where it came
from (a form, an import, the API), the IP address and browser, and when it was
requested, confirmed and withdrawn. The rows of a contact are in their data export
and are deleted when the contact is erased.

Double opt-in: :func:`request_double_opt_in` writes a pending row and mails a link to
a public page (a signed token, valid seven days). Opening the link only shows the page
(mail scanners and link prefetchers open links); the person's one click posts the
form, which confirms the row with the confirming request's IP and browser.

Imports into lists need a declared legal basis (:func:`check_import`), and never bring
back an address on the suppression list: those rows are set aside and reported.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from gettext import gettext as _
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from uuid_utils.compat import uuid7

from orbit.plugins.api import (
    PluginContext,
    PublicGate,
    PublicPage,
    Request,
    escape,
    get,
    post,
)
from orbit.plugins.builtin.email_marketing import suppression
from orbit.plugins.builtin.email_marketing.errors import invalid

if TYPE_CHECKING:
    from collections.abc import Iterable

LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
"""GDPR Art. 6(1) (a)–(f): what a list import must declare."""
CONFIRM_PURPOSE = "consent-confirm"
CONFIRM_FOR = timedelta(days=7)
MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class ImportCheck:
    """What an import into a list may add, and what it must leave out."""

    allowed: list[str]
    """Addresses (as given) that may be added; each got a ledger row."""
    suppressed: list[str]
    """Addresses on the suppression list: never added back by an import."""


def _clip(value: str | None) -> str:
    return (value or "")[:MAX_TEXT]


async def record(
    ctx: PluginContext,
    *,
    email: str,
    purpose: str,
    legal_basis: str,
    source: str,
    contact_id: UUID | None = None,
    text_version: str = "",
    ip: str | None = None,
    user_agent: str = "",
    pending: bool = False,
) -> UUID:
    """Write one ledger row; its id. ``pending`` awaits the person's confirmation."""
    problems = {}
    if "@" not in email.strip("@ "):
        problems["email"] = f"{email!r} is not an email address"
    if not purpose.strip():
        problems["purpose"] = "say what the consent is for"
    if legal_basis not in LEGAL_BASES:
        problems["legal_basis"] = f"must be one of {', '.join(LEGAL_BASES)}"
    if problems:
        raise invalid(problems)
    consent_id = uuid7()
    await ctx.db.execute(
        "INSERT INTO email_marketing_consents (tenant_id, id, contact_id, email, purpose, "
        "legal_basis, text_version, source, status, ip, user_agent, confirmed_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11, "
        "CASE WHEN $9 = 'confirmed' THEN now() END)",
        ctx.tenant_id,
        consent_id,
        contact_id,
        suppression.normalise(email),
        _clip(purpose),
        legal_basis,
        _clip(text_version),
        _clip(source),
        "pending" if pending else "confirmed",
        ip or None,
        _clip(user_agent),
    )
    return consent_id


async def request_double_opt_in(
    ctx: PluginContext,
    *,
    email: str,
    purpose: str,
    source: str,
    text_version: str = "",
    contact_id: UUID | None = None,
    ip: str | None = None,
    user_agent: str = "",
) -> tuple[UUID, str]:
    """A pending consent and the link that confirms it, mailed to ``email``.

    Sent through the platform's mail outbox in this transaction, so the confirmation
    never waits behind a campaign. Returns the consent's id and the link.
    """
    consent_id = await record(
        ctx,
        email=email,
        purpose=purpose,
        legal_basis="consent",
        source=source,
        contact_id=contact_id,
        text_version=text_version,
        ip=ip,
        user_agent=user_agent,
        pending=True,
    )
    token = ctx.sign({"c": str(consent_id)}, CONFIRM_PURPOSE, max_age=CONFIRM_FOR)
    link = ctx.url(f"/consent/{token}", public=True)
    await ctx.mail.send(
        email,
        _("Please confirm your subscription"),
        _(
            "Someone, hopefully you, asked to receive our emails at this address.\n\n"
            "To confirm, open this link and press the button:\n{link}\n\n"
            "If it was not you, ignore this message: nothing will be sent."
        ).format(link=link),
    )
    return consent_id, link


async def confirm(
    ctx: PluginContext, consent_id: UUID, *, ip: str | None, user_agent: str
) -> dict[str, Any] | None:
    """Confirm a pending consent (once; again is a no-op); the row, or ``None``."""
    row = await ctx.db.fetchrow(
        "UPDATE email_marketing_consents SET status = 'confirmed', confirmed_at = now(), "
        "confirm_ip = $3::inet, confirm_user_agent = $4 "
        "WHERE tenant_id = $1 AND id = $2 AND status = 'pending' "
        "RETURNING id, email, purpose, contact_id, status, confirmed_at",
        ctx.tenant_id,
        consent_id,
        ip or None,
        _clip(user_agent),
    )
    if row is None:
        row = await ctx.db.fetchrow(
            "SELECT id, email, purpose, contact_id, status, confirmed_at "
            "FROM email_marketing_consents WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            consent_id,
        )
        return None if row is None else dict(row)
    # The person asked for mail themselves: their earlier unsubscribe no longer holds.
    await suppression.lift_for_opt_in(ctx, row["email"])
    purpose: str = row["purpose"]
    if purpose.startswith("list:") and row["contact_id"] is not None:
        joined = await ctx.db.fetchval(
            "INSERT INTO email_marketing_list_members (tenant_id, list_id, contact_id) "
            "SELECT $1, id, $3 FROM email_marketing_lists WHERE tenant_id = $1 AND id::text = $2 "
            "ON CONFLICT DO NOTHING RETURNING list_id",
            ctx.tenant_id,
            purpose.removeprefix("list:"),
            row["contact_id"],
        )
        if joined is not None:
            await ctx.events.emit(
                "email_marketing.list_member_added",
                {"list_id": str(joined), "contact_ids": [str(row["contact_id"])]},
            )
    # Sequences triggered by a confirmed opt-in enrol the person.
    await ctx.events.emit(
        "email_marketing.opt_in_confirmed",
        {
            "consent_id": str(row["id"]),
            "contact_id": str(row["contact_id"]) if row["contact_id"] else None,
            "email": row["email"],
            "purpose": purpose,
        },
    )
    return dict(row)


async def check_import(
    ctx: PluginContext,
    emails: Iterable[str],
    *,
    legal_basis: str | None,
    purpose: str,
    source: str,
    text_version: str = "",
    contact_of: dict[str, UUID] | None = None,
) -> ImportCheck:
    """Which addresses an import into a list may add; ledger rows for those.

    A missing or unknown ``legal_basis`` is a 400 naming the field, with nothing
    written. Suppressed addresses are left out whatever the basis. ``contact_of``
    links an address's ledger row to its contact.
    """
    if legal_basis not in LEGAL_BASES:
        raise invalid({"legal_basis": f"declare the legal basis, one of {', '.join(LEGAL_BASES)}"})
    given = [email for email in emails if email.strip()]
    blocked = await suppression.suppressed(ctx, given)
    allowed = [email for email in given if email not in blocked]
    if allowed:
        await ctx.db.execute(
            "INSERT INTO email_marketing_consents (tenant_id, id, email, contact_id, purpose, "
            "legal_basis, text_version, source, status, confirmed_at) "
            "SELECT $1, c.id, c.email, c.contact_id, $4, $5, $6, $7, 'confirmed', now() "
            "FROM unnest($2::uuid[], $3::text[], $8::uuid[]) AS c (id, email, contact_id)",
            ctx.tenant_id,
            [uuid7() for _ in allowed],
            [suppression.normalise(email) for email in allowed],
            _clip(purpose),
            legal_basis,
            _clip(text_version),
            _clip(source),
            [(contact_of or {}).get(email) for email in allowed],
        )
    return ImportCheck(allowed=allowed, suppressed=[e for e in given if e in blocked])


_COLUMNS = (
    "id, email, purpose, legal_basis, text_version, source, status, host(ip) AS ip, "
    "user_agent, requested_at, confirmed_at, host(confirm_ip) AS confirm_ip, "
    "confirm_user_agent, withdrawn_at"
)


async def _contact_email(ctx: PluginContext, contact_id: UUID) -> str | None:
    contact = await ctx.contacts.get(contact_id)
    return suppression.normalise(contact.email) if contact and contact.email else None


async def export_contact(ctx: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
    """Everything deliverability keeps about a person: consent proof, bounces, suppressions."""
    email = await _contact_email(ctx, contact_id)
    consents = await ctx.db.fetch(
        f"SELECT {_COLUMNS} FROM email_marketing_consents WHERE tenant_id = $1 "
        "AND (contact_id = $2 OR email = $3) ORDER BY requested_at",
        ctx.tenant_id,
        contact_id,
        email,
    )
    bounces = await ctx.db.fetch(
        "SELECT message_id, email, kind, status, diagnostic, source, occurred_at "
        "FROM email_marketing_bounces WHERE tenant_id = $1 "
        "AND (contact_id = $2 OR email = $3) ORDER BY occurred_at",
        ctx.tenant_id,
        contact_id,
        email,
    )
    suppressions = await suppression.for_email(ctx, email) if email else []
    if not (consents or bounces or suppressions):
        return None
    return {
        "consents": [_jsonable(row) for row in consents],
        "bounces": [_jsonable(row) for row in bounces],
        "suppressions": [_jsonable(row) for row in suppressions],
    }


def _jsonable(row: Any) -> dict[str, Any]:
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, UUID):
            out[key] = str(value)
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


async def erase_contact(ctx: PluginContext, contact_id: UUID) -> None:
    """Delete a person's consent proof and bounce log.

    Their suppression entries stay: honouring an objection to marketing (GDPR
    Art. 21(3)) needs the address kept on the do-not-send list.
    """
    email = await _contact_email(ctx, contact_id)
    for table in ("email_marketing_consents", "email_marketing_bounces"):
        await ctx.db.execute(
            f"DELETE FROM {table} WHERE tenant_id = $1 AND (contact_id = $2 OR email = $3)",
            ctx.tenant_id,
            contact_id,
            email,
        )


# --- importing into a list (API) ---------------------------------------------------------

MAX_IMPORT = 1000


class ListImport(msgspec.Struct, forbid_unknown_fields=True):
    """Contacts to add to a list, with the legal basis for mailing them."""

    contact_ids: list[UUID]
    legal_basis: str | None = None
    source: str = "import"
    text_version: str = ""


@post("/lists/{list_id:uuid}/import")
async def import_into_list(
    plugin: PluginContext, list_id: UUID, data: ListImport
) -> dict[str, Any]:
    """Add contacts to a list under a declared legal basis; suppressed addresses stay out.

    Each added address gets a ledger row (basis, source, text version). Contacts
    without an email address are reported, not added.
    """
    from orbit.plugins.builtin.email_marketing import audiences  # noqa: PLC0415

    if not 1 <= len(data.contact_ids) <= MAX_IMPORT:
        raise invalid({"contact_ids": f"1 to {MAX_IMPORT} contact ids"})
    if data.legal_basis not in LEGAL_BASES:
        raise invalid({"legal_basis": f"declare the legal basis, one of {', '.join(LEGAL_BASES)}"})
    await audiences.get_list(plugin, list_id)
    contact_of: dict[str, UUID] = {}
    without_email: list[str] = []
    for index, contact_id in enumerate(dict.fromkeys(data.contact_ids)):
        contact = await plugin.contacts.get(contact_id)
        if contact is None:
            raise invalid({f"contact_ids[{index}]": f"contact {contact_id} not found here"})
        if contact.email:
            contact_of.setdefault(contact.email, contact_id)
        else:
            without_email.append(str(contact_id))
    checked = await check_import(
        plugin,
        list(contact_of),
        legal_basis=data.legal_basis,
        purpose=f"list:{list_id}",
        source=data.source,
        text_version=data.text_version,
        contact_of=contact_of,
    )
    added = 0
    if checked.allowed:
        added = await audiences.add_members(
            plugin, list_id, [str(contact_of[email]) for email in checked.allowed]
        )
    return {"added": added, "suppressed": checked.suppressed, "without_email": without_email}


class OptInRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A sign-up to confirm by email (a website form forwards the visitor's IP and browser)."""

    email: str
    purpose: str = "newsletter"
    source: str = "api"
    text_version: str = ""
    contact_id: UUID | None = None
    ip: str | None = None
    user_agent: str = ""


@post("/consents/opt-in")
async def request_opt_in(plugin: PluginContext, data: OptInRequest) -> dict[str, Any]:
    """Start a double opt-in: a pending ledger row and the confirmation email."""
    if data.ip is not None:
        try:
            ipaddress.ip_address(data.ip)
        except ValueError:
            raise invalid({"ip": f"{data.ip!r} is not an IP address"}) from None
    consent_id, _link = await request_double_opt_in(
        plugin,
        email=data.email,
        purpose=data.purpose,
        source=data.source,
        text_version=data.text_version,
        contact_id=data.contact_id,
        ip=data.ip,
        user_agent=data.user_agent,
    )
    return {"id": str(consent_id), "status": "pending"}


@get("/consents")
async def list_consents(plugin: PluginContext, email: str) -> dict[str, Any]:
    """The ledger rows of one address, oldest first."""
    rows = await plugin.db.fetch(
        f"SELECT {_COLUMNS} FROM email_marketing_consents WHERE tenant_id = $1 AND email = $2 "
        "ORDER BY requested_at",
        plugin.tenant_id,
        suppression.normalise(email),
    )
    return {"items": [_jsonable(row) for row in rows]}


API_ROUTES = [import_into_list, request_opt_in, list_consents]
"""Under ``/api/v1/apps/email_marketing/``."""


# --- the confirmation page (public) ------------------------------------------------------


def _client(request: Request[Any, Any, Any]) -> tuple[str | None, str]:
    host = request.client.host if request.client else None
    return host, request.headers.get("user-agent", "")


@get("/consent/{token:str}")
async def confirm_page(public: PublicGate, token: str) -> PublicPage:
    """The mailed link: shows a button; opening the link confirms nothing."""
    async with public.open(token, CONFIRM_PURPOSE) as (ctx, data):
        row = await ctx.db.fetchrow(
            "SELECT email, status FROM email_marketing_consents WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            UUID(data["c"]),
        )
    if row is None:
        return _not_valid()
    if row["status"] == "confirmed":
        return _confirmed_page(row["email"])
    question = escape(_("Confirm that you want to receive our emails at"))
    return PublicPage(
        _("Confirm your subscription"),
        f'<form method="post" id="consent-confirm"><p>{question} '
        f"<strong>{escape(row['email'])}</strong>.</p>"
        f'<button type="submit">{escape(_("Yes, subscribe me"))}</button></form>',
    )


@post("/consent/{token:str}", status_code=200)
async def confirm_submit(
    public: PublicGate, token: str, request: Request[Any, Any, Any]
) -> PublicPage:
    """The person's click: confirms the consent with this request's address and browser."""
    ip, user_agent = _client(request)
    async with public.open(token, CONFIRM_PURPOSE) as (ctx, data):
        row = await confirm(ctx, UUID(data["c"]), ip=ip, user_agent=user_agent)
    if row is None:
        return _not_valid()
    return _confirmed_page(row["email"])


def _not_valid() -> PublicPage:
    return PublicPage(
        _("Link not valid"), f"<p>{escape(_('This link is not valid.'))}</p>", status_code=404
    )


def _confirmed_page(email: str) -> PublicPage:
    return PublicPage(
        _("Subscription confirmed"),
        f'<p id="consent-confirmed">{escape(_("Thank you: we will send our emails to"))} '
        f"<strong>{escape(email)}</strong>.</p>",
    )


PUBLIC_ROUTES = [confirm_page, confirm_submit]
"""The public handlers of consent (``/p/email_marketing/consent/{token}``)."""
