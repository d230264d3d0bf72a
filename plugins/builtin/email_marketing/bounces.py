"""Bounces and complaints: the per-message return path, and reading what comes back.

Every message leaves with its own envelope sender (VERP), ``b+{ref}@{bounce domain}``,
where ``ref`` is ``{message id (32 hex)}.{signature (10 base32)}``; the same ref is in
the ``X-Orbit-Ref`` header and the ``Message-ID``. The signature is an HMAC of the
workspace and the message under a key kept per workspace, so a report maps to exactly
one message of exactly one workspace: another workspace's key never verifies it, and
nothing is suppressed on an address or ref that does not verify.

:func:`parse_report` reads one report (RFC 3464/6522 delivery status notifications,
RFC 5965 abuse reports, and the free-text bounces some servers still send) with the
standard library's ``email`` package and says what it is: a hard, soft or policy bounce
(RFC 3463 status codes: ``5.x.x`` hard, ``4.x.x`` soft, ``5.7.x`` refused by policy,
which says nothing about the address), a complaint, or not a report at all (an
out-of-office reply, a successful delivery notice). It collects every candidate ref it
can find: in the envelope recipient, in the attached original (``message/rfc822`` or
``text/rfc822-headers``), or quoted in a text part. :func:`record_report` then verifies
them for the workspace and hands each message's outcome to :mod:`.suppression`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.email_marketing import suppression, tracking
from orbit.plugins.builtin.email_marketing.suppression import Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from orbit.plugins.api import PluginContext

REF = re.compile(r"(?<![0-9a-z])([0-9a-f]{32})\.([a-z2-7]{10})(?![0-9a-z])", re.IGNORECASE)
"""A message ref anywhere in a text: 32 hex digits of the message id, a dot, its signature."""
MAX_REFS = 20
"""Candidate refs kept per report: a real one names a message a few times; a crafted
message stuffed with thousands must not cost every workspace thousands of HMACs."""
SIGNATURE_LENGTH = 10
"""Base32 characters of HMAC-SHA256 kept (50 bits): short enough for a 64-octet local part."""
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.])([45][0-5]\d)(?:[ :-]|$)", re.MULTILINE)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_MAX_DEPTH = 8
_MAX_TEXT = 200_000
"""Characters of text parts looked at: a report is small; a huge attachment is not read."""


class Kind(StrEnum):
    """What a report says happened to one message."""

    HARD = "hard"
    """The address does not exist or never accepts mail (``5.x.x``)."""
    SOFT = "soft"
    """A temporary failure: mailbox full, server busy, delayed (``4.x.x``)."""
    POLICY = "policy"
    """Refused by the receiver's policy (``5.7.x``: spam, reputation, authentication)."""
    COMPLAINT = "complaint"
    """The recipient marked the message as spam (an abuse report)."""


@dataclass(frozen=True, slots=True)
class Report:
    """What one bounce or complaint says, before it is matched to a workspace's message."""

    kind: Kind
    recipient: str | None = None
    """The failed recipient as the report names it (may be rewritten or redacted)."""
    status: str | None = None
    """The RFC 3463 status (``5.1.1``), when the report gives or quotes one."""
    diagnostic: str = ""
    refs: tuple[str, ...] = ()
    """Candidate message refs found anywhere in the report, unverified."""
    report_id: str | None = None
    """The report's own id (its Message-ID, a provider's feedback id): makes it idempotent."""
    source: str = "mail"
    final: bool = True
    """The message will not be delivered (``False``: a delay warning, a retried 4xx)."""


# --- return path -----------------------------------------------------------------------


def sign_ref(key: bytes, tenant_id: UUID, message_id: UUID) -> str:
    """The ref of a message: its id in hex and an HMAC binding it to the workspace."""
    digest = hmac.new(key, b"orbit-verp\0" + tenant_id.bytes + message_id.bytes, hashlib.sha256)
    signature = base64.b32encode(digest.digest()).decode("ascii")[:SIGNATURE_LENGTH].lower()
    return f"{message_id.hex}.{signature}"


