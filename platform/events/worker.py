"""The background worker: a SAQ worker on Redis plus the outbox pump that feeds it.

The pump loops: it fires due task reminders, sends due seat counts to Stripe
(:mod:`orbit.billing.seats`), dispatches committed outbox events
(creating deliveries in PostgreSQL) and enqueues a SAQ job for every delivery
that is due. PostgreSQL holds the truth (what is pending, when it is next due),
so a lost Redis job or a killed worker only delays a delivery until the pump
sees it due again; SAQ's job key (delivery id + attempt count) keeps one queued
job per attempt.

On SIGTERM ``orbit worker`` calls :meth:`EventWorker.drain`: the pump stops, no new
delivery starts, the ones in flight get the grace period to finish and be recorded;
any still running then are cancelled, and their PostgreSQL lease runs out so another
worker tries them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from saq import Queue, Worker

from orbit.billing.seats import sync_due_seats
from orbit.billing.service import end_expired_trials
from orbit.billing.webhooks import retry_stripe_events
from orbit.platform.crm.tasks import fire_due_reminders
from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy
from orbit.platform.events.egress import PublicOnlyTransport
from orbit.platform.events.jobs import HTTP_TIMEOUT, deliver, dispatch_batch, due_deliveries
from orbit.platform.events.mail import SmtpServer, send_due_emails
from orbit.platform.imports.engine import run_import
from orbit.platform.imports.exports import run_export
from orbit.platform.imports.jobs import claim_data_jobs
from orbit.platform.observability.worker_metrics import QUEUE_STATES, WorkerMetrics
from orbit.plugins.jobs import deliver_plugin_events, run_scheduled_jobs

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from orbit.platform.events.jobs import DueDelivery
    from orbit.platform.runtime import Runtime

log = logging.getLogger(__name__)

QUEUE_NAME = "orbit"
POLL_INTERVAL = 0.5
"""Seconds the pump sleeps when it found nothing to do."""
DISPATCH_BATCH = 100
MAX_BATCHES_PER_ROUND = 20
"""Dispatch at most this many batches before enqueueing, so retries never starve."""
SCHEDULED_JOBS_INTERVAL = 10.0
"""Seconds between looks for due plugin jobs (their own intervals are longer)."""
CONCURRENCY = 10
"""Deliveries in flight at once per worker process."""
HEALTH_STALE_AFTER = 60.0
"""``/healthz`` fails when the pump has not finished a round for this many seconds."""
METRICS_READ_TIMEOUT = 2.0
"""Seconds a scrape waits for Redis or PostgreSQL before keeping the last values."""


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
        shutdown_grace: float = 0.0,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.runtime = runtime
        self.shutdown_grace = shutdown_grace
        """Seconds :meth:`stop` lets deliveries in flight finish (0: cancel them at once)."""
        self.metrics = WorkerMetrics(metrics_registry)
        if metrics_registry is None:  # `orbit worker` alone: its /metrics shows plugin calls too
            self.metrics.registry.register(runtime.plugins.metrics.registry)
        self.policy = policy
        self.http_timeout = http_timeout
        self.poll_interval = poll_interval
        self.queue = Queue.from_url(runtime.endpoints.redis_url, name=queue_name)
        self.saq: Worker[Any] = Worker(
            self.queue,
            functions=[
                ("deliver_webhook", self._deliver_job),
                ("run_data_job", self._data_job),
            ],
            concurrency=CONCURRENCY,
        )
        # Signals belong to the CLI (SIGTERM unwinds the process, Ctrl+C cancels),
        # not to SAQ: in `orbit run` it would otherwise swallow uvicorn's Ctrl+C.
        self.saq.SIGNALS = []
        smtp_url = runtime.settings.smtp_url
        self.smtp = SmtpServer.from_url(smtp_url, runtime.settings.mail_from) if smtp_url else None
        self.http = httpx.AsyncClient(
            follow_redirects=False,
            transport=PublicOnlyTransport(
                allow_private=runtime.settings.webhook_allow_private_networks
            ),
        )
        self._task: asyncio.Task[None] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._last_pump = time.monotonic()
        self._jobs_task: asyncio.Task[None] | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def run(self) -> None:
        """Work until cancelled or drained."""
        await self.queue.connect()
        self._last_pump = time.monotonic()
        pump = self._pump_task = asyncio.create_task(self._pump(), name="orbit-outbox-pump")
        jobs = self._jobs_task = asyncio.create_task(self._plugin_jobs(), name="orbit-plugin-jobs")
        events = self._events_task = asyncio.create_task(
            self._plugin_events(), name="orbit-plugin-events"
        )
        log.info("worker started (queue %s)", self.queue.name)
        try:
            if not self._draining:
                await self.saq.start()
        finally:
            for task in (pump, jobs, events):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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

    async def drain(self, grace: float) -> bool:
        """Stop taking work and give deliveries in flight ``grace`` seconds to finish.

        Then :meth:`run` winds down: SAQ cancels whatever still runs (re-queued in Redis,
        and retried from PostgreSQL once its lease runs out). Whether all finished.
        """
        self._draining = True
        for task in (self._pump_task, self._jobs_task, self._events_task):
            if task is not None:
                task.cancel()  # a cancelled plugin job rolls back and runs again later
        log.info("worker draining: %d deliveries in flight, %ss to finish", self._in_flight, grace)
        finished = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=max(grace, 0.0))
        except TimeoutError:
            finished = False
            log.warning("worker drain: %d deliveries still running, cancelling", self._in_flight)
        self.saq.event.set()
        return finished

    def health(self) -> tuple[bool, dict[str, object]]:
        """Whether the worker loop is alive: its pump finished a round lately."""
        age = time.monotonic() - self._last_pump
        pump = self._pump_task
        alive = pump is not None and not pump.done() and not self._draining
        ok = alive and age <= HEALTH_STALE_AFTER
        return ok, {"pump_age_seconds": round(age, 3), "in_flight": self._in_flight}

    async def refresh_metrics(self) -> None:
        """Read the queue depth (Redis) and the outbox lag (PostgreSQL) into the gauges."""
        self.metrics.pump_age.set(time.monotonic() - self._last_pump)
        try:
            async with asyncio.timeout(METRICS_READ_TIMEOUT):
                for state in QUEUE_STATES:
                    depth = await self.queue.count(state)  # type: ignore[arg-type]
                    self.metrics.queue_depth.labels(state).set(depth)
                async with self.runtime.db.transaction():
                    lag = await self.runtime.db.fetchval("SELECT orbit_outbox_lag_seconds()")
                self.metrics.outbox_lag.set(float(lag or 0.0))
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; the error is counted
            self.metrics.refresh_errors.inc()
            log.warning("worker metrics: could not read queue depth or outbox lag: %s", exc)

    async def scrape(self) -> bytes:
        """Fresh gauges in Prometheus' text format (the worker's ``/metrics``)."""
        await self.refresh_metrics()
        return self.metrics.exposition()

    async def stop(self) -> None:
        """Stop the background run: drain for ``shutdown_grace``, then cancel what still runs."""
        if self._task is None:
            return
        await self.drain(self.shutdown_grace)
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
        settings = self.runtime.settings
        found = await fire_due_reminders(self.runtime.db, public_url=settings.public_url)
        found += await send_due_emails(self.runtime.db, self.smtp)
        for _ in range(MAX_BATCHES_PER_ROUND):
            dispatched = await dispatch_batch(
                self.runtime.db, DISPATCH_BATCH, self.runtime.plugins.registry
            )
            found += dispatched
            if not dispatched:
                break
        # Seat counts to Stripe: a failure stays pending and is retried with backoff.
        synced = await sync_due_seats(
            self.runtime.db,
            self.runtime.billing,
            policy=self.policy,
            observe=self.metrics.observe_seat_sync,
        )
        found += sum(1 for result in synced if not result.outcome.startswith("failed"))
        found += await end_expired_trials(self.runtime.db)
        # Stripe events whose processing failed in the webhook request.
        found += len(await retry_stripe_events(self.runtime.db, self.runtime.billing, self.policy))
        # New deliveries are due at once, so this also enqueues what was just dispatched.
        due = await due_deliveries(self.runtime.db)
        await self._enqueue(due)
        data_jobs = await claim_data_jobs(self.runtime.db)
        for job in data_jobs:
            await self.queue.enqueue(
                "run_data_job",
                key=job.job_key,
                timeout=0,  # a million-row import takes minutes; the lease guards it
                retries=1,
                kind=job.kind,
                tenant_id=str(job.tenant_id),
                job_id=str(job.job_id),
            )
        return found + len(due) + len(data_jobs)

    async def _pump(self) -> None:
        while True:
            try:
                found = await self.pump_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the outbox pump failed; trying again")
                found = 0
            self._last_pump = time.monotonic()
            if not found:
                await asyncio.sleep(self.poll_interval)

    async def _plugin_events(self) -> None:
        """Domain events to plugins (at least once), in their own task beside the pump.

        A plugin takes up to 10 s per event: inside the pump, a backlog of them held
        back webhook deliveries and reminders behind it.
        """
        while True:
            try:
                found = await deliver_plugin_events(self.runtime.plugins, policy=self.policy)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivering events to plugins failed; trying again")
                found = 0
            if not found:
                await asyncio.sleep(self.poll_interval)

    async def _plugin_jobs(self) -> None:
        """Plugins' scheduled jobs, in their own task beside the pump.

        Every due job runs once per workspace that enabled its plugin, one after the
        other (up to 60 s each): inside the pump, a round of them held back webhook
        deliveries and reminders for as long as it took.
        """
        while True:
            try:
                await run_scheduled_jobs(self.runtime.plugins)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a round of plugin jobs failed; trying again")
            await asyncio.sleep(SCHEDULED_JOBS_INTERVAL)

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

    async def _data_job(self, _ctx: Any, *, kind: str, tenant_id: str, job_id: str) -> str:
        """Run an import or an export to its end (batches commit with their checkpoint)."""
        home = self.runtime.settings.home
        if kind == "import":
            return await run_import(self.runtime.db, home, UUID(tenant_id), UUID(job_id))
        return await run_export(self.runtime.db, home, UUID(tenant_id), UUID(job_id))

    async def _deliver_job(self, _ctx: Any, *, tenant_id: str, delivery_id: str) -> str | None:
        if self._draining:
            # Not leased, so still due in PostgreSQL: the next pump enqueues it again.
            return None
        self._in_flight += 1
        self._idle.clear()
        try:
            return await deliver(
                self.runtime.db,
                self.http,
                UUID(tenant_id),
                UUID(delivery_id),
                policy=self.policy,
                http_timeout=self.http_timeout,
                observe=self.metrics.observe_attempt,
            )
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
