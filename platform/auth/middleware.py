"""The request context: who is asking, and one tenant transaction around the handler.

This is an ASGI middleware, not a ``yield`` dependency, on purpose (DESIGN.md):
Litestar resolves independent dependencies in separate tasks, so a transaction
opened in one would be invisible to the handler. Here every request runs in one
transaction, scoped with ``set_config('app.tenant_id', …, true)`` before the
handler sees it; it commits just before the response head is sent when the
status is below 400 and rolls back otherwise, so a failed request writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from litestar.datastructures import Cookie, Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_400_BAD_REQUEST

from orbit.billing.entitlements import entitlements
from orbit.platform.auth.api_keys import ApiKeyService
from orbit.platform.auth.sessions import COOKIE_NAME, CSRF_HEADER, Session
from orbit.platform.errors import (
    NotAuthenticatedError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
)
from orbit.platform.imports.upload import (
    UPLOAD_KEY,
    ClientGoneError,
    UploadRefusedError,
    is_upload,
    room_for,
    stream_to_disk,
)
from orbit.plugins.ui import navigation
from orbit.tenants.context import ANONYMOUS, Principal, TenantContext
from orbit.tenants.roles import ROLE_SCOPES, Role
from orbit.tenants.service import WorkspaceService
from orbit.tenants.visibility import visible_owners

if TYPE_CHECKING:
    from pathlib import Path

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from orbit.platform.runtime import Runtime

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 2 * 1024 * 1024
"""JSON and form bodies; file uploads (imports) will stream through their own route."""
BODY_TIMEOUT = 30.0
_BYPASS = re.compile(r"^/(?:static/|healthz$|readyz$|metrics$|api/docs|favicon)")
_WRITES_WHILE_READ_ONLY = re.compile(
    r"^/(?:logout$|api/v1/logout$|account(?:/|$)|billing|t/[^/]+/billing(?:/|$))"
)
"""Paths a read-only workspace may still post to: leaving, one's account, and paying."""
_API = re.compile(r"^/api/")
_PUBLIC = re.compile(r"^/p/")
"""Plugins' public routes: no session, no CSRF, a rate limit per client address."""
_WORKSPACE_PATH = re.compile(r"^/t/([^/]+)(?:/|$)")
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
PRINCIPAL_KEY = "principal"
PLUGIN_NAV_KEY = "plugin_nav"
"""Request state: the workspace's plugins' links for the layout (``NavLink``)."""


def runtime_of(scope: Scope) -> Runtime:
    """The :class:`Runtime` of the app serving ``scope``."""
    runtime: Runtime = scope["litestar_app"].state["runtime"]
    return runtime


