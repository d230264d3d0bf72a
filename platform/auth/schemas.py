"""Account and API key shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta


class SignUpIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sign-up: a user and their new workspace."""

    email: Annotated[str, Meta(max_length=320)]
    password: Annotated[str, Meta(max_length=200)]
    workspace_name: Annotated[str, Meta(max_length=200)]
    name: Annotated[str, Meta(max_length=200)] = ""


class LogInIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Credentials."""

    email: Annotated[str, Meta(max_length=320)]
    password: Annotated[str, Meta(max_length=200)]


class WorkspaceOut(msgspec.Struct, kw_only=True):
    """A workspace."""

    id: UUID
    slug: str
    name: str
    plan: str


class UserOut(msgspec.Struct, kw_only=True):
    """A user."""

    id: UUID
    email: str
    name: str


class SessionOut(msgspec.Struct, kw_only=True):
    """A started session: send ``csrf_token`` as ``X-CSRF-Token`` on unsafe requests."""

    user: UserOut
    workspace: WorkspaceOut | None
    csrf_token: str


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new API key."""

    name: Annotated[str, Meta(max_length=100)]
    scopes: Annotated[list[str], Meta(max_length=10)]


class ApiKeyOut(msgspec.Struct, kw_only=True):
    """An API key as listed (never its secret)."""

    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    """A new key; ``key`` is shown this once."""

    api_key: ApiKeyOut
    key: str
