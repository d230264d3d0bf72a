"""Measure import and export at 100,000 contacts through the CLI (rows/s and peak RSS).

A measurement, not a test: it creates its own database on the server in
``DATABASE_URL`` (``orbit_measure_imports``), migrates it, creates a workspace on
the Pro plan, writes a 100,000-row CSV, and runs, each in its own process so each
peak RSS is its own:

1. ``orbit import run`` in upsert mode into the empty workspace (all created),
2. the same file again in upsert mode (all updated: the dedupe path),
3. ``orbit export`` of all contacts to CSV, then to XLSX.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0
        uv run python bench/imports_100k.py [ROWS]
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DATABASE = "orbit_measure_imports"
FIRST = ["Ελένη", "Сергей", "伟", "Maria", "José", "Andrea", "Nikolaos", "Анна", "Juan", "Li"]
LAST = ["Παπαδοπούλου", "Иванов", "王", "dela Cruz", "García", "Rossi", "Müller", "Smith", "Chen"]
COMPANIES = [f"Company {i}" for i in range(500)]


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def write_csv(path: Path, rows: int) -> None:
    """A contact file: names in several scripts, unique emails, companies, tags."""
    randomly = random.Random(7)  # noqa: S311 - test data, not secrets
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["First name", "Last name", "Email", "Phone", "Company", "Tags"])
        for i in range(rows):
            writer.writerow(
                [
                    randomly.choice(FIRST),
                    randomly.choice(LAST),
                    f"person{i}@example{i % 97}.com",
                    f"+30 210 {i:07d}",
                    randomly.choice(COMPANIES),
                    "import, bench" if i % 3 == 0 else "",
                ]
            )


def orbit(env: dict[str, str], *args: str) -> dict[str, object]:
    """Run ``orbit`` and read the JSON line it prints last."""
    done = subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def prepare(server: str) -> str:
    """A fresh database for the measurement; its owner DSN."""
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    return _with_database(server, DATABASE)


async def pro_plan(dsn: str) -> None:
    """Put the workspace on the Pro plan (5,000,000 contacts)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE tenants SET plan = 'pro'")
    finally:
        await conn.close()


def main() -> int:
    """Run the measurement and print one line per step."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    server = os.environ["DATABASE_URL"]
    dsn = asyncio.run(prepare(server))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DATABASE_URL": dsn, "ORBIT_HOME": home, "ORBIT_LOG_LEVEL": "WARNING"}
        subprocess.run(
            [sys.executable, "-m", "orbit.platform.cli.main", "migrate"],
            env=env,
            check=True,
            capture_output=True,
        )
        created = subprocess.run(
            [
                *(sys.executable, "-m", "orbit.platform.cli.main", "tenants", "create"),
                *("--name", "Measure", "--owner-email", "m@example.com", "--password", "x" * 16),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        slug = created.stdout.split("created workspace ", 1)[1].split()[0]
        asyncio.run(pro_plan(dsn))
        source = Path(home) / "contacts.csv"
        write_csv(source, rows)
        steps = [
            ("import (upsert, all new)", ["import", "run", slug, str(source)]),
            ("import (upsert, all existing)", ["import", "run", slug, str(source)]),
            ("export CSV", ["export", slug, "--out", str(Path(home) / "out.csv")]),
            (
                "export XLSX",
                ["export", slug, "--format", "xlsx", "--out", str(Path(home) / "out.xlsx")],
            ),
        ]
        for label, args in steps:
            result = orbit(env, *args)
            print(
                f"{label:32} {result['rows']:>9,} rows  {result['seconds']:>8.2f} s  "
                f"{result['rows_per_second']:>10,.0f} rows/s  "
                f"peak RSS {result['peak_rss_mb']:.0f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
