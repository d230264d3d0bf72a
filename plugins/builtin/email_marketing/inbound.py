"""Where bounces and complaints come in: an SMTP receiver, a mailbox, provider webhooks.

Every path ends in :func:`.bounces.record_report` for one workspace, which records
only what verifies under that workspace's key.

**SMTP receiver.** Point the bounce domain's MX at Orbit and set
``ORBIT_BOUNCE_SMTP=host:port`` (e.g. ``0.0.0.0:25``) on the worker: the plugin's
``bounce-receiver`` job starts an aiosmtpd server in that worker process on its first
run. Each message is parsed as it arrives; a report naming at least one ref is
written to the spool folder (``ORBIT_BOUNCE_SPOOL``, default ``.orbit/bounce-spool``)
before the ``250`` answer, anything else (an out-of-office reply) is accepted and
dropped. The receiver serves every workspace, so it does not know whose a report is:
each workspace's run of the job takes the spooled reports whose refs verify under its
own key, records them and removes the files. Reports no workspace claims are removed
after seven days. With several workers, set ``ORBIT_BOUNCE_SMTP`` on one of them and
give it a persistent spool folder; the workspaces' runs that land on other workers
find an empty spool there and leave the rest to that one.

**Mailbox.** A workspace that sets ``bounce_mailbox_url`` (``imaps://user@host/INBOX``)
has its mailbox read every minute (stdlib ``imaplib`` in a thread): each message is
parsed and recorded, then deleted.

**Webhooks** (public routes; the URLs carry a token naming the workspace, shown on
the deliverability page): ``/p/email_marketing/bounces/ses/{token}`` takes Amazon SNS
notifications of SES bounces and complaints, their SNS signature verified against
Amazon's signing certificate (subscription confirmations are confirmed);
``/p/email_marketing/bounces/hook/{token}`` takes a generic JSON event signed with
the workspace's ``webhook_secret``: ``X-Orbit-Timestamp`` (Unix seconds, within five
minutes) and ``X-Orbit-Signature: sha256=`` the hex HMAC-SHA256 of
``{timestamp}.{raw body}``. A wrong signature is a 403 and records nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import imaplib
import json
import os
import re
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from litestar.exceptions import PermissionDeniedException, ValidationException
from uuid_utils.compat import uuid7

from orbit.plugins.api import PluginContext, PublicGate, Request, ScheduledJob, post
from orbit.plugins.builtin.email_marketing.bounces import (
    REF,
    Kind,
    Outcome,
    Report,
    parse_report,
    parse_return_path,
    parse_ses,
    record_report,
    verify_ref,
    workspace_key,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

WEBHOOK_PURPOSE = "bounce-webhook"
SIGNATURE_TOLERANCE = 300
"""Seconds a generic webhook's timestamp may differ from now."""
MAX_BODY = 1_000_000
UNCLAIMED_FOR = timedelta(days=7)
MAILBOX_BATCH = 200


async def ingest(ctx: PluginContext, raw: bytes, envelope_to: Iterable[str] = ()) -> list[Outcome]:
    """Parse one received message and record it for this workspace."""
    report = parse_report(raw, envelope_to)
    return [] if report is None else await record_report(ctx, report)


def webhook_urls(ctx: PluginContext) -> dict[str, str]:
    """The workspace's webhook URLs (the token names the workspace; it does not expire)."""
    token = ctx.sign({}, WEBHOOK_PURPOSE)
    return {
        "ses": ctx.url(f"/bounces/ses/{token}", public=True),
        "hook": ctx.url(f"/bounces/hook/{token}", public=True),
    }


# --- the SMTP receiver and its spool -----------------------------------------------------


def spool_dir() -> Path:
    """Where received reports wait for their workspace (``ORBIT_BOUNCE_SPOOL``)."""
    return Path(os.environ.get("ORBIT_BOUNCE_SPOOL") or ".orbit/bounce-spool")