def verify_ref(key: bytes, tenant_id: UUID, ref: str) -> UUID | None:
    """The message id of ``ref`` when its signature is this workspace's, else ``None``.

    Case does not matter: some servers change the case of a local part.
    """
    match = REF.fullmatch(ref.strip())
    if match is None:
        return None
    message_id = UUID(hex=match.group(1).lower())
    expected = sign_ref(key, tenant_id, message_id)
    return message_id if hmac.compare_digest(expected, ref.strip().lower()) else None


def parse_return_path(address: str) -> str | None:
    """The ref in a VERP address ``b+{ref}@domain`` (any case, angle brackets allowed)."""
    address = address.strip().strip("<>").strip()
    local, at, _domain = address.rpartition("@")
    if not at or not local.lower().startswith("b+"):
        return None
    match = REF.fullmatch(local[2:])
    return match.group(0).lower() if match else None


async def workspace_key(ctx: PluginContext) -> bytes:
    """The workspace's VERP key: random, made on first use, kept in the plugin's table."""
    key = await ctx.db.fetchval(
        "SELECT verp_key FROM email_marketing_keys WHERE tenant_id = $1", ctx.tenant_id
    )
    if key is None:
        await ctx.db.execute(
            "INSERT INTO email_marketing_keys (tenant_id, verp_key) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id) DO NOTHING",
            ctx.tenant_id,
            secrets.token_bytes(32),
        )
        key = await ctx.db.fetchval(
            "SELECT verp_key FROM email_marketing_keys WHERE tenant_id = $1", ctx.tenant_id
        )
    return bytes(key)


def bounce_domain(ctx: PluginContext) -> str:
    """Where bounces go: the ``bounce_domain`` setting, else the sender address's domain."""
    domain = str(ctx.settings.get("bounce_domain") or "").strip()
    if not domain:
        domain = str(ctx.settings.get("from_email") or "").rpartition("@")[2].strip()
    return domain or "localhost"


async def message_ref(ctx: PluginContext, message_id: UUID) -> str:
    """The signed ref of one message (for ``X-Orbit-Ref`` and the ``Message-ID``)."""
    return sign_ref(await workspace_key(ctx), ctx.tenant_id, message_id)


async def return_path(ctx: PluginContext, message_id: UUID) -> str:
    """The envelope sender (MAIL FROM) of one message: ``b+{ref}@{bounce domain}``."""
    return f"b+{await message_ref(ctx, message_id)}@{bounce_domain(ctx)}"


# --- classification ----------------------------------------------------------------------

_POLICY_WORDS = re.compile(
    r"spam|blocked|block ?list|blacklist|reputation|policy|rejected for policy|dmarc|"
    r"\bspf\b|dkim|not authori[sz]ed|access denied|banned|abuse|content rejected",
    re.IGNORECASE,
)
_FULL_WORDS = re.compile(
    r"quota|mailbox (?:is )?full|over ?quota|insufficient (?:system )?storage|"
    r"too (?:large|big)|exceeds? (?:the )?(?:size|maximum)",
    re.IGNORECASE,
)
_UNKNOWN_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|"
    r"does not exist|doesn't exist|does not have an? (?:account|mailbox)|"
    r"(?:invalid|not a valid) (?:recipient|mailbox|address)|not listed in|"
    r"recipient (?:address )?rejected|"
    r"address rejected|mailbox (?:unavailable|not found|disabled)|account (?:is )?disabled|"
    r"not our customer|no mailbox here|undeliverable address|unrouteable|"
    r"host or domain name not found|domain (?:not found|does not exist)|"
    r"couldn't find any host|no mx",
    re.IGNORECASE,
)
_TEMPORARY_WORDS = re.compile(
    r"temporar|try again later|will (?:be )?retr|delayed|deferred|greylist|"
    r"not yet been delivered|still trying|resources temporarily|rate limit|too many",
    re.IGNORECASE,
)


