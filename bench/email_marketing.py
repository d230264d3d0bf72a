"""Email marketing end to end: a campaign to N recipients through the send job to an SMTP sink.

A measurement, not a test. It creates its own database (``orbit_bench_email``) on the
server ``orbit`` would use (``DATABASE_URL``, else the embedded one), migrates it,
signs a workspace up through the API, enables the plugin from the marketplace API,
loads N contacts, and sends one campaign (a block template with personalisation, a
tracked button and image, the open pixel and one-click unsubscribe headers) to a
segment of all of them. An aiosmtpd sink in its own process accepts every message
(it counts them and keeps nothing).

What one worker does is timed, phase by phase: the snapshot (recipients frozen into
the queue), then runs of the send job (claim with ``FOR UPDATE SKIP LOCKED``, the
suppression check, rendering, MIME, SMTP over pooled connections, the bookkeeping),
back to back, each in its workspace's transaction, until nothing is queued.

    uv run python bench/email_marketing.py [--recipients 20000] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

if not __package__:  # `python bench/email_marketing.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from bench.env import bench_servers, ensure_superuser
from orbit.platform.app import create_app
from orbit.platform.db.migrations import migrate
from orbit.platform.db.servers import Endpoints
from orbit.platform.ids import new_id
from orbit.plugins.builtin.email_marketing import sending, transport
from orbit.plugins.registry import PluginRegistry

DATABASE = "orbit_bench_email"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_PER_SECOND = 500
TEMPLATE = {
    "name": "Bench",
    "subject": "News for {{ contact.first_name }}",
    "blocks": [
        {"type": "heading", "text": "Hello {{ contact.first_name }} {{ contact.last_name }}"},
        {"type": "text", "text": "A paragraph of news.\n\nAnd another one, a bit longer."},
        {"type": "button", "text": "Read more", "url": "https://bench.example/news"},
        {"type": "image", "src": "https://bench.example/a.png", "alt": "Picture",
         "url": "https://bench.example/gallery"},
    ],
}  # fmt: skip
SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
print(Count.n, flush=True)
c.stop()
"""


