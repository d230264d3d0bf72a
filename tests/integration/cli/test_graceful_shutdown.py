"""SIGTERM to ``orbit web``: no new connections, the in-flight request finishes and commits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from orbit.platform.db.servers import Endpoints
from tests.conftest import Member, api_key

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"orbit web exited early:\n{out}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready within {timeout}s")


def _read_response(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _sigterm_during_a_request(
    env: dict[str, str], port: int, request: bytes
) -> tuple[bytes, str, int]:
    """Start ``orbit web``, send half of ``request``, SIGTERM, send the rest.

    Returns the response, the server's output and its exit code.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "orbit.platform.cli.main", "web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    split = len(request) - 10
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        with socket.create_connection(("127.0.0.1", port)) as in_flight:
            # Part of the body: the request has started and a slow client holds it open.
            in_flight.sendall(request[:split])
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert process.poll() is None, "the server quit with a request in flight"
            with pytest.raises(ConnectionRefusedError):  # no longer accepting
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            in_flight.sendall(request[split:])
            response = _read_response(in_flight)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return response, output, process.returncode


async def test_sigterm_lets_the_in_flight_request_finish_and_commit(
    endpoints: Endpoints, alice: Member, tmp_path: Path
) -> None:
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": endpoints.admin_dsn,
        "DATABASE_APP_URL": endpoints.app_dsn,
        "REDIS_URL": endpoints.redis_url,
        "ORBIT_HOME": str(tmp_path / "home"),
        "ORBIT_PORT": str(port),
        "ORBIT_LOG_FORMAT": "json",
        "ORBIT_SHUTDOWN_GRACE_SECONDS": "15",
        "PYTHONSAFEPATH": "1",
    }
    name = f"Inflight-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"first_name": name}).encode()
    head = (
        "POST /api/v1/contacts HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        "X-Request-Id: in-flight-at-sigterm\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    response, output, returncode = _sigterm_during_a_request(env, port, head + body)
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 201 Created", response
    assert b"x-request-id: in-flight-at-sigterm" in response.lower()
    assert returncode == 128 + signal.SIGTERM, output

    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM contacts WHERE first_name = $1", name)
    finally:
        await conn.close()
    assert stored == 1

    # The server logged the request as JSON, with ids only.
    records = []
    for line in output.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    access = [r for r in records if r.get("request_id") == "in-flight-at-sigterm"]
    assert len(access) == 1, output
    assert access[0]["status"] == 201
    assert access[0]["route"] == "/api/v1/contacts"
    assert access[0]["tenant_id"] == alice.workspace_id
    assert "api_key_id" in access[0]
    assert key not in output