class RequestContextMiddleware(ASGIMiddleware):
    """Authenticates the request and runs it in one tenant-scoped transaction."""

    scopes = (ScopeType.HTTP,)

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        """Static files, health probes and the API docs need no identity or transaction."""
        return _BYPASS.match(scope["path"]) is not None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Read the body, open the transaction, resolve the principal, run, settle."""
        runtime = runtime_of(scope)
        if is_upload(scope):
            # An import file streams to disk first, no connection held (imports/upload.py).
            staged = await _stage_upload(runtime, scope, receive, send)
            if staged is None:
                return
            scope["state"][UPLOAD_KEY] = staged
            try:
                await self._run(runtime, scope, b"", receive, send, next_app)
            finally:
                staged.unlink(missing_ok=True)
            return
        # The whole body is read before a pooled connection is taken, so slow or
        # stalled uploads cannot hold database connections.
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await _read_body(receive, MAX_BODY_BYTES)
        except TimeoutError:
            await _send_error(send, 408, "the request body did not arrive in time")
            return
        except _ClientGoneError:
            return
        if body is None:
            limit = MAX_BODY_BYTES // 1024
            await _send_error(send, 413, f"request body larger than {limit} KiB")
            return
        await self._run(runtime, scope, body, receive, send, next_app)

    async def _run(
        self,
        runtime: Runtime,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
    ) -> None:
        """Resolve the principal and run the app in one tenant transaction, settled on send.

        Public routes (``/p/…``) have no principal: the session cookie is not even
        read, so a signed-in visitor's session can neither help nor hinder them.
        """
        public = _PUBLIC.match(scope["path"]) is not None
        # Before a pooled connection is taken: a flood of public requests holds none.
        rate_headers = await _public_rate_limit(runtime, scope) if public else []
        async with runtime.db.unit_of_work() as unit:
            principal = ANONYMOUS if public else await resolve_principal(runtime, scope, body)
            scope["state"][PRINCIPAL_KEY] = principal
            _refuse_writes_when_read_only(principal, scope)
            if not public:
                rate_headers = await _rate_limit(runtime, principal, scope)
                if _renders_layout(principal, scope):
                    tenant = cast("TenantContext", principal.tenant)
                    scope["state"][PLUGIN_NAV_KEY] = await navigation(
                        runtime.plugins, tenant.tenant_id, tenant.tenant_slug
                    )
            failed_commit = False

            async def settle_then_send(message: Message) -> None:
                nonlocal failed_commit
                if failed_commit:
                    return  # the original response was replaced by a 500
                if message["type"] == "http.response.start":
                    try:
                        await unit.finish(commit=message["status"] < HTTP_400_BAD_REQUEST)
                    except Exception:
                        log.exception("commit failed on %s %s", scope.get("method"), scope["path"])
                        failed_commit = True
                        await _send_error(send, 500, "the change could not be saved; try again")
                        return
                    if rate_headers:
                        message = {
                            **message,
                            "headers": [*message.get("headers", []), *rate_headers],
                        }
                await send(message)

            await next_app(scope, _replay(body, receive), settle_then_send)


async def _stage_upload(
    runtime: Runtime, scope: Scope, receive: Receive, send: Send
) -> Path | None:
    """Identify the caller in a short transaction, then stream the file to disk."""
    async with runtime.db.unit_of_work() as unit:
        principal = await resolve_principal(runtime, scope)
        limit = await room_for(runtime, principal)
        await unit.finish(commit=True)
    try:
        return await stream_to_disk(runtime.settings.home, principal, scope, receive, limit)
    except UploadRefusedError as exc:
        await _send_error(send, exc.status, exc.detail)
    except ClientGoneError:
        pass
    return None


async def _rate_limit(
    runtime: Runtime, principal: Principal, scope: Scope
) -> list[tuple[bytes, bytes]]:
    """Count an API request against its workspace's rate: a 429, or the headers to add.

    Every ``/api/`` request inside a workspace counts, by API key or by session alike;
    pages do not (people click slower than any plan's rate).
    """
    tenant = principal.tenant
    if tenant is None or tenant.api_rate_per_minute is None or not _API.match(scope["path"]):
        return []
    decision = await runtime.rate_limiter.hit(tenant.tenant_id, tenant.api_rate_per_minute)
    if decision is None:
        return []
    if not decision.allowed:
        raise decision.refusal()
    return [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]


def _renders_layout(principal: Principal, scope: Scope) -> bool:
    """Whether the response may be a whole page of a workspace (with its navigation).

    Not for the API, API keys, or htmx requests that swap in part of a page.
    """
    tenant = principal.tenant
    if tenant is None or tenant.user_id is None or _API.match(scope["path"]):
        return False
    headers = Headers.from_scope(scope)
    return not headers.get("hx-request") or bool(headers.get("hx-history-restore-request"))


async def _public_rate_limit(runtime: Runtime, scope: Scope) -> list[tuple[bytes, bytes]]:
    """Count a public-route request against its client address: a 429, or the headers to add."""
    per_minute = runtime.settings.public_rate_per_minute
    client = scope.get("client")
    if not per_minute or not client:
        return []
    decision = await runtime.rate_limiter.hit_address(client[0], per_minute)
    if decision is None:
        return []
    if not decision.allowed:
        raise decision.refusal()
    return [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]


class _ClientGoneError(Exception):
    """The client disconnected before sending its whole body."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or ``None`` when it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGoneError
        chunk = cast("bytes", message.get("body", b""))
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body to the app, then the real channel."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send_error(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"status_code": status, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _refuse_writes_when_read_only(principal: Principal, scope: Scope) -> None:
    """A read-only workspace (unpaid or canceled) answers writes with a 402 that says why."""
    tenant = principal.tenant
    if tenant is None or not tenant.read_only:
        return
    if str(scope.get("method", "GET")) in SAFE_METHODS or _WRITES_WHILE_READ_ONLY.match(
        scope["path"]
    ):
        return
    raise PaymentRequiredError(
        f"{tenant.tenant_name} is read-only until its subscription is paid; reading and "
        "exporting still work, and an owner can fix billing to edit again"
    )


def _entitled(
    runtime: Runtime, tenant: TenantContext, row: Any, client_ip: str | None
) -> TenantContext:
    """``tenant`` with the plan and subscription of its ``tenants`` row applied."""
    if row is None:
        return dataclasses.replace(tenant, client_ip=client_ip)
    granted = entitlements(
        row["plan"], row["subscription_status"], row["past_due_since"], datetime.now(UTC)
    )
    configured = runtime.settings.api_rate_per_minute
    rate = row["api_requests_per_minute"] or (
        granted.plan.api_requests_per_minute if configured is None else configured
    )
    return dataclasses.replace(
        tenant,
        read_only=granted.read_only,
        billing_banner=granted.banner,
        client_ip=client_ip,
        api_rate_per_minute=rate or None,
    )


async def resolve_principal(runtime: Runtime, scope: Scope, body: bytes = b"") -> Principal:
    """Who is calling (an API key, a session with CSRF checked, or nobody) and their limits."""
    client = scope.get("client")
    client_ip = client[0] if client else None
    headers = Headers.from_scope(scope)
    authorization = headers.get("authorization")
    if authorization:  # the key's workspace row already carries its plan: one read
        return await _api_key_principal(runtime, authorization, client_ip)
    return await _identify(runtime, scope, headers, body, client_ip)


async def _identify(
    runtime: Runtime, scope: Scope, headers: Headers, body: bytes, client_ip: str | None
) -> Principal:
    method = str(scope.get("method", "GET"))
    if method not in SAFE_METHODS:
        _refuse_cross_site(headers)
    session_id = _cookie(headers, COOKIE_NAME)
    session = await runtime.sessions.load(session_id) if session_id else None
    if session is None:
        if session_id:
            return Principal(session_expired=True)
        return ANONYMOUS
    if method not in SAFE_METHODS and not _csrf_ok(headers, body, session.csrf_token):
        raise PermissionDeniedError(
            "missing or wrong CSRF token: send the X-CSRF-Token header of your session"
        )
    return await _session_principal(runtime, session, str(scope["path"]), client_ip)


async def _session_principal(
    runtime: Runtime, session: Session, path: str, client_ip: str | None
) -> Principal:
    """A logged-in user, inside the workspace of a ``/t/{slug}/`` page or their last one."""
    principal = Principal(
        user_id=session.user_id,
        session_id=session.id,
        csrf_token=session.csrf_token,
        time_zone=session.time_zone,
    )
    match = _WORKSPACE_PATH.match(path)
    if match and not _SLUG.fullmatch(match.group(1)):
        raise NotFoundError(f"workspace {match.group(1)[:63]!r} not found")
    slug = match.group(1) if match else session.tenant_slug
    if slug is None:
        return principal
    tenant = await _member_context(runtime, slug, session.user_id, client_ip)
    if tenant is None:
        if match:  # a page of a workspace this user is not in: same answer as a missing one
            raise NotFoundError(f"workspace {slug!r} not found")
        return principal
    if match and slug != session.tenant_slug:
        session.tenant_slug = slug  # the API follows the workspace last opened in the browser
        await runtime.sessions.save(session)
    return dataclasses.replace(principal, tenant=tenant)


_SESSION_WORKSPACE = (
    "SELECT set_config('app.tenant_id', id::text, true), id, slug, name, plan, "
    "subscription_status, past_due_since, api_requests_per_minute FROM tenants WHERE slug = $1"
)
"""Scope the transaction and read the workspace with its plan in one round trip."""


async def _member_context(
    runtime: Runtime, slug: str, user_id: Any, client_ip: str | None
) -> TenantContext | None:
    """The user's context in workspace ``slug`` (plan applied), or ``None`` if not a member.

    Two round trips for owners and admins (workspace, membership), three for members and
    viewers (their record visibility).
    """
    workspace = await runtime.db.fetchrow(_SESSION_WORKSPACE, slug)
    if workspace is None:
        return None
    membership = await WorkspaceService(runtime.db).active_membership(workspace["id"], user_id)
    if membership is None:
        await runtime.db.clear_tenant()  # not a member: nothing of that workspace stays visible
        return None
    role = Role(membership["role"])
    owners = await visible_owners(runtime.db, workspace["id"], membership["id"], role)
    tenant = TenantContext(
        tenant_id=workspace["id"],
        tenant_slug=workspace["slug"],
        tenant_name=workspace["name"],
        scopes=ROLE_SCOPES[role],
        user_id=user_id,
        membership_id=membership["id"],
        role=role,
        visible_owners=owners,
    )
    return _entitled(runtime, tenant, workspace, client_ip)


async def _api_key_principal(
    runtime: Runtime, authorization: str, client_ip: str | None
) -> Principal:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError("the Authorization header must be 'Bearer <API key>'")
    keys = ApiKeyService(runtime.db)
    key = await keys.authenticate(token.strip())  # also scopes the transaction
    tenant = key.workspace
    await keys.touch(key.tenant_id, key.key_id)
    context = TenantContext(
        tenant_id=key.tenant_id,
        tenant_slug=tenant["slug"],
        tenant_name=tenant["name"],
        scopes=key.scopes,
        api_key_id=key.key_id,
    )
    return Principal(tenant=_entitled(runtime, context, tenant, client_ip))


def _csrf_ok(headers: Headers, body: bytes, expected: str) -> bool:
    """The session's token came as the X-CSRF-Token header or a ``csrf_token`` form field."""
    presented = headers.get(CSRF_HEADER)
    if presented is None and headers.get("content-type", "").startswith(FORM_CONTENT_TYPE):
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=1000)
        presented = next(iter(fields.get("csrf_token", [])), None)
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8", "replace"), expected.encode()
    )


def _refuse_cross_site(headers: Headers) -> None:
    """Refuse unsafe requests that a browser says come from another site (login CSRF too)."""
    if headers.get("sec-fetch-site") == "cross-site":
        raise PermissionDeniedError("cross-site request refused")
    origin = headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != headers.get("host"):
        raise PermissionDeniedError(f"cross-site request from {origin} refused")


def _cookie(headers: Headers, name: str) -> str | None:
    for header in headers.getall("cookie", []):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
    return None


def session_cookie(value: str, *, secure: bool, max_age: int | None) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure behind HTTPS."""
    return Cookie(
        key=COOKIE_NAME,
        value=value,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
        max_age=max_age,
    )
