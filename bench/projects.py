"""Projects: a board move, a 2,000-task list and Gantt data for 500 tasks, timed in the app.

Builds Orbit in this process on a scratch database (``orbit_bench_projects`` on the
benchmark's server: ``DATABASE_URL`` or the embedded one), signs a workspace up, enables
Projects, writes the tasks with SQL (as the owner: the data, not the writes, is what is
measured) and then times the API requests through the whole app (middleware, tenant
transaction, row-level security) in-process:

- ``POST /tasks/{id}/move`` on a 200-task board, random cards to random places;
- ``GET /projects/{id}/tasks`` of a 2,000-task project (every task);
- ``GET /projects/{id}/gantt`` of a 500-task project with about 700 dependencies
  (critical path and violations computed on the server).

    PYTHONPATH=. uv run --frozen python -m bench.projects [--runs N]

Prints a table and writes JSON (default ``bench/results/projects.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx

from bench.env import bench_servers, with_database
from orbit.platform.app import create_app
from orbit.platform.db.migrations import migrate
from orbit.platform.db.servers import Endpoints, app_dsn_for
from orbit.plugins.registry import PluginRegistry

if TYPE_CHECKING:
    from orbit.platform.runtime import Runtime

RESULTS = Path(__file__).parent / "results" / "projects.json"
DATABASE = "orbit_bench_projects"
API = "/api/v1/apps/projects"
TARGETS_MS = {"board_move": 100.0, "list_2000": 200.0, "gantt_500": 1000.0}
STATUSES = ("todo", "doing", "review", "done")


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


async def _recreate(server_dsn: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


async def _client(app: Any) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.9.8.6", 40000)),
        base_url="http://bench",
    )
    signed = await client.post(
        "/api/v1/signup",
        json={
            "email": f"bench-{secrets.token_hex(4)}@example.com",
            "password": secrets.token_urlsafe(16),
            "workspace_name": "Projects bench",
            "name": "Bench",
        },
    )
    signed.raise_for_status()
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    listed = (await client.get("/api/v1/marketplace/projects")).json()
    enabled = await client.post(
        "/api/v1/marketplace/projects/enable", json={"scopes": listed["scopes"]}
    )
    enabled.raise_for_status()
    return client, signed.json()["workspace"]["id"]


async def _project(client: httpx.AsyncClient, name: str) -> str:
    made = await client.post(f"{API}/projects", json={"name": name, "start_date": "2026-11-02"})
    made.raise_for_status()
    project_id: str = made.json()["id"]
    return project_id


async def _tasks(admin: asyncpg.Connection, tenant: str, project: str, count: int) -> list[Any]:
    """``count`` tasks spread over the columns and two swimlanes, dated over a few months."""
    return await admin.fetch(
        """
        INSERT INTO projects_tasks (tenant_id, id, project_id, title, status, lane, priority,
            start_date, due_date, estimate_hours, position)
        SELECT $1::uuid, gen_random_uuid(), $2::uuid, 'Task ' || n,
               (ARRAY['todo', 'doing', 'review', 'done'])[1 + n % 4], CASE WHEN n % 2 = 0
               THEN 'Design' ELSE '' END, n % 4, date '2026-11-02' + (n % 90),
               date '2026-11-02' + (n % 90) + (n % 5), 4, n * 1024
        FROM generate_series(1, $3) AS n
        RETURNING id, status, version
        """,
        tenant,
        project,
        count,
    )


async def _links(admin: asyncpg.Connection, tenant: str, project: str, ids: list[Any]) -> int:
    """Dependencies from earlier to later tasks only (never a cycle): a chain plus extras."""
    rng = random.Random(7)  # noqa: S311 - a reproducible data set
    pairs = {(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)}
    while len(pairs) < int(len(ids) * 1.4):
        a, b = sorted(rng.sample(range(len(ids)), 2))
        pairs.add((ids[a], ids[b]))
    await admin.executemany(
        "INSERT INTO projects_dependencies (tenant_id, project_id, predecessor_id, successor_id) "
        "VALUES ($1::uuid, $2::uuid, $3, $4)",
        [(tenant, project, a, b) for a, b in pairs],
    )
    return len(pairs)


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    response = await client.request(method, url, **kw)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


async def measure(runs: int) -> dict[str, Any]:  # noqa: PLR0915 - one scenario after another
    """Build the data, time the three requests."""
    async with bench_servers(DATABASE) as servers:
        await _recreate(servers.server_dsn)
        admin_dsn = with_database(servers.server_dsn, DATABASE)
        await migrate(admin_dsn, servers.app_password)
        endpoints = Endpoints(
            admin_dsn=admin_dsn,
            app_dsn=app_dsn_for(admin_dsn, servers.app_password),
            redis_url=servers.redis_url,
        )
        app = create_app(servers.settings, endpoints, plugin_registry=PluginRegistry.discover())
        runtime: Runtime = app.state["runtime"]
        await runtime.start()
        admin = await asyncpg.connect(admin_dsn)
        try:
            client, tenant = await _client(app)
            board = await _project(client, "Board")
            cards = await _tasks(admin, tenant, board, 200)
            big = await _project(client, "Big list")
            await _tasks(admin, tenant, big, 2000)
            gantt = await _project(client, "Gantt")
            gantt_tasks = await _tasks(admin, tenant, gantt, 500)
            links = await _links(admin, tenant, gantt, [r["id"] for r in gantt_tasks])
            await admin.execute("ANALYZE")

            rng = random.Random(11)  # noqa: S311
            versions = {str(r["id"]): r["version"] for r in cards}
            ids = list(versions)
            moves: list[float] = []
            for i in range(runs * 10 + 20):
                card, neighbour = rng.sample(ids, 2)
                body = {"version": versions[card], "status": rng.choice(STATUSES),
                        "after_id": neighbour}  # fmt: skip
                # The neighbour's column is the target: a drop lands next to a card there.
                listed = await client.get(f"{API}/tasks/{neighbour}")
                body["status"] = listed.json()["status"]
                ms, moved = await _timed(client, "POST", f"{API}/tasks/{card}/move", json=body)
                versions[card] = moved["version"]
                if i >= 20:
                    moves.append(ms)
            lists = []
            for i in range(runs + 3):
                ms, answer = await _timed(client, "GET", f"{API}/projects/{big}/tasks")
                assert len(answer["items"]) == 2000  # noqa: S101
                if i >= 3:
                    lists.append(ms)
            charts = []
            for i in range(runs + 3):
                ms, answer = await _timed(client, "GET", f"{API}/projects/{gantt}/gantt")
                assert len(answer["tasks"]) == 500  # noqa: S101
                if i >= 3:
                    charts.append(ms)
            critical = len(answer["critical_path"])
            await client.aclose()
        finally:
            await admin.close()
            await runtime.stop()
        conn = await asyncpg.connect(servers.server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        finally:
            await conn.close()
    rows = {"board_move": moves, "list_2000": lists, "gantt_500": charts}
    result: dict[str, Any] = {"runs": runs, "dependencies": links, "critical_path": critical}
    for name, values in rows.items():
        result[name] = {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(p95(values), 1),
            "target_ms": TARGETS_MS[name],
            "met": p95(values) <= TARGETS_MS[name],
        }
    return result


LABELS = {
    "board_move": "board move (POST …/move, 200-task board)",
    "list_2000": "list of 2,000 tasks (GET …/tasks)",
    "gantt_500": "Gantt data, 500 tasks and their dependencies",
}


def report(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = ["| projects (in-process HTTP) | n | p50 | p95 | target |", "|---|---|---|---|---|"]
    for name, label in LABELS.items():
        row = result[name]
        lines.append(
            f"| {label} | {row['n']} | {row['p50_ms']} ms | {row['p95_ms']} ms | "
            f"≤ {row['target_ms']:.0f} ms p95: {'met' if row['met'] else 'MISSED'} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run, print, save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("ORBIT_API_RATE_PER_MINUTE", "0")
    result = asyncio.run(measure(args.runs))
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["machine"] = f"{platform.machine()} {platform.system()}, {sys.version.split()[0]}"
    print(report(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
