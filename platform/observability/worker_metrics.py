"""The worker's Prometheus metrics: job queue depth and latency, outbox lag, delivery failures.

Labels carry only bounded, tenant-free values (a queue state, an outcome, a failure
reason): never a tenant id, an endpoint URL or an event id. ``orbit worker`` serves
this registry on its own port (:mod:`orbit.platform.observability.worker_server`);
``orbit run`` registers the same instruments in the web app's registry instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from orbit.platform.events.jobs import AttemptOutcome

JOB_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
QUEUE_STATES = ("queued", "active", "incomplete")
"""SAQ's counts: waiting to be taken, being worked on, and not yet finished (incl. scheduled)."""
FAILURE_OUTCOMES = ("retrying", "failed")
FAILURE_REASONS = ("http_4xx", "http_5xx", "http_other", "timeout", "connection", "inactive")
ATTEMPT_OUTCOMES = ("succeeded", "retrying", "failed")
SEAT_SYNC_OUTCOMES = ("applied", "skipped", "failed")


def _outcome(status: str) -> str:
    return "retrying" if status == "pending" else status


class WorkerMetrics:
    """The instruments of one worker, in their own registry unless one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.queue_depth = Gauge(
            "orbit_job_queue_depth",
            "Jobs in the worker's SAQ queue, by state (read from Redis at scrape time).",
            ["state"],
            registry=self.registry,
        )
        self.job_latency = Histogram(
            "orbit_job_latency_seconds",
            "Time from a webhook delivery attempt being due to its result being recorded.",
            buckets=JOB_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_lag = Gauge(
            "orbit_outbox_lag_seconds",
            "Age of the oldest committed, undispatched outbox event of any tenant (0: none).",
            registry=self.registry,
        )
        self.delivery_attempts = Counter(
            "orbit_webhook_delivery_attempts",
            "Webhook delivery attempts, by outcome (succeeded, retrying, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "orbit_webhook_delivery_failures",
            "Failed webhook delivery attempts, by outcome (retrying: tried again later; "
            "failed: given up) and reason.",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.pump_age = Gauge(
            "orbit_worker_pump_age_seconds",
            "Seconds since the worker's outbox pump last finished a round.",
            registry=self.registry,
        )
        self.refresh_errors = Counter(
            "orbit_worker_metrics_refresh_errors",
            "Scrapes whose queue depth or outbox lag could not be read (the old value stays).",
            registry=self.registry,
        )
        self.seat_syncs = Counter(
            "orbit_billing_seat_syncs",
            "Seat counts sent to Stripe per workspace, by outcome (applied; skipped: no "
            "subscription or no Stripe; failed: retried later with backoff).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in SEAT_SYNC_OUTCOMES:
            self.seat_syncs.labels(outcome)
        # Every series exists from the start, so dashboards and alerts see zeros, not gaps.
        for state in QUEUE_STATES:
            self.queue_depth.labels(state)
        for outcome in ATTEMPT_OUTCOMES:
            self.delivery_attempts.labels(outcome)
        for outcome in FAILURE_OUTCOMES:
            for reason in FAILURE_REASONS:
                self.delivery_failures.labels(outcome, reason)

    def observe_seat_sync(self, outcome: str) -> None:
        """Record one workspace's seat sync (``applied``, ``skipped`` or ``failed``)."""
        self.seat_syncs.labels(outcome if outcome in SEAT_SYNC_OUTCOMES else "failed").inc()

    def observe_attempt(self, attempt: AttemptOutcome) -> None:
        """Record one finished delivery attempt."""
        outcome = _outcome(attempt.status)
        self.delivery_attempts.labels(outcome).inc()
        self.job_latency.observe(attempt.latency)
        if attempt.reason is not None:
            reason = attempt.reason if attempt.reason in FAILURE_REASONS else "http_other"
            self.delivery_failures.labels(outcome, reason).inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
