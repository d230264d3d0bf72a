"""Who is asking, and in which workspace: the principal every service receives."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID  # noqa: TC003 - Litestar validates injected dataclasses at run time

from orbit.platform.errors import NotAuthenticatedError, PermissionDeniedError
from orbit.tenants.roles import Role, Scope  # noqa: TC001 - as above


@dataclass(frozen=True, slots=True)
class TenantContext:
    """A principal acting inside one workspace (a member's session or an API key)."""

    tenant_id: UUID
    tenant_slug: str
    tenant_name: str
    scopes: frozenset[Scope]
    user_id: UUID | None = None
    membership_id: UUID | None = None
    role: Role | None = None
    api_key_id: UUID | None = None
    read_only: bool = False
    """The subscription is unpaid or canceled: reads work, writes get a 402."""
    billing_banner: str | None = None
    """What the pages tell everyone about the subscription (past due, read-only)."""
    visible_owners: frozenset[UUID] | None = None
    """Owners whose contacts, companies and deals this principal sees; ``None``: all."""
    client_ip: str | None = None
    """The address the request came from (the audit log records it)."""
    api_rate_per_minute: int | None = None
    """API requests a minute this workspace may make (``None``: not limited)."""
    plugin_id: str | None = None
    """The plugin acting through its context's services (the audit log names it)."""

    def require(self, scope: Scope) -> None:
        """Raise 403 unless this principal holds ``scope``."""
        if scope not in self.scopes:
            who = "this API key" if self.api_key_id else f"the {self.role} role"
            raise PermissionDeniedError(f"{who} lacks the {scope} permission")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request; ``tenant`` is set inside a workspace."""

    user_id: UUID | None = None
    session_id: str | None = None
    csrf_token: str | None = None
    tenant: TenantContext | None = None
    time_zone: str = "UTC"
    """The user's time zone (pages show times in it)."""
    session_expired: bool = False
    """A session cookie came but its session is gone (logged out or expired)."""

    @property
    def authenticated(self) -> bool:
        """Whether a user or an API key is behind the request."""
        return self.user_id is not None or (
            self.tenant is not None and self.tenant.api_key_id is not None
        )


ANONYMOUS = Principal()


def require_tenant(principal: Principal) -> TenantContext:
    """The principal's workspace, or a 401 that says what to do."""
    if principal.tenant is not None:
        return principal.tenant
    if principal.session_expired:
        raise NotAuthenticatedError("your session has expired; log in again")
    if principal.user_id is not None:
        raise NotAuthenticatedError("open a workspace first (GET /t/<slug>/) or use an API key")
    raise NotAuthenticatedError("log in or send 'Authorization: Bearer <API key>'")
