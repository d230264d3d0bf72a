"""Per-workspace API rate limits: GCRA in Redis, 429 with Retry-After and RateLimit fields."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from orbit.tenants.rate_limits import RateLimiter
from tests.conftest import Member, api_key, bearer

_RATE = re.compile(r'^"tenant";r=(\d+);t=(\d+)$')


async def _set_rate(endpoints: Endpoints, member: Member, per_minute: int | None) -> None:
    """An operator sets the workspace's own API rate (as the owner, past the app's RLS)."""
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE tenants SET api_requests_per_minute = $2 WHERE id = $1",
            uuid.UUID(member.workspace_id),
            per_minute,
        )
    finally:
        await admin.close()


def _remaining(response: object) -> int:
    match = _RATE.match(response.headers["RateLimit"])  # type: ignore[attr-defined]
    assert match, response.headers  # type: ignore[attr-defined]
    return int(match.group(1))


@pytest.fixture
def plan_rates(runtime: Runtime) -> Iterator[None]:
    """The plans' own rates (the test settings raise every workspace's rate)."""
    configured = runtime.settings
    runtime.settings = dataclasses.replace(configured, api_rate_per_minute=None)
    yield
    runtime.settings = configured


@pytest.mark.usefixtures("plan_rates")
async def test_free_plan_allows_60_requests_a_minute_then_429_with_headers(alice: Member) -> None:
    remaining = []
    for _ in range(60):
        response = await alice.client.get("/api/v1/contacts")
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Policy"] == '"tenant";q=60;w=60'
        remaining.append(_remaining(response))
    assert remaining == list(range(59, -1, -1))
    refused = await alice.client.get("/api/v1/contacts")
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Policy"] == '"tenant";q=60;w=60'
    assert _remaining(refused) == 0
    assert 1 <= int(refused.headers["Retry-After"]) <= 2  # one request comes back each second
    assert "60 requests a minute" in refused.json()["detail"]
    # Pages are not API requests: the workspace stays usable in the browser.
    assert (await alice.client.get(f"/t/{alice.slug}/contacts")).status_code == 200


async def test_workspaces_do_not_share_buckets(
    endpoints: Endpoints, alice: Member, bob: Member
) -> None:
    await _set_rate(endpoints, alice, 3)
    await _set_rate(endpoints, bob, 3)
    statuses = [(await alice.client.get("/api/v1/contacts")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    bobs = await bob.client.get("/api/v1/contacts")
    assert bobs.status_code == 200
    assert _remaining(bobs) == 2


async def test_api_keys_and_sessions_of_a_workspace_share_its_rate(
    app: object, endpoints: Endpoints, alice: Member
) -> None:
    client = bearer(app, await api_key(alice, ["contacts:read"]))  # before the limit is set
    await _set_rate(endpoints, alice, 4)
    assert (await alice.client.get("/api/v1/contacts")).status_code == 200
    assert (await client.get("/api/v1/contacts")).status_code == 200
    missing = await client.get(f"/api/v1/contacts/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert _remaining(missing) == 1  # failed requests count and carry the headers too
    assert (await alice.client.get("/api/v1/contacts")).status_code == 200
    refused = await client.get("/api/v1/contacts")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    await client.aclose()


async def test_a_refused_write_changes_nothing(
    runtime: Runtime, endpoints: Endpoints, alice: Member
) -> None:
    await _set_rate(endpoints, alice, 1)
    assert (
        await alice.client.post("/api/v1/contacts", json={"first_name": "A"})
    ).status_code == 201
    refused = await alice.client.post("/api/v1/contacts", json={"first_name": "B"})
    assert refused.status_code == 429
    await runtime.redis.delete(f"orbit:rate:{alice.workspace_id}")  # a minute passes
    names = [c["first_name"] for c in (await alice.client.get("/api/v1/contacts")).json()["items"]]
    assert names == ["A"]


async def test_bucket_refills_at_the_rate(runtime: Runtime) -> None:
    limiter = RateLimiter(runtime.redis)
    tenant = uuid.uuid4()
    first = await limiter.hit(tenant, 120)  # one request back every 0.5 s
    assert first is not None
    assert (first.allowed, first.remaining, first.limit) == (True, 119, 120)
    for _ in range(119):
        await limiter.hit(tenant, 120)
    refused = await limiter.hit(tenant, 120)
    assert refused is not None
    assert not refused.allowed
    assert refused.retry_after == 1
    await asyncio.sleep(0.6)
    again = await limiter.hit(tenant, 120)
    assert again is not None
    assert again.allowed


async def test_one_check_costs_one_redis_round_trip(runtime: Runtime) -> None:
    limiter = RateLimiter(runtime.redis)
    tenant = uuid.uuid4()
    await limiter.hit(tenant, 1_000_000)  # loads the script
    await runtime.redis.ping()
    started = time.perf_counter()
    for _ in range(200):
        await runtime.redis.ping()
    ping = (time.perf_counter() - started) / 200
    started = time.perf_counter()
    for _ in range(200):
        await limiter.hit(tenant, 1_000_000)
    hit = (time.perf_counter() - started) / 200
    # EVALSHA of a short script: the same order as a PING, far from two round trips' cost.
    assert hit < ping * 3 + 0.001, (hit, ping)
