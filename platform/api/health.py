"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from orbit.platform.runtime import Runtime

_CHECK_TIMEOUT = 2.0


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(runtime: Runtime) -> Response[dict[str, Any]]:
    """The database and Redis answer; 503 naming the one that does not."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT), runtime.db.transaction():
            await runtime.db.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            pong = runtime.redis.ping()  # redis-py types it sync-or-async
            if inspect.isawaitable(pong):
                await pong
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return Response(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
    )
