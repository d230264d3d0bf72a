"""What the worker does with the outbox: dispatch committed events, deliver webhooks.

Dispatch claims a batch of committed events of one tenant (a narrow
``SECURITY DEFINER`` look-up that returns ids only, rows locked ``FOR UPDATE
SKIP LOCKED`` so several workers never take the same event), scopes the same
transaction to that tenant, creates one delivery per matching active endpoint
and marks the events dispatched: all or nothing, so a crash before the commit
dispatches them again (at-least-once).

A delivery is leased (its next attempt pushed past the HTTP timeout) in a short
transaction, sent with no transaction open, and recorded in another: a worker
killed mid-request leaves the lease to expire and the delivery is tried again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy
from orbit.platform.events.signing import signature
from orbit.platform.ids import new_id
from orbit.plugins.jobs import create_deliveries

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 5.0
"""Seconds a receiver has to answer one delivery."""
USER_AGENT = "Orbit-Webhooks/1"
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery whose next attempt is due (``attempts`` so far, for job de-duplication)."""

    tenant_id: UUID
    delivery_id: UUID
    attempts: int

    @property
    def job_key(self) -> str:
        """One queued job per delivery attempt, however often the pump sees it due."""
        return f"webhook:{self.delivery_id}:{self.attempts}"


async def dispatch_batch(
    db: Database, limit: int = 100, plugins: PluginRegistry | None = None
) -> int:
    """Dispatch up to ``limit`` committed events of one tenant; how many it dispatched.

    With ``plugins``, also creates the deliveries to the tenant's enabled plugins
    that subscribe to the events (orbit.plugins.jobs delivers them).
    """
    async with db.transaction():
        claimed = await db.fetch("SELECT tenant_id, id FROM orbit_claim_outbox_events($1)", limit)
        if not claimed:
            return 0
        tenant_id: UUID = claimed[0]["tenant_id"]
        # From here on the transaction sees only this tenant's rows.
        await db.set_tenant(tenant_id)
        event_ids = [row["id"] for row in claimed]
        pairs = await db.fetch(
            """
            SELECT e.id AS event_id, w.id AS endpoint_id
            FROM outbox_events e
            JOIN webhook_endpoints w
              ON w.tenant_id = e.tenant_id AND w.active AND e.type = ANY (w.event_types)
            WHERE e.tenant_id = $1 AND e.id = ANY ($2::uuid[])
            ORDER BY e.occurred_at, e.id
            """,
            tenant_id,
            event_ids,
        )
        await db.execute(
            """
            INSERT INTO webhook_deliveries (tenant_id, id, event_id, endpoint_id)
            SELECT $1, d.id, d.event_id, d.endpoint_id
            FROM unnest($2::uuid[], $3::uuid[], $4::uuid[]) AS d (id, event_id, endpoint_id)
            ON CONFLICT (tenant_id, event_id, endpoint_id) DO NOTHING
            """,
            tenant_id,
            [new_id() for _ in pairs],
            [pair["event_id"] for pair in pairs],
            [pair["endpoint_id"] for pair in pairs],
        )
        if plugins is not None:
            await create_deliveries(db, plugins, tenant_id, event_ids)
        await db.execute(
            "UPDATE outbox_events SET dispatched_at = now() WHERE tenant_id = $1 AND id = ANY ($2)",
            tenant_id,
            event_ids,
        )
    log.debug("dispatched %d events of tenant %s", len(event_ids), tenant_id)
    return len(event_ids)


async def due_deliveries(db: Database, limit: int = 200) -> list[DueDelivery]:
    """Deliveries of any tenant whose next attempt is due (ids only)."""
    async with db.transaction():
        rows = await db.fetch(
            "SELECT tenant_id, id, attempts FROM orbit_due_webhook_deliveries($1)", limit
        )
    return [DueDelivery(row["tenant_id"], row["id"], row["attempts"]) for row in rows]


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt did, for the worker's metrics: no tenant, URL or payload."""

    status: str
    """The delivery's new status: ``succeeded``, ``pending`` (retried later) or ``failed``."""
    reason: str | None
    """Why it failed: ``http_4xx``, ``http_5xx``, ``http_other``, ``timeout``,
    ``connection`` or ``inactive``; ``None`` when it succeeded."""
    latency: float
    """Seconds from the attempt being due to its result being recorded."""


@dataclass(frozen=True, slots=True)
class _Leased:
    attempt: int
    due_at: datetime
    started_at: datetime
    event_id: UUID
    endpoint_id: UUID
    url: str | None
    secret: str
    body: bytes


