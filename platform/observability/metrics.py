"""Prometheus metrics: request latency and status per route template, database pool use.

Each app owns its :class:`Metrics` (its own registry), so several apps in one process
(tests) never collide. ``/metrics`` serves it in the text exposition format; it is
outside the tenant transaction (``_BYPASS`` in ``orbit.platform.auth.middleware``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from orbit.platform.runtime import Runtime

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"
"""The route label of requests no route matched: raw paths would explode the label set."""


class Metrics:
    """The registry of one Orbit web app and the instruments in it."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "orbit_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "orbit_http_request_duration_seconds",
            "Time from the request's arrival to its last response byte, per route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "orbit_http_requests_in_progress",
            "Requests being handled right now.",
            registry=self.registry,
        )
        self.stripe_webhooks = Counter(
            "orbit_stripe_webhooks",
            "Stripe webhook deliveries by outcome (applied, duplicate, skipped, ignored, "
            "recorded, noted, linked, invalid_signature; failed: not applied, Stripe retries).",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(runtime))
        # Plugin hook calls are counted by the plugin host (shared with the worker).
        self.registry.register(runtime.plugins.metrics.registry)
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        """Run before each scrape: ``orbit run``'s in-process worker reads its gauges here."""

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class _PoolCollector:
    """Reads the app role's connection pool at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = getattr(self.runtime.db.engine, "pool", None)
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        yield GaugeMetricFamily(
            "orbit_db_pool_max_size",
            "Connections the app role's pool may open.",
            value=self.runtime.db.pool_size,
        )
        yield GaugeMetricFamily(
            "orbit_db_pool_size", "Connections the pool holds open.", value=size
        )
        yield GaugeMetricFamily(
            "orbit_db_pool_in_use",
            "Connections checked out of the pool (inside a transaction).",
            value=size - idle,
        )


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus scrape endpoint."""
    metrics: Metrics = request.app.state["metrics"]
    for refresh in metrics.refreshers:
        await refresh()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
