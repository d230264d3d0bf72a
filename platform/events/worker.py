"""The background worker: a SAQ worker on Redis plus the outbox pump that feeds it.

The pump loops: it fires due task reminders, dispatches committed outbox events
(creating deliveries in PostgreSQL) and enqueues a SAQ job for every delivery
that is due. PostgreSQL holds the truth (what is pending, when it is next due),
so a lost Redis job or a killed worker only delays a delivery until the pump
sees it due again; SAQ's job key (delivery id + attempt count) keeps one queued
job per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from saq import Queue, Worker

from orbit.platform.crm.tasks import fire_due_reminders
from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy
from orbit.platform.events.egress import PublicOnlyTransport
from orbit.platform.events.jobs import HTTP_TIMEOUT, deliver, dispatch_batch, due_deliveries

if TYPE_CHECKING:
    from orbit.platform.events.jobs import DueDelivery
    from orbit.platform.runtime import Runtime

log = logging.getLogger(__name__)

QUEUE_NAME = "orbit"
POLL_INTERVAL = 0.5
"""Seconds the pump sleeps when it found nothing to do."""
DISPATCH_BATCH = 100
MAX_BATCHES_PER_ROUND = 20
"""Dispatch at most this many batches before enqueueing, so retries never starve."""
CONCURRENCY = 10
"""Deliveries in flight at once per worker process."""


class EventWorker:
    """Delivers the outbox: ``orbit worker`` runs one, ``orbit run`` runs one beside the web app."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        queue_name: str = QUEUE_NAME,
        policy: RetryPolicy = DEFAULT_POLICY,
        http_timeout: float = HTTP_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.policy = policy
        self.http_timeout = http_timeout
        self.poll_interval = poll_interval
        self.queue = Queue.from_url(runtime.endpoints.redis_url, name=queue_name)
        self.saq = Worker(
            self.queue,
            functions=[("deliver_webhook", self._deliver_job)],
            concurrency=CONCURRENCY,
        )
        # Signals belong to the CLI (SIGTERM unwinds the process, Ctrl+C cancels),
        # not to SAQ: in `orbit run` it would otherwise swallow uvicorn's Ctrl+C.
        self.saq.SIGNALS = []
        self.http = httpx.AsyncClient(
            follow_redirects=False,
            transport=PublicOnlyTransport(
                allow_private=runtime.settings.webhook_allow_private_networks
            ),
        )
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Work until cancelled."""
        await self.queue.connect()
        pump = asyncio.create_task(self._pump(), name="orbit-outbox-pump")
        log.info("worker started (queue %s)", self.queue.name)
        try:
            await self.saq.start()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            # On Ctrl+C in a terminal the embedded Valkey may already be gone: stopping
            # must still finish, so the web server and the database stop cleanly too.
            for cleanup in (self.saq.stop, self.http.aclose, self.queue.disconnect):
                try:
                    await cleanup()
                except Exception as exc:  # noqa: BLE001 - logged; nothing left to save
                    log.warning("worker shutdown: %s failed: %s", cleanup.__qualname__, exc)
            log.info("worker stopped")

    async def start(self) -> None:
        """Run in the background of the current event loop (``orbit run``'s web app start-up)."""
        self._task = asyncio.create_task(self.run(), name="orbit-worker")

    async def stop(self) -> None:
        """Stop the background run; jobs in flight are cancelled and retried later."""
        if self._task is None:
            return
        self.saq.event.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except Exception:
            log.exception("the worker failed")
        self._task = None

    async def pump_once(self) -> int:
        """Dispatch what is committed and enqueue what is due; how much work it found."""
        # Due reminders become notifications and task.due events, dispatched just below.
        found = await fire_due_reminders(self.runtime.db)
        for _ in range(MAX_BATCHES_PER_ROUND):
            dispatched = await dispatch_batch(self.runtime.db, DISPATCH_BATCH)
            found += dispatched
            if not dispatched:
                break
        # New deliveries are due at once, so this also enqueues what was just dispatched.
        due = await due_deliveries(self.runtime.db)
        await self._enqueue(due)
        return found + len(due)

    async def _pump(self) -> None:
        while True:
            try:
                found = await self.pump_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the outbox pump failed; trying again")
                found = 0
            if not found:
                await asyncio.sleep(self.poll_interval)

    async def _enqueue(self, deliveries: list[DueDelivery]) -> None:
        for delivery in deliveries:
            await self.queue.enqueue(
                "deliver_webhook",
                key=delivery.job_key,
                timeout=int(self.http_timeout * 2 + 10),
                retries=1,
                tenant_id=str(delivery.tenant_id),
                delivery_id=str(delivery.delivery_id),
            )

    async def _deliver_job(self, _ctx: Any, *, tenant_id: str, delivery_id: str) -> str | None:
        return await deliver(
            self.runtime.db,
            self.http,
            UUID(tenant_id),
            UUID(delivery_id),
            policy=self.policy,
            http_timeout=self.http_timeout,
        )
