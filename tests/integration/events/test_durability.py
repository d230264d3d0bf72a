"""Outbox durability: a worker killed between commit and delivery loses no event."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.events.conftest import Receiver, eventually

ROOT = Path(__file__).resolve().parents[3]


def _start_worker(endpoints: Endpoints, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ORBIT_HOME": str(home),
        "DATABASE_URL": endpoints.admin_dsn,
        "DATABASE_APP_URL": endpoints.app_dsn,
        "REDIS_URL": endpoints.redis_url,
        "PYTHONSAFEPATH": "1",
        "ORBIT_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver listens on 127.0.0.1
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "orbit.platform.cli.main", "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_worker_killed_mid_delivery_loses_nothing_and_delivers_once(
    runtime: Runtime, endpoints: Endpoints, alice: Member, receiver: Receiver, tmp_path: Path
) -> None:
    hook = await alice.client.post(
        "/api/v1/webhooks", json={"url": receiver.url + "/durable", "events": ["contact.created"]}
    )
    assert hook.status_code == 201
    receiver.secrets["/durable"] = hook.json()["secret"]
    log = tmp_path / "worker.log"
    receiver.hang_next.set()  # the first delivery reaches the receiver, which never answers
    first = _start_worker(endpoints, tmp_path / "home", log)
    try:
        await alice.client.post("/api/v1/contacts", json={"first_name": "Killed"})
        await eventually(lambda: len(receiver.on("/durable")) == 1, timeout=30)
        first.send_signal(signal.SIGKILL)  # committed, dispatched, in flight: not delivered
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    receiver.release.set()
    # Committed while no worker runs at all.
    await alice.client.post("/api/v1/contacts", json={"first_name": "WhileDown"})
    await asyncio.sleep(0.5)
    assert receiver.answered_ok("/durable") == []

    second = _start_worker(endpoints, tmp_path / "home", log)
    try:
        # The killed attempt's lease (2 × HTTP timeout + 5 s) runs out, then it is retried.
        await eventually(lambda: len(receiver.answered_ok("/durable")) == 2, timeout=60)
        await asyncio.sleep(1)  # a duplicate would arrive by now
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert second.returncode == 143, log.read_text()

    delivered = receiver.answered_ok("/durable")
    names = sorted(r.payload["data"]["first_name"] for r in delivered)
    assert names == ["Killed", "WhileDown"]
    assert all(r.verified for r in delivered)
    ids = [r.payload["id"] for r in delivered]
    assert len(set(ids)) == 2, "each event answered exactly once"
    killed_id = next(
        r.payload["id"] for r in delivered if r.payload["data"]["first_name"] == "Killed"
    )
    assert [r.payload["id"] for r in receiver.on("/durable")].count(killed_id) == 2
    async with runtime.db.transaction(uuid.UUID(alice.workspace_id)):
        rows = await runtime.db.fetch(
            "SELECT status, attempts FROM webhook_deliveries ORDER BY started_at"
        )
        logged = await runtime.db.fetch(
            "SELECT event_id, attempt, status_code FROM webhook_attempts ORDER BY attempted_at"
        )
    assert [row["status"] for row in rows] == ["succeeded", "succeeded"]
    # The killed attempt never reported back; its retry is attempt 2.
    assert sorted((str(r["event_id"]) == killed_id, r["attempt"]) for r in logged) == [
        (False, 1),
        (True, 2),
    ]
