"""Outgoing email through the outbox: queued in the change's transaction, sent by the worker.

Nothing talks to an SMTP server inside a request. :func:`queue_email` writes a row
with the change that causes the email (a reminder firing, later an invitation);
the worker's :func:`send_due_emails` sends what is due, one email per short
transaction, retrying with backoff and giving up after :data:`MAX_ATTEMPTS`.
Without ``ORBIT_SMTP_URL`` emails wait in the queue until a server is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import aiosmtplib

from orbit.platform.ids import new_id
from orbit.tenants.quotas import Quotas

if TYPE_CHECKING:
    from uuid import UUID

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


async def queue_email(db: Database, tenant_id: UUID, to: str, subject: str, body: str) -> UUID:
    """Queue an email in the current transaction; it is sent after commit.

    Counts against the plan's emails a month: over it, a ``QuotaExceededError`` (402)
    and nothing queued.
    """
    await Quotas(db).use_emails(tenant_id)
    email_id = new_id()
    await db.execute(
        "INSERT INTO outbox_emails (tenant_id, id, to_address, subject, body) "
        "VALUES ($1, $2, $3, $4, $5)",
        tenant_id,
        email_id,
        to,
        subject[:300],
        body,
    )
    return email_id


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
        error = await _send(server, email["to_address"], email["subject"], email["body"])
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


async def _send(server: SmtpServer, to: str, subject: str, body: str) -> str | None:
    message = EmailMessage()
    message["From"] = server.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
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