def classify(status: str | None, text: str = "") -> Kind | None:
    """The kind of a failure from its RFC 3463 status, or from its SMTP reply and words.

    ``5.x.x`` is hard except ``5.7.x`` (policy: the sender, not the address, was refused)
    and the statuses that depend on the message or a mailbox's moment (``x.2.2`` full,
    ``x.2.3`` and ``x.3.4`` too large, ``x.4.7`` delivery time expired): those are soft,
    as is every ``4.x.x``. Without a status: the SMTP reply code and the words.
    """
    status = status or _first_status(text)
    if status is not None:
        return _by_status(status, text)
    code = _SMTP_CODE.search(text)
    if code is None:
        return _by_words(text)
    return Kind.SOFT if code.group(1).startswith("4") else _by_words(text) or Kind.HARD


_SOFT_PERMANENT = frozenset({(2, 2), (2, 3), (3, 4), (4, 7)})
"""``5.x.x`` details that depend on the moment or the message, not the address."""


def _by_status(status: str, text: str) -> Kind | None:
    cls, subject, detail = (int(part) for part in status.split("."))
    if cls == 2:  # noqa: PLR2004 - delivered
        return None
    if cls == 4 or (subject, detail) in _SOFT_PERMANENT:  # noqa: PLR2004
        return Kind.SOFT
    if subject == 7:  # noqa: PLR2004
        return Kind.HARD if _UNKNOWN_WORDS.search(text) else Kind.POLICY
    if subject == 0 and detail == 0:
        return _by_words(text) or Kind.HARD
    return Kind.HARD


def _by_words(text: str) -> Kind | None:
    if _UNKNOWN_WORDS.search(text):
        return Kind.HARD
    if _FULL_WORDS.search(text) or _TEMPORARY_WORDS.search(text):
        return Kind.SOFT
    if _POLICY_WORDS.search(text):
        return Kind.POLICY
    return None


def _first_status(text: str) -> str | None:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


def smtp_status(code: int, text: str) -> str | None:
    """The RFC 3463 status an SMTP reply quotes, else ``None``."""
    status = _first_status(text)
    if status is not None and status[0] == str(code)[0]:
        return status
    return None


# --- parsing -----------------------------------------------------------------------------

_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|maildelivery", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status )?notification|delivery fail|"
    r"failure notice|mail delivery failed|returned mail|delivery has failed|"
    r"could not be delivered|non[- ]?delivery|returned to sender|mail system error",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|"
    r"abwesenheit|vacation|on leave|away from",
    re.IGNORECASE,
)
_WARNING_WORDS = re.compile(
    r"not yet been delivered|still being retried|will (?:be )?retr|this is a warning",
    re.IGNORECASE,
)
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other", ""})
"""ARF feedback types that are a complaint (``not-spam``, ``auth-failure``… are not)."""
_FINAL_ACTIONS = ("failed", "delayed")


@dataclass(slots=True)
class _Walk:
    """What one pass over a report's MIME tree found."""

    status_blocks: list[Message] = field(default_factory=list)
    feedback: Message | None = None
    texts: list[str] = field(default_factory=list)
    originals: list[Message] = field(default_factory=list)
    is_report: bool = False


def parse_report(raw: bytes, envelope_to: Iterable[str] = ()) -> Report | None:
    """What a received message reports, or ``None`` when it is no bounce or complaint.

    ``envelope_to``: the SMTP recipients it was delivered to (a VERP address names the
    message even when the report carries nothing of the original).
    """
    message = message_from_bytes(raw, policy=compat32)
    walk = _Walk()
    _walk(message, walk, depth=0)
    text = "\n".join(walk.texts)[:_MAX_TEXT]
    refs = _refs(raw, envelope_to, walk, text)
    report_id = _header(message, "Message-ID") or None
    if walk.feedback is not None:
        return _complaint(walk.feedback, refs, report_id)
    if walk.status_blocks:
        return _from_status(walk.status_blocks, text, refs, report_id)
    if walk.is_report or _is_auto_reply(message) or not _looks_like_bounce(message):
        return None
    kind = classify(None, text)
    if kind is None:
        return None
    return Report(
        kind=kind,
        recipient=_text_recipient(text),
        status=_first_status(text),
        diagnostic=_diagnostic_line(text),
        refs=refs,
        report_id=report_id,
        final=not _WARNING_WORDS.search(text),
    )


