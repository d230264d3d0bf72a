"""Reading the audit log: the admin's filtered list and a record's history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from orbit.platform import validation
from orbit.platform.audit.log import ACTIONS, OWNED_TABLES, RECORD_TYPES
from orbit.platform.audit.schemas import AuditEntryOut, AuditPage
from orbit.platform.crm.service import (
    DEFAULT_PAGE,
    check_page_size,
    cursor_after,
    decode_cursor,
    may_see,
    owner_condition,
)
from orbit.platform.errors import InvalidInputError, NotFoundError
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

FILTERS = ("actor", "record_type", "record_id", "action", "since", "until")
"""Query parameters of the audit list (besides ``cursor`` and ``limit``)."""

_READ_SCOPES = {
    "contact": Scope.CONTACTS_READ,
    "company": Scope.COMPANIES_READ,
    "deal": Scope.DEALS_READ,
}


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Checked filters of the audit list; ``None`` leaves a filter out."""

    actor: UUID | None = None
    record_type: str | None = None
    record_id: UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive: a date means up to the end of that day."""


def _moment(raw: str, field: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date (its start, or with ``end`` the next day's start) or an ISO time."""
    try:
        if len(raw) == len("2026-01-31"):
            day = date.fromisoformat(raw)
            moment = datetime.combine(day + timedelta(days=1 if end else 0), time(), zone)
        else:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except (ValueError, OverflowError):
        reason = "must be a date (2026-01-31) or an ISO 8601 time"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason}) from None
    validation.plausible_time(moment, field)
    return moment.astimezone(UTC)


def _uuid(raw: str, field: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        reason = f"{raw[:60]!r} is not an id"
        raise InvalidInputError(f"{field}: {reason}", fields={field: reason}) from None


def _choice(raw: str, field: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        reason = f"must be one of {', '.join(allowed)}"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return raw


def checked_filters(raw: Mapping[str, str | None], time_zone: str = "UTC") -> AuditFilters:
    """Filters from query parameters; one 400 naming every bad one.

    ``since``/``until`` given as dates are days in ``time_zone`` (the user's, on pages).
    """
    problems = validation.FieldProblems()
    given = {key: value.strip() for key, value in raw.items() if value and value.strip()}
    zone = ZoneInfo(time_zone)
    since = until = None
    if "since" in given:
        since = problems.check(_moment, given["since"], "since", zone, end=False)
    if "until" in given:
        until = problems.check(_moment, given["until"], "until", zone, end=True)
    if since and until and since >= until:
        problems.add("until", "must be after since")
    filters = AuditFilters(
        actor=problems.check(_uuid, given["actor"], "actor") if "actor" in given else None,
        record_type=problems.check(_choice, given["record_type"], "record_type", RECORD_TYPES)
        if "record_type" in given
        else None,
        record_id=problems.check(_uuid, given["record_id"], "record_id")
        if "record_id" in given
        else None,
        action=problems.check(_choice, given["action"], "action", ACTIONS)
        if "action" in given
        else None,
        since=since,
        until=until,
    )
    problems.raise_any()
    return filters


def entry_out(row: Any) -> AuditEntryOut:
    """A database row as the API's entry."""
    changes, details = row["changes"], row["details"]
    return AuditEntryOut(
        id=row["id"],
        occurred_at=row["occurred_at"],
        action=row["action"],
        record_type=row["record_type"],
        record_id=row["record_id"],
        record_label=row["record_label"],
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        actor_display=row["actor_display"],
        ip=str(row["ip"]) if row["ip"] is not None else None,
        changes=json.loads(changes) if isinstance(changes, str) else dict(changes or {}),
        details=json.loads(details) if isinstance(details, str) else dict(details or {}),
        erased=row["erased_at"] is not None,
    )


class AuditService:
    """The audit log of one workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(
        self,
        ctx: TenantContext,
        filters: AuditFilters = AuditFilters(),
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> AuditPage:
        """Entries matching ``filters``, newest first (``audit:read``: admins, keys with it).

        A principal limited by record visibility sees only entries of records it may
        see (entries without an owner — settings, tasks — are left out for it).
        """
        ctx.require(Scope.AUDIT_READ)
        return await self._page(ctx, filters, cursor, limit, respect_visibility=True)

    async def history(
        self,
        ctx: TenantContext,
        record_type: str,
        record_id: UUID,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> AuditPage:
        """A contact's, company's or deal's history, for anyone who may see the record.

        A 404 when the record is not in this workspace or hidden from ``ctx``.
        """
        ctx.require(_READ_SCOPES[record_type])
        owner = await self.db.fetchrow(
            f"SELECT owner_id FROM {OWNED_TABLES[record_type]} WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            record_id,
        )
        if owner is None or not may_see(ctx, owner["owner_id"]):
            raise NotFoundError(f"{record_type} {record_id} not found in this workspace")
        filters = AuditFilters(record_type=record_type, record_id=record_id)
        return await self._page(ctx, filters, cursor, limit, respect_visibility=False)

    async def _page(
        self,
        ctx: TenantContext,
        filters: AuditFilters,
        cursor: str | None,
        limit: int,
        *,
        respect_visibility: bool,
    ) -> AuditPage:
        check_page_size(limit)
        after = decode_cursor(cursor) if cursor else None
        args: list[Any] = [ctx.tenant_id]
        conditions = ["tenant_id = $1"]
        for column in ("actor_id", "record_type", "record_id", "action"):
            value = getattr(filters, "actor" if column == "actor_id" else column)
            if value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        if filters.since is not None:
            args.append(filters.since)
            conditions.append(f"occurred_at >= ${len(args)}")
        if filters.until is not None:
            args.append(filters.until)
            conditions.append(f"occurred_at < ${len(args)}")
        if after:
            args += [after[0], after[1]]
            conditions.append(f"(occurred_at, id) < (${len(args) - 1}, ${len(args)})")
        if respect_visibility and (visible := owner_condition(ctx, "owner_id", args)):
            conditions.append(visible)
        args.append(limit + 1)
        rows = await self.db.fetch(
            f"SELECT * FROM audit_entries WHERE {' AND '.join(conditions)} "
            f"ORDER BY occurred_at DESC, id DESC LIMIT ${len(args)}",
            *args,
        )
        items = [entry_out(row) for row in rows[:limit]]
        return AuditPage(
            items=items, next_cursor=cursor_after(items, len(rows), limit, stamp="occurred_at")
        )
