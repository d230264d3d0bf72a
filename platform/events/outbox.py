"""Writing domain events: call :func:`emit` inside the transaction that makes the change.

A crash between the commit and the delivery loses nothing: the event row commits
(or rolls back) with the change, and the worker delivers what is committed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orbit.platform.ids import new_id

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database

EVENT_TYPES = frozenset(
    {
        "contact.created",
        "contact.updated",
        "contact.deleted",
        "contact.merged",
        "company.created",
        "company.updated",
        "company.deleted",
        "company.merged",
        "deal.created",
        "deal.updated",
        "deal.deleted",
        "deal.stage_changed",
        "deal.won",
        "deal.lost",
        "task.due",
        "activity.created",
        "plugin.installed",
        "plugin.enabled",
        "plugin.disabled",
        "plugin.uninstalled",
    }
)
"""Every event type Orbit emits; webhook filters choose among these."""

PLUGIN_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,39}(\.[a-z][a-z0-9_]{0,39}){1,2}$")
"""A plugin's own event type: ``<plugin id>.<name>`` (the name may have one more part)."""
MAX_EVENT_TYPE = 64
CORE_EVENT_NAMESPACES = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)
"""``contact``, ``deal``, …: types in these namespaces are Orbit's own."""


def is_plugin_event_type(event_type: str) -> bool:
    """Whether ``event_type`` is shaped as a plugin's own type, outside Orbit's namespaces."""
    return (
        len(event_type) <= MAX_EVENT_TYPE
        and event_type.split(".", 1)[0] not in CORE_EVENT_NAMESPACES
        and PLUGIN_EVENT_TYPE.match(event_type) is not None
    )


async def emit(
    db: Database,
    tenant_id: UUID,
    event_type: str,
    data: dict[str, Any],
    *,
    declared_by_plugin: bool = False,
) -> UUID:
    """Record ``event_type`` with ``data`` (JSON-serialisable) in the current transaction.

    ``declared_by_plugin``: the type is one a plugin declares (its manifest's ``emits``,
    checked by the plugin's context) rather than one of :data:`EVENT_TYPES`.
    """
    known = is_plugin_event_type(event_type) if declared_by_plugin else event_type in EVENT_TYPES
    if not known:
        raise ValueError(f"unknown event type {event_type!r}")
    event_id = new_id()
    await db.execute(
        """
        INSERT INTO outbox_events (tenant_id, id, type, data, occurred_at)
        VALUES ($1, $2, $3, $4::jsonb, $5)
        """,
        tenant_id,
        event_id,
        event_type,
        json.dumps(data, default=str),
        datetime.now(UTC),
    )
    return event_id
