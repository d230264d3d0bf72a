"""Opens, clicks, unsubscribes, bounces and complaints: recorded once, people told from machines.

Every event is a row in ``email_marketing_events`` (the contact's timeline shows it)
and moves its campaign's counters once per message: a message opened five times is
one open. What counts as a machine:

- **opens** fetched by a privacy proxy (Apple Mail Privacy Protection fetches every
  pixel from Apple's 17.0.0.0/8 with a bare ``Mozilla/5.0`` agent), by a known bot, or
  within seconds of delivery (no person opens that fast; scanners and prefetchers do);
- **clicks** on the hidden honeypot link, by a known scanner agent, within seconds of
  delivery, or on several different links of one message within a few seconds (link
  scanners follow every link at once) — then the earlier clicks of that burst are
  marked machine too.

Reports, segments and sequences use human events only.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from uuid_utils.compat import uuid7

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.api import PluginContext

MACHINE_SECONDS_AFTER_DELIVERY = 10
"""An open or click this soon after the message was sent is a machine's."""
CLICK_BURST_SECONDS = 5
"""Two different links of one message clicked this close together: a scanner."""
APPLE_PROXY = ipaddress.ip_network("17.0.0.0/8")
_BOT_AGENTS = re.compile(
    r"bot\b|crawler|spider|preview|scanner|barracuda|mimecast|proofpoint|safelinks|"
    r"symantec|forcepoint|trendmicro|python-requests|python-httpx|curl/|wget/|go-http-client|"
    r"headlesschrome|okhttp|java/",
    re.IGNORECASE,
)
MIN_SAMPLE = 50
"""Messages a campaign sends before its bounce and complaint rates are judged."""
FIRST = 1000
"""Rates are judged over the first thousand messages, where a bad list shows itself."""
MAX_BOUNCE_RATE = 0.05
MAX_COMPLAINT_RATE = 0.001
KINDS = ("open", "click", "unsubscribe", "bounce", "complaint")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an event was a machine's, and why."""

    machine: bool
    reason: str = ""


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value) if value else None
    except ValueError:
        return None


def classify_open(
    *, ip: str | None, user_agent: str | None, sent_at: datetime | None, at: datetime
) -> Verdict:
    """A machine open or a person's."""
    address = _ip(ip)
    agent = (user_agent or "").strip()
    if address is not None and address in APPLE_PROXY:
        return Verdict(machine=True, reason="Apple privacy proxy")
    if agent == "Mozilla/5.0":
        return Verdict(machine=True, reason="privacy proxy (generic user agent)")
    if not agent or _BOT_AGENTS.search(agent):
        return Verdict(machine=True, reason="automated user agent")
    if sent_at is not None and at - sent_at < timedelta(seconds=MACHINE_SECONDS_AFTER_DELIVERY):
        return Verdict(machine=True, reason="seconds after delivery")
    return Verdict(machine=False)


def classify_click(
    *,
    honeypot: bool,
    user_agent: str | None,
    sent_at: datetime | None,
    at: datetime,
    other_links_just_clicked: bool,
) -> Verdict:
    """A scanner's click or a person's."""
    if honeypot:
        return Verdict(machine=True, reason="hidden link")
    agent = (user_agent or "").strip()
    if not agent or _BOT_AGENTS.search(agent):
        return Verdict(machine=True, reason="automated user agent")
    if sent_at is not None and at - sent_at < timedelta(seconds=MACHINE_SECONDS_AFTER_DELIVERY):
        return Verdict(machine=True, reason="seconds after delivery")
    if other_links_just_clicked:
        return Verdict(machine=True, reason="every link at once")
    return Verdict(machine=False)


async def _message(ctx: PluginContext, message_id: UUID) -> Any:
    return await ctx.db.fetchrow(
        "SELECT id, campaign_id, contact_id, email, status, sent_at, opened_at, clicked_at, "
        "unsubscribed_at FROM email_marketing_messages WHERE tenant_id = $1 AND id = $2 "
        "FOR UPDATE",
        ctx.tenant_id,
        message_id,
    )


async def _insert(
    ctx: PluginContext,
    message: Any,
    kind: str,
    verdict: Verdict,
    *,
    url: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    at: datetime,
    reason: str = "",
) -> None:
    await ctx.db.execute(
        """
        INSERT INTO email_marketing_events (tenant_id, id, message_id, campaign_id, contact_id,
            kind, machine, reason, url, ip, user_agent, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11, $12)
        """,
        ctx.tenant_id,
        uuid7(),
        message["id"],
        message["campaign_id"],
        message["contact_id"],
        kind,
        verdict.machine,
        reason or verdict.reason,
        url,
        str(_ip(ip)) if _ip(ip) else None,
        (user_agent or "")[:500] or None,
        at,
    )


