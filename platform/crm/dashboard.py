"""The dashboard: the numbers a sales team looks at first thing in the morning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orbit.platform.crm.service import visible_owner_list
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from decimal import Decimal
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext


@dataclass(frozen=True, slots=True)
class StageValue:
    """Open deals in one stage, in one currency."""

    pipeline_id: UUID
    stage: str
    currency: str
    deals: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WonTotal:
    """Deals won in a month, in one currency."""

    currency: str
    this_month: Decimal
    last_month: Decimal


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything on the first page after login."""

    open_by_stage: list[StageValue]
    won: list[WonTotal]
    tasks_due_today: list[Any]
    overdue_tasks: int
    newest_contacts: list[Any]
    my_activity: list[Any]


class DashboardService:
    """Computes the dashboard for the caller's workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def build(
        self, ctx: TenantContext, now: datetime | None = None, time_zone: str = "UTC"
    ) -> Dashboard:
        """The dashboard as of ``now``: "today" in ``time_zone``, months in UTC."""
        for scope in (Scope.DEALS_READ, Scope.CONTACTS_READ, Scope.ACTIVITIES_READ):
            ctx.require(scope)
        now = now or datetime.now(UTC)
        owners = visible_owner_list(ctx)
        stages = await self.db.fetch(
            """
            SELECT s.pipeline_id, s.name AS stage, d.currency, count(*) AS deals,
                   sum(d.amount) AS amount
            FROM deals d JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
            JOIN pipelines p ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id
            WHERE d.tenant_id = $1 AND d.status = 'open'
              AND ($2::uuid[] IS NULL OR d.owner_id = ANY($2))
            GROUP BY p.position, s.pipeline_id, s.position, s.name, d.currency
            ORDER BY p.position, s.position, d.currency
            """,
            ctx.tenant_id,
            owners,
        )
        won = await self.db.fetch(
            """
            SELECT currency,
                   coalesce(sum(amount) FILTER (
                       WHERE closed_at >= date_trunc('month', $2::timestamptz)), 0) AS this_month,
                   coalesce(sum(amount) FILTER (
                       WHERE closed_at >= date_trunc('month', $2::timestamptz) - interval '1 month'
                         AND closed_at < date_trunc('month', $2::timestamptz)), 0) AS last_month
            FROM deals
            WHERE tenant_id = $1 AND status = 'won'
              AND closed_at >= date_trunc('month', $2::timestamptz) - interval '1 month'
              AND ($3::uuid[] IS NULL OR owner_id = ANY($3))
            GROUP BY currency ORDER BY currency
            """,
            ctx.tenant_id,
            now,
            owners,
        )
        today = await self.db.fetch(
            """
            SELECT id, title, due_at, priority FROM tasks
            WHERE tenant_id = $1 AND assignee_id IS NOT DISTINCT FROM $2 AND done_at IS NULL
              AND due_at >= date_trunc('day', $3::timestamptz AT TIME ZONE $4) AT TIME ZONE $4
              AND due_at < (date_trunc('day', $3::timestamptz AT TIME ZONE $4)
                            + interval '1 day') AT TIME ZONE $4
            ORDER BY due_at LIMIT 20
            """,
            ctx.tenant_id,
            ctx.membership_id,
            now,
            time_zone,
        )
        overdue = await self.db.fetchval(
            "SELECT count(*) FROM tasks WHERE tenant_id = $1 "
            "AND assignee_id IS NOT DISTINCT FROM $2 AND done_at IS NULL "
            "AND due_at < date_trunc('day', $3::timestamptz AT TIME ZONE $4) AT TIME ZONE $4",
            ctx.tenant_id,
            ctx.membership_id,
            now,
            time_zone,
        )
        contacts = await self.db.fetch(
            "SELECT id, first_name, last_name, email, created_at FROM contacts "
            "WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR owner_id = ANY($2)) "
            "ORDER BY created_at DESC, id DESC LIMIT 5",
            ctx.tenant_id,
            owners,
        )
        mine = await self.db.fetch(
            "SELECT id, kind, subject, occurred_at, contact_id, company_id, deal_id "
            "FROM activities WHERE tenant_id = $1 AND author_id IS NOT DISTINCT FROM $2 "
            "ORDER BY occurred_at DESC, id DESC LIMIT 5",
            ctx.tenant_id,
            ctx.membership_id,
        )
        return Dashboard(
            open_by_stage=[StageValue(**dict(row)) for row in stages],
            won=[WonTotal(**dict(row)) for row in won],
            tasks_due_today=list(today),
            overdue_tasks=overdue,
            newest_contacts=list(contacts),
            my_activity=list(mine),
        )