class Stopwatch:
    """Time spent in a few functions of the pipeline, by name (wraps them for the run)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, name: str) -> None:
        """Time every call of ``owner.name`` from now on."""
        inner = getattr(owner, name)
        watch = self

        if asyncio.iscoroutinefunction(inner):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await inner(*args, **kwargs)
                finally:
                    watch.add(name, time.perf_counter() - started)

            setattr(owner, name, timed_async)
        else:

            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return inner(*args, **kwargs)
                finally:
                    watch.add(name, time.perf_counter() - started)

            setattr(owner, name, timed)

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` for ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def free_port() -> int:
    """A port nobody listens on (aiosmtpd's Controller cannot bind port 0 itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare(server_dsn: str) -> None:
    """A fresh database for the measurement."""
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


async def load_contacts(admin_dsn: str, tenant_id: UUID, count: int) -> None:
    """``count`` contacts with unique addresses over a few receiving domains (COPY)."""
    domains = ["example.com", "example.org", "example.net", "mail.example", "post.example"]
    now = datetime.now(UTC)
    rows = [
        (tenant_id, new_id(), f"First{i}", f"Last{i}", f"person{i}@{domains[i % len(domains)]}",
         ["bench"], "{}", f"first{i} last{i}", now, now)
        for i in range(count)
    ]  # fmt: skip
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.copy_records_to_table(
            "contacts",
            records=rows,
            columns=["tenant_id", "id", "first_name", "last_name", "email", "tags", "custom",
                     "search_text", "created_at", "updated_at"],
        )  # fmt: skip
        await conn.execute("ANALYZE contacts")
    finally:
        await conn.close()


async def measure(recipients: int, connections: int) -> dict[str, Any]:
    """Set everything up, send the campaign, and time each phase."""
    transport.CONNECTIONS_PER_SERVER = connections
    async with bench_servers(DATABASE) as servers:
        await prepare(servers.server_dsn)
        await ensure_superuser(servers.admin_dsn)
        await migrate(servers.admin_dsn, servers.app_password)
        endpoints = Endpoints(
            admin_dsn=servers.admin_dsn, app_dsn=servers.app_dsn, redis_url=servers.redis_url
        )
        settings = dataclasses.replace(servers.settings, api_rate_per_minute=1_000_000)
        app = create_app(settings, endpoints, plugin_registry=PluginRegistry.discover())
        runtime = app.state["runtime"]
        await runtime.start()
        port = free_port()
        sink = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
            [sys.executable, "-c", SINK, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if sink.stdout is None or sink.stdout.readline().strip() != "ready":
            raise SystemExit("the SMTP sink did not start")
        try:
            result = await _run(app, runtime, servers.admin_dsn, port, recipients)
        finally:
            out, _ = sink.communicate("", timeout=30)
            await runtime.stop()
        result["sink_received"] = int(out.strip().splitlines()[-1])
        result["connections"] = connections
        return result


async def _run(
    app: Any, runtime: Any, admin_dsn: str, port: int, recipients: int
) -> dict[str, Any]:
    transport_ = httpx.ASGITransport(app=app, client=("10.9.8.7", 40000))
    async with httpx.AsyncClient(transport=transport_, base_url="http://bench") as client:
        signed = await client.post(
            "/api/v1/signup",
            json={"email": "bench@example.com", "password": "correct horse battery staple",
                  "workspace_name": "Bench", "name": "Bench"},
        )  # fmt: skip
        signed.raise_for_status()
        body = signed.json()
        client.headers["X-CSRF-Token"] = body["csrf_token"]
        tenant_id = UUID(body["workspace"]["id"])
        plugin = "/api/v1/marketplace/email_marketing"
        (
            await client.post(
                f"{plugin}/enable", json={"scopes": (await client.get(plugin)).json()["scopes"]}
            )
        ).raise_for_status()
        settings = {
            "smtp_url": f"smtp://127.0.0.1:{port}",
            "from_email": "news@bench.example",
            "rate_per_second": 5000,
            "domain_rate_per_second": 5000,
        }
        (await client.put(f"{plugin}/settings", json={"settings": settings})).raise_for_status()
        await load_contacts(admin_dsn, tenant_id, recipients)
        api = "/api/v1/apps/email_marketing"
        segment = (await client.post(f"{api}/segments", json={"name": "Everyone"})).json()
        template = (await client.post(f"{api}/templates", json=TEMPLATE)).json()
        campaign = (
            await client.post(
                f"{api}/campaigns",
                json={"name": "Bench", "template_id": template["id"],
                      "audience_kind": "segment", "audience_id": segment["id"]},
            )
        ).json()  # fmt: skip
        (
            await client.post(f"{api}/campaigns/{campaign['id']}/schedule", json={})
        ).raise_for_status()

    return await _send(runtime, tenant_id, recipients)


async def _send(runtime: Any, tenant_id: UUID, recipients: int) -> dict[str, Any]:
    """Snapshot, then send job runs back to back until nothing is queued; timed."""
    host = runtime.plugins
    db = runtime.db

    async def one_run(seconds: float) -> int:
        async with db.transaction(tenant_id):
            plugins = await host.for_tenant(tenant_id, "bench")
            ctx = plugins.context("email_marketing")
            sent = await sending.send_due(ctx, seconds)
            await ctx.db.settle(ok=True)
            return sent

    watch = Stopwatch()
    watch.wrap(sending, "build_message")  # render + MIME
    watch.wrap(transport, "send")  # SMTP to the sink
    watch.wrap(sending, "_claim")
    watch.wrap(sending, "suppressed")
    started = time.perf_counter()
    async with db.transaction(tenant_id):
        plugins = await host.for_tenant(tenant_id, "bench")
        ctx = plugins.context("email_marketing")
        await sending.start_due_campaigns(ctx)
        await ctx.db.settle(ok=True)
    snapshot = time.perf_counter() - started
    runs: list[dict[str, float]] = []
    sending_started = time.perf_counter()
    total = 0
    while True:
        run_started = time.perf_counter()
        sent = await one_run(sending.RUN_SECONDS)
        elapsed = time.perf_counter() - run_started
        if sent == 0:
            break
        total += sent
        runs.append(
            {"sent": sent, "seconds": round(elapsed, 3), "per_second": round(sent / elapsed, 1)}
        )
    send_seconds = time.perf_counter() - sending_started
    await transport.close_connections()
    async with db.transaction(tenant_id):
        status = await db.fetchval(
            "SELECT status FROM email_marketing_campaigns WHERE tenant_id = $1", tenant_id
        )
    return {
        "recipients": recipients,
        "sent": total,
        "campaign_status": status,
        "snapshot_seconds": round(snapshot, 2),
        "snapshot_per_second": round(recipients / snapshot, 1),
        "send_seconds": round(send_seconds, 2),
        "send_per_second": round(total / send_seconds, 1),
        "end_to_end_seconds": round(snapshot + send_seconds, 2),
        "end_to_end_per_second": round(total / (snapshot + send_seconds), 1),
        "seconds_in": {name: round(value, 2) for name, value in watch.seconds.items()},
        "runs": runs,
    }


def main() -> None:
    """Measure, print a summary and write it to ``bench/results/email_marketing.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=transport.CONNECTIONS_PER_SERVER)
    args = parser.parse_args()
    os.environ.setdefault("ORBIT_DEMO_SEED", "false")
    result = asyncio.run(measure(args.recipients, args.connections))
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    met = result["send_per_second"] >= TARGET_PER_SECOND
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    print(
        f"send job, one worker: {result['send_per_second']} messages/s "
        f"(target {TARGET_PER_SECOND}: {'met' if met else 'MISSED'}); end to end with the "
        f"snapshot {result['end_to_end_per_second']}/s"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "email_marketing.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
