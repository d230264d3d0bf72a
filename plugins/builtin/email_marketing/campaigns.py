"""Campaigns: a template sent to a list or a segment, now or at a time, with live counters.

States: ``draft`` → ``scheduled`` (a time, or now) → ``sending`` (the recipient
snapshot is taken when the send job starts it) → ``sent``; ``sending`` ⇄ ``paused``
(by a person, or automatically when bounces or complaints spike); ``cancelled`` from
any state before ``sent``. Counters move with each message and event; the pages poll
them. A sequence's email steps are campaigns too (audience kind ``sequence``), run by
their sequence (:mod:`.sequences`) and left out here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from email_validator import EmailNotValidError, validate_email
from litestar.exceptions import ClientException
from uuid_utils.compat import uuid7

from orbit.plugins.builtin.email_marketing import audiences
from orbit.plugins.builtin.email_marketing.errors import Problems, not_found

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.api import PluginContext

COUNTERS = (
    "recipients",
    "suppressed",
    "sent",
    "deferred",
    "failed",
    "opened_human",
    "opened_machine",
    "clicked_human",
    "clicked_machine",
    "unsubscribed",
)
QUEUED = (
    "(SELECT count(*) FROM email_marketing_messages m WHERE m.tenant_id = c.tenant_id "
    "AND m.campaign_id = c.id AND m.status IN ('queued', 'deferred')) AS queued, "
    # Bounces and complaints are counted from their events, whoever recorded them.
    "(SELECT count(DISTINCT e.message_id) FROM email_marketing_events e "
    "WHERE e.tenant_id = c.tenant_id AND e.campaign_id = c.id AND e.kind = 'bounce') AS bounced, "
    "(SELECT count(DISTINCT e.message_id) FROM email_marketing_events e "
    "WHERE e.tenant_id = c.tenant_id AND e.campaign_id = c.id AND e.kind = 'complaint') "
    "AS complained"
)
COLUMNS = (
    "id, name, template_id, audience_kind, audience_id, from_name, from_email, reply_to, "
    "status, paused_reason, last_error, scheduled_at, started_at, finished_at, created_at, "
    "updated_at, " + ", ".join(COUNTERS)
)


class StateConflict(ClientException):
    """The campaign is not in a state that allows this (a 409)."""

    status_code = 409


def _email(raw: Any, field: str, problems: Problems, *, required: bool) -> str | None:
    if raw in (None, "") and not required:
        return None
    if not isinstance(raw, str):
        problems.add(field, "must be an email address")
        return None
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        problems.add(field, f"{raw!r} is not a valid email address: {exc}")
        return None


def _when(raw: Any, problems: Problems) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(raw))
    except ValueError:
        problems.add("scheduled_at", f"{raw!r} is not an ISO 8601 date and time")
        return None
    if when.tzinfo is None:
        problems.add("scheduled_at", "needs a time zone (e.g. 2026-12-01T09:00:00+00:00)")
        return None
    return when.astimezone(UTC)


async def _check(ctx: PluginContext, body: dict[str, Any]) -> dict[str, Any]:
    problems = Problems()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > audiences.MAX_NAME:
        problems.add("name", f"is required, at most {audiences.MAX_NAME} characters")
    template_id = audiences.parse_uuid(body.get("template_id"), "template_id", problems)
    kind = body.get("audience_kind")
    if kind not in {"list", "segment"}:
        problems.add("audience_kind", "must be 'list' or 'segment'")
    audience_id = audiences.parse_uuid(body.get("audience_id"), "audience_id", problems)
    from_email = _email(
        body.get("from_email") or ctx.settings.get("from_email"),
        "from_email",
        problems,
        required=True,
    )
    reply_to = _email(body.get("reply_to"), "reply_to", problems, required=False)
    from_name = body.get("from_name", ctx.settings.get("from_name") or "")
    if not isinstance(from_name, str) or len(from_name) > audiences.MAX_NAME:
        problems.add("from_name", f"must be text of at most {audiences.MAX_NAME} characters")
    problems.raise_any()
    if not await ctx.db.fetchval(
        "SELECT 1 FROM email_marketing_templates WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        template_id,
    ):
        problems.add("template_id", f"template {template_id} not found in this workspace")
    table = "email_marketing_lists" if kind == "list" else "email_marketing_segments"
    if not await ctx.db.fetchval(
        f"SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, audience_id
    ):
        problems.add("audience_id", f"{kind} {audience_id} not found in this workspace")
    problems.raise_any()
    return {
        "name": str(name).strip(),
        "template_id": template_id,
        "audience_kind": kind,
        "audience_id": audience_id,
        "from_email": from_email,
        "from_name": str(from_name).strip(),
        "reply_to": reply_to,
    }


async def create(ctx: PluginContext, body: dict[str, Any]) -> dict[str, Any]:
    """A draft campaign; a 400 names each bad field."""
    data = await _check(ctx, body)
    campaign_id = uuid7()
    await ctx.db.execute(
        """
        INSERT INTO email_marketing_campaigns
            (tenant_id, id, name, template_id, audience_kind, audience_id, from_name,
             from_email, reply_to)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        ctx.tenant_id,
        campaign_id,
        data["name"],
        data["template_id"],
        data["audience_kind"],
        data["audience_id"],
        data["from_name"],
        data["from_email"],
        data["reply_to"],
    )
    return await get(ctx, campaign_id)


