"""Billing fixtures: localstripe on a free port, the gateway pointed at it, the app over HTTP.

Only Stripe's edge is faked (localstripe is a stateful fake of Stripe's HTTP API);
PostgreSQL, Redis and the app are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from orbit.billing.gateway import StripeGateway
from orbit.platform.runtime import Runtime
from tests.conftest import Member

STARTUP_TIMEOUT_SECONDS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A localstripe process started for this test session (empty store)."""
    port = _free_port()
    workdir = tmp_path_factory.mktemp("localstripe")
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        cwd=workdir,
        stdout=(workdir / "localstripe.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        try:
            httpx.get(f"{url}/v1/customers", auth=("sk_test_orbit", ""), timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"localstripe did not start: see {workdir / 'localstripe.log'}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
async def gateway(localstripe_url: str) -> StripeGateway:
    """The gateway on localstripe, with the catalog synced once."""
    stripe_gateway = StripeGateway("sk_test_orbit", localstripe_url)
    await stripe_gateway.sync_catalog()
    return stripe_gateway


@pytest.fixture
def billing(runtime: Runtime, gateway: StripeGateway) -> Iterator[StripeGateway]:
    """The running app (and its worker code) uses the localstripe gateway in this test."""
    before = runtime.billing
    runtime.billing = gateway
    try:
        yield gateway
    finally:
        runtime.billing = before


class _InLoopServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture(scope="session")
async def live_app_url(app: object) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port: webhooks arrive over real HTTP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        log_config=None,
    )
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    pytest.fail("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        if not task.done():
            server.should_exit = True
            await asyncio.wait_for(task, 10)
        sock.close()


async def subscribe(
    runtime: Runtime, gateway: StripeGateway, member: Member, plan: str = "starter"
) -> tuple[str, str]:
    """The member's workspace gets a customer and a subscription (as checkout would do)."""
    tenant_id = uuid.UUID(member.workspace_id)
    async with runtime.db.transaction(tenant_id):
        customer = await gateway.customer_for(runtime.db, tenant_id, member.slug, member.email)
        seats = await runtime.db.fetchval(
            "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND status = 'active'",
            tenant_id,
        )
    subscription = await gateway.subscribe(
        tenant_id, customer, plan, "month", int(seats), idempotency_key=f"test:{tenant_id}"
    )
    async with runtime.db.transaction(tenant_id):
        await runtime.db.execute(
            "UPDATE billing_accounts SET stripe_subscription_id = $2 WHERE tenant_id = $1",
            tenant_id,
            subscription["id"],
        )
    return customer, subscription["id"]
