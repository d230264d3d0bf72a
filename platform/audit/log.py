"""Writing the audit log: :func:`record` inside the transaction that makes the change.

Every service that creates, changes or deletes something a workspace cares about
calls :func:`record` right after its write, in the same transaction, so an entry
commits or rolls back with the change it describes. The entry names the actor (a
user or an API key, with how they were called at the time), the client's IP, the
record, and for updates each changed field's value before and after.

Later features use the same function: a merge (``action="merge"``, the merged ids
in ``details``), an import or export (``details`` with counts), and erasing a
person (:func:`erase_subject` scrubs their entries to tombstones).
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from orbit.platform.ids import new_id

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

Action = Literal["create", "update", "delete", "merge", "import", "export", "erase"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "merge", "import", "export", "erase")

RECORD_TYPES: tuple[str, ...] = (
    "contact",
    "company",
    "deal",
    "activity",
    "task",
    "custom_field",
    "member",
    "invitation",
    "api_key",
    "team",
    "visibility",
    "webhook_endpoint",
    "plugin",
    "pipeline",
)
"""What an entry can be about; the audit filters accept exactly these."""

OWNED_TABLES = {"contact": "contacts", "company": "companies", "deal": "deals"}
"""Record types under record visibility (each has an ``owner_id``) and their tables."""

_NOT_DIFFED = frozenset({"id", "created_at", "updated_at", "search_text"})
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _plain(value: Any) -> Any:
    """``value`` as JSON would store it (UUIDs, times and decimals as strings)."""
    return json.loads(json.dumps(value, default=str))


def _flatten(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fields of a record; custom values become ``custom.<key>`` fields of their own."""
    flat: dict[str, Any] = {}
    for key, value in _plain(dict(values or {})).items():
        if key in _NOT_DIFFED:
            continue
        if key == "custom" and isinstance(value, dict):
            flat.update({f"custom.{name}": item for name, item in value.items()})
        else:
            flat[key] = value
    return flat


def diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Each field that differs: ``{field: {"before": old, "after": new}}``.

    ``before=None`` describes a creation (every non-empty field), ``after=None`` a
    deletion. Empty values (``None``, ``""``, ``[]``, ``{}``) count as equal.
    """
    old, new = _flatten(before), _flatten(after)
    changes: dict[str, dict[str, Any]] = {}
    for field in sorted(old.keys() | new.keys()):
        was, now = old.get(field), new.get(field)
        if was == now or (was in _EMPTY and now in _EMPTY):
            continue
        changes[field] = {"before": was, "after": now}
    return changes


def _ip(value: str | None) -> str | None:
    """The client address when it is one (test clients and sockets may say otherwise)."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


async def record(
    db: Database,
    ctx: TenantContext,
    action: Action,
    record_type: str,
    record_id: UUID | None,
    *,
    label: str = "",
    owner_id: UUID | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    changes: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> UUID | None:
    """Write one audit entry in the current transaction; returns its id.

    ``changes`` defaults to :func:`diff` of ``before`` and ``after`` (pass the
    record as the API shows it). An update that changed nothing writes nothing
    (returns ``None``). ``owner_id`` is the record's owner, so readers restricted
    by record visibility only see entries of records they may see.
    """
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unknown audit record type {record_type!r}")
    found = dict(changes) if changes is not None else diff(before, after)
    if action == "update" and not found and not details:
        return None
    if ctx.api_key_id is not None:
        actor_type, actor_id = "api_key", ctx.api_key_id
    elif ctx.user_id is not None:
        actor_type, actor_id = "user", ctx.user_id
    else:  # a job, the CLI or a plugin (named in actor_display)
        actor_type, actor_id = "system", None
    entry_id = new_id()
    # The actor's name is copied into the entry: the log still says who it was after
    # the user renames themself, leaves, or the key is revoked.
    await db.execute(
        """
        INSERT INTO audit_entries (tenant_id, id, occurred_at, action, record_type, record_id,
                                   record_label, owner_id, actor_type, actor_id, actor_display,
                                   ip, changes, details)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::varchar, $10,
                coalesce(
                    CASE $9::varchar
                    WHEN 'user' THEN (SELECT CASE WHEN u.name <> '' THEN u.name || ' <' || u.email
                                      || '>' ELSE u.email END FROM users u WHERE u.id = $10)
                    WHEN 'api_key' THEN (SELECT 'API key ' || k.name FROM api_keys k
                                         WHERE k.tenant_id = $1 AND k.id = $10)
                    END, $14, ''),
                $11::inet, $12::jsonb, $13::jsonb)
        """,
        ctx.tenant_id,
        entry_id,
        datetime.now(UTC),
        action,
        record_type,
        record_id,
        label[:300],
        owner_id,
        actor_type,
        actor_id,
        _ip(ctx.client_ip),
        json.dumps(found, default=str),
        json.dumps(dict(details or {}), default=str),
        f"plugin {ctx.plugin_id}" if ctx.plugin_id else None,
    )
    return entry_id


async def erase_subject(db: Database, ctx: TenantContext, record_type: str, record_id: UUID) -> int:
    """Scrub every entry about one record to a tombstone; returns how many were scrubbed.

    For erasing a person (a subject access "forget me"): the entries keep when, who
    and what kind of change, so the log stays continuous, but lose the record's
    name and every value. The erasure itself is recorded as an ``erase`` entry.
    """
    scrubbed = await db.fetchval(
        """
        WITH scrubbed AS (
            UPDATE audit_entries SET record_label = '', changes = '{}', details = '{}',
                erased_at = now()
            WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3 AND erased_at IS NULL
            RETURNING 1
        )
        SELECT count(*) FROM scrubbed
        """,
        ctx.tenant_id,
        record_type,
        record_id,
    )
    await record(
        db, ctx, "erase", record_type, record_id, changes={}, details={"entries_scrubbed": scrubbed}
    )
    return int(scrubbed)
