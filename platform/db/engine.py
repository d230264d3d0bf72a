"""The app role's pooled engine and the tenant transaction.

Every request and job runs in exactly one transaction that starts with
``set_config('app.tenant_id', …, true)``; the setting is transaction-local, so a
pooled connection never carries a tenant into the next request.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    import asyncpg
    from piccolo.table import Table

STATEMENT_TIMEOUT = "15s"


class NoTransactionError(RuntimeError):
    """A query ran outside the tenant transaction (a bug: middleware opens one per request)."""


class Database:
    """The app role's connection pool, shared by Piccolo tables and raw SQL."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.engine = PostgresEngine(
            config={
                "dsn": dsn,
                "server_settings": {
                    "application_name": "orbit",
                    "statement_timeout": STATEMENT_TIMEOUT,
                },
            },
            extensions=(),
            log_queries=False,
        )
        self.pool_size = pool_size

    async def connect(self) -> None:
        """Open the pool."""
        await self.engine.start_connection_pool(min_size=1, max_size=self.pool_size)

    async def close(self) -> None:
        """Close the pool."""
        await self.engine.close_connection_pool()

    def bind(self, tables: list[type[Table]]) -> None:
        """Make ``tables`` run their queries through this engine."""
        for table in tables:
            table._meta.db = self.engine  # noqa: SLF001 - Piccolo's documented way to rebind a table

    def begin(self) -> PostgresTransaction:
        """A new transaction (enter it with ``async with``)."""
        return self.engine.transaction(allow_nested=False)

    @asynccontextmanager
    async def transaction(
        self, tenant_id: UUID | None = None
    ) -> AsyncIterator[PostgresTransaction]:
        """One transaction, scoped to ``tenant_id`` when given (jobs, CLI, tests)."""
        async with self.begin() as tx:
            if tenant_id is not None:
                await self.set_tenant(tenant_id)
            yield tx

    @property
    def connection(self) -> asyncpg.Connection[Any]:
        """The connection of the current transaction."""
        tx = self.engine.current_transaction.get()
        if tx is None:
            raise NoTransactionError("no transaction is open; tenant data is only read inside one")
        connection: asyncpg.Connection[Any] = tx.connection
        return connection

    async def set_tenant(self, tenant_id: UUID) -> None:
        """Scope the current transaction to one tenant (row-level security reads this)."""
        await self.connection.execute(
            "SELECT set_config('app.tenant_id', $1, true)", str(tenant_id)
        )

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Run ``query`` in the current transaction and return its rows."""
        return await self.connection.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        """Run ``query`` in the current transaction and return its first row."""
        return await self.connection.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        """Run ``query`` in the current transaction and return one value."""
        return await self.connection.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        """Run ``query`` in the current transaction."""
        return await self.connection.execute(query, *args)
