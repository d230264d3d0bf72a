"""Quotas: the one place that says how much of each plan limit a workspace uses.

Limits come from the plan (``billing/plans.toml`` through
:func:`orbit.billing.entitlements.entitlements`); usage is counted in the
``tenant_usage`` table inside the caller's transaction, so a quota check and the
write it guards commit or roll back together, and exceeding a quota writes
nothing. Each check locks its counter row, so two requests racing for the last
unit cannot both get it.

- ``contacts``: triggers on ``contacts`` keep the count for every insert and
  delete (the API, imports, merges); :meth:`Quotas.check_contacts` is called
  before adding ``n`` contacts (an import calls it with its row count).
- ``seats``: active members, plus open invitations when inviting.
- ``emails_per_month``: :meth:`Quotas.use_emails` counts queued emails per
  calendar month (UTC) and refuses the one over the limit.
- ``storage``: :meth:`Quotas.use_storage` adds stored bytes (uploads, imports).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from orbit.billing.catalog import Plan, plan
from orbit.billing.entitlements import entitlements
from orbit.platform.errors import PaymentRequiredError

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database

Quota = Literal["contacts", "seats", "storage", "emails_per_month"]
QUOTAS: tuple[Quota, ...] = ("contacts", "seats", "storage", "emails_per_month")
_MB = 1024 * 1024


class QuotaExceededError(PaymentRequiredError):
    """A plan quota would be exceeded (402); names the quota, the limit and the use."""

    def __init__(
        self,
        message: str,
        *,
        quota: Quota,
        limit: int,
        used: int,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, fields=fields or {quota: f"the plan allows {limit:,}"})
        self.quota = quota
        self.limit = limit
        self.used = used


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of one quota a workspace uses (``storage`` in bytes)."""

    quota: Quota
    used: int
    limit: int


def limit_of(chosen: Plan, quota: Quota) -> int:
    """The plan's limit for ``quota`` (storage in bytes)."""
    if quota == "storage":
        return chosen.storage_mb * _MB
    return int(getattr(chosen, quota))


def month_key(now: datetime | None = None) -> str:
    """The counter of this calendar month's emails (UTC): ``emails:2026-11``."""
    return f"emails:{(now or datetime.now(UTC)):%Y-%m}"


def _upgrade(chosen: Plan) -> str:
    return f"upgrade from {chosen.name} for more" if chosen.key != "pro" else "contact sales"


