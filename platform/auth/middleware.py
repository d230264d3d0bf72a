"""The request context: who is asking, and one tenant transaction around the handler.

This is an ASGI middleware, not a ``yield`` dependency, on purpose (DESIGN.md):
Litestar resolves independent dependencies in separate tasks, so a transaction
opened in one would be invisible to the handler. Here every request runs in one
transaction, scoped with ``set_config('app.tenant_id', …, true)`` before the
handler sees it; it commits just before the response head is sent when the
status is below 400 and rolls back otherwise, so a failed request writes nothing.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Any

from litestar.datastructures import Cookie, Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_400_BAD_REQUEST

from orbit.platform.auth.api_keys import ApiKeyService
from orbit.platform.auth.sessions import COOKIE_NAME, CSRF_HEADER
from orbit.platform.errors import NotAuthenticatedError, NotFoundError, PermissionDeniedError
from orbit.tenants.context import ANONYMOUS, Principal, TenantContext
from orbit.tenants.models import Tenant
from orbit.tenants.roles import ROLE_SCOPES, Role
from orbit.tenants.service import WorkspaceService

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from orbit.platform.runtime import Runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WORKSPACE_PATH = re.compile(r"^/t/([^/]+)(?:/|$)")
PRINCIPAL_KEY = "principal"


def runtime_of(scope: Scope) -> Runtime:
    """The :class:`Runtime` of the app serving ``scope``."""
    runtime: Runtime = scope["litestar_app"].state["runtime"]
    return runtime


class RequestContextMiddleware(ASGIMiddleware):
    """Authenticates the request and runs it in one tenant-scoped transaction."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = ("^/static/", "^/healthz$", "^/readyz$", "^/api/docs", "^/favicon")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Open the transaction, resolve the principal, run the handler, settle the transaction."""
        runtime = runtime_of(scope)
        async with runtime.db.begin() as tx:
            scope["state"][PRINCIPAL_KEY] = await resolve_principal(runtime, scope)

            async def settle_then_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    if message["status"] < HTTP_400_BAD_REQUEST:
                        await tx.commit()  # type: ignore[no-untyped-call]
                    else:
                        await tx.rollback()  # type: ignore[no-untyped-call]
                await send(message)

            await next_app(scope, receive, settle_then_send)


async def resolve_principal(runtime: Runtime, scope: Scope) -> Principal:
    """Who is calling: an API key, a session (with CSRF checked), or nobody."""
    headers = Headers.from_scope(scope)
    authorization = headers.get("authorization")
    if authorization:
        return await _api_key_principal(runtime, authorization)
    session_id = _cookie(headers, COOKIE_NAME)
    session = await runtime.sessions.load(session_id) if session_id else None
    if session is None:
        if session_id:
            return Principal(session_expired=True)
        return ANONYMOUS
    method = str(scope.get("method", "GET"))
    if method not in SAFE_METHODS and not hmac.compare_digest(
        headers.get(CSRF_HEADER, ""), session.csrf_token
    ):
        raise PermissionDeniedError(
            "missing or wrong CSRF token: send the X-CSRF-Token header of your session"
        )
    principal = Principal(
        user_id=session.user_id, session_id=session.id, csrf_token=session.csrf_token
    )
    match = _WORKSPACE_PATH.match(scope["path"])
    slug = match.group(1) if match else session.tenant_slug
    if slug is None:
        return principal
    tenant = await _member_context(runtime, slug, session.user_id)
    if tenant is None:
        if match:  # a page of a workspace this user is not in: same answer as a missing one
            raise NotFoundError(f"workspace {slug!r} not found")
        return principal
    if match and slug != session.tenant_slug:
        session.tenant_slug = slug  # the API follows the workspace last opened in the browser
        await runtime.sessions.save(session)
    return Principal(
        user_id=session.user_id,
        session_id=session.id,
        csrf_token=session.csrf_token,
        tenant=tenant,
    )


async def _member_context(runtime: Runtime, slug: str, user_id: Any) -> TenantContext | None:
    workspaces = WorkspaceService(runtime.db)
    workspace = await workspaces.by_slug(slug)
    if workspace is None:
        return None
    await runtime.db.set_tenant(workspace.id)
    membership = await workspaces.active_membership(workspace.id, user_id)
    if membership is None:
        return None
    role = Role(membership["role"])
    return TenantContext(
        tenant_id=workspace.id,
        tenant_slug=workspace.slug,
        tenant_name=workspace.name,
        scopes=ROLE_SCOPES[role],
        user_id=user_id,
        membership_id=membership["id"],
        role=role,
    )


async def _api_key_principal(runtime: Runtime, authorization: str) -> Principal:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError("the Authorization header must be 'Bearer <API key>'")
    keys = ApiKeyService(runtime.db)
    key = await keys.authenticate(token.strip())
    await runtime.db.set_tenant(key.tenant_id)
    tenant = await Tenant.select().where(Tenant.id == key.tenant_id).first()
    if tenant is None:
        raise NotAuthenticatedError("unknown API key")
    await keys.touch(key.tenant_id, key.key_id)
    return Principal(
        tenant=TenantContext(
            tenant_id=key.tenant_id,
            tenant_slug=tenant["slug"],
            tenant_name=tenant["name"],
            scopes=key.scopes,
            api_key_id=key.key_id,
        )
    )


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