async def _bump(ctx: PluginContext, campaign_id: UUID, counter: str, by: int = 1) -> None:
    assert counter.isidentifier()  # noqa: S101 - a column name from this module
    await ctx.db.execute(
        f"UPDATE email_marketing_campaigns SET {counter} = {counter} + $3 "
        "WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        campaign_id,
        by,
    )


async def _had_machine(ctx: PluginContext, message_id: UUID, kind: str) -> bool:
    return bool(
        await ctx.db.fetchval(
            "SELECT 1 FROM email_marketing_events WHERE tenant_id = $1 AND message_id = $2 "
            "AND kind = $3 AND machine LIMIT 1",
            ctx.tenant_id,
            message_id,
            kind,
        )
    )


async def record_open(
    ctx: PluginContext,
    message_id: UUID,
    *,
    ip: str | None,
    user_agent: str | None,
    at: datetime | None = None,
) -> Verdict | None:
    """An open of a message (``None``: no such message here)."""
    at = at or datetime.now(UTC)
    message = await _message(ctx, message_id)
    if message is None:
        return None
    verdict = classify_open(ip=ip, user_agent=user_agent, sent_at=message["sent_at"], at=at)
    first_machine = verdict.machine and not await _had_machine(ctx, message_id, "open")
    await _insert(ctx, message, "open", verdict, ip=ip, user_agent=user_agent, at=at)
    if not verdict.machine and message["opened_at"] is None:
        await ctx.db.execute(
            "UPDATE email_marketing_messages SET opened_at = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            message_id,
            at,
        )
        await _bump(ctx, message["campaign_id"], "opened_human")
    elif first_machine:
        await _bump(ctx, message["campaign_id"], "opened_machine")
    return verdict


async def record_click(
    ctx: PluginContext,
    message_id: UUID,
    *,
    link: int,
    url: str,
    ip: str | None,
    user_agent: str | None,
    at: datetime | None = None,
) -> Verdict | None:
    """A click on link ``link`` of a message (``-1``: the honeypot); ``None``: no such message."""
    at = at or datetime.now(UTC)
    message = await _message(ctx, message_id)
    if message is None:
        return None
    burst = await ctx.db.fetch(
        "SELECT id, url, machine FROM email_marketing_events WHERE tenant_id = $1 "
        "AND message_id = $2 AND kind = 'click' AND occurred_at >= $3",
        ctx.tenant_id,
        message_id,
        at - timedelta(seconds=CLICK_BURST_SECONDS),
    )
    others = [row for row in burst if row["url"] != url]
    verdict = classify_click(
        honeypot=link < 0,
        user_agent=user_agent,
        sent_at=message["sent_at"],
        at=at,
        other_links_just_clicked=bool(others),
    )
    first_machine = verdict.machine and not await _had_machine(ctx, message_id, "click")
    await _insert(ctx, message, "click", verdict, url=url, ip=ip, user_agent=user_agent, at=at)
    if verdict.machine:
        human_earlier = [row["id"] for row in others if not row["machine"]]
        if human_earlier:
            # The earlier clicks of this burst were the scanner too: take them back.
            await ctx.db.execute(
                "UPDATE email_marketing_events SET machine = true, reason = $3 "
                "WHERE tenant_id = $1 AND id = ANY($2)",
                ctx.tenant_id,
                human_earlier,
                verdict.reason,
            )
            still_human = await ctx.db.fetchval(
                "SELECT 1 FROM email_marketing_events WHERE tenant_id = $1 AND message_id = $2 "
                "AND kind = 'click' AND NOT machine LIMIT 1",
                ctx.tenant_id,
                message_id,
            )
            if message["clicked_at"] is not None and not still_human:
                await ctx.db.execute(
                    "UPDATE email_marketing_messages SET clicked_at = NULL "
                    "WHERE tenant_id = $1 AND id = $2",
                    ctx.tenant_id,
                    message_id,
                )
                await _bump(ctx, message["campaign_id"], "clicked_human", -1)
        if first_machine:
            await _bump(ctx, message["campaign_id"], "clicked_machine")
    elif message["clicked_at"] is None:
        await ctx.db.execute(
            "UPDATE email_marketing_messages SET clicked_at = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            message_id,
            at,
        )
        await _bump(ctx, message["campaign_id"], "clicked_human")
    return verdict


