"""Work done after an invoice is committed: documents, emails, payment links.

Finalizing queues one row per task (the parts' ``FINALIZE_TASKS``) in
``invoicing_outbox`` in its own transaction, so the work happens if and only if the
invoice exists, and the number's lock is never held while a PDF renders. A scheduled
job claims due rows with ``FOR UPDATE SKIP LOCKED`` (two workers never run the same
row), runs a row only once the tasks before it for the same invoice are done, runs each
in a savepoint (a failing task is undone alone and retried with backoff, its error
kept), and marks it done.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from typing import Any

from orbit.plugins.api import PluginContext, ScheduledJob
from orbit.plugins.builtin.invoicing.parts import load_parts

BATCH = 20
MAX_ATTEMPTS = 8
EVERY = timedelta(seconds=5)


@cache
def tasks() -> dict[str, Any]:
    """Task name → handler, from every part's ``OUTBOX_TASKS``."""
    found: dict[str, Any] = {}
    for part in load_parts():
        found.update(getattr(part, "OUTBOX_TASKS", {}))
    return found


def backoff(attempts: int) -> timedelta:
    """How long to wait before trying a failed task again: 30 s, 1 min, 2 min, … ≤ 1 h."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


async def _unknown(_ctx: PluginContext, row: dict[str, Any]) -> None:
    raise LookupError(f"no handler for outbox task {row['task']!r}")


async def run_due(ctx: PluginContext, limit: int = BATCH) -> int:
    """Run the workspace's due outbox tasks; how many succeeded."""
    rows = await ctx.db.fetch(
        "SELECT o.id, o.task, o.invoice_id, o.quote_id, o.payload, o.attempts "
        "FROM invoicing_outbox o WHERE o.tenant_id = $1 AND o.done_at IS NULL "
        "AND o.run_after <= now() AND NOT EXISTS ("
        "  SELECT 1 FROM invoicing_outbox p WHERE p.tenant_id = o.tenant_id "
        "  AND p.invoice_id = o.invoice_id AND p.done_at IS NULL AND p.position < o.position) "
        "ORDER BY o.run_after, o.id LIMIT $2 FOR UPDATE SKIP LOCKED",
        ctx.tenant_id,
        limit,
    )
    handlers = tasks()
    done = 0
    for row in rows:
        item = dict(row)
        if isinstance(item["payload"], str):
            item["payload"] = json.loads(item["payload"])
        handler = handlers.get(row["task"], _unknown)
        await ctx.db.execute("SAVEPOINT invoicing_outbox_task")
        try:
            await handler(ctx, item)
        except Exception as exc:  # noqa: BLE001 - one task's failure is recorded, not raised
            await ctx.db.execute("ROLLBACK TO SAVEPOINT invoicing_outbox_task")
            attempts = row["attempts"] + 1
            ctx.log.warning("outbox task %s %s failed: %r", row["task"], row["id"], exc)
            await ctx.db.execute(
                "UPDATE invoicing_outbox SET attempts = $3::int, last_error = $4::text, "
                "run_after = now() + $5::interval, "
                "done_at = CASE WHEN $3::int >= $6::int THEN now() ELSE NULL END "
                "WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                row["id"],
                attempts,
                repr(exc)[:2000],
                backoff(attempts),
                MAX_ATTEMPTS,
            )
        else:
            await ctx.db.execute("RELEASE SAVEPOINT invoicing_outbox_task")
            await ctx.db.execute(
                "UPDATE invoicing_outbox SET done_at = now(), attempts = attempts + 1, "
                "last_error = NULL WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                row["id"],
            )
            done += 1
    return done


async def _job(ctx: PluginContext) -> None:
    await run_due(ctx)


def scheduled_jobs() -> list[ScheduledJob]:
    """The outbox job, every few seconds for each workspace that enabled the plugin."""
    return [ScheduledJob("outbox", EVERY, _job)]
