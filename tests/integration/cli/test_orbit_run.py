"""`orbit run` from nothing: embedded servers, migrations, demo seed, serving, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orbit.platform.cli.seed import DEMO_EMAIL, DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.embedded


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            pytest.fail(
                f"orbit run exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready within {timeout}s")


def test_orbit_run_serves_the_demo_on_embedded_servers_and_stops_them(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DATABASE_APP_URL"}
    }
    env |= {"ORBIT_HOME": str(tmp_path / "home"), "ORBIT_PORT": str(port), "PYTHONSAFEPATH": "1"}
    command = [sys.executable, "-m", "orbit.platform.cli.main", "run"]
    base = f"http://127.0.0.1:{port}"
    # Ctrl+C, then a second start on the same data directory stopped with SIGTERM.
    for stop_signal, exit_code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            _wait_ready(f"{base}/readyz", process, timeout=60)
            login = httpx.post(
                f"{base}/api/v1/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
            )
            assert login.status_code == 200, login.text
            contacts = httpx.get(f"{base}/api/v1/contacts", cookies=login.cookies)
            assert len(contacts.json()["items"]) == 10
        finally:
            process.send_signal(stop_signal)
            output, _ = process.communicate(timeout=30)
        assert process.returncode == exit_code, output
        assert not (tmp_path / "home" / "postgres" / "postmaster.pid").exists(), output