async def update(ctx: PluginContext, campaign_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Change a draft (a campaign that started cannot change what it sends)."""
    campaign = await get(ctx, campaign_id)
    if campaign["status"] != "draft":
        raise StateConflict(f"campaign {campaign_id} is {campaign['status']}; only drafts change")
    data = await _check(ctx, {**campaign, **body})
    await ctx.db.execute(
        """
        UPDATE email_marketing_campaigns SET name = $3, template_id = $4, audience_kind = $5,
            audience_id = $6, from_name = $7, from_email = $8, reply_to = $9, updated_at = now()
        WHERE tenant_id = $1 AND id = $2
        """,
        ctx.tenant_id,
        campaign_id,
        data["name"],
        data["template_id"],
        data["audience_kind"],
        data["audience_id"],
        data["from_name"],
        data["from_email"],
        data["reply_to"],
    )
    return await get(ctx, campaign_id)


async def get(ctx: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """One campaign with its counters, or a 404."""
    row = await ctx.db.fetchrow(
        f"SELECT {COLUMNS}, {QUEUED} FROM email_marketing_campaigns c "
        "WHERE c.tenant_id = $1 AND c.id = $2 AND c.audience_kind <> 'sequence'",
        ctx.tenant_id,
        campaign_id,
    )
    if row is None:
        raise not_found("campaign", campaign_id)
    return dict(row)


async def all_campaigns(ctx: PluginContext) -> list[dict[str, Any]]:
    """The workspace's campaigns, newest first."""
    rows = await ctx.db.fetch(
        f"SELECT {COLUMNS}, {QUEUED} FROM email_marketing_campaigns c WHERE c.tenant_id = $1 "
        "AND c.audience_kind <> 'sequence' ORDER BY created_at DESC, id DESC LIMIT 500",
        ctx.tenant_id,
    )
    return [dict(row) for row in rows]


async def _move(
    ctx: PluginContext, campaign_id: UUID, allowed: tuple[str, ...], sets: str, *args: Any
) -> dict[str, Any]:
    """Change the state when it is one of ``allowed`` (a 409 naming the state otherwise)."""
    campaign = await get(ctx, campaign_id)
    status = await ctx.db.execute(
        f"UPDATE email_marketing_campaigns SET {sets}, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2 AND status = ANY($3::text[])",
        ctx.tenant_id,
        campaign_id,
        list(allowed),
        *args,
    )
    if status == "UPDATE 0":
        raise StateConflict(
            f"campaign {campaign_id} is {campaign['status']}; this needs one of "
            + ", ".join(allowed)
        )
    return await get(ctx, campaign_id)


async def schedule(ctx: PluginContext, campaign_id: UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Send a draft at ``scheduled_at`` (or now, without one)."""
    problems = Problems()
    when = _when(body.get("scheduled_at"), problems)
    problems.raise_any()
    return await _move(
        ctx,
        campaign_id,
        ("draft",),
        "status = 'scheduled', scheduled_at = $4",
        when or datetime.now(UTC),
    )


async def pause(
    ctx: PluginContext, campaign_id: UUID, reason: str = "paused by a user"
) -> dict[str, Any]:
    """Stop sending until resumed (queued messages wait)."""
    return await _move(
        ctx, campaign_id, ("scheduled", "sending"), "status = 'paused', paused_reason = $4", reason
    )


async def resume(ctx: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """Carry on sending where it stopped (or wait for the scheduled time again)."""
    return await _move(
        ctx,
        campaign_id,
        ("paused",),
        "status = CASE WHEN started_at IS NULL THEN 'scheduled' ELSE 'sending' END, "
        "paused_reason = NULL",
    )


async def cancel(ctx: PluginContext, campaign_id: UUID) -> dict[str, Any]:
    """Stop for good: what was not sent is never sent."""
    campaign = await _move(
        ctx,
        campaign_id,
        ("draft", "scheduled", "sending", "paused"),
        "status = 'cancelled', finished_at = coalesce(finished_at, now())",
    )
    await ctx.db.execute(
        "UPDATE email_marketing_messages SET status = 'cancelled' "
        "WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ('queued', 'deferred')",
        ctx.tenant_id,
        campaign_id,
    )
    return campaign


def report(campaign: dict[str, Any]) -> dict[str, Any]:
    """The counters as reports show them: people apart from machines, and rates."""
    sent = campaign["sent"] or 0

    def rate(value: int) -> float:
        return round(100 * value / sent, 1) if sent else 0.0

    return {
        "status": campaign["status"],
        "paused_reason": campaign["paused_reason"],
        "last_error": campaign["last_error"],
        "started_at": campaign["started_at"],
        "finished_at": campaign["finished_at"],
        **{name: campaign[name] for name in (*COUNTERS, "bounced", "complained")},
        "open_rate": rate(campaign["opened_human"]),
        "click_rate": rate(campaign["clicked_human"]),
        "queued": campaign["queued"],
    }
