"""Roles and scopes: what each member role and each API key may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member's role in a workspace."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Scope(StrEnum):
    """A permission, granted to roles and to API keys."""

    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    COMPANIES_READ = "companies:read"
    COMPANIES_WRITE = "companies:write"
    DEALS_READ = "deals:read"
    DEALS_WRITE = "deals:write"
    ACTIVITIES_READ = "activities:read"
    ACTIVITIES_WRITE = "activities:write"
    PIPELINES_WRITE = "pipelines:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    API_KEYS_WRITE = "api_keys:write"
    WEBHOOKS_WRITE = "webhooks:write"
    CUSTOM_FIELDS_WRITE = "custom_fields:write"
    """Define, change and remove custom fields (owners and admins; not for API keys)."""
    AUDIT_READ = "audit:read"
    """Read the workspace's audit log (owners and admins; API keys given it)."""
    PLUGINS_WRITE = "plugins:write"
    """Browse the marketplace, enable, configure and remove plugins (owners and admins)."""


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(Scope),
    Role.ADMIN: frozenset(Scope),  # includes webhooks:write: endpoints are admin-only
    Role.MEMBER: frozenset(
        {
            Scope.CONTACTS_READ,
            Scope.CONTACTS_WRITE,
            Scope.COMPANIES_READ,
            Scope.COMPANIES_WRITE,
            Scope.DEALS_READ,
            Scope.DEALS_WRITE,
            Scope.ACTIVITIES_READ,
            Scope.ACTIVITIES_WRITE,
            Scope.MEMBERS_READ,
        }
    ),
    Role.VIEWER: frozenset(
        {
            Scope.CONTACTS_READ,
            Scope.COMPANIES_READ,
            Scope.DEALS_READ,
            Scope.ACTIVITIES_READ,
            Scope.MEMBERS_READ,
        }
    ),
}

API_KEY_SCOPES: tuple[Scope, ...] = (
    Scope.CONTACTS_READ,
    Scope.CONTACTS_WRITE,
    Scope.COMPANIES_READ,
    Scope.COMPANIES_WRITE,
    Scope.DEALS_READ,
    Scope.DEALS_WRITE,
    Scope.ACTIVITIES_READ,
    Scope.ACTIVITIES_WRITE,
    Scope.MEMBERS_READ,
    Scope.AUDIT_READ,
)
"""Scopes an API key may carry (managing members and keys needs a person).

Not ``webhooks:write`` either: an endpoint receives every event it subscribes to,
so a key allowed to register one would turn a narrow ``contacts:read`` key into a
feed of all the workspace's changes.
"""

INVITABLE_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.MEMBER, Role.VIEWER)