def _walk(part: Message, walk: _Walk, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    ctype = part.get_content_type()
    if ctype == "multipart/report":
        walk.is_report = True
    reader = _PART_READERS.get(ctype)
    if reader is not None:
        reader(part, walk, depth)
    elif part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, Message):
                _walk(child, walk, depth + 1)
    elif part.get_content_maintype() == "text":
        text = _decoded_text(part)
        if part.get_content_subtype() == "html":
            text = re.sub(r"<[^>]+>", " ", text)
        walk.texts.append(text)


def _read_status(part: Message, walk: _Walk, _depth: int) -> None:
    walk.status_blocks.extend(_header_blocks(part))


def _read_feedback(part: Message, walk: _Walk, _depth: int) -> None:
    blocks = _header_blocks(part)
    walk.feedback = blocks[0] if blocks else Message()


def _read_original(part: Message, walk: _Walk, depth: int) -> None:
    inner = part.get_payload()
    for original in inner if isinstance(inner, list) else []:
        if isinstance(original, Message):
            walk.originals.append(original)
            _walk_original(original, walk, depth + 1)


def _read_global_headers(part: Message, walk: _Walk, _depth: int) -> None:
    inner = part.get_payload()
    headers = inner[0] if isinstance(inner, list) and inner else None
    if isinstance(headers, Message):
        walk.originals.append(headers)
        walk.texts.extend(_header_values(headers))


def _read_text_headers(part: Message, walk: _Walk, _depth: int) -> None:
    headers = _decoded_text(part)
    walk.originals.append(HeaderParser(policy=compat32).parsestr(headers.lstrip()))
    walk.texts.append(headers)


_PART_READERS: dict[str, Callable[[Message, _Walk, int], None]] = {
    "message/delivery-status": _read_status,
    "message/global-delivery-status": _read_status,
    "message/feedback-report": _read_feedback,
    "message/rfc822": _read_original,
    "message/global": _read_original,
    "message/global-headers": _read_global_headers,
    "text/rfc822-headers": _read_text_headers,
}


def _walk_original(original: Message, walk: _Walk, depth: int) -> None:
    """Headers of the attached original count; its body is only scanned for refs."""
    walk.texts.extend(_header_values(original))
    if depth <= _MAX_DEPTH:
        for part in original.walk():
            if part.get_content_maintype() == "text" and not part.is_multipart():
                walk.texts.append(_decoded_text(part)[:20_000])


def _header_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part, however it came."""
    payload = part.get_payload()
    parser = HeaderParser(policy=compat32)
    if isinstance(payload, list):
        blocks = [block for block in payload if isinstance(block, Message)]
        # message/global-delivery-status parses as one message: its body holds the rest.
        if len(blocks) == 1 and not blocks[0].is_multipart():
            blocks += _split_blocks(parser, _decoded_text(blocks[0], "utf-8"))
        return blocks
    return _split_blocks(parser, _decoded_text(part))


def _split_blocks(parser: HeaderParser, text: str) -> list[Message]:
    return [
        parser.parsestr(block.strip() + "\n")
        for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
        if block.strip()
    ]


def _decoded_text(part: Message, default_charset: str = "utf-8") -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or default_charset
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _header(message: Message, name: str) -> str:
    """A header's first value, unfolded, 8-bit UTF-8 (RFC 6532) decoded."""
    wanted = name.lower()
    return next((_unfold(v) for k, v in message.raw_items() if k.lower() == wanted), "")


def _header_values(message: Message) -> list[str]:
    return [_unfold(value) for _name, value in message.raw_items()]


def _unfold(value: object) -> str:
    text = str(value)
    # Raw 8-bit bytes arrive as surrogate escapes; they are UTF-8 in practice (RFC 6532).
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split())