async def record_unsubscribe(
    ctx: PluginContext,
    message_id: UUID,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    source: str = "one-click",
) -> Any:
    """The recipient of a message unsubscribed; idempotent. The message row, or ``None``."""
    message = await _message(ctx, message_id)
    if message is None:
        return None
    if message["unsubscribed_at"] is None:
        at = datetime.now(UTC)
        await ctx.db.execute(
            "UPDATE email_marketing_messages SET unsubscribed_at = $3 "
            "WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            message_id,
            at,
        )
        await _insert(
            ctx,
            message,
            "unsubscribe",
            Verdict(machine=False),
            ip=ip,
            user_agent=user_agent,
            at=at,
            reason=source,
        )
        await _bump(ctx, message["campaign_id"], "unsubscribed")
    return message


async def record_bounce(
    ctx: PluginContext,
    message_id: UUID,
    *,
    complaint: bool = False,
    reason: str = "",
    at: datetime | None = None,
) -> bool:
    """A bounce (or a complaint) of a message, once per message; whether it was new.

    Campaign counters count bounce and complaint events per message, whoever wrote
    them (this, the send job at SMTP time, or bounce processing); a spike pauses the
    campaign.
    """
    at = at or datetime.now(UTC)
    message = await _message(ctx, message_id)
    if message is None:
        return False
    kind = "complaint" if complaint else "bounce"
    seen = await ctx.db.fetchval(
        "SELECT 1 FROM email_marketing_events WHERE tenant_id = $1 AND message_id = $2 "
        "AND kind = $3 LIMIT 1",
        ctx.tenant_id,
        message_id,
        kind,
    )
    if seen:
        return False
    await _insert(ctx, message, kind, Verdict(machine=False), at=at, reason=reason[:500])
    if not complaint:
        await ctx.db.execute(
            "UPDATE email_marketing_messages SET status = 'bounced', error = $3 "
            "WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            message_id,
            reason[:500] or None,
        )
    await pause_on_spike(ctx, message["campaign_id"])
    return True


async def spike(ctx: PluginContext, campaign_id: UUID, sent_meanwhile: int = 0) -> str | None:
    """Why the campaign must pause (bounces or complaints spiking early), or ``None``.

    Judged once ``MIN_SAMPLE`` messages were tried and up to the first thousand:
    bounces over 5 % or complaints over 0.1 % of them.
    """
    row = await ctx.db.fetchrow(
        """
        SELECT c.sent + $3 AS sent,
               (SELECT count(*) FROM email_marketing_messages m WHERE m.tenant_id = c.tenant_id
                AND m.campaign_id = c.id AND m.status = 'bounced' AND m.sent_at IS NULL)
                   AS refused,
               (SELECT count(DISTINCT e.message_id) FROM email_marketing_events e
                WHERE e.tenant_id = c.tenant_id AND e.campaign_id = c.id AND e.kind = 'bounce')
                   AS bounced,
               (SELECT count(DISTINCT e.message_id) FROM email_marketing_events e
                WHERE e.tenant_id = c.tenant_id AND e.campaign_id = c.id
                  AND e.kind = 'complaint') AS complained
        FROM email_marketing_campaigns c WHERE c.tenant_id = $1 AND c.id = $2
        """,
        ctx.tenant_id,
        campaign_id,
        sent_meanwhile,
    )
    if row is None:
        return None
    attempted = row["sent"] + row["refused"]
    if attempted < MIN_SAMPLE or attempted > FIRST + MIN_SAMPLE:
        return None
    if row["bounced"] / attempted > MAX_BOUNCE_RATE:
        return (
            f"paused automatically: {row['bounced']} bounces in the first {attempted} "
            f"messages ({100 * row['bounced'] / attempted:.1f}% > {100 * MAX_BOUNCE_RATE:g}%)"
        )
    if row["complained"] / attempted > MAX_COMPLAINT_RATE:
        return (
            f"paused automatically: {row['complained']} complaints in the first {attempted} "
            f"messages (> {100 * MAX_COMPLAINT_RATE:g}%)"
        )
    return None


async def pause_on_spike(ctx: PluginContext, campaign_id: UUID) -> str | None:
    """Pause a sending campaign whose bounces or complaints spike in its first thousand."""
    reason = await spike(ctx, campaign_id)
    if reason is None:
        return None
    status = await ctx.db.execute(
        "UPDATE email_marketing_campaigns SET status = 'paused', paused_reason = $3, "
        "updated_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'sending'",
        ctx.tenant_id,
        campaign_id,
        reason,
    )
    if status != "UPDATE 0":
        ctx.log.warning("campaign %s %s", campaign_id, reason)
    return reason
