from __future__ import annotations

from tests.conftest import make_client


async def test_healthz_says_the_process_is_up(app: object) -> None:
    async with make_client(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_and_redis_reachable(app: object) -> None:
    async with make_client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_openapi_is_served_at_api_docs(app: object) -> None:
    async with make_client(app) as client:
        response = await client.get("/api/docs/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/contacts" in paths
    assert "/api/v1/contacts/{contact_id}" in paths
    assert "/api/v1/signup" in paths