class Receiver:
    """aiosmtpd handler: spools each bounce or complaint that names a ref."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        """Spool the message (before answering) when it is a report naming a ref."""
        raw = envelope.original_content or b""
        recipients = [str(rcpt) for rcpt in envelope.rcpt_tos]
        report = parse_report(raw, recipients)
        if report is None or not report.refs:
            return "250 2.0.0 OK (not a bounce report)"
        await asyncio.to_thread(spool_report, self.spool, raw, recipients, report.refs)
        return "250 2.0.0 OK"


def spool_report(spool: Path, raw: bytes, recipients: list[str], refs: Iterable[str]) -> Path:
    """Write one report and its index entry; the index is written last (it marks it ready)."""
    spool.mkdir(parents=True, exist_ok=True)
    name = str(uuid7())
    (spool / f"{name}.eml").write_bytes(raw)
    index = {"rcpt": recipients, "refs": list(refs), "received": time.time()}
    partial = spool / f"{name}.tmp"
    partial.write_text(json.dumps(index))
    return partial.rename(spool / f"{name}.json")


async def start_receiver(host: str, port: int, spool: Path) -> asyncio.Server:
    """An SMTP server on this event loop that spools reports into ``spool``."""
    receiver = Receiver(spool)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(receiver, data_size_limit=MAX_BODY * 10, hostname="orbit-bounces"),
        host=host,
        port=port,
    )


_RECEIVER: dict[str, asyncio.Server | None] = {}
"""Receivers started in this process (``None``: the address was taken)."""


async def ensure_receiver() -> None:
    """Start the receiver in this process once, when ``ORBIT_BOUNCE_SMTP`` says where."""
    where = os.environ.get("ORBIT_BOUNCE_SMTP", "").strip()
    if not where or where in _RECEIVER:
        return
    host, _sep, port = where.rpartition(":")
    try:
        _RECEIVER[where] = await start_receiver(host or "0.0.0.0", int(port), spool_dir())  # noqa: S104
    except OSError as exc:  # another worker on this host has it
        _RECEIVER[where] = None
        raise RuntimeError(f"bounce receiver not started on {where}: {exc}") from exc


async def drain_spool(ctx: PluginContext, spool: Path | None = None) -> list[Outcome]:
    """Record the spooled reports that are this workspace's; remove them and stale ones."""
    entries = await asyncio.to_thread(_spooled, spool or spool_dir())
    if not entries:
        return []
    key = await workspace_key(ctx)
    outcomes: list[Outcome] = []
    for index, entry in entries:
        if not any(verify_ref(key, ctx.tenant_id, ref) for ref in entry.get("refs", [])):
            if time.time() - float(entry.get("received", 0)) > UNCLAIMED_FOR.total_seconds():
                await asyncio.to_thread(_remove, index)
            continue
        try:
            raw = await asyncio.to_thread(index.with_suffix(".eml").read_bytes)
        except OSError:
            continue
        outcomes += await ingest(ctx, raw, entry.get("rcpt", []))
        await asyncio.to_thread(_remove, index)
    return outcomes


