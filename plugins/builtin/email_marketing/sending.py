"""The send pipeline: snapshot → suppression → render → per-workspace queue → transport.

When a scheduled campaign comes due, the send job freezes its recipients: one row per
address in ``email_marketing_messages`` with the contact's values as they are then
(later edits to the contact or the segment do not change who gets it, or what it
says). Suppressed addresses are kept as ``suppressed`` rows, never sent.

Each run of the job (every second, per workspace) then claims due messages with
``FOR UPDATE SKIP LOCKED`` (two workers never send one message twice), checks the
suppression list again (someone may have unsubscribed since the snapshot), renders
them, and hands them to the transport at the workspace's pace: a token bucket per
workspace (``rate_per_second``) and one per receiving domain
(``domain_rate_per_second``), both kept in ``email_marketing_throttle`` so the pace
holds across runs and workers. A 4xx answer defers a message with backoff; a 5xx
counts as a bounce at SMTP time. Counters are added up in the run and written once
at its end, so pages and tracking never wait on a run's locks.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from uuid_utils.compat import uuid7

from orbit.plugins.builtin.email_marketing import (
    audiences,
    bounces,
    mime,
    suppression,
    templates,
    tracking,
    transport,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable
    from uuid import UUID

    from orbit.plugins.api import Contact, PluginContext

RUN_SECONDS = 5.0
"""How long one run of the send job may send (the worker's other work waits meanwhile)."""
BATCH = 200
SNAPSHOT_CHUNK = 1000
RETRY_AFTER = (60, 300, 900, 3600, 14400)
"""Seconds before each new attempt of a deferred message; then it has failed."""
_SIGNED_PURPOSES = ("open", "click", "unsubscribe")


# --- suppression (the deliverability half of the plugin keeps the list) ----------------


async def suppressed(ctx: PluginContext, emails: list[str]) -> set[str]:
    """Which of ``emails`` must not be sent to: the suppression list, and unsubscribes here."""
    if not emails:
        return set()
    found = {e.lower() for e in await suppression.suppressed(ctx, emails)}
    rows = await ctx.db.fetch(
        "SELECT DISTINCT email FROM email_marketing_messages "
        "WHERE tenant_id = $1 AND unsubscribed_at IS NOT NULL AND email = ANY($2::text[])",
        ctx.tenant_id,
        emails,
    )
    return found | {row["email"] for row in rows}


# --- snapshot -------------------------------------------------------------------------


def _merge_values(contact: Contact) -> str:
    return json.dumps(templates.contact_values(contact), default=str)


async def _audience(ctx: PluginContext, kind: str, audience_id: UUID) -> AsyncIterator[Contact]:
    if kind == "list":
        async for contact in audiences.list_contacts(ctx, audience_id):
            yield contact
    else:
        segment = await audiences.get_segment(ctx, audience_id)
        async for contact in audiences.segment_contacts(ctx, segment):
            yield contact


async def _insert_chunk(
    ctx: PluginContext, campaign_id: UUID, chunk: list[tuple[Contact, str]]
) -> tuple[int, int]:
    """Queue one chunk of recipients; (rows written, of them suppressed)."""
    blocked = await suppressed(ctx, [email for _, email in chunk])
    status = await ctx.db.execute(
        """
        INSERT INTO email_marketing_messages
            (tenant_id, id, campaign_id, contact_id, email, domain, status, merge_values)
        SELECT $1, r.id, $2, r.contact_id, r.email, split_part(r.email, '@', 2), r.status,
               r.merge_values::jsonb
        FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[])
            AS r (id, contact_id, email, status, merge_values)
        ON CONFLICT (tenant_id, campaign_id, email) DO NOTHING
        """,
        ctx.tenant_id,
        campaign_id,
        [uuid7() for _ in chunk],
        [contact.id for contact, _ in chunk],
        [email for _, email in chunk],
        ["suppressed" if email in blocked else "queued" for _, email in chunk],
        [_merge_values(contact) for contact, _ in chunk],
    )
    return int(status.split()[-1]), len(blocked)


async def take_snapshot(ctx: PluginContext, campaign_id: UUID, kind: str, audience_id: UUID) -> int:
    """Freeze a campaign's recipients into queued messages; how many it has."""
    chunk: list[tuple[Contact, str]] = []
    seen: set[str] = set()
    written = blocked = 0
    async for contact in _audience(ctx, kind, audience_id):
        email = (contact.email or "").strip().lower()
        if "@" not in email or email in seen:
            continue
        seen.add(email)
        chunk.append((contact, email))
        if len(chunk) >= SNAPSHOT_CHUNK:
            done, out = await _insert_chunk(ctx, campaign_id, chunk)
            written, blocked, chunk = written + done, blocked + out, []
    if chunk:
        done, out = await _insert_chunk(ctx, campaign_id, chunk)
        written, blocked = written + done, blocked + out
    await ctx.db.execute(
        """
        UPDATE email_marketing_campaigns SET status = 'sending', started_at = clock_timestamp(),
            recipients = $3, suppressed = $4, updated_at = now()
        WHERE tenant_id = $1 AND id = $2
        """,
        ctx.tenant_id,
        campaign_id,
        written,
        blocked,
    )
    return written


async def start_due_campaigns(ctx: PluginContext) -> int:
    """Snapshot every scheduled campaign whose time has come; how many started."""
    due = await ctx.db.fetch(
        "SELECT id, audience_kind, audience_id FROM email_marketing_campaigns "
        "WHERE tenant_id = $1 AND status = 'scheduled' AND scheduled_at <= clock_timestamp() "
        "ORDER BY scheduled_at FOR UPDATE SKIP LOCKED",
        ctx.tenant_id,
    )
    for row in due:
        await take_snapshot(ctx, row["id"], row["audience_kind"], row["audience_id"])
    return len(due)


# --- throttling -----------------------------------------------------------------------


@dataclass
class Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``rate`` (one second's)."""

    rate: float
    tokens: float
    at: float
    """``time.time()`` of the last refill."""

    def refill(self, now: float) -> None:
        """Add what the time since the last refill earned."""
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self, want: float = 1.0) -> float:
        """Seconds until ``want`` tokens are there."""
        return max(0.0, (want - self.tokens) / self.rate)


@dataclass
class Throttle:
    """The workspace's bucket and one per receiving domain, loaded and saved with the run."""

    tenant: Bucket
    domain_rate: float
    domains: dict[str, Bucket] = field(default_factory=dict)

    def domain(self, name: str, now: float) -> Bucket:
        """The bucket of one receiving domain (full when first seen)."""
        bucket = self.domains.get(name)
        if bucket is None:
            bucket = self.domains[name] = Bucket(self.domain_rate, self.domain_rate, now)
        bucket.refill(now)
        return bucket


async def _lock_throttle(ctx: PluginContext) -> Throttle | None:
    """The workspace's throttle, locked for this run; ``None`` when another run holds it."""
    rate = float(ctx.settings.get("rate_per_second") or 50)
    domain_rate = float(ctx.settings.get("domain_rate_per_second") or 20)
    await ctx.db.execute(
        "INSERT INTO email_marketing_throttle (tenant_id, bucket, tokens) "
        "VALUES ($1, 'tenant', $2) ON CONFLICT DO NOTHING",
        ctx.tenant_id,
        rate,
    )
    row = await ctx.db.fetchrow(
        "SELECT tokens, extract(epoch FROM refilled_at) AS at FROM email_marketing_throttle "
        "WHERE tenant_id = $1 AND bucket = 'tenant' FOR UPDATE SKIP LOCKED",
        ctx.tenant_id,
    )
    if row is None:
        return None
    throttle = Throttle(Bucket(rate, min(rate, row["tokens"]), float(row["at"])), domain_rate)
    for saved in await ctx.db.fetch(
        "SELECT bucket, tokens, extract(epoch FROM refilled_at) AS at "
        "FROM email_marketing_throttle WHERE tenant_id = $1 AND bucket LIKE 'domain:%'",
        ctx.tenant_id,
    ):
        name = saved["bucket"].removeprefix("domain:")
        throttle.domains[name] = Bucket(
            domain_rate, min(domain_rate, saved["tokens"]), float(saved["at"])
        )
    return throttle


async def _save_throttle(ctx: PluginContext, throttle: Throttle) -> None:
    now = time.time()
    # A domain whose bucket is full again needs no row.
    names = ["tenant"]
    tokens = [throttle.tenant.tokens]
    ats = [throttle.tenant.at]
    for name, bucket in throttle.domains.items():
        bucket.refill(now)
        if bucket.tokens < bucket.rate:
            names.append(f"domain:{name}")
            tokens.append(bucket.tokens)
            ats.append(bucket.at)
    await ctx.db.execute(
        "DELETE FROM email_marketing_throttle WHERE tenant_id = $1 AND bucket LIKE 'domain:%' "
        "AND NOT bucket = ANY($2::text[])",
        ctx.tenant_id,
        names,
    )
    await ctx.db.execute(
        """
        INSERT INTO email_marketing_throttle (tenant_id, bucket, tokens, refilled_at)
        SELECT $1, b.bucket, b.tokens, to_timestamp(b.at)
        FROM unnest($2::text[], $3::float8[], $4::float8[]) AS b (bucket, tokens, at)
        ON CONFLICT (tenant_id, bucket) DO UPDATE
        SET tokens = EXCLUDED.tokens, refilled_at = EXCLUDED.refilled_at
        """,
        ctx.tenant_id,
        names,
        tokens,
        ats,
    )


# --- rendering ------------------------------------------------------------------------


class TrackedLinks:
    """Signed, personal-data-free URLs for one message's links, pixel and unsubscribe page."""

    def __init__(self, ctx: PluginContext, message_id: UUID, base: str) -> None:
        self._ctx = ctx
        self._id = str(message_id)
        self._base = base

    def _token(self, purpose: str, **more: Any) -> str:
        return self._ctx.sign({"m": self._id, **more}, purpose)

    def link(self, index: int) -> str:
        """The click-tracking redirect of link ``index``."""
        return f"{self._base}/c/{self._token('click', l=index)}"

    def pixel(self) -> str:
        """The open-tracking image."""
        return f"{self._base}/o/{self._token('open')}.gif"

    def unsubscribe(self) -> str:
        """The unsubscribe page (GET shows it, POST unsubscribes at once)."""
        return f"{self._base}/u/{self._token('unsubscribe')}"


def public_base(ctx: PluginContext) -> str:
    """Where the plugin's public routes live (``…/p/email_marketing``)."""
    return ctx.url("", public=True).rstrip("/")


@dataclass
class CampaignParts:
    """What every message of one campaign shares."""

    template: templates.Compiled
    sender: str
    """``Name <address>`` for the From header."""
    sender_email: str
    reply_to: str | None
    unsubscribe_mailto: str
    feedback_id: str

    @property
    def sender_domain(self) -> str:
        """The sender address's domain (for Message-IDs)."""
        return self.sender_email.rpartition("@")[2]


async def campaign_parts(ctx: PluginContext, campaign_id: UUID) -> CampaignParts:
    """The campaign's compiled template and sender."""
    row = await ctx.db.fetchrow(
        """
        SELECT c.from_name, c.from_email, c.reply_to, t.id AS template_id, t.updated_at,
               t.subject, t.preheader, t.blocks
        FROM email_marketing_campaigns c
        JOIN email_marketing_templates t ON t.tenant_id = c.tenant_id AND t.id = c.template_id
        WHERE c.tenant_id = $1 AND c.id = $2
        """,
        ctx.tenant_id,
        campaign_id,
    )
    assert row is not None  # noqa: S101 - a claimed message's campaign exists (FK)
    blocks = json.loads(row["blocks"]) if isinstance(row["blocks"], str) else row["blocks"]
    compiled = templates.compiled(
        (ctx.tenant_id, row["template_id"], row["updated_at"]),
        row["subject"],
        row["preheader"],
        blocks,
    )
    mailto = str(ctx.settings.get("unsubscribe_mailto") or row["from_email"])
    return CampaignParts(
        template=compiled,
        sender=mime.address(row["from_name"] or "", row["from_email"]),
        sender_email=row["from_email"],
        reply_to=row["reply_to"],
        unsubscribe_mailto=mailto,
        feedback_id=f"{campaign_id.hex[:16]}:{ctx.tenant_id.hex[:16]}:orbit",
    )


def build_message(
    ctx: PluginContext,
    parts: CampaignParts,
    message_id: UUID,
    recipient: str,
    values: dict[str, Any],
    date: str,
    links: templates.Links | None = None,
    subject_prefix: str = "",
    ref: str | None = None,
) -> bytes:
    """One campaign email as bytes: personalised, tracked, with one-click unsubscribe."""
    if links is None:
        links = TrackedLinks(ctx, message_id, public_base(ctx))
    rendered = templates.render(parts.template, {"contact": values}, links)
    headers = [
        ("From", parts.sender),
        ("To", recipient),
        ("Subject", subject_prefix + rendered.subject),
        ("Date", date),
        ("Message-ID", f"<{ref or message_id}@{parts.sender_domain}>"),
    ]
    if isinstance(links, TrackedLinks):  # a test send has no recipient to unsubscribe
        unsubscribe = links.unsubscribe()
        token = unsubscribe.rsplit("/", 1)[-1]
        mailto = f"mailto:{parts.unsubscribe_mailto}?subject=unsubscribe%20{token}"
        # RFC 2369 (a page and a mailbox) and RFC 8058 (one POST, no confirmation).
        headers += [
            ("List-Unsubscribe", f"<{unsubscribe}>, <{mailto}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Precedence", "bulk"),
        ]
    headers += [("Feedback-ID", parts.feedback_id), ("X-Orbit-Message", str(message_id))]
    if ref:
        headers.append(("X-Orbit-Ref", ref))
    if parts.reply_to:
        headers.append(("Reply-To", parts.reply_to))
    return mime.compose(headers, rendered.text, rendered.html, f"=_orbit_{message_id.hex}")


class ReturnPaths:
    """Per-message return paths (VERP) of bounce handling, the workspace's key read once.

    ``b+{ref}@{bounce domain}``, the ref an HMAC of the message id under the
    workspace's key, so every bounce maps to one message.
    """

    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx
        self._key: bytes | None = None

    async def of(self, message_id: UUID) -> tuple[str, str]:
        """(the envelope sender, the message's ref)."""
        if self._key is None:
            self._key = await bounces.workspace_key(self._ctx)
        ref = bounces.sign_ref(self._key, self._ctx.tenant_id, message_id)
        return f"b+{ref}@{bounces.bounce_domain(self._ctx)}", ref


# --- the send job ---------------------------------------------------------------------


@dataclass
class Tally:
    """Counter changes of one run, written to the campaigns once at its end."""

    counts: dict[UUID, dict[str, int]] = field(default_factory=dict)
    paused: dict[UUID, str] = field(default_factory=dict)
    errors: dict[UUID, str] = field(default_factory=dict)
    """The last temporary failure of each campaign in the run (shown on its page)."""

    def add(self, campaign_id: UUID, counter: str, by: int = 1) -> None:
        """Count one more ``counter`` for the campaign."""
        per = self.counts.setdefault(campaign_id, {})
        per[counter] = per.get(counter, 0) + by


async def _claim(ctx: PluginContext, limit: int, skip: Iterable[UUID]) -> list[Any]:
    return await ctx.db.fetch(
        """
        SELECT m.id, m.campaign_id, m.email, m.domain, m.attempts, m.merge_values
        FROM email_marketing_messages m
        JOIN email_marketing_campaigns c
          ON c.tenant_id = m.tenant_id AND c.id = m.campaign_id AND c.status = 'sending'
        WHERE m.tenant_id = $1 AND m.status IN ('queued', 'deferred')
          AND m.next_attempt_at <= clock_timestamp() AND NOT m.campaign_id = ANY($3::uuid[])
        ORDER BY m.next_attempt_at, m.id
        LIMIT $2
        FOR UPDATE OF m SKIP LOCKED
        """,
        ctx.tenant_id,
        limit,
        list(skip),
    )


async def _render_batch(
    ctx: PluginContext,
    claimed: list[Any],
    parts_of: dict[UUID, CampaignParts],
    tally: Tally,
) -> tuple[list[transport.OutgoingMessage], list[Any]]:
    """Suppression check and rendering: the messages to send and their rows."""
    blocked = await suppressed(ctx, [row["email"] for row in claimed])
    date = formatdate(usegmt=True)
    refs = ReturnPaths(ctx)
    outgoing: list[transport.OutgoingMessage] = []
    rows: list[Any] = []
    suppressed_ids: list[UUID] = []
    for row in claimed:
        if row["email"] in blocked:
            suppressed_ids.append(row["id"])
            tally.add(row["campaign_id"], "suppressed")
            continue
        parts = parts_of.get(row["campaign_id"])
        if parts is None:
            parts = parts_of[row["campaign_id"]] = await campaign_parts(ctx, row["campaign_id"])
        values = row["merge_values"]
        values = json.loads(values) if isinstance(values, str) else dict(values)
        sender, ref = await refs.of(row["id"])
        data = build_message(ctx, parts, row["id"], row["email"], values, date, ref=ref)
        outgoing.append(transport.OutgoingMessage(row["id"], sender, row["email"], data))
        rows.append(row)
    if suppressed_ids:
        await ctx.db.execute(
            "UPDATE email_marketing_messages SET status = 'suppressed' "
            "WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            suppressed_ids,
        )
    return outgoing, rows


async def _send_batch(
    ctx: PluginContext,
    claimed: list[Any],
    parts_of: dict[UUID, CampaignParts],
    tally: Tally,
) -> int:
    """Suppression check, render, send and record one claimed batch; how many went out."""
    outgoing, rows = await _render_batch(ctx, claimed, parts_of, tally)
    results = await transport.send(ctx, outgoing)
    sent_ids: list[UUID] = []
    deferred: list[tuple[UUID, int, str, str]] = []
    bounced: list[tuple[Any, transport.Delivery]] = []
    for row, result in zip(rows, results, strict=True):
        if result.ok:
            sent_ids.append(row["id"])
            tally.add(row["campaign_id"], "sent")
        elif result.permanent:
            bounced.append((row, result))
        else:
            wait = next_attempt(row["attempts"] + 1)
            status = "failed" if wait is None else "deferred"
            seconds = 0 if wait is None else int(wait.total_seconds())
            error = f"{result.code} {result.detail}".strip()
            deferred.append((row["id"], seconds, status, error))
            tally.add(row["campaign_id"], status)
            tally.errors[row["campaign_id"]] = error[:500]
    if sent_ids:
        await ctx.db.execute(
            "UPDATE email_marketing_messages SET status = 'sent', sent_at = clock_timestamp(), "
            "attempts = attempts + 1, error = NULL WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            ctx.tenant_id,
            sent_ids,
        )
    if deferred:
        await ctx.db.execute(
            """
            UPDATE email_marketing_messages m SET status = d.status, attempts = m.attempts + 1,
                next_attempt_at = clock_timestamp() + make_interval(secs => d.delay),
                error = left(d.error, 500)
            FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[])
                AS d (id, delay, status, error)
            WHERE m.tenant_id = $1 AND m.id = d.id
            """,
            ctx.tenant_id,
            [d[0] for d in deferred],
            [d[1] for d in deferred],
            [d[2] for d in deferred],
            [d[3] for d in deferred],
        )
    if bounced:
        await _record_smtp_bounces(ctx, bounced)
    return len(sent_ids)


async def _record_smtp_bounces(
    ctx: PluginContext, bounced: list[tuple[Any, transport.Delivery]]
) -> None:
    """5xx at SMTP time: the message bounced and is never retried.

    Bounce handling records each (an event) and suppresses the address as its
    classification says (a hard bounce at once, soft ones after several).
    """
    await ctx.db.execute(
        """
        UPDATE email_marketing_messages m SET status = 'bounced', attempts = m.attempts + 1,
            error = left(b.error, 500)
        FROM unnest($2::uuid[], $3::text[]) AS b (id, error)
        WHERE m.tenant_id = $1 AND m.id = b.id
        """,
        ctx.tenant_id,
        [row["id"] for row, _ in bounced],
        [f"{result.code} {result.detail}" for _, result in bounced],
    )
    for row, result in bounced:
        await bounces.record_smtp_failure(ctx, row["id"], result.code, result.detail, row["email"])


async def _write_tally(ctx: PluginContext, tally: Tally) -> None:
    for campaign_id, counts in tally.counts.items():
        await ctx.db.execute(
            """
            UPDATE email_marketing_campaigns SET sent = sent + $3, deferred = deferred + $4,
                failed = failed + $5, suppressed = suppressed + $6, updated_at = now(),
                last_error = CASE WHEN $7::text IS NOT NULL THEN $7 WHEN $3 > 0 THEN NULL
                                  ELSE last_error END
            WHERE tenant_id = $1 AND id = $2
            """,
            ctx.tenant_id,
            campaign_id,
            counts.get("sent", 0),
            counts.get("deferred", 0),
            counts.get("failed", 0),
            counts.get("suppressed", 0),
            tally.errors.get(campaign_id),
        )
    for campaign_id, reason in tally.paused.items():
        await ctx.db.execute(
            "UPDATE email_marketing_campaigns SET status = 'paused', paused_reason = $3 "
            "WHERE tenant_id = $1 AND id = $2 AND status = 'sending'",
            ctx.tenant_id,
            campaign_id,
            reason,
        )
        ctx.log.warning("campaign %s %s", campaign_id, reason)


async def finish_campaigns(ctx: PluginContext) -> int:
    """Campaigns with nothing left to send are sent; how many finished."""
    status = await ctx.db.execute(
        """
        UPDATE email_marketing_campaigns c SET status = 'sent', finished_at = clock_timestamp(),
            updated_at = now()
        WHERE c.tenant_id = $1 AND c.status = 'sending' AND c.audience_kind <> 'sequence'
          AND NOT EXISTS (
            SELECT 1 FROM email_marketing_messages m
            WHERE m.tenant_id = c.tenant_id AND m.campaign_id = c.id
              AND m.status IN ('queued', 'deferred'))
        """,
        ctx.tenant_id,
    )
    return int(status.split()[-1])


async def _next_due(ctx: PluginContext, skip: Iterable[UUID]) -> float | None:
    """Seconds until the next message of a sending campaign comes due (``None``: none left)."""
    seconds = await ctx.db.fetchval(
        """
        SELECT extract(epoch FROM min(m.next_attempt_at) - clock_timestamp())
        FROM email_marketing_messages m
        JOIN email_marketing_campaigns c
          ON c.tenant_id = m.tenant_id AND c.id = m.campaign_id AND c.status = 'sending'
        WHERE m.tenant_id = $1 AND m.status IN ('queued', 'deferred')
          AND NOT m.campaign_id = ANY($2::uuid[])
        """,
        ctx.tenant_id,
        list(skip),
    )
    return None if seconds is None else max(0.0, float(seconds))


def _within_pace(
    throttle: Throttle, claimed: list[Any], want: int, now: float
) -> tuple[list[Any], list[UUID]]:
    """The claimed rows each receiving domain's pace allows now, and those that must wait."""
    batch: list[Any] = []
    later: list[UUID] = []
    for row in claimed:
        if len(batch) >= want:
            break  # not sent in this batch, left as they are: claimed again next round
        bucket = throttle.domain(row["domain"], now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            batch.append(row)
        else:
            later.append(row["id"])
    return batch, later


async def send_due(ctx: PluginContext, seconds: float = RUN_SECONDS) -> int:
    """One run of the send job for one workspace; how many messages went out."""
    throttle = await _lock_throttle(ctx)
    if throttle is None:
        return 0  # another worker is sending for this workspace right now
    await start_due_campaigns(ctx)
    deadline = time.monotonic() + seconds
    tally = Tally()
    parts_of: dict[UUID, CampaignParts] = {}
    sent = 0
    while (left := deadline - time.monotonic()) > 0:
        now = time.time()
        throttle.tenant.refill(now)
        if throttle.tenant.tokens < 1:
            await asyncio.sleep(min(throttle.tenant.wait(), left))
            continue
        want = min(BATCH, math.floor(throttle.tenant.tokens))
        claimed = await _claim(ctx, want * 2, tally.paused)
        if not claimed:
            wait = await _next_due(ctx, tally.paused)
            if wait is None or wait >= left:
                break
            await asyncio.sleep(wait)
            continue
        batch, later = _within_pace(throttle, claimed, want, now)
        if later:
            # Over a receiving domain's pace: step aside for a moment so others go first.
            await ctx.db.execute(
                "UPDATE email_marketing_messages SET next_attempt_at = clock_timestamp() + "
                "interval '1 second' WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                ctx.tenant_id,
                later,
            )
        if not batch:
            await asyncio.sleep(min(1.0 / throttle.domain_rate, left))
            continue
        throttle.tenant.tokens -= len(batch)
        sent += await _send_batch(ctx, batch, parts_of, tally)
        for campaign_id in {row["campaign_id"] for row in batch} - set(tally.paused):
            sent_here = tally.counts.get(campaign_id, {}).get("sent", 0)
            if reason := await tracking.spike(ctx, campaign_id, sent_here):
                tally.paused[campaign_id] = reason
    await _write_tally(ctx, tally)
    await finish_campaigns(ctx)
    await _save_throttle(ctx, throttle)
    return sent


def next_attempt(attempts: int) -> timedelta | None:
    """How long a message deferred ``attempts`` times waits; ``None``: it has failed."""
    return timedelta(seconds=RETRY_AFTER[attempts - 1]) if attempts <= len(RETRY_AFTER) else None
