"""Sign-up, login, logout and API keys over JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from orbit.platform.auth.api_keys import ApiKeyService
from orbit.platform.auth.middleware import session_cookie
from orbit.platform.auth.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    LogInIn,
    SessionOut,
    SignUpIn,
    UserOut,
    WorkspaceOut,
)
from orbit.platform.auth.service import Account, AccountService
from orbit.platform.auth.sessions import TTL_SECONDS
from orbit.platform.errors import NotAuthenticatedError
from orbit.platform.ids import parse_id
from orbit.platform.runtime import Runtime
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.service import Workspace


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The peer address (the ingress sets the real one; see the Helm chart)."""
    return request.client.host if request.client else "unknown"


async def start_session(
    runtime: Runtime, account: Account, workspace: Workspace | None, status_code: int
) -> Response[SessionOut]:
    """A response that starts a session for ``account`` and sets its cookie."""
    session = await runtime.sessions.create(
        account.id, workspace.slug if workspace else None, account.time_zone
    )
    body = SessionOut(
        user=UserOut(id=account.id, email=account.email, name=account.name),
        workspace=WorkspaceOut(**dataclasses.asdict(workspace)) if workspace else None,
        csrf_token=session.csrf_token,
    )
    return Response(
        body,
        status_code=status_code,
        cookies=[
            session_cookie(session.id, secure=runtime.settings.cookie_secure, max_age=TTL_SECONDS)
        ],
    )


class AccountController(Controller):
    """Accounts and sessions."""

    path = "/api/v1"
    tags = ["accounts"]

    @post("/signup", status_code=HTTP_201_CREATED)
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        data: SignUpIn,
        accounts: AccountService,
        runtime: Runtime,
    ) -> Response[SessionOut]:
        """Create a user and their workspace on the free plan, and log them in."""
        account, workspace = await accounts.sign_up(
            ip=client_ip(request),
            email=data.email,
            password=data.password,
            name=data.name,
            workspace_name=data.workspace_name,
        )
        return await start_session(runtime, account, workspace, HTTP_201_CREATED)

    @post("/login")
    async def log_in(
        self,
        request: Request[Any, Any, Any],
        data: LogInIn,
        accounts: AccountService,
        runtime: Runtime,
    ) -> Response[SessionOut]:
        """Start a session; throttled per IP and per email."""
        account = await accounts.log_in(data.email, data.password, ip=client_ip(request))
        workspaces = await accounts.workspaces.user_workspaces(account.id)
        workspace = await accounts.workspaces.by_slug(workspaces[0][0]) if workspaces else None
        return await start_session(runtime, account, workspace, 200)

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def log_out(self, principal: Principal, runtime: Runtime) -> Response[None]:
        """End the session."""
        if principal.session_id is None:
            raise NotAuthenticatedError("not logged in")
        await runtime.sessions.delete(principal.session_id)
        return Response(
            None,
            status_code=HTTP_204_NO_CONTENT,
            cookies=[session_cookie("", secure=runtime.settings.cookie_secure, max_age=0)],
        )


class ApiKeyController(Controller):
    """API keys of the current workspace (owners and admins)."""

    path = "/api/v1/api-keys"
    tags = ["api keys"]

    @get("/")
    async def list_keys(self, tenant: TenantContext, api_keys: ApiKeyService) -> list[ApiKeyOut]:
        """Keys, newest first."""
        return [ApiKeyOut(**row) for row in await api_keys.list(tenant)]

    @post("/", status_code=HTTP_201_CREATED)
    async def create_key(
        self, tenant: TenantContext, api_keys: ApiKeyService, data: ApiKeyIn
    ) -> ApiKeyCreated:
        """Create a key; the response carries it once."""
        row, key = await api_keys.create(tenant, data.name, data.scopes)
        return ApiKeyCreated(api_key=ApiKeyOut(**row), key=key)

    @delete("/{key_id:str}")
    async def revoke_key(self, tenant: TenantContext, api_keys: ApiKeyService, key_id: str) -> None:
        """Revoke a key."""
        await api_keys.revoke(tenant, parse_id(key_id, "API key"))
