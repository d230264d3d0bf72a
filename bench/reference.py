"""The minimal reference route: Litestar + raw asyncpg running the contact list's SQL.

No auth, no ORM, no middleware: one pooled connection, one transaction scoped to the
tenant (as the app role, so under the same RLS), the same two queries as the app's
first page of ``GET /api/v1/contacts``, and the rows serialised by Litestar. Served by
uvicorn exactly like Orbit (``python -m bench.reference`` reads the same settings).

    BENCH_APP_DSN=… BENCH_TENANT_ID=… uv run python -m bench.reference --port 8101
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from typing import Any

import asyncpg
import uvicorn
from litestar import Litestar, get

from orbit.platform.db.engine import SERVER_SETTINGS

LIST_SQL = """
    SELECT r.*, r.updated_at AS sort_key FROM contacts r
    WHERE r.tenant_id = $1 ORDER BY r.updated_at DESC, r.id DESC LIMIT $2
"""
COMPANY_NAMES_SQL = "SELECT id, name FROM companies WHERE tenant_id = $1 AND id = ANY($2::uuid[])"
POOL: dict[str, asyncpg.Pool[Any]] = {}


async def open_pool() -> None:
    """The app role's pool, as large as Orbit's and with its session settings."""
    POOL["app"] = await asyncpg.create_pool(
        os.environ["BENCH_APP_DSN"], min_size=1, max_size=10, server_settings=SERVER_SETTINGS
    )


async def close_pool() -> None:
    """Close it."""
    await POOL.pop("app").close()


@get("/contacts")
async def contacts(limit: int = 50) -> dict[str, Any]:
    """The first page of the big workspace's contacts."""
    tenant = os.environ["BENCH_TENANT_ID"]
    async with POOL["app"].acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        rows = await conn.fetch(LIST_SQL, tenant, limit + 1)
        ids = list({row["company_id"] for row in rows if row["company_id"] is not None})
        names = dict(await conn.fetch(COMPANY_NAMES_SQL, tenant, ids)) if ids else {}
    items = [
        {
            "id": row["id"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "email": row["email"],
            "phone": row["phone"],
            "company_id": row["company_id"],
            "company_name": names.get(row["company_id"]),
            "owner_id": row["owner_id"],
            "tags": list(row["tags"]),
            "custom": json.loads(row["custom"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        for row in rows[:limit]
    ]
    cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        raw = json.dumps([last["updated_at"].isoformat(), str(last["id"])]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"items": items, "next_cursor": cursor}


app = Litestar([contacts], on_startup=[open_pool], on_shutdown=[close_pool])


def main() -> None:
    """Serve the reference app like ``orbit web`` serves Orbit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        proxy_headers=True,
        lifespan="on",
        access_log=False,
        log_config=None,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
