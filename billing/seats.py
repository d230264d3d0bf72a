"""Seat sync: the subscription's quantity follows the workspace's active members.

Activating, accepting or deactivating a member calls :func:`enqueue_seat_sync` in the
same transaction, so the change and the promise to tell Stripe commit together. The
worker's pump calls :func:`sync_due_seats`: per workspace it locks the billing account
(one sync per workspace at a time), takes the pending rows, counts the active members
NOW and sets that absolute quantity on the subscription. Retries and reordering
therefore converge on the current count, and a Stripe outage only delays the update:
a failed row is tried again with backoff, for as long as it takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import stripe

from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy
from orbit.platform.ids import new_id

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from orbit.billing.gateway import StripeGateway
    from orbit.platform.db.engine import Database

log = logging.getLogger(__name__)

MAX_ERROR = 500
DUE_BATCH = 50


async def enqueue_seat_sync(db: Database, tenant_id: UUID, reason: str) -> UUID:
    """Promise, in the caller's transaction, to send the seat count to Stripe."""
    sync_id = new_id()
    await db.execute(
        "INSERT INTO billing_seat_syncs (tenant_id, id, reason) VALUES ($1, $2, $3)",
        tenant_id,
        sync_id,
        reason[:40],
    )
    return sync_id


async def active_seats(db: Database, tenant_id: UUID) -> int:
    """Active memberships: the seats a workspace pays for."""
    count = await db.fetchval(
        "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND status = 'active'", tenant_id
    )
    return int(count or 0)


@dataclass(frozen=True, slots=True)
class SeatSyncResult:
    """What one workspace's sync did."""

    tenant_id: UUID
    rows: int
    outcome: str
    quantity: int | None = None


async def sync_due_seats(
    db: Database,
    gateway: StripeGateway | None,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    observe: Callable[[str], None] | None = None,
) -> list[SeatSyncResult]:
    """Apply every due seat sync (of any workspace); what each workspace's did."""
    async with db.transaction():
        due = await db.fetch("SELECT tenant_id FROM orbit_due_seat_sync_tenants($1)", DUE_BATCH)
    results = []
    for row in due:
        result = await sync_tenant_seats(db, gateway, row["tenant_id"], policy=policy)
        if result is not None:
            results.append(result)
            if observe is not None:
                observe(result.outcome.split(":", 1)[0])
    return results


async def sync_tenant_seats(
    db: Database,
    gateway: StripeGateway | None,
    tenant_id: UUID,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> SeatSyncResult | None:
    """Send one workspace's current seat count to Stripe; ``None`` if another worker has it."""
    async with db.transaction():
        await db.set_tenant(tenant_id)
        # The account row serializes the workspace's syncs: two workers never send
        # counts for one workspace out of order. A workspace without one is on Free.
        account = await db.fetchrow(
            "SELECT stripe_subscription_id FROM billing_accounts WHERE tenant_id = $1 "
            "FOR UPDATE SKIP LOCKED",
            tenant_id,
        )
        has_account = await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM billing_accounts WHERE tenant_id = $1)", tenant_id
        )
        if account is None and has_account:
            return None
        # Rows first, then the count: every row taken here is reflected in the count.
        rows = await db.fetch(
            "SELECT id, attempts FROM billing_seat_syncs WHERE tenant_id = $1 "
            "AND applied_at IS NULL AND next_attempt_at <= now() FOR UPDATE SKIP LOCKED",
            tenant_id,
        )
        if not rows:
            return None
        ids = [r["id"] for r in rows]
        seats = await active_seats(db, tenant_id)
        subscription_id = account["stripe_subscription_id"] if account is not None else None
        status = await db.fetchval(
            "SELECT subscription_status FROM tenants WHERE id = $1", tenant_id
        )
        if status == "canceled":  # Stripe refuses changes to a canceled subscription
            subscription_id = None
        if subscription_id is None or gateway is None:
            outcome = "skipped: no subscription" if gateway else "skipped: Stripe not configured"
            await _applied(db, tenant_id, ids, seats, outcome)
            return SeatSyncResult(tenant_id, len(ids), outcome, seats)
        # Derived from the command (the newest row) and the quantity: a retry of the
        # same change reuses the key; a different count is a different request.
        key = f"seats:{tenant_id}:{max(ids)}:{seats}"
        try:
            await gateway.set_seats(subscription_id, seats, idempotency_key=key)
        except stripe.StripeError as exc:
            attempts = max(r["attempts"] for r in rows) + 1
            error = f"failed: {type(exc).__name__}: {exc}"[:MAX_ERROR]
            due = datetime.now(UTC) + policy.delay(attempts)
            await db.execute(
                "UPDATE billing_seat_syncs SET attempts = attempts + 1, next_attempt_at = $3, "
                "outcome = $4 WHERE tenant_id = $1 AND id = ANY ($2::uuid[])",
                tenant_id,
                ids,
                due,
                error,
            )
            log.warning(
                "seat sync of tenant %s failed (attempt %d, next at %s): %s",
                tenant_id,
                attempts,
                due.isoformat(),
                exc,
            )
            return SeatSyncResult(tenant_id, len(ids), error, seats)
        outcome = f"applied: {seats} seats"
        await _applied(db, tenant_id, ids, seats, outcome)
        log.info("seat sync of tenant %s: %d seats sent to Stripe", tenant_id, seats)
        return SeatSyncResult(tenant_id, len(ids), outcome, seats)


async def _applied(
    db: Database, tenant_id: UUID, ids: list[UUID], seats: int, outcome: str
) -> None:
    await db.execute(
        "UPDATE billing_seat_syncs SET applied_at = now(), attempts = attempts + 1, "
        "quantity_sent = $3, outcome = $4 WHERE tenant_id = $1 AND id = ANY ($2::uuid[])",
        tenant_id,
        ids,
        seats,
        outcome,
    )
