"""``orbit worker`` as operators run it: SIGTERM loses no delivery, /healthz and /metrics.

Each test starts the real ``orbit worker`` subprocess against the test database and
Redis, with a slow receiver on 127.0.0.1 (hence ``ORBIT_WEBHOOK_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.events.conftest import eventually

ROOT = Path(__file__).resolve().parents[3]
UUID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)


@dataclass
class SlowReceiver:
    """Answers every POST after ``delay`` seconds with ``statuses[path]`` (default 200)."""

    url: str = ""
    delay: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    arrived: list[str] = field(default_factory=list)
    answered: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> tuple[int, int]:
        """Requests that arrived at ``path``, and those answered 2xx."""
        with self.lock:
            arrived = self.arrived.count(path)
            ok = sum(1 for p, status in self.answered if p == path and 200 <= status < 300)
        return arrived, ok


@pytest.fixture
def slow_receiver() -> Iterator[SlowReceiver]:
    state = SlowReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                state.arrived.append(self.path)
                delay, status = state.delay, state.statuses.get(self.path, 200)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                return  # the worker gave up on this request
            with state.lock:
                state.answered.append((self.path, status))

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_worker(
    endpoints: Endpoints, home: Path, log: Path, *, metrics_port: int, grace: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ORBIT_HOME": str(home),
        "DATABASE_URL": endpoints.admin_dsn,
        "DATABASE_APP_URL": endpoints.app_dsn,
        "REDIS_URL": endpoints.redis_url,
        "PYTHONSAFEPATH": "1",
        "ORBIT_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver listens on 127.0.0.1
        "ORBIT_WORKER_METRICS_PORT": str(metrics_port),
        "ORBIT_SHUTDOWN_GRACE_SECONDS": str(grace),
        "ORBIT_LOG_FORMAT": "json",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "orbit.platform.cli.main", "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"orbit worker exited early:\n{log.read_text()}")  # noqa: ASYNC240
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"the worker's /healthz never answered 200:\n{log.read_text()}")  # noqa: ASYNC240


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def _hook(member: Member, url: str) -> None:
    response = await member.client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["contact.created"]}
    )
    assert response.status_code == 201, response.text


async def _attempts(runtime: Runtime, member: Member) -> list[tuple[int, int | None, str]]:
    async with runtime.db.transaction(uuid.UUID(member.workspace_id)):
        rows = await runtime.db.fetch(
            """
            SELECT a.attempt, a.status_code, d.status
            FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
            ORDER BY a.attempted_at
            """
        )
    return [(row["attempt"], row["status_code"], row["status"]) for row in rows]


async def _recorded(runtime: Runtime, member: Member, timeout: float = 10) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await _attempts(runtime, member):
        if time.monotonic() > deadline:
            pytest.fail("no attempt was recorded")
        await asyncio.sleep(0.1)


async def test_sigterm_lets_the_delivery_in_flight_finish_and_be_recorded(
    runtime: Runtime,
    endpoints: Endpoints,
    alice: Member,
    slow_receiver: SlowReceiver,
    tmp_path: Path,
) -> None:
    await _hook(alice, slow_receiver.url + "/slow")
    slow_receiver.delay = 3.0
    log = tmp_path / "worker.log"
    port = _free_port()
    worker = _start_worker(endpoints, tmp_path / "home", log, metrics_port=port, grace=15)
    try:
        await _wait_healthy(port, worker, log)
        await alice.client.post("/api/v1/contacts", json={"first_name": "InFlight"})
        await eventually(lambda: slow_receiver.count("/slow")[0] == 1, timeout=30)
        signalled = time.monotonic()
        worker.send_signal(signal.SIGTERM)  # the receiver is still thinking
        await asyncio.sleep(1.0)
        assert worker.poll() is None, "the worker quit with a delivery in flight"
        returncode = await asyncio.to_thread(worker.wait, 30)
        took = time.monotonic() - signalled
    finally:
        _stop(worker)
    output = log.read_text()
    assert returncode == 128 + signal.SIGTERM, output
    assert took < 15, f"drained in {took:.1f}s, more than the grace period"
    assert slow_receiver.count("/slow") == (1, 1)
    # The attempt that was in flight at SIGTERM was recorded as delivered.
    assert await _attempts(runtime, alice) == [(1, 200, "succeeded")]
    assert "SIGTERM" in output


async def test_a_delivery_cut_off_by_the_grace_period_is_retried_by_the_next_worker(
    runtime: Runtime,
    endpoints: Endpoints,
    alice: Member,
    slow_receiver: SlowReceiver,
    tmp_path: Path,
) -> None:
    await _hook(alice, slow_receiver.url + "/cut")
    slow_receiver.delay = 4.0  # longer than the 1 s grace period
    log = tmp_path / "worker.log"
    port = _free_port()
    first = _start_worker(endpoints, tmp_path / "home", log, metrics_port=port, grace=1)
    try:
        await _wait_healthy(port, first, log)
        await alice.client.post("/api/v1/contacts", json={"first_name": "CutOff"})
        await eventually(lambda: slow_receiver.count("/cut")[0] == 1, timeout=30)
        first.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(first.wait, 15)
    finally:
        _stop(first)
    assert returncode == 128 + signal.SIGTERM, log.read_text()
    assert await _attempts(runtime, alice) == []  # cancelled: nothing recorded, still leased

    slow_receiver.delay = 0.0
    second = _start_worker(endpoints, tmp_path / "home", log, metrics_port=0, grace=5)
    try:
        # The cancelled attempt's lease (2 × 5 s HTTP timeout + 5 s) runs out, then a retry.
        await eventually(lambda: slow_receiver.count("/cut")[0] == 2, timeout=60)
        await _recorded(runtime, alice)
    finally:
        second.send_signal(signal.SIGTERM)
        second_code = await asyncio.to_thread(second.wait, 30)
    assert second_code == 128 + signal.SIGTERM, log.read_text()
    attempts = await _attempts(runtime, alice)
    assert attempts[-1] == (2, 200, "succeeded"), attempts


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


async def test_the_worker_serves_healthz_and_tenant_free_metrics(
    endpoints: Endpoints,
    alice: Member,
    slow_receiver: SlowReceiver,
    tmp_path: Path,
) -> None:
    await _hook(alice, slow_receiver.url + "/ok")
    await _hook(alice, slow_receiver.url + "/broken")
    slow_receiver.statuses["/broken"] = 503
    log = tmp_path / "worker.log"
    port = _free_port()
    worker = _start_worker(endpoints, tmp_path / "home", log, metrics_port=port, grace=5)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(port, worker, log)
        await alice.client.post("/api/v1/contacts", json={"first_name": "Observed"})
        await eventually(
            lambda: slow_receiver.count("/ok")[1] == 1 and slow_receiver.count("/broken")[0] >= 1,
            timeout=30,
        )
        async with httpx.AsyncClient(base_url=base) as client:
            health = await client.get("/healthz")
            await asyncio.sleep(0.5)  # the 503 attempt is recorded just after it is answered
            scraped = await client.get("/metrics")
            missing = await client.get("/nope")
            head = await client.head("/healthz")
            post = await client.post("/metrics")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 30)
        _stop(worker)
    assert code == 128 + signal.SIGTERM, log.read_text()

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["pump_age_seconds"] < 60
    assert (missing.status_code, head.status_code, post.status_code) == (404, 200, 405)
    assert head.content == b""

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)
    states = {labels["state"] for labels, _ in samples["orbit_job_queue_depth"]}
    assert states == {"queued", "active", "incomplete"}
    assert samples["orbit_outbox_lag_seconds"][0][1] >= 0
    assert samples["orbit_worker_pump_age_seconds"][0][1] < 60
    assert sum(v for _, v in samples["orbit_job_latency_seconds_count"]) >= 2
    assert any(
        labels.get("le") == "+Inf" for labels, _ in samples["orbit_job_latency_seconds_bucket"]
    )
    succeeded = [
        v
        for labels, v in samples["orbit_webhook_delivery_attempts_total"]
        if labels == {"outcome": "succeeded"}
    ]
    assert succeeded
    assert succeeded[0] >= 1
    failures = {
        (labels["outcome"], labels["reason"]): value
        for labels, value in samples["orbit_webhook_delivery_failures_total"]
    }
    assert failures[("retrying", "http_5xx")] >= 1
    assert set(failures) >= {("failed", "timeout"), ("retrying", "connection")}

    # No tenant, endpoint or event in any label value: bounded, and nothing private.
    label_values = {
        value for series in samples.values() for labels, _ in series for value in labels.values()
    }
    for value in label_values:
        assert alice.workspace_id not in value
        assert "127.0.0.1" not in value
        assert "://" not in value
        assert not UUID_LIKE.search(value), value
        assert "/" not in value
    assert alice.workspace_id not in scraped.text
    assert slow_receiver.url not in scraped.text


async def test_the_outbox_lag_function_is_narrow(endpoints: Endpoints, runtime: Runtime) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        row = await conn.fetchrow(
            """
            SELECT p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner,
                   has_function_privilege('orbit_app', p.oid, 'EXECUTE') AS app_may,
                   p.proacl::text AS acl
            FROM pg_proc p WHERE p.proname = 'orbit_outbox_lag_seconds'
            """
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["prosecdef"] is True
    assert row["owner"] == "orbit_crosstenant"
    (search_path,) = [c for c in row["proconfig"] if c.startswith("search_path=")]
    assert search_path.replace(" ", "").endswith(",pg_temp")
    assert row["app_may"] is True
    grants = row["acl"].strip("{}").split(",")
    assert not [g for g in grants if g.startswith("=")], "PUBLIC must not execute it"
    # orbit_app calls it outside any tenant and gets a number, nothing else.
    async with runtime.db.transaction():
        lag = await runtime.db.fetchval("SELECT orbit_outbox_lag_seconds()")
    assert isinstance(lag, float)
    assert lag >= 0