def event_body(
    event_id: UUID, event_type: str, slug: str | None, occurred_at: datetime, data: Any
) -> bytes:
    """The JSON a receiver gets for one event (compact, stable key order)."""
    payload = {
        "id": str(event_id),
        "type": event_type,
        "tenant": slug,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def _lease(
    db: Database, tenant_id: UUID, delivery_id: UUID, lease: timedelta
) -> _Leased | None:
    async with db.transaction(tenant_id):
        row = await db.fetchrow(
            """
            UPDATE webhook_deliveries d
            SET attempts = d.attempts + 1, next_attempt_at = now() + $3, updated_at = now()
            FROM (
                SELECT id, next_attempt_at FROM webhook_deliveries
                WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND next_attempt_at <= now()
                FOR UPDATE
            ) AS due
            WHERE d.tenant_id = $1 AND d.id = due.id
            RETURNING d.attempts, due.next_attempt_at AS due_at, d.started_at, d.event_id,
                      d.endpoint_id
            """,
            tenant_id,
            delivery_id,
            lease,
        )
        if row is None:
            return None  # done, not yet due, or leased by another worker
        details = await db.fetchrow(
            """
            SELECT e.type, e.data, e.occurred_at, t.slug, w.url, w.secret, w.active
            FROM outbox_events e
            JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.id = $3
            LEFT JOIN tenants t ON t.id = e.tenant_id
            WHERE e.tenant_id = $1 AND e.id = $2
            """,
            tenant_id,
            row["event_id"],
            row["endpoint_id"],
        )
    if details is None:
        return None  # the endpoint or event was deleted; the cascade removes the delivery
    body = event_body(
        row["event_id"],
        details["type"],
        details["slug"],
        details["occurred_at"],
        json.loads(details["data"]),
    )
    return _Leased(
        attempt=row["attempts"],
        due_at=row["due_at"],
        started_at=row["started_at"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        url=details["url"] if details["active"] else None,
        secret=details["secret"],
        body=body,
    )


def _failure_reason(status_code: int | None, error: str | None, exc: Exception | None) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if exc is not None:
        return "connection"
    if status_code is None:
        return "inactive" if error else "connection"
    if 400 <= status_code < 500:  # noqa: PLR2004 - HTTP client errors
        return "http_4xx"
    if 500 <= status_code < 600:  # noqa: PLR2004 - HTTP server errors
        return "http_5xx"
    return "http_other"


async def _post(
    client: httpx.AsyncClient, leased: _Leased, http_timeout: float
) -> tuple[int | None, str | None, Exception | None]:
    if leased.url is None:
        return None, "the endpoint is inactive", None
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Orbit-Event-Id": str(leased.event_id),
        "Orbit-Timestamp": str(timestamp),
        "Orbit-Signature": signature(leased.secret, timestamp, leased.body),
        "Orbit-Delivery-Attempt": str(leased.attempt),
    }
    try:
        response = await client.post(
            leased.url, content=leased.body, headers=headers, timeout=http_timeout
        )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or type(exc).__name__, exc
    if 200 <= response.status_code < 300:  # noqa: PLR2004 - HTTP success range
        return response.status_code, None, None
    return response.status_code, f"the receiver answered HTTP {response.status_code}", None


async def deliver(
    db: Database,
    client: httpx.AsyncClient,
    tenant_id: UUID,
    delivery_id: UUID,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    http_timeout: float = HTTP_TIMEOUT,
    observe: Callable[[AttemptOutcome], None] | None = None,
) -> str | None:
    """Make one attempt of a due delivery and record it; its new status, or ``None`` if not due.

    ``observe`` hears how the attempt went once it is recorded (the worker's metrics).
    """
    lease = timedelta(seconds=http_timeout * 2 + 5)
    leased = await _lease(db, tenant_id, delivery_id, lease)
    if leased is None:
        return None
    started = time.monotonic()
    status_code, error, exc = await _post(client, leased, http_timeout)
    duration_ms = int((time.monotonic() - started) * 1000)
    now = datetime.now(UTC)
    if error is None:
        status, next_at = "succeeded", now
    elif leased.url is None:
        status, next_at = "failed", now
    else:
        retry_at = policy.next_attempt(leased.attempt, leased.started_at, now)
        status, next_at = ("pending", retry_at) if retry_at else ("failed", now)
    async with db.transaction(tenant_id):
        await db.execute(
            """
            INSERT INTO webhook_attempts (tenant_id, id, delivery_id, event_id, endpoint_id,
                                          attempt, status_code, error, duration_ms, attempted_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            tenant_id,
            new_id(),
            delivery_id,
            leased.event_id,
            leased.endpoint_id,
            leased.attempt,
            status_code,
            error,
            duration_ms,
            now,
        )
        # Only the holder of the current lease settles the delivery.
        await db.execute(
            """
            UPDATE webhook_deliveries SET status = $4, next_attempt_at = $5, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND attempts = $3
            """,
            tenant_id,
            delivery_id,
            leased.attempt,
            status,
            next_at,
        )
    if observe is not None:
        observe(
            AttemptOutcome(
                status=status,
                reason=None if error is None else _failure_reason(status_code, error, exc),
                latency=max(0.0, (datetime.now(UTC) - leased.due_at).total_seconds()),
            )
        )
    log.info(
        "webhook delivery %s attempt %d: %s (%s)",
        delivery_id,
        leased.attempt,
        status,
        status_code if error is None else error,
    )
    return status
