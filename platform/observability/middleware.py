"""Request ids, one access log line and the HTTP metrics for every request.

This wraps the whole Litestar ASGI handler (``app.asgi_handler``), outside routing
and the exception handlers, so it sees the final status of every response: 404s of
unknown paths, and 401/403s raised by the request-context middleware too. The
principal is read from ``scope["state"]`` after the request-context middleware
(inside) has put it there.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from orbit.platform.auth.middleware import PRINCIPAL_KEY
from orbit.platform.observability.logs import request_id_var
from orbit.platform.observability.metrics import UNMATCHED_ROUTE

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from orbit.platform.observability.metrics import Metrics

access_log = logging.getLogger("orbit.access")

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
"""An incoming id is honoured only when it cannot smuggle anything into a log line."""


def incoming_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` when it is sane, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _ACCEPTABLE_ID.fullmatch(value):
            return value.decode()
    return uuid.uuid4().hex


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ObservabilityMiddleware:
    """Times each HTTP request, tags it with a request id, logs it and counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then log and count it whatever happened."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_progress.dec()
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or UNMATCHED_ROUTE
            method = str(scope.get("method", "GET"))
            if method not in _KNOWN_METHODS:
                method = "OTHER"  # any verb a client invents must not become a metric series
            self.metrics.observe(route, method, status, seconds)
            self._log(scope, request_id, route, method, status, seconds)
            request_id_var.reset(token)

    @staticmethod
    def _log(
        scope: Scope, request_id: str, route: str, method: str, status: int, seconds: float
    ) -> None:
        principal = scope.get("state", {}).get(PRINCIPAL_KEY)
        tenant = getattr(principal, "tenant", None)
        user_id = getattr(principal, "user_id", None)
        api_key_id = getattr(tenant, "api_key_id", None)
        duration_ms = round(seconds * 1000, 2)
        access_log.info(
            "%s %s %s %.1fms",
            method,
            route,
            status,
            duration_ms,
            extra={
                "request_id": request_id,
                "tenant_id": str(tenant.tenant_id) if tenant is not None else None,
                "user_id": str(user_id) if user_id is not None else None,
                "api_key_id": str(api_key_id) if api_key_id is not None else None,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
            },
        )
