"""``make bench``: build or reuse the data, serve Orbit and the reference route, measure.

    uv run python -m bench.run --scale 0.01        # development
    uv run python -m bench.run                      # the issue's sizes (scale 1)

Prints a table with each target met or missed (and by how much) and writes it, with
the machine and the commit, to ``bench/results/`` as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

if not __package__:  # `python bench/run.py`: make `bench` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from bench import names, suite
from bench.env import BENCH_DATABASE, BenchEndpoints, bench_servers
from bench.generate import BenchInfo, ensure_data
from orbit.platform.db.engine import SERVER_SETTINGS

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(
    command: list[str], env: dict[str, str], url: str, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server until the block ends; waits until ``url`` answers."""
    log_path = RESULTS / f".{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    msg = f"{name} exited with {process.returncode}; see {log_path}"
                    raise RuntimeError(msg)
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=2).status_code < 500:
                        break
                if time.monotonic() > deadline:
                    msg = f"{name} did not answer {url} within 120 s; see {log_path}"
                    raise RuntimeError(msg)
                time.sleep(0.3)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def peak_rss_mb(pid: int) -> float | None:
    """A live process's peak resident memory (Linux), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    return info


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when it has uncommitted changes)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


async def api_paths(base_url: str) -> set[str]:
    """The app's API paths, from its OpenAPI document."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/api/docs/openapi.json")
    return set(response.json().get("paths", {})) if response.status_code == 200 else set()


IMPORT_TARGET = "≥ 10,000 rows/s, peak RSS < 500 MB"
EXPORT_TARGET = "≥ 50,000 rows/s, peak RSS < 500 MB"


def not_built(paths: set[str], measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for import and export (measured, or not built yet) and plugin dispatch."""
    rows = list(measured)
    for what, prefix, target in (
        ("CSV import, 1,000,000 rows (upsert)", "/api/v1/imports", IMPORT_TARGET),
        ("CSV export, 1,000,000 rows", "/api/v1/exports", EXPORT_TARGET),
    ):
        if not any(path.startswith(prefix) for path in paths):
            rows.append(
                {
                    "operation": what,
                    "result": "not built yet",
                    "target": target,
                    "verdict": "not built yet",
                }
            )
    return rows + plugin_dispatch_rows(RESULTS / "plugin_dispatch.json")


def plugin_dispatch_rows(path: Path) -> list[dict[str, Any]]:
    """The plugin dispatch benchmark's numbers (``bench/plugin_dispatch.py``), when it ran."""
    try:
        measured = json.loads(path.read_text())
    except (OSError, ValueError):
        return [
            {
                "operation": "plugin dispatch",
                "result": "not measured (run bench/plugin_dispatch.py; make bench does)",
                "target": "—",
                "verdict": "skipped",
            }
        ]
    return [
        {
            "operation": f"plugin dispatch: {row['hook']}, {row['plugins']} plugins",
            "result": (
                f"{row['overhead_us_per_call']:.1f} µs overhead per call "
                f"({row['dispatched_us_per_call']:.1f} dispatched vs "
                f"{row['direct_us_per_call']:.1f} direct; {measured.get('measured_at', '?')})"
            ),
            "target": f"< {row['target_us_per_call']:.0f} µs",
            "verdict": "met"
            if row["within_target"]
            else f"misses by {row['overhead_us_per_call'] - row['target_us_per_call']:.1f} µs",
        }
        for row in measured.get("results", [])
    ]


def bulk_row(what: str, result: dict[str, Any], min_rate: float) -> dict[str, Any]:
    """One import or export run (the CLI's JSON) against its target."""
    rate, rss = float(result["rows_per_second"]), float(result["peak_rss_mb"])
    misses = []
    if rate < min_rate:
        misses.append(f"{min_rate - rate:,.0f} rows/s under {min_rate:,.0f}")
    if rss >= PEAK_RSS_MB:
        misses.append(f"peak RSS {rss - PEAK_RSS_MB:.0f} MB over {PEAK_RSS_MB:.0f} MB")
    return {
        "operation": what,
        "result": (
            f"{int(result['rows']):,} rows in {float(result['seconds']):.1f} s: "
            f"{rate:,.0f} rows/s, peak RSS {rss:.0f} MB"
        ),
        "target": IMPORT_TARGET if "import" in what else EXPORT_TARGET,
        "verdict": "met" if not misses else "misses by " + "; ".join(misses),
        "measured": result,
    }


PEAK_RSS_MB = 500.0


def write_contacts_csv(path: Path, rows: int) -> None:
    """A contact file in Orbit's first markets' scripts, unique emails (all new rows)."""
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    weights = [script[0] for script in names.SCRIPTS]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["First name", "Last name", "Email", "Phone", "Company", "Tags"])
        for n in range(rows):
            _, firsts, lasts, domain, _ = rng.choices(names.SCRIPTS, weights)[0]
            (first, first_latin), (last, last_latin) = rng.choice(firsts), rng.choice(lasts)
            writer.writerow(
                [
                    first,
                    last,
                    f"{first_latin}.{last_latin}.{n}@import.{domain}".replace(" ", ""),
                    f"+30 210 {n:07d}",
                    f"{rng.choice(names.COMPANY_ROOTS)} {rng.choice(names.COMPANY_KINDS)}",
                    "import, bench" if n % 3 == 0 else "",
                ]
            )