def _spooled(spool: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The spool's ready reports (index file, index), oldest first (blocking)."""
    if not spool.is_dir():
        return []
    found = []
    for index in sorted(spool.glob("*.json")):
        try:
            found.append((index, json.loads(index.read_text())))
        except (OSError, ValueError):
            continue
    return found


def _remove(index: Path) -> None:
    index.unlink(missing_ok=True)
    index.with_suffix(".eml").unlink(missing_ok=True)


async def receiver_job(ctx: PluginContext) -> None:
    """The scheduled job: start the receiver when configured, take this workspace's reports."""
    try:
        await ensure_receiver()
    except RuntimeError as exc:
        ctx.log.warning("%s", exc)
    await drain_spool(ctx)


# --- the mailbox --------------------------------------------------------------------------


def _open_mailbox(url: str, password: str) -> imaplib.IMAP4:
    """Logged in, the mailbox selected (blocking)."""
    parts = urlsplit(url)
    if parts.scheme not in {"imap", "imaps"} or not parts.hostname:
        raise ValueError(f"bounce mailbox {url!r}: use imaps://user@host/MAILBOX")
    port = parts.port or (993 if parts.scheme == "imaps" else 143)
    kind = imaplib.IMAP4_SSL if parts.scheme == "imaps" else imaplib.IMAP4
    client = kind(parts.hostname, port, timeout=20)
    try:
        client.login(unquote(parts.username or ""), password)
        client.select(unquote(parts.path.strip("/")) or "INBOX")
    except BaseException:
        client.shutdown()
        raise
    return client


def _close_mailbox(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        client.logout()


def _read_mailbox(url: str, password: str, limit: int) -> list[tuple[str, bytes]]:
    """(uid, message) pairs of the mailbox's first ``limit`` messages (blocking)."""
    client = _open_mailbox(url, password)
    try:
        _status, data = client.uid("SEARCH", "ALL")
        messages = []
        for uid in (data[0] or b"").decode("ascii").split()[:limit]:
            _status, fetched = client.uid("FETCH", uid, "(RFC822)")
            body = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if isinstance(body, bytes):
                messages.append((uid, body))
        return messages
    finally:
        _close_mailbox(client)


def _delete_from_mailbox(url: str, password: str, uids: list[str]) -> None:
    client = _open_mailbox(url, password)
    try:
        for uid in uids:
            client.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        client.expunge()
    finally:
        _close_mailbox(client)


async def read_mailbox(ctx: PluginContext) -> list[Outcome]:
    """Read the workspace's bounce mailbox once: record each report, delete what was read."""
    url = str(ctx.settings.get("bounce_mailbox_url") or "").strip()
    if not url:
        return []
    password = str(ctx.settings.get("bounce_mailbox_password") or "")
    messages = await asyncio.to_thread(_read_mailbox, url, password, MAILBOX_BATCH)
    outcomes: list[Outcome] = []
    for _uid, raw in messages:
        outcomes += await ingest(ctx, raw)
    if messages:
        await asyncio.to_thread(_delete_from_mailbox, url, password, [uid for uid, _ in messages])
    return outcomes


async def mailbox_job(ctx: PluginContext) -> None:
    """The scheduled job: read the bounce mailbox when the workspace set one.

    A mailbox that cannot be read is logged, not raised: a wrong password must not
    count as the plugin failing (and trip its circuit breaker, stopping campaigns).
    """
    try:
        await read_mailbox(ctx)
    except (OSError, ValueError, imaplib.IMAP4.error) as exc:
        ctx.log.warning("bounce mailbox of %s not read: %s", ctx.tenant_slug, exc)


SCHEDULED_JOBS = [
    ScheduledJob("bounce-receiver", timedelta(seconds=10), receiver_job),
    ScheduledJob("bounce-mailbox", timedelta(minutes=1), mailbox_job),
]


# --- webhooks -----------------------------------------------------------------------------

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_CERTIFICATES: dict[str, rsa.RSAPublicKey] = {}


def _sns_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not _SNS_HOST.match(parts.hostname or ""):
        raise PermissionDeniedException("not an Amazon SNS URL")
    return url


def fetch_url(url: str) -> bytes:
    """GET an Amazon SNS URL (a signing certificate, a subscription confirmation); blocking."""
    with urllib.request.urlopen(_sns_url(url), timeout=10) as response:  # noqa: S310 - https, checked host
        body: bytes = response.read()
        return body


async def _sns_key(url: str) -> rsa.RSAPublicKey:
    key = _CERTIFICATES.get(url)
    if key is None:
        pem = await asyncio.to_thread(fetch_url, _sns_url(url))
        public = x509.load_pem_x509_certificate(pem).public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise PermissionDeniedException("unexpected SNS certificate")
        key = _CERTIFICATES[url] = public
    return key


async def verify_sns(message: dict[str, Any]) -> None:
    """Raise a 403 unless ``message`` carries a valid Amazon SNS signature."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise PermissionDeniedException("unknown SNS message type")
    text = "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None)
    algorithm = hashes.SHA256() if str(message.get("SignatureVersion")) == "2" else hashes.SHA1()  # noqa: S303 - SNS signature version 1
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        key = await _sns_key(str(message.get("SigningCertURL", "")))
        key.verify(signature, text.encode(), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError) as exc:
        raise PermissionDeniedException("the SNS signature does not verify") from exc


async def _json_body(request: Request[Any, Any, Any]) -> tuple[bytes, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValidationException("body: too large")
    try:
        return body, json.loads(body)
    except ValueError as exc:
        raise ValidationException(f"body: not JSON ({exc})") from exc


@post("/bounces/ses/{token:str}", status_code=200)
async def ses_webhook(
    public: PublicGate, token: str, request: Request[Any, Any, Any]
) -> dict[str, Any]:
    """Amazon SNS → SES bounce and complaint notifications for one workspace."""
    _body, message = await _json_body(request)
    if not isinstance(message, dict):
        raise ValidationException("body: an SNS message object")
    await verify_sns(message)
    async with public.open(token, WEBHOOK_PURPOSE) as (ctx, _data):
        if message.get("Type") == "SubscriptionConfirmation":
            url = _sns_url(str(message.get("SubscribeURL", "")))
            await asyncio.to_thread(fetch_url, url)  # the GET confirms the subscription
            ctx.log.info("SNS subscription confirmed for %s", message.get("TopicArn"))
            return {"confirmed": True}
        try:
            notification = json.loads(str(message.get("Message", "")))
        except ValueError as exc:
            raise ValidationException("Message: not JSON") from exc
        report = parse_ses(notification) if isinstance(notification, dict) else None
        outcomes = [] if report is None else await record_report(ctx, report)
    return {"recorded": len(outcomes)}


def _generic_report(event: dict[str, Any]) -> Report:
    kind_name = str(event.get("type", "bounce"))
    if kind_name == "complaint":
        kind = Kind.COMPLAINT
    else:
        try:
            kind = Kind(str(event.get("bounce_type", "hard")))
        except ValueError as exc:
            raise ValidationException("bounce_type: hard, soft or policy") from exc
    refs = [
        parse_return_path(str(event.get("return_path") or "")) or "",
        str(event.get("message_ref") or ""),
    ]
    refs += [m.group(0).lower() for m in REF.finditer(json.dumps(event.get("headers") or {}))]
    return Report(
        kind,
        str(event.get("email") or "") or None,
        str(event.get("status") or "") or None,
        str(event.get("diagnostic") or "")[:1000],
        tuple(dict.fromkeys(ref.lower() for ref in refs if ref)),
        str(event.get("id") or "") or None,
        source="webhook",
    )


def check_signature(secret: str, timestamp: str, body: bytes, signature: str) -> None:
    """Raise a 403 unless ``signature`` is ``sha256=`` HMAC of ``{timestamp}.{body}``, fresh."""
    if not secret:
        raise PermissionDeniedException("this workspace has no webhook secret set")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError as exc:
        raise PermissionDeniedException("X-Orbit-Timestamp: Unix seconds") from exc
    if age > SIGNATURE_TOLERANCE:
        raise PermissionDeniedException("X-Orbit-Timestamp: too old or in the future")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(f"sha256={expected.hexdigest()}", signature.strip()):
        raise PermissionDeniedException("X-Orbit-Signature does not match")


@post("/bounces/hook/{token:str}", status_code=200)
async def generic_webhook(
    public: PublicGate, token: str, request: Request[Any, Any, Any]
) -> dict[str, Any]:
    """A signed JSON bounce or complaint, or ``{"events": [...]}`` of them."""
    body, payload = await _json_body(request)
    async with public.open(token, WEBHOOK_PURPOSE) as (ctx, _data):
        check_signature(
            str(ctx.settings.get("webhook_secret") or ""),
            request.headers.get("x-orbit-timestamp", ""),
            body,
            request.headers.get("x-orbit-signature", ""),
        )
        events = payload.get("events", [payload]) if isinstance(payload, dict) else payload
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise ValidationException("events: a list of objects")
        reports = [_generic_report(event) for event in events]
        recorded = 0
        for report in reports:
            recorded += len(await record_report(ctx, report))
    return {"recorded": recorded}


PUBLIC_ROUTES = [ses_webhook, generic_webhook]
"""The public handlers of the webhooks (``/p/email_marketing/bounces/…``)."""
