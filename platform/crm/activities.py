"""The 360° timeline: activities linked to contacts, companies and deals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from orbit.platform import validation
from orbit.platform.audit.log import record as record_audit
from orbit.platform.crm.schemas import ActivityIn, ActivityOut, Timeline
from orbit.platform.crm.service import (
    DEFAULT_PAGE,
    RECORD_LINKS,
    check_page_size,
    checked_links,
    cursor_after,
    decode_cursor,
    may_see,
    owner_condition,
)
from orbit.platform.errors import InvalidInputError, NotFoundError
from orbit.platform.events.outbox import emit
from orbit.platform.ids import new_id
from orbit.platform.search.normalize import search_document
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

SEARCHABLE_KINDS = frozenset({"note", "call", "meeting", "email"})
"""Activities people write, found by the search box's full-text search."""

# What each record's timeline merges: a company shows its contacts' and deals'
# activities, a contact those of its deals. Each branch is read on its own index
# (newest first, up to the page size) and the branches are merged: one query with
# the branches OR-ed together cannot use those indexes and walks every activity of
# the workspace newest first until it has a page (seconds at a million activities).
_TIMELINE_BRANCHES = {
    "contact": (
        "a.contact_id = $2",
        """a.deal_id IN (SELECT dc.deal_id FROM deal_contacts dc
                         WHERE dc.tenant_id = $1 AND dc.contact_id = $2)""",
    ),
    "company": (
        "a.company_id = $2",
        """a.contact_id IN (SELECT c.id FROM contacts c
                            WHERE c.tenant_id = $1 AND c.company_id = $2)""",
        """a.deal_id IN (SELECT d.id FROM deals d
                         WHERE d.tenant_id = $1 AND d.company_id = $2)""",
    ),
    "deal": ("a.deal_id = $2",),
}


def timeline_query(record: str, conditions: str, limit: str) -> str:
    """A record's timeline page: each branch's newest rows, merged and cut to ``limit``.

    ``conditions`` (the keyset and visibility) apply to every branch; a row that
    several branches match comes from the first of them only.
    """
    branches = _TIMELINE_BRANCHES[record]
    order = "ORDER BY a.occurred_at DESC, a.id DESC"
    selects = [
        f"(SELECT a.* FROM activities a WHERE a.tenant_id = $1 AND {branch} "
        + "".join(f"AND ({earlier}) IS NOT TRUE " for earlier in branches[:n])
        + f"{conditions} {order} LIMIT {limit})"
        for n, branch in enumerate(branches)
    ]
    return f"SELECT a.* FROM ({' UNION ALL '.join(selects)}) a {order} LIMIT {limit}"


def activity_out(row: Any) -> ActivityOut:
    """A database row as a timeline entry."""
    data = row["data"]
    return ActivityOut(
        id=row["id"],
        kind=row["kind"],
        channel=row["channel"],
        subject=row["subject"],
        body=row["body"],
        author_id=row["author_id"],
        occurred_at=row["occurred_at"],
        contact_id=row["contact_id"],
        company_id=row["company_id"],
        deal_id=row["deal_id"],
        data=json.loads(data) if isinstance(data, str) else dict(data or {}),
    )


class ActivityService:
    """Logging interactions and reading timelines."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def log(self, ctx: TenantContext, data: ActivityIn) -> ActivityOut:
        """Log an interaction (a note, call, meeting, email or task) on linked records."""
        ctx.require(Scope.ACTIVITIES_WRITE)
        requested = {field: getattr(data, field) for field, _, _ in RECORD_LINKS}
        if not any(requested.values()):
            reason = "link the activity to a contact_id, company_id or deal_id"
            raise InvalidInputError(reason, fields={"contact_id": reason})
        problems = validation.FieldProblems()
        links = await checked_links(self.db, ctx, problems, requested)
        problems.check(validation.plausible_time, data.occurred_at, "occurred_at")
        subject = problems.check(validation.text, data.subject, "subject", max_length=300)
        body = problems.check(validation.json_without_nul, data.body, "body")
        problems.raise_any()
        activity = await self.record(
            ctx,
            kind=data.kind,
            channel=data.channel,
            subject=subject or "",
            body=body or "",
            occurred_at=data.occurred_at,
            contact_id=links["contact_id"],
            company_id=links["company_id"],
            deal_id=links["deal_id"],
        )
        await record_audit(
            self.db,
            ctx,
            "create",
            "activity",
            activity.id,
            label=activity.subject or activity.kind,
            after=msgspec.to_builtins(activity),
        )
        return activity

    async def record(
        self,
        ctx: TenantContext,
        *,
        kind: str,
        channel: str = "other",
        subject: str = "",
        body: str = "",
        occurred_at: datetime | None = None,
        contact_id: UUID | None = None,
        company_id: UUID | None = None,
        deal_id: UUID | None = None,
        data: dict[str, Any] | None = None,
    ) -> ActivityOut:
        """Write a timeline entry (also used by the system for stage and field changes)."""
        row = await self.db.fetchrow(
            """
            INSERT INTO activities (tenant_id, id, kind, channel, subject, body, author_id,
                                    occurred_at, contact_id, company_id, deal_id, data,
                                    search_text)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)
            RETURNING *
            """,
            ctx.tenant_id,
            new_id(),
            kind,
            channel,
            subject,
            body,
            ctx.membership_id,
            occurred_at or datetime.now(UTC),
            contact_id,
            company_id,
            deal_id,
            json.dumps(data or {}),
            search_document(subject, body) if kind in SEARCHABLE_KINDS else "",
        )
        activity = activity_out(row)
        await emit(self.db, ctx.tenant_id, "activity.created", msgspec.to_builtins(activity))
        return activity

    async def timeline(
        self,
        ctx: TenantContext,
        record: str,
        record_id: UUID,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> Timeline:
        """A record's timeline, newest first, merging what is linked to it."""
        ctx.require(Scope.ACTIVITIES_READ)
        check_page_size(limit)
        table = {"contact": "contacts", "company": "companies", "deal": "deals"}[record]
        owner = await self.db.fetchrow(
            f"SELECT owner_id FROM {table} WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            record_id,
        )
        if owner is None or not may_see(ctx, owner["owner_id"]):
            raise NotFoundError(f"{record} {record_id} not found in this workspace")
        args: list[Any] = [ctx.tenant_id, record_id]
        keyset = ""
        if cursor:
            args += list(decode_cursor(cursor))
            keyset = "AND (a.occurred_at, a.id) < ($3, $4)"
        hidden = ""
        if owner_condition(ctx, "x.owner_id", args):
            # A merged timeline leaves out what is linked to records this member may not see.
            visible = f"x.owner_id = ANY(${len(args)}::uuid[])"
            hidden = " ".join(
                f"AND (a.{column} IS NULL OR EXISTS (SELECT 1 FROM {linked} x WHERE "
                f"x.tenant_id = a.tenant_id AND x.id = a.{column} AND {visible}))"
                for column, linked in (
                    ("contact_id", "contacts"),
                    ("company_id", "companies"),
                    ("deal_id", "deals"),
                )
            )
        args.append(limit + 1)
        rows = await self.db.fetch(
            timeline_query(record, f"{keyset} {hidden}", f"${len(args)}"), *args
        )
        items = [activity_out(row) for row in rows[:limit]]
        return Timeline(
            items=items, next_cursor=cursor_after(items, len(rows), limit, "occurred_at")
        )