def orbit_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``orbit`` and read the JSON line it prints last."""
    done = subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"orbit {' '.join(args)} failed: {done.stderr[-2000:]}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def imports_and_exports(
    env: dict[str, str], endpoints: BenchEndpoints, info: BenchInfo
) -> list[dict[str, Any]]:
    """Import 1,000,000 × scale new contacts (upsert), export the big workspace's contacts.

    The import goes into a workspace made for it and deleted after, so the data stays
    as generated; each step is ``orbit import run`` / ``orbit export`` in its own process
    (which reports its own rows/s and peak RSS).
    """
    rows = max(100, round(1_000_000 * info.scale))
    orbit_env = env | {"ORBIT_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory() as scratch:
        source, out = Path(scratch) / "contacts.csv", Path(scratch) / "contacts-export.csv"
        write_contacts_csv(source, rows)
        owner = f"imports-{os.getpid()}@bench.example.com"
        created = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "orbit.platform.cli.main",
                "tenants",
                "create",
                "--name",
                "Bench Imports",
                "--owner-email",
                owner,
                "--password",
                "orbit-bench-password",
            ],
            env=orbit_env,
            capture_output=True,
            text=True,
            check=True,
        )
        slug = created.stdout.split("created workspace ", 1)[1].split()[0]
        admin = await asyncpg.connect(endpoints.admin_dsn)
        try:
            await admin.execute("UPDATE tenants SET plan = 'pro' WHERE slug = $1", slug)
            log.info("importing %s rows into %s", rows, slug)
            imported = await asyncio.to_thread(
                orbit_json, orbit_env, "import", "run", slug, str(source), "--mode", "upsert"
            )
            log.info("exporting the big workspace's contacts")
            exported = await asyncio.to_thread(
                orbit_json, orbit_env, "export", info.slug, "--out", str(out)
            )
        finally:
            log.info("deleting %s", slug)
            await admin.execute("DELETE FROM tenants WHERE slug = $1", slug)
            await admin.close()
    return [
        bulk_row(f"CSV import, {rows:,} new rows (upsert)", imported, 10_000),
        bulk_row(f"CSV export, {int(exported['rows']):,} rows", exported, 50_000),
    ]


async def session_cookie(base_url: str, info: BenchInfo) -> str:
    """Log in as the big workspace's owner (the kanban board is a page)."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/api/v1/login", json={"email": info.owner_email, "password": info.owner_password}
        )
        response.raise_for_status()
        return response.cookies["orbit_session"]


