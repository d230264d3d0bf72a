"""Domain events to plugins: at least once, with the event id, retried with backoff.

When the worker dispatches a tenant's committed events it also creates one delivery
row per event and enabled plugin whose manifest subscribes to the event type (same
transaction, so nothing is lost or doubled by a crash). :func:`deliver_plugin_events`
then takes due deliveries one at a time, each in a transaction of its tenant that
locks the row, calls the plugin's ``orbit_event`` (isolated, in a savepoint) and
records the outcome: the plugin's own writes commit together with "succeeded", so a
crash in between delivers the event again rather than losing it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy
from orbit.platform.ids import new_id
from orbit.plugins.context import Event

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.plugins.host import PluginHost
    from orbit.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)

MAX_ERROR = 500


def subscriptions(registry: PluginRegistry) -> tuple[list[str], list[str]]:
    """(plugin ids, event types) pairs of every loaded plugin's manifest, as two lists."""
    pairs = [(m.id, t) for m in registry.loaded for t in m.events]
    return [p for p, _ in pairs], [t for _, t in pairs]


async def create_deliveries(
    db: Database, registry: PluginRegistry, tenant_id: UUID, event_ids: list[UUID]
) -> int:
    """In the dispatching transaction: a delivery per event and subscribed, enabled plugin."""
    plugin_ids, event_types = subscriptions(registry)
    if not plugin_ids:
        return 0
    pairs = await db.fetch(
        """
        SELECT DISTINCT e.id AS event_id, p.plugin_id
        FROM outbox_events e
        JOIN plugin_installations p ON p.tenant_id = e.tenant_id AND p.enabled
        JOIN unnest($3::text[], $4::text[]) AS s (plugin_id, event_type)
          ON s.plugin_id = p.plugin_id AND (s.event_type = e.type OR s.event_type = '*')
        WHERE e.tenant_id = $1 AND e.id = ANY ($2::uuid[])
        """,
        tenant_id,
        event_ids,
        plugin_ids,
        event_types,
    )
    if not pairs:
        return 0
    await db.execute(
        """
        INSERT INTO plugin_event_deliveries (tenant_id, id, event_id, plugin_id)
        SELECT $1, d.id, d.event_id, d.plugin_id
        FROM unnest($2::uuid[], $3::uuid[], $4::text[]) AS d (id, event_id, plugin_id)
        ON CONFLICT (tenant_id, event_id, plugin_id) DO NOTHING
        """,
        tenant_id,
        [new_id() for _ in pairs],
        [pair["event_id"] for pair in pairs],
        [pair["plugin_id"] for pair in pairs],
    )
    return len(pairs)


async def deliver_one(
    host: PluginHost, tenant_id: UUID, delivery_id: UUID, policy: RetryPolicy = DEFAULT_POLICY
) -> str | None:
    """Deliver one due event to one plugin; the delivery's new status (``None``: not due)."""
    db = host.db
    async with db.transaction(tenant_id):
        row = await db.fetchrow(
            """
            SELECT d.plugin_id, d.attempts, d.created_at, e.id AS event_id, e.type, e.data,
                   e.occurred_at, t.slug
            FROM plugin_event_deliveries d
            JOIN outbox_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
            JOIN tenants t ON t.id = d.tenant_id
            WHERE d.tenant_id = $1 AND d.id = $2 AND d.status = 'pending'
              AND d.next_attempt_at <= now()
            FOR UPDATE OF d SKIP LOCKED
            """,
            tenant_id,
            delivery_id,
        )
        if row is None:
            return None
        plugin_id: str = row["plugin_id"]
        plugins = await host.for_tenant(tenant_id, row["slug"])
        attempt = row["attempts"] + 1
        error: str | None = None
        if plugin_id not in plugins.enabled:
            status, error = "skipped", "the plugin is no longer enabled in this workspace"
        else:
            event = Event(
                id=row["event_id"],
                type=row["type"],
                occurred_at=row["occurred_at"],
                data=json.loads(row["data"]),
            )
            ok, _ = await plugins.call_one("orbit_event", plugin_id, event=event)
            if ok:
                status = "succeeded"
            else:
                error = "the plugin failed or ran over its time budget (see the logs)"
                retry_at = policy.next_attempt(attempt, row["created_at"], datetime.now(UTC))
                status = "pending" if retry_at else "failed"
        await db.execute(
            """
            UPDATE plugin_event_deliveries
            SET status = $3::varchar, attempts = $4, last_error = $5, updated_at = now(),
                next_attempt_at = CASE WHEN $3::varchar = 'pending' THEN $6 ELSE next_attempt_at END
            WHERE tenant_id = $1 AND id = $2
            """,
            tenant_id,
            delivery_id,
            status,
            attempt,
            error[:MAX_ERROR] if error else None,
            retry_at if status == "pending" else None,
        )
    log.debug("plugin delivery %s to %s: %s", delivery_id, plugin_id, status)
    return status


async def deliver_plugin_events(
    host: PluginHost, limit: int = 100, policy: RetryPolicy = DEFAULT_POLICY
) -> int:
    """Deliver up to ``limit`` due plugin deliveries; how many it attempted."""
    if not host.registry.loaded:
        return 0
    async with host.db.transaction():
        due = await host.db.fetch(
            "SELECT tenant_id, id FROM orbit_due_plugin_deliveries($1)", limit
        )
    done = 0
    for row in due:
        if await deliver_one(host, row["tenant_id"], row["id"], policy) is not None:
            done += 1
    return done


async def run_scheduled_jobs(host: PluginHost) -> int:
    """Run every plugin job that is due for a tenant that enabled its plugin; how many ran.

    "Due" is a Redis key per job and tenant that lives ``every``: whichever worker sets
    it first runs the job, so several workers run it once per interval between them.
    """
    ran = 0
    for plugin_id, job in host.scheduled_jobs():
        async with host.db.transaction():
            tenants = await host.db.fetch("SELECT * FROM orbit_plugin_tenants($1)", plugin_id)
        for tenant in tenants:
            key = f"orbit:plugin-job:{plugin_id}:{job.name}:{tenant['tenant_id']}"
            seconds = max(1, int(job.every.total_seconds()))
            if not await host.redis.set(key, "1", nx=True, ex=seconds):
                continue
            async with host.db.transaction(tenant["tenant_id"]):
                plugins = await host.for_tenant(tenant["tenant_id"], tenant["slug"])
                if plugin_id not in plugins.enabled:
                    continue
                ctx = plugins.context(plugin_id)
                await host.run(f"job:{job.name}", ctx, partial(job.run, ctx), {})
                ran += 1
    return ran