def _refs(raw: bytes, envelope_to: Iterable[str], walk: _Walk, text: str) -> tuple[str, ...]:
    """Every candidate ref, the most telling first: envelope, original's headers, text."""
    found: list[str] = []
    for address in envelope_to:
        ref = parse_return_path(address)
        if ref:
            found.append(ref)
    for original in walk.originals:
        for name in ("X-Orbit-Ref", "Return-Path", "Message-ID", "References"):
            found.extend(match.group(0).lower() for match in REF.finditer(_header(original, name)))
    found.extend(match.group(0).lower() for match in REF.finditer(text))
    # A base64 or oddly encoded original still shows its ref somewhere in the raw bytes.
    found.extend(match.group(0).lower() for match in REF.finditer(raw.decode("latin-1")))
    return tuple(dict.fromkeys(found))[:MAX_REFS]


def _address(value: str) -> str | None:
    """``rfc822; user@example.com`` (or a bare or bracketed address) → the address."""
    _kind, _sep, rest = value.partition(";")
    candidate = (rest if _sep else value).strip().strip("<>").strip()
    match = _ADDRESS.search(candidate)
    return match.group(0).lower() if match else None


def _from_status(
    blocks: list[Message], text: str, refs: tuple[str, ...], report_id: str | None
) -> Report | None:
    recipients = [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient")]
    if not recipients:  # some servers run the blocks together: read the first one whole
        recipients = [b for b in blocks if b.get("Status") or b.get("Action")]
    chosen = None
    for wanted in _FINAL_ACTIONS:
        chosen = next((b for b in recipients if _header(b, "Action").lower() == wanted), None)
        if chosen is not None:
            break
    if chosen is None:
        if any(
            _header(b, "Action").lower() in {"delivered", "relayed", "expanded"} for b in recipients
        ):
            return None
        chosen = recipients[0] if recipients else None
    if chosen is None:
        kind = classify(None, text)
        return (
            None
            if kind is None
            else Report(kind, _text_recipient(text), None, _diagnostic_line(text), refs, report_id)
        )
    diagnostic = _header(chosen, "Diagnostic-Code")
    _type, _sep, diagnostic_text = diagnostic.partition(";")
    diagnostic_text = (diagnostic_text if _sep else diagnostic).strip()
    status_match = _STATUS.search(_header(chosen, "Status"))
    status = ".".join(status_match.groups()) if status_match else None
    if status is None or status.endswith(".0.0"):
        status = _first_status(diagnostic_text) or status
    action = _header(chosen, "Action").lower()
    kind = classify(status, diagnostic_text or text)
    if action == "delayed":
        kind = Kind.SOFT
    if kind is None:
        return None
    recipient = _address(_header(chosen, "Original-Recipient")) or _address(
        _header(chosen, "Final-Recipient")
    )
    return Report(
        kind, recipient, status, diagnostic_text[:1000], refs, report_id, final=action != "delayed"
    )


def _complaint(feedback: Message, refs: tuple[str, ...], report_id: str | None) -> Report | None:
    feedback_type = _header(feedback, "Feedback-Type").lower()
    if feedback_type not in _COMPLAINT_TYPES:
        return None
    recipient = _address(_header(feedback, "Original-Rcpt-To")) or _address(
        _header(feedback, "Removal-Recipient")
    )
    return Report(
        Kind.COMPLAINT,
        recipient,
        None,
        f"feedback-type: {feedback_type or 'abuse'}; "
        f"{_header(feedback, 'User-Agent') or 'unknown reporter'}",
        refs,
        report_id,
    )


def _is_auto_reply(message: Message) -> bool:
    """An out-of-office or vacation reply (bounces carry ``Auto-Submitted`` too: not used)."""
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond")):
        return True
    if _header(message, "Precedence").lower() in {"auto_reply", "auto-reply"}:
        return True
    return bool(_AUTO_REPLY_SUBJECT.search(_header(message, "Subject")))


def _looks_like_bounce(message: Message) -> bool:
    sender = _header(message, "From")
    return_path = _header(message, "Return-Path")
    return bool(
        _BOUNCE_SENDER.search(sender)
        or (return_path in {"<>", ""} and _BOUNCE_SUBJECT.search(_header(message, "Subject")))
        or (
            _BOUNCE_SUBJECT.search(_header(message, "Subject"))
            and _BOUNCE_SENDER.search(sender + return_path)
        )
    )


def _text_recipient(text: str) -> str | None:
    """The failed address of a free-text bounce (qmail, old Exim, Yahoo)."""
    for pattern in (
        r"<([^<>\s]+@[^<>\s]+)>:",  # qmail: <user@example.com>:
        r"following address(?:\(es\))? failed:\s*\n?\s*<?([^\s<>]+@[^\s<>]+?)>?\s",
        r"following (?:address|recipient)s?[^\n]*:\s*\n?\s*<?([^\s<>]+@[^\s<>]+?)>?\s",
        r"(?:RCPT TO|recipient)[: ]*<([^<>\s]+@[^<>\s]+)>",
    ):
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return _address(match.group(1))
    return None


def _diagnostic_line(text: str) -> str:
    for line in text.splitlines():
        if _STATUS.search(line) or _SMTP_CODE.search(line):
            return line.strip()[:1000]
    return ""


# --- provider notifications --------------------------------------------------------------


def parse_ses(notification: dict[str, Any]) -> Report | None:
    """An Amazon SES bounce or complaint (an SNS notification's ``Message``, parsed).

    Takes both SES's feedback notifications (``notificationType``) and event publishing
    (``eventType``); the ref comes from ``mail.source`` (the return path) or the original
    headers SES includes.
    """
    kind_name = str(notification.get("notificationType") or notification.get("eventType") or "")
    refs = tuple(dict.fromkeys(m.group(0).lower() for m in REF.finditer(json.dumps(notification))))
    mail = notification.get("mail") or {}
    source = parse_return_path(str(mail.get("source", "")))
    if source:
        refs = (source, *[ref for ref in refs if ref != source])
    if kind_name == "Bounce":
        bounce = notification.get("bounce") or {}
        recipients = bounce.get("bouncedRecipients") or [{}]
        first = recipients[0] if isinstance(recipients[0], dict) else {}
        status = _first_status(str(first.get("status") or ""))
        diagnostic = str(first.get("diagnosticCode") or "")
        bounce_type = str(bounce.get("bounceType") or "")
        if bounce_type == "Permanent":
            kind = (
                classify(status, diagnostic) if status and status.startswith("5.7") else Kind.HARD
            )
            if bounce.get("bounceSubType") in {"MessageTooLarge", "MailboxFull"}:
                kind = Kind.SOFT
        else:  # Transient, Undetermined
            kind = Kind.SOFT
        return Report(
            kind or Kind.HARD,
            _address(str(first.get("emailAddress") or "")),
            status,
            diagnostic[:1000] or f"{bounce_type}/{bounce.get('bounceSubType', '')}",
            refs,
            str(bounce.get("feedbackId") or "") or None,
            source="ses",
        )
    if kind_name == "Complaint":
        complaint = notification.get("complaint") or {}
        feedback_type = str(complaint.get("complaintFeedbackType") or "")
        if feedback_type.lower() not in _COMPLAINT_TYPES:
            return None
        recipients = complaint.get("complainedRecipients") or [{}]
        first = recipients[0] if isinstance(recipients[0], dict) else {}
        return Report(
            Kind.COMPLAINT,
            _address(str(first.get("emailAddress") or "")),
            None,
            f"feedback-type: {feedback_type or 'abuse'}; {complaint.get('userAgent') or 'SES'}",
            refs,
            str(complaint.get("feedbackId") or "") or None,
            source="ses",
        )
    return None


# --- recording ---------------------------------------------------------------------------

DEFAULT_SOFT_LIMIT = 3
DEFAULT_SOFT_DAYS = 14


@dataclass(frozen=True, slots=True)
class Outcome:
    """What recording one report did to one message's recipient."""

    message_id: UUID
    email: str
    kind: Kind
    suppressed: Reason | None
    """The suppression it added (``None``: none, or the address was suppressed already)."""
    duplicate: bool = False
    """The same report was recorded before: nothing changed."""


async def record_report(ctx: PluginContext, report: Report) -> list[Outcome]:
    """Record a report for each of this workspace's messages it names (verified refs only).

    A ref that does not verify under the workspace's key (another workspace's, made
    up, damaged) is ignored: nothing is suppressed on the strength of an address a
    report merely mentions.
    """
    key = await workspace_key(ctx)
    message_ids = dict.fromkeys(
        message_id
        for message_id in (verify_ref(key, ctx.tenant_id, ref) for ref in report.refs)
        if message_id is not None
    )
    outcomes = []
    for message_id in message_ids:
        outcome = await _record(ctx, message_id, report)
        if outcome is not None:
            outcomes.append(outcome)
    if not outcomes:
        ctx.log.info("bounce report %s matched no message of this workspace", report.report_id)
    return outcomes


async def record_smtp_failure(
    ctx: PluginContext, message_id: UUID, code: int, text: str, email: str | None = None
) -> Outcome | None:
    """An SMTP reply refused one message while sending (``550 5.1.1 …``): count it.

    ``4xx`` replies are soft, ``5xx`` are classified like a report's status. The same
    reply for the same message counts once (a retried message is not two bounces).
    """
    status = smtp_status(code, text)
    kind = Kind.SOFT if 400 <= code < 500 else classify(status, f"{code} {text}")  # noqa: PLR2004
    if kind is None:
        return None
    report = Report(
        kind=kind,
        recipient=email,
        status=status,
        diagnostic=f"{code} {text}"[:1000],
        report_id=f"smtp:{message_id}:{code}:{status or ''}",
        source="smtp",
        final=code >= 500,  # noqa: PLR2004 - a 4xx is retried by the send job
    )
    return await _record(ctx, message_id, report)


async def _record(ctx: PluginContext, message_id: UUID, report: Report) -> Outcome | None:
    message = await ctx.db.fetchrow(
        "SELECT email, contact_id, campaign_id FROM email_marketing_messages "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        message_id,
    )
    email = message["email"] if message else report.recipient
    if not email:
        return None
    email = suppression.normalise(email)
    report_key = (
        report.report_id
        or hashlib.sha256(
            f"{message_id}|{report.kind}|{report.status}|{report.diagnostic}".encode()
        ).hexdigest()
    )
    inserted = await ctx.db.fetchval(
        "INSERT INTO email_marketing_bounces (tenant_id, id, message_id, contact_id, email, "
        "kind, status, diagnostic, source, report_key) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (tenant_id, report_key) DO NOTHING RETURNING id",
        ctx.tenant_id,
        uuid7(),
        message_id,
        message["contact_id"] if message else None,
        email,
        report.kind.value,
        report.status,
        report.diagnostic,
        report.source,
        f"{message_id}:{report_key}"[:500],
    )
    if inserted is None:
        return Outcome(message_id, email, report.kind, None, duplicate=True)
    if message is not None and (report.final or report.kind is Kind.COMPLAINT):
        # The campaign's counters, the contact's timeline and the spike pause follow.
        await tracking.record_bounce(
            ctx,
            message_id,
            complaint=report.kind is Kind.COMPLAINT,
            reason=f"{report.kind.value} {report.status or ''}: {report.diagnostic}".strip(),
        )
    reason = await _reason(ctx, email, report.kind)
    added = None
    if reason is not None and await suppression.suppress(
        ctx, email, reason, f"{report.source}:{message_id}", report.diagnostic
    ):
        added = reason
    return Outcome(message_id, email, report.kind, added)


async def _reason(ctx: PluginContext, email: str, kind: Kind) -> Reason | None:
    """The suppression a new bounce of ``kind`` earns ``email``, if any."""
    if kind is Kind.HARD:
        return Reason.BOUNCE_HARD
    if kind is Kind.COMPLAINT:
        return Reason.COMPLAINT
    limit = int(ctx.settings.get("soft_bounce_limit") or DEFAULT_SOFT_LIMIT)
    days = int(ctx.settings.get("soft_bounce_days") or DEFAULT_SOFT_DAYS)
    count = await ctx.db.fetchval(
        "SELECT count(DISTINCT message_id) FROM email_marketing_bounces "
        "WHERE tenant_id = $1 AND email = $2 AND kind IN ('soft', 'policy') "
        "AND occurred_at > now() - make_interval(days => $3)",
        ctx.tenant_id,
        email,
        days,
    )
    return Reason.BOUNCE_SOFT if count >= limit else None
