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
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    API_KEYS_WRITE = "api_keys:write"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(Scope),
    Role.ADMIN: frozenset(Scope),
    Role.MEMBER: frozenset({Scope.CONTACTS_READ, Scope.CONTACTS_WRITE, Scope.MEMBERS_READ}),
    Role.VIEWER: frozenset({Scope.CONTACTS_READ, Scope.MEMBERS_READ}),
}

API_KEY_SCOPES: tuple[Scope, ...] = (Scope.CONTACTS_READ, Scope.CONTACTS_WRITE, Scope.MEMBERS_READ)
"""Scopes an API key may carry (managing members and keys needs a person)."""

INVITABLE_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.MEMBER, Role.VIEWER)
