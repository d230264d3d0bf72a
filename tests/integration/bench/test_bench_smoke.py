"""The benchmark's machinery end to end at a tiny scale (never its timings: `make bench`'s)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from orbit.platform.db.servers import Endpoints, app_dsn_for

ROOT = Path(__file__).resolve().parents[3]
DATABASE = f"orbit_bench_smoke_{os.getpid()}"


async def test_bench_generates_data_serves_the_app_and_writes_every_row(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": endpoints.admin_dsn,
        "DATABASE_APP_URL": app_dsn_for(endpoints.admin_dsn, "orbit-test-app-password"),
        "REDIS_URL": endpoints.redis_url,
        "ORBIT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "bench.run", "--scale", "0.0001", "--database", DATABASE]
    command += ["--iterations", "3", "--warmup", "1", "--concurrency", "2", "--load-seconds", "0.5"]
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [*command, "--results", str(tmp_path / "results")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # A second run reuses the data: the marker matches the scale and migrations.
        again = await asyncio.to_thread(
            subprocess.run,
            [*command, "--results", str(tmp_path / "again")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert "reusing" in again.stderr
    finally:
        conn = await asyncpg.connect(endpoints.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        finally:
            await conn.close()

    for operation in (
        "contact list, first page",
        "contact list, deep page (keyset)",
        "contact detail",
        "timeline, first page",
        "kanban board",
        "search 'Παπαδόπουλος'",
        "saved view: tag + custom field",
        "list throughput",
        "CSV import",
        "CSV export",
    ):
        assert operation in done.stdout, operation
    (written,) = (tmp_path / "results").glob("*.json")
    results = json.loads(written.read_text())
    assert results["scale"] == 0.0001
    assert results["machine"]["cores"] >= 1
    assert results["machine"]["postgresql"]
    assert results["commit"]
    assert all(row["samples"] == 3 for row in results["latency"])
    assert results["throughput"]["app_rps"] > 0
    assert results["throughput"]["reference_rps"] > 0
