"""Outgoing email through the outbox: queued in the change's transaction, sent by the worker.

Nothing talks to an SMTP server inside a request. :func:`queue_email` writes a row
with the change that causes the email (a reminder firing, later an invitation);
the worker's :func:`send_due_emails` sends what is due, one email per short
transaction, retrying with backoff and giving up after :data:`MAX_ATTEMPTS`.
Without ``ORBIT_SMTP_URL`` emails wait in the queue until a server is configured.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import aiosmtplib

from orbit.platform import validation
from orbit.platform.errors import InvalidInputError
from orbit.platform.ids import new_id
from orbit.tenants.quotas import Quotas

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from orbit.platform.db.engine import Database

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SEND_TIMEOUT = 15.0
LEASE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where email goes: ``smtp://user:password@host:587`` (STARTTLS when offered) or ``smtps://``."""

    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    sender: str

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpServer:
        """Parse ``ORBIT_SMTP_URL``."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError(f"ORBIT_SMTP_URL must look like smtp://host:587, got {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=parts.scheme == "smtps",
            sender=sender,
        )


async def queue_email(
    db: Database,
    tenant_id: UUID,
    to: str,
    subject: str,
    body: str,
    *,
    html: str | None = None,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> UUID:
    """Queue an email in the current transaction; it is sent after commit.

    ``body`` is the plain-text part; ``html`` adds an HTML alternative. ``headers``
    adds headers such as ``List-Unsubscribe`` (see :func:`checked_headers`).
    Counts against the plan's emails a month: over it, a ``QuotaExceededError`` (402)
    and nothing queued.
    """
    extra = checked_headers(headers or {})
    await Quotas(db).use_emails(tenant_id)
    email_id = new_id()
    await db.execute(
        "INSERT INTO outbox_emails (tenant_id, id, to_address, subject, body, html, reply_to, "
        "headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
        tenant_id,
        email_id,
        to,
        subject[:300],
        body,
        html,
        reply_to,
        json.dumps(extra),
    )
    return email_id


RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "return-path",
        "received",
    }
)
"""Headers Orbit writes itself; extra headers may not set them."""
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,75}$")
MAX_HEADERS = 20
MAX_HEADER_VALUE = 998


def checked_headers(headers: object) -> dict[str, str]:
    """Extra headers for an email; a 400 naming ``headers`` for an unusable one.

    Names are ASCII tokens other than :data:`RESERVED_HEADERS`; values are one line
    (no CR or LF, which would let a value add headers of its own).
    """
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        reason = f"must map at most {MAX_HEADERS} header names to values"
        raise InvalidInputError(f"headers {reason}", fields={"headers": reason})
    checked: dict[str, str] = {}
    for name, value in headers.items():
        problem = _header_problem(name, value)
        if problem is not None:
            raise InvalidInputError(f"headers: {problem}", fields={"headers": problem})
        checked[str(name)] = str(value)
    return checked


def _header_problem(name: object, value: object) -> str | None:
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        return f"{str(name)[:80]!r} is not a header name"
    if name.lower() in RESERVED_HEADERS:
        return f"{name} is set by Orbit and cannot be given"
    if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
        return f"{name} needs a text value of at most {MAX_HEADER_VALUE} characters"
    if any(ch in value for ch in "\r\n\0"):
        return f"{name}: a header value must be one line"
    return None


def checked_address(value: object, field: str) -> str:
    """One recipient's (or Reply-To) address, normalised; a 400 naming ``field``."""
    if not isinstance(value, str):
        reason = "must be one email address"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return validation.email_address(value, field)


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), timedelta(hours=1))


async def send_due_emails(db: Database, server: SmtpServer | None, batch: int = 50) -> int:
    """Send the emails that are due; returns how many were sent."""
    if server is None:
        return 0
    async with db.transaction():
        due = await db.fetch("SELECT * FROM orbit_due_emails($1)", batch)
    sent = 0
    for row in due:
        async with db.transaction(row["tenant_id"]):
            # Lease it first, so a second worker (or a crash mid-send) cannot double-send soon.
            email = await db.fetchrow(
                "UPDATE outbox_emails SET next_attempt_at = now() + $3::interval, "
                "attempts = attempts + 1 "
                "WHERE tenant_id = $1 AND id = $2 AND sent_at IS NULL AND failed_at IS NULL "
                "AND next_attempt_at <= now() RETURNING *",
                row["tenant_id"],
                row["email_id"],
                LEASE,
            )
        if email is None:
            continue
        error = await _send(server, email)
        async with db.transaction(row["tenant_id"]):
            if error is None:
                await db.execute(
                    "UPDATE outbox_emails SET sent_at = now(), last_error = NULL "
                    "WHERE tenant_id = $1 AND id = $2",
                    row["tenant_id"],
                    email["id"],
                )
                sent += 1
            else:
                gave_up = email["attempts"] >= MAX_ATTEMPTS
                await db.execute(
                    "UPDATE outbox_emails SET last_error = $3, "
                    "next_attempt_at = now() + $4::interval, "
                    "failed_at = CASE WHEN $5 THEN now() END WHERE tenant_id = $1 AND id = $2",
                    row["tenant_id"],
                    email["id"],
                    error[:500],
                    retry_delay(email["attempts"]),
                    gave_up,
                )
    return sent


def _message(server: SmtpServer, email: asyncpg.Record) -> EmailMessage:
    """The queued email as a MIME message (plain text, with an HTML alternative if any)."""
    message = EmailMessage()
    message["From"] = server.sender
    message["To"] = email["to_address"]
    message["Subject"] = email["subject"]
    if email["reply_to"]:
        message["Reply-To"] = email["reply_to"]
    headers = email["headers"]
    for name, value in (json.loads(headers) if isinstance(headers, str) else headers).items():
        message[name] = value
    message.set_content(email["body"])
    if email["html"]:
        message.add_alternative(email["html"], subtype="html")
    return message


async def _send(server: SmtpServer, email: asyncpg.Record) -> str | None:
    message = _message(server, email)
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=None if not server.implicit_tls else False,
            timeout=SEND_TIMEOUT,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("email to a recipient failed: %s", type(exc).__name__)
        return f"{type(exc).__name__}: {exc}"
    return None
