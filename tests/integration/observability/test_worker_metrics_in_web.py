"""``orbit run``: the in-process worker's metrics appear on the web app's ``/metrics``."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from orbit.platform.events.worker import EventWorker
from orbit.platform.runtime import Runtime
from tests.conftest import make_client


async def test_the_web_metrics_carry_the_in_process_workers_metrics(
    app: Any, runtime: Runtime
) -> None:
    metrics = app.state["metrics"]
    # What `orbit run` does (platform/cli/main.py, _serve).
    worker = EventWorker(runtime, metrics_registry=metrics.registry)
    metrics.refreshers.append(worker.refresh_metrics)
    try:
        await worker.queue.connect()
        async with make_client(app) as anonymous:
            response = await anonymous.get("/metrics")
    finally:
        metrics.refreshers.remove(worker.refresh_metrics)
        for instrument in vars(worker.metrics).values():
            if instrument is not metrics.registry:
                metrics.registry.unregister(instrument)
        await worker.http.aclose()
        await worker.queue.disconnect()
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "orbit_http_requests",
        "orbit_job_queue_depth",
        "orbit_job_latency_seconds",
        "orbit_outbox_lag_seconds",
        "orbit_webhook_delivery_failures",
    } <= names
    lag = next(
        family
        for family in text_string_to_metric_families(response.text)
        if family.name == "orbit_outbox_lag_seconds"
    )
    assert lag.samples[0].value >= 0
    failures = [
        family
        for family in text_string_to_metric_families(response.text)
        if family.name == "orbit_worker_metrics_refresh_errors"
    ]
    assert failures[0].samples[0].value == 0
