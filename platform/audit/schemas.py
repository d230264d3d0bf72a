"""Audit log output shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AuditEntryOut(msgspec.Struct, kw_only=True):
    """One audit entry as the API returns it."""

    id: UUID
    occurred_at: datetime
    action: str
    """create, update, delete, merge, import, export or erase."""
    record_type: str
    record_id: UUID | None
    record_label: str
    """What the record was called when it changed (empty once erased)."""
    actor_type: str
    """user, api_key or system."""
    actor_id: UUID | None
    """The user's id or the API key's id."""
    actor_display: str
    ip: str | None
    changes: dict[str, Any]
    """``{field: {"before": …, "after": …}}`` for each field that changed."""
    details: dict[str, Any]
    erased: bool


class AuditPage(msgspec.Struct, kw_only=True):
    """One page of entries, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[AuditEntryOut]
    next_cursor: str | None