async def run_suite(
    args: argparse.Namespace, endpoints: BenchEndpoints, info: BenchInfo
) -> dict[str, Any]:
    """Serve both apps, measure, and return the results document."""
    settings = endpoints.settings
    app_port, reference_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": endpoints.admin_dsn,
        "DATABASE_APP_URL": endpoints.app_dsn,
        "REDIS_URL": endpoints.redis_url,
        "ORBIT_HOME": str(settings.home),
        "ORBIT_SECRET_KEY": settings.secret_key,
        "ORBIT_PORT": str(app_port),
        "ORBIT_LOG_LEVEL": "WARNING",
        "ORBIT_DEMO_SEED": "false",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ORBIT_API_RATE_PER_MINUTE", None)  # the workspace's own (high) rate applies
    orbit = [sys.executable, "-m", "orbit.platform.cli.main", "web"]
    reference = [sys.executable, "-m", "bench.reference", "--port", str(reference_port)]
    reference_env = env | {"BENCH_APP_DSN": endpoints.app_dsn, "BENCH_TENANT_ID": info.tenant_id}
    base_url = f"http://127.0.0.1:{app_port}"
    reference_url = f"http://127.0.0.1:{reference_port}"
    with (
        serving(orbit, env, f"{base_url}/healthz", "orbit") as orbit_process,
        serving(reference, reference_env, f"{reference_url}/contacts?limit=1", "reference"),
    ):
        # The raw side's sessions are set up like the app's pool (plan_cache_mode…).
        app_conn = await asyncpg.connect(endpoints.app_dsn, server_settings=SERVER_SETTINGS)
        admin_conn = await asyncpg.connect(endpoints.admin_dsn, server_settings=SERVER_SETTINGS)
        try:
            ctx = suite.Context(
                base_url=base_url,
                tenant=UUID(info.tenant_id),
                slug=info.slug,
                api_key=info.api_key,
                session_cookie=await session_cookie(base_url, info),
                app_conn=app_conn,
                admin_conn=admin_conn,
            )
            postgres = await admin_conn.fetchval("SHOW server_version")
            ops = await suite.operations(
                ctx, UUID(info.pipeline_id), UUID(info.heavy_contact_ids[0])
            )
            log.info("measuring %s operations, %s runs each", len(ops), args.iterations)
            timings = await suite.measure(
                ctx, ops, iterations=args.iterations, warmup=args.warmup, budget=args.budget
            )
            log.info(
                "loading the list: %s connections for %s s", args.concurrency, args.load_seconds
            )
            load = await suite.throughput(
                ctx, reference_url, concurrency=args.concurrency, seconds=args.load_seconds
            )
            paths = await api_paths(base_url)
        finally:
            await app_conn.close()
            await admin_conn.close()
        server_rss = peak_rss_mb(orbit_process.pid)
    bulk: list[dict[str, Any]] = []
    if any(path.startswith("/api/v1/imports") for path in paths) and not args.skip_bulk:
        bulk = await imports_and_exports(env, endpoints, info)
    rows = [suite.latency_row(op.name, timings[op.name]) for op in ops]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "scale": info.scale,
        "sizes": info.sizes,
        "machine": machine() | {"postgresql": postgres},
        "settings": {
            "iterations": args.iterations,
            "warmup": args.warmup,
            "budget_seconds": args.budget,
            "concurrency": args.concurrency,
            "load_seconds": args.load_seconds,
            "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
        },
        "orbit_server_peak_rss_mb": server_rss,
        "latency": rows,
        "throughput": suite.throughput_row(load),
        "other": not_built(paths, bulk),
    }


def write(results: dict[str, Any], directory: Path) -> tuple[Path, str]:
    """The results as JSON and Markdown files; the Markdown table."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = directory / f"{stamp}-scale-{results['scale']:g}".replace(".", "_")
    table = suite.render(results["latency"], results["throughput"], results["other"])
    header = (
        f"Orbit benchmark, {results['date']}, commit {results['commit'][:12]}, scale "
        f"{results['scale']:g} ({results['sizes']['contacts']:,} contacts in the big workspace), "
        f"{results['machine'].get('cpu', '?')} × {results['machine']['cores']} cores, "
        f"{results['machine'].get('memory_gb', '?')} GB, "
        f"PostgreSQL {results['machine']['postgresql']}"
    )
    json_path, markdown_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(suite.dumps(results) + "\n")
    markdown_path.write_text(f"{header}\n\n{table}\n")
    return json_path, f"{header}\n\n{table}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Orbit's benchmark suite")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1M contacts (default)")
    parser.add_argument("--iterations", type=int, default=100, help="timed runs per operation")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first")
    parser.add_argument(
        "--budget", type=float, default=90.0, help="seconds per operation (at least 10 runs)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections in the load test")
    parser.add_argument("--load-seconds", type=float, default=15.0, help="length of each load run")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data")
    parser.add_argument(
        "--skip-bulk", action="store_true", help="leave out the 1M-row import and export"
    )
    parser.add_argument("--database", default=BENCH_DATABASE, help="database name (orbit_bench)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> tuple[Path, str]:
    """Everything ``make bench`` does."""
    async with bench_servers(args.database) as endpoints:
        info = await ensure_data(endpoints, args.scale, rebuild=args.rebuild)
        results = await run_suite(args, endpoints, info)
    results["generation"] = {"seconds": info.seconds, "generated_at": info.generated_at}
    return write(results, args.results)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.run``."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    path, table = asyncio.run(main_async(args))
    print(table)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
