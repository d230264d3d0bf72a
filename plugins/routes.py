"""Mounting plugins' routes: ``/api/v1/apps/{id}/…``, ``/t/{slug}/apps/{id}/…``, ``/p/{id}/…``.

Routes are collected once at start-up from every loaded plugin. An API or page
request reaches them only when the caller's workspace enabled the plugin (a 404
otherwise, as if the route did not exist); handlers ask for ``plugin: PluginContext``.
Public routes (``orbit_public_routes``) have no caller: their handlers ask for
``public: PublicGate`` and open a signed token to act in its workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Router
from litestar.datastructures import ResponseHeader
from litestar.di import Provide

from orbit.platform.errors import NotFoundError, PermissionDeniedError
from orbit.plugins.context import (  # Litestar reads PluginContext's hint at run time
    Actor,
    PluginContext,
)
from orbit.plugins.pages import PUBLIC_HEADERS
from orbit.plugins.public import PublicGate
from orbit.tenants.context import require_tenant

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from orbit.platform.runtime import Runtime
    from orbit.plugins.registry import PluginRegistry

_STATE_KEY = "orbit_plugin_context"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


async def _context(connection: ASGIConnection[Any, Any, Any, Any], plugin_id: str) -> PluginContext:
    cached: PluginContext | None = connection.state.get(_STATE_KEY)
    if cached is not None:
        return cached
    from orbit.platform.auth.middleware import PRINCIPAL_KEY  # noqa: PLC0415 - avoids a cycle
    from orbit.tenants.context import ANONYMOUS  # noqa: PLC0415

    tenant = require_tenant(connection.state.get(PRINCIPAL_KEY, ANONYMOUS))
    runtime: Runtime = connection.app.state["runtime"]
    plugins = await runtime.plugins.for_tenant(tenant.tenant_id, tenant.tenant_slug)
    if plugin_id not in plugins.enabled:
        raise NotFoundError(f"the app {plugin_id!r} is not enabled in this workspace")
    ctx = plugins.context(plugin_id)
    ctx.csrf_token = connection.state.get(PRINCIPAL_KEY, ANONYMOUS).csrf_token
    ctx.actor = Actor(
        member_id=tenant.membership_id if tenant.api_key_id is None else None,
        role=tenant.role.value if tenant.role is not None and tenant.api_key_id is None else None,
    )
    connection.state[_STATE_KEY] = ctx
    return ctx


def _gate(plugin_id: str) -> Any:
    async def enabled_here(
        connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
    ) -> None:
        ctx = await _context(connection, plugin_id)
        method = connection.scope.get("method", "GET")
        if ctx.actor is not None and ctx.actor.role == "viewer" and method not in _SAFE:
            raise PermissionDeniedError("viewers can read apps' pages but not change anything")

    return enabled_here


def _provider(plugin_id: str) -> Provide:
    async def provide_plugin(request: Any) -> PluginContext:
        return await _context(request, plugin_id)

    return Provide(provide_plugin)


def _public_provider(plugin_id: str) -> Provide:
    async def provide_public(request: Any) -> PublicGate:
        runtime: Runtime = request.app.state["runtime"]
        return PublicGate(plugin_id, runtime.plugins)

    return Provide(provide_public)


def plugin_routers(registry: PluginRegistry) -> list[Router]:
    """One router per plugin and kind (API, pages, public) for the routes its hooks return."""
    routers: list[Router] = []
    for hook, prefix in (
        ("orbit_api_routes", "/api/v1/apps/{plugin}"),
        ("orbit_page_routes", "/t/{{slug:str}}/apps/{plugin}"),
    ):
        for plugin_id, handlers in registry.all_results(hook):
            routers.append(
                Router(
                    path=prefix.format(plugin=plugin_id),
                    route_handlers=list(handlers),
                    guards=[_gate(plugin_id)],
                    dependencies={"plugin": _provider(plugin_id)},
                    tags=[f"apps: {plugin_id}"],
                    include_in_schema=hook == "orbit_api_routes",
                )
            )
    routers.extend(
        Router(
            path=f"/p/{plugin_id}",
            route_handlers=list(handlers),
            dependencies={"public": _public_provider(plugin_id)},
            response_headers=[ResponseHeader(name=k, value=v) for k, v in PUBLIC_HEADERS.items()],
            tags=[f"apps: {plugin_id}"],
            include_in_schema=False,
        )
        for plugin_id, handlers in registry.all_results("orbit_public_routes")
    )
    return routers
