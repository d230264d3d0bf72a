"""Plugins' public routes (``/p/{plugin}/…``): no login, a signed token names the workspace.

A public request has no user and no workspace until its handler opens a token with
:meth:`PublicGate.open`: the token is verified (forged, altered or another plugin's,
purpose's or workspace's: 404; expired: 410), the request's transaction is scoped to
the token's workspace (row-level security) and the plugin's context for that
workspace is handed over, but only while the workspace has the plugin enabled
(404 otherwise). The request middleware runs these routes without reading the
session cookie, checking CSRF or refusing cross-site posts (a mail provider's
RFC 8058 one-click unsubscribe has none of them) and rate-limits them per client
address.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from orbit.platform.errors import NotFoundError, OrbitError
from orbit.plugins.links import TokenError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    from orbit.plugins.context import PluginContext
    from orbit.plugins.host import PluginHost

log = logging.getLogger(__name__)


class PublicGate:
    """What a public route handler asks for (``public: PublicGate``): opens tokens."""

    def __init__(self, plugin_id: str, host: PluginHost) -> None:
        self.plugin_id = plugin_id
        self._host = host
        self._open = False

    def verify(self, token: str, purpose: str) -> tuple[UUID, dict[str, Any]]:
        """The workspace id and data of one of this plugin's tokens, without opening it."""
        if self._host.links is None:
            raise RuntimeError("Orbit was started without plugin links")
        return self._host.links.verify(self.plugin_id, token, purpose)

    @asynccontextmanager
    async def open(
        self, token: str, purpose: str
    ) -> AsyncIterator[tuple[PluginContext, dict[str, Any]]]:
        """Verify ``token`` for ``purpose`` and act in its workspace: ``(ctx, data)``.

        Raises :class:`~orbit.plugins.links.TokenError` (404) for a token that is not
        this plugin's for ``purpose``, :class:`~orbit.plugins.links.TokenExpiredError`
        (410) for an expired one, and a 404 when the workspace is gone or no longer has
        the plugin enabled. Inside the block the request's transaction is the
        workspace's; ``ctx.db`` writes are kept when the block ends normally and undone
        when it raises (the whole request is rolled back for a 4xx or 5xx response).
        One token at a time: blocks do not nest.
        """
        if self._open:
            raise RuntimeError("public.open() blocks do not nest; open one token at a time")
        tenant_id, data = self.verify(token, purpose)
        db = self._host.db
        slug = await db.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant_id)
        if slug is None:
            raise TokenError("this link is not valid")
        self._open = True
        await db.set_tenant(tenant_id)
        failed = True
        try:
            plugins = await self._host.for_tenant(tenant_id, slug)
            if self.plugin_id not in plugins.enabled:
                raise NotFoundError("this link is no longer available")
            ctx = plugins.context(self.plugin_id)
            started = time.perf_counter()
            try:
                yield ctx, data
            except BaseException as exc:
                await ctx.db.settle(ok=False)
                if not _answered(exc):
                    log.exception("plugin %s: public route failed (tenant %s)", ctx.plugin_id, slug)
                    self._observe("error", started)
                raise
            await ctx.db.settle(ok=True)
            self._observe("ok", started)
            failed = False
        finally:
            self._open = False
            try:
                await db.clear_tenant()
            except Exception:
                if not failed:
                    raise
                # The transaction is already aborted and rolls back with the error response.

    def _observe(self, outcome: str, started: float) -> None:
        self._host.metrics.observe(
            self.plugin_id, "public_route", outcome, time.perf_counter() - started
        )


def _answered(exc: BaseException) -> bool:
    """Whether ``exc`` is an answer to the caller (a 4xx), not a failure of the plugin."""
    if isinstance(exc, OrbitError | GeneratorExit):
        return True
    return isinstance(exc, HTTPException) and exc.status_code < HTTP_500_INTERNAL_SERVER_ERROR
