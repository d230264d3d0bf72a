"""The app role's pooled engine and the tenant transaction.

Every request and job runs in exactly one transaction that starts with
``set_config('app.tenant_id', …, true)``; the setting is transaction-local, so a
pooled connection never carries a tenant into the next request.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, Self

from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextvars import Token
    from types import TracebackType
    from uuid import UUID

    import asyncpg
    from piccolo.table import Table

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT = "15s"
IDLE_IN_TRANSACTION_TIMEOUT = "30s"
ACQUIRE_TIMEOUT = 10.0
"""Seconds to wait for a pooled connection before a request fails instead of hanging."""
SERVER_SETTINGS = {
    "application_name": "orbit",
    "statement_timeout": STATEMENT_TIMEOUT,
    "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_TIMEOUT,
    # asyncpg prepares every statement; after five runs PostgreSQL may switch to a generic
    # plan, costed for an average workspace. With one workspace of a million contacts
    # among a thousand small ones that plan is wrong for the big one: a saved view
    # (a tag and a custom field, newest first) went from 6 ms to 5.2 s on its sixth run
    # (bench data, PostgreSQL 15). Planning each run with the real tenant costs well
    # under a millisecond.
    "plan_cache_mode": "force_custom_plan",
}
"""The app role's session settings (the benchmark's raw SQL connects with them too)."""


class NoTransactionError(RuntimeError):
    """A query ran outside the tenant transaction (a bug: middleware opens one per request)."""


class Database:
    """The app role's connection pool, shared by Piccolo tables and raw SQL."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.engine = PostgresEngine(
            config={
                "dsn": dsn,
                "server_settings": dict(SERVER_SETTINGS),
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

    def unit_of_work(self) -> UnitOfWork:
        """One transaction, settled explicitly (the request middleware uses this)."""
        return UnitOfWork(self)

    @asynccontextmanager
    async def transaction(self, tenant_id: UUID | None = None) -> AsyncIterator[UnitOfWork]:
        """One transaction, scoped to ``tenant_id`` when given (jobs, CLI, tests).

        Commits when the block ends normally, rolls back when it raises.
        """
        async with self.unit_of_work() as unit:
            if tenant_id is not None:
                await self.set_tenant(tenant_id)
            yield unit
            await unit.finish(commit=True)

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

    async def clear_tenant(self) -> None:
        """Unscope the current transaction (RLS then shows no tenant rows)."""
        await self.connection.execute("SELECT set_config('app.tenant_id', '', true)")

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


class UnitOfWork:
    """One transaction on one pooled connection: settled once, always given back.

    Piccolo's own transaction object rolls back again after a failed COMMIT and
    then never returns its connection to the pool; this one keeps its state,
    never rolls back after a commit attempt, and releases in ``__aexit__``.
    Piccolo queries made inside join it through the engine's context variable.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._tx: PostgresTransaction | None = None
        self._token: Token[PostgresTransaction | None] | None = None
        self._settled = False

    async def __aenter__(self) -> Self:
        """Take a pooled connection and begin."""
        engine = self.db.engine
        if engine.pool is None:
            raise RuntimeError("the database pool is not open; call Database.connect() first")
        connection = await engine.pool.acquire(timeout=ACQUIRE_TIMEOUT)
        try:
            tx = PostgresTransaction(engine, allow_nested=False)
            tx.connection = connection
            tx.transaction = connection.transaction()
            await tx.transaction.start()
        except BaseException:
            await engine.pool.release(connection)
            raise
        self._tx = tx
        self._token = engine.current_transaction.set(tx)
        return self

    async def finish(self, *, commit: bool) -> None:
        """Commit or roll back, once; a failed commit raises after rolling back."""
        if self._settled or self._tx is None:
            return
        self._settled = True
        if commit:
            try:
                await self._tx.transaction.commit()
            except BaseException:
                with suppress(Exception):
                    await self._tx.transaction.rollback()
                raise
        else:
            try:
                await self._tx.transaction.rollback()
            except Exception:  # a broken connection: release() below discards it
                log.warning("rollback failed", exc_info=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back if still open, then give the connection back."""
        try:
            await self.finish(commit=False)
        finally:
            if self._tx is not None and self._token is not None:
                self.db.engine.current_transaction.reset(self._token)
                pool = self.db.engine.pool
                if pool is not None:
                    await pool.release(self._tx.connection)