class Quotas:
    """Plan quotas of workspaces, checked and counted in the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def plan_of(self, tenant_id: UUID) -> Plan:
        """The workspace's plan, as its entitlements give it."""
        row = await self.db.fetchrow(
            "SELECT plan, subscription_status, past_due_since FROM tenants WHERE id = $1",
            tenant_id,
        )
        if row is None:
            return plan("free")
        granted = entitlements(
            row["plan"], row["subscription_status"], row["past_due_since"], datetime.now(UTC)
        )
        return granted.plan

    async def _locked_count(self, tenant_id: UUID, counter: str) -> tuple[int, Plan]:
        """The counter's value, its row locked until commit, and the workspace's plan."""
        # One round trip: the upsert locks the row and the plan comes along.
        row = await self.db.fetchrow(
            """
            INSERT INTO tenant_usage (tenant_id, quota, used) VALUES ($1, $2, 0)
            ON CONFLICT (tenant_id, quota) DO UPDATE SET used = tenant_usage.used
            RETURNING used, (SELECT plan FROM tenants WHERE id = $1) AS plan
            """,
            tenant_id,
            counter,
        )
        if row is None:  # an upsert always returns its row
            raise RuntimeError(f"no usage row for {counter}")
        return int(row["used"]), plan(row["plan"] or "free")

    async def check_contacts(self, tenant_id: UUID, adding: int = 1) -> None:
        """A 402 naming the contact quota unless ``adding`` more contacts fit the plan.

        Imports call this with their row count before inserting anything.
        """
        used, chosen = await self._locked_count(tenant_id, "contacts")
        limit = chosen.contacts
        if used + adding > limit:
            room = max(limit - used, 0)
            raise QuotaExceededError(
                f"contacts quota exceeded: the {chosen.name} plan allows {limit:,} contacts and "
                f"this workspace has {used:,}; adding {adding:,} does not fit (room for "
                f"{room:,}); {_upgrade(chosen)}",
                quota="contacts",
                limit=limit,
                used=used,
            )

    async def check_seats(self, tenant_id: UUID, *, count_invitations: bool) -> None:
        """A 402 with an upgrade prompt when the plan's seats are all used (or promised)."""
        plan_key = await self.db.fetchval("SELECT plan FROM tenants WHERE id = $1", tenant_id)
        chosen = plan(plan_key)
        used = await self.db.fetchval(
            """
            SELECT (SELECT count(*) FROM memberships WHERE tenant_id = $1 AND status = 'active')
                 + CASE WHEN $2 THEN (SELECT count(*) FROM invitations WHERE tenant_id = $1
                        AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now())
                   ELSE 0 END
            """,
            tenant_id,
            count_invitations,
        )
        if used >= chosen.seats:
            cheapest = plan("starter")
            raise QuotaExceededError(
                f"the {chosen.name} plan includes {chosen.seats} seats and all are taken or "
                f"invited; upgrade to {cheapest.name} (from ${cheapest.price(1)} per seat a "
                "month) to add people, or revoke an open invitation",
                quota="seats",
                limit=chosen.seats,
                used=used,
                fields={"email": f"no seat left on the {chosen.name} plan"},
            )

    async def use_emails(self, tenant_id: UUID, count: int = 1) -> int:
        """Count ``count`` emails against this month's quota; a 402 when they do not fit.

        Returns the month's new total. The email outbox calls this as it queues.
        """
        return await self._use(tenant_id, "emails_per_month", month_key(), count)

    async def use_storage(self, tenant_id: UUID, size_bytes: int) -> int:
        """Count ``size_bytes`` more stored bytes (negative frees); a 402 when over the plan."""
        return await self._use(tenant_id, "storage", "storage_bytes", size_bytes)

    async def _use(self, tenant_id: UUID, quota: Quota, counter: str, amount: int) -> int:
        used, chosen = await self._locked_count(tenant_id, counter)
        limit = limit_of(chosen, quota)
        if amount > 0 and used + amount > limit:
            what = "MB of storage" if quota == "storage" else "emails a month"
            shown = (limit // _MB, used // _MB) if quota == "storage" else (limit, used)
            raise QuotaExceededError(
                f"{quota} quota exceeded: the {chosen.name} plan allows {shown[0]:,} {what} and "
                f"{shown[1]:,} are used; {_upgrade(chosen)}",
                quota=quota,
                limit=limit,
                used=used,
            )
        total = await self.db.fetchval(
            "UPDATE tenant_usage SET used = greatest(used + $3, 0) "
            "WHERE tenant_id = $1 AND quota = $2 RETURNING used",
            tenant_id,
            counter,
            amount,
        )
        return int(total)

    async def usage(self, tenant_id: UUID) -> list[Usage]:
        """Every quota's use and limit, for the billing page and the API."""
        chosen = await self.plan_of(tenant_id)
        counters = {
            row["quota"]: int(row["used"])
            for row in await self.db.fetch(
                "SELECT quota, used FROM tenant_usage WHERE tenant_id = $1 AND quota = ANY($2)",
                tenant_id,
                ["contacts", "storage_bytes", month_key()],
            )
        }
        seats = await self.db.fetchval(
            "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND status = 'active'",
            tenant_id,
        )
        return [
            Usage("contacts", counters.get("contacts", 0), chosen.contacts),
            Usage("seats", int(seats), chosen.seats),
            Usage("storage", counters.get("storage_bytes", 0), limit_of(chosen, "storage")),
            Usage("emails_per_month", counters.get(month_key(), 0), chosen.emails_per_month),
        ]
