"""Outgoing webhooks: the admin's endpoints, their attempts log and redelivery (no HTTP here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET

from orbit.platform import validation
from orbit.platform.audit.log import Action, record
from orbit.platform.errors import InvalidInputError, NotFoundError
from orbit.platform.events.outbox import EVENT_TYPES, is_plugin_event_type
from orbit.platform.events.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPatch,
)
from orbit.platform.events.signing import new_secret
from orbit.platform.ids import new_id
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    import builtins
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

MAX_URL = 2000
MAX_ENDPOINTS = 50
"""Endpoints per workspace: each event fans out to every matching one."""
MAX_ATTEMPTS_PAGE = 200
_COLUMNS = "id, url, description, event_types, active, created_at, updated_at"


def webhook_url(value: str, field: str = "url") -> str:
    """``value`` trimmed, or a 400 naming ``field`` unless it is an absolute http(s) URL."""
    candidate = validation.no_control_characters(value, field).strip()
    if not candidate:
        raise InvalidInputError(f"{field} is required", fields={field: "is required"})
    if len(candidate) > MAX_URL:
        reason = f"must be at most {MAX_URL} characters"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    try:
        parts = urlsplit(candidate)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in {"http", "https"} or not host:
        reason = f"{candidate[:100]!r} is not an http:// or https:// URL"
        raise InvalidInputError(f"{field}: {reason}", fields={field: reason})
    if parts.username or parts.password:
        reason = "must not contain a user name or password; verify the signature instead"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return parts.scheme.lower() + candidate[len(parts.scheme) :]


def event_types(values: list[str], field: str = "events") -> list[str]:
    """The event types, de-duplicated in order; a 400 naming ``field`` for an unknown one.

    Orbit's own types, or a plugin's ``<plugin id>.<name>`` (its manifest's ``emits``).
    """
    unknown = [v for v in values if v not in EVENT_TYPES and not is_plugin_event_type(v)]
    if unknown:
        reason = (
            f"unknown event type {unknown[0][:64]!r}; choose from {', '.join(sorted(EVENT_TYPES))}"
            " or a plugin's <plugin id>.<name>"
        )
        raise InvalidInputError(f"{field}: {reason}", fields={field: reason})
    if not values:
        reason = "choose at least one event type"
        raise InvalidInputError(f"{field}: {reason}", fields={field: reason})
    return list(dict.fromkeys(values))


async def _audit(
    db: Database,
    tenant: TenantContext,
    action: Action,
    before: WebhookOut | None,
    after: WebhookOut | None,
) -> None:
    """Record an endpoint's creation, change or removal (never its secret)."""
    endpoint = after or before
    assert endpoint is not None  # noqa: S101 - one of the two always exists
    await record(
        db,
        tenant,
        action,
        "webhook_endpoint",
        endpoint.id,
        label=endpoint.url,
        before=msgspec.to_builtins(before) if before else None,
        after=msgspec.to_builtins(after) if after else None,
    )


def _out(row: Any) -> WebhookOut:
    return WebhookOut(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        events=list(row["event_types"]),
        active=row["active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class WebhookService:
    """Endpoints, attempts and redelivery, always within the caller's workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, tenant: TenantContext, data: WebhookCreate) -> WebhookCreated:
        """Register an endpoint; the returned secret is shown this once."""
        tenant.require(Scope.WEBHOOKS_WRITE)
        url = webhook_url(data.url)
        types = event_types(data.events)
        description = validation.text(data.description, "description", max_length=200)
        count = await self.db.fetchval(
            "SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1", tenant.tenant_id
        )
        if count >= MAX_ENDPOINTS:
            raise InvalidInputError(
                f"a workspace may have at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
            )
        secret = new_secret()
        row = await self.db.fetchrow(
            f"""
            INSERT INTO webhook_endpoints
                (tenant_id, id, url, description, event_types, secret, active)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {_COLUMNS}
            """,
            tenant.tenant_id,
            new_id(),
            url,
            description,
            types,
            secret,
            data.active,
        )
        out = _out(row)
        await _audit(self.db, tenant, "create", None, out)
        return WebhookCreated(**{f: getattr(out, f) for f in out.__struct_fields__}, secret=secret)

    async def list(self, tenant: TenantContext) -> builtins.list[WebhookOut]:
        """Every endpoint of the workspace, oldest first."""
        tenant.require(Scope.WEBHOOKS_WRITE)
        rows = await self.db.fetch(
            f"""
            SELECT {_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id
            """,
            tenant.tenant_id,
        )
        return [_out(row) for row in rows]

    async def get(self, tenant: TenantContext, endpoint_id: UUID) -> WebhookOut:
        """One endpoint; 404 when it is not in this workspace."""
        tenant.require(Scope.WEBHOOKS_WRITE)
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
            tenant.tenant_id,
            endpoint_id,
        )
        if row is None:
            raise NotFoundError(f"webhook {endpoint_id} not found in this workspace")
        return _out(row)

    async def update(
        self, tenant: TenantContext, endpoint_id: UUID, data: WebhookPatch
    ) -> WebhookOut:
        """Change the URL, the event types, the description or the active flag."""
        current = await self.get(tenant, endpoint_id)
        url = current.url if data.url is UNSET else webhook_url(data.url)
        types = current.events if data.events is UNSET else event_types(data.events)
        description = (
            current.description
            if data.description is UNSET
            else validation.text(data.description, "description", max_length=200)
        )
        active = current.active if data.active is UNSET else data.active
        row = await self.db.fetchrow(
            f"""
            UPDATE webhook_endpoints
            SET url = $3, event_types = $4, description = $5, active = $6, updated_at = now()
            WHERE tenant_id = $1 AND id = $2
            RETURNING {_COLUMNS}
            """,
            tenant.tenant_id,
            endpoint_id,
            url,
            types,
            description,
            active,
        )
        updated = _out(row)
        await _audit(self.db, tenant, "update", current, updated)
        return updated

    async def delete(self, tenant: TenantContext, endpoint_id: UUID) -> None:
        """Remove an endpoint with its pending deliveries and its attempts log."""
        tenant.require(Scope.WEBHOOKS_WRITE)
        row = await self.db.fetchrow(
            f"DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2 RETURNING {_COLUMNS}",
            tenant.tenant_id,
            endpoint_id,
        )
        if row is None:
            raise NotFoundError(f"webhook {endpoint_id} not found in this workspace")
        await _audit(self.db, tenant, "delete", _out(row), None)

    async def attempts(
        self, tenant: TenantContext, endpoint_id: UUID, *, limit: int = 50
    ) -> builtins.list[AttemptOut]:
        """The endpoint's delivery attempts, newest first."""
        await self.get(tenant, endpoint_id)
        rows = await self.db.fetch(
            """
            SELECT a.id, a.event_id, e.type AS event_type, a.attempt, a.status_code, a.error,
                   a.duration_ms, a.attempted_at, d.status AS delivery_status
            FROM webhook_attempts a
            JOIN webhook_deliveries d ON d.tenant_id = a.tenant_id AND d.id = a.delivery_id
            JOIN outbox_events e ON e.tenant_id = a.tenant_id AND e.id = a.event_id
            WHERE a.tenant_id = $1 AND a.endpoint_id = $2
            ORDER BY a.attempted_at DESC, a.id DESC
            LIMIT $3
            """,
            tenant.tenant_id,
            endpoint_id,
            max(1, min(limit, MAX_ATTEMPTS_PAGE)),
        )
        return [
            AttemptOut(
                id=row["id"],
                event_id=row["event_id"],
                event_type=row["event_type"],
                attempt=row["attempt"],
                status_code=row["status_code"],
                error=row["error"],
                duration_ms=row["duration_ms"],
                attempted_at=row["attempted_at"],
                delivery_status=row["delivery_status"],
            )
            for row in rows
        ]

    async def redeliver(
        self, tenant: TenantContext, endpoint_id: UUID, event_id: UUID
    ) -> DeliveryOut:
        """Send ``event_id`` to the endpoint again now, with a fresh 24-hour retry window."""
        await self.get(tenant, endpoint_id)
        exists = await self.db.fetchval(
            "SELECT true FROM outbox_events WHERE tenant_id = $1 AND id = $2",
            tenant.tenant_id,
            event_id,
        )
        if not exists:
            raise NotFoundError(f"event {event_id} not found in this workspace")
        row = await self.db.fetchrow(
            """
            INSERT INTO webhook_deliveries (tenant_id, id, event_id, endpoint_id)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, event_id, endpoint_id) DO UPDATE
            SET status = 'pending', next_attempt_at = now(), started_at = now(),
                updated_at = now()
            RETURNING id, event_id, endpoint_id, status, attempts, next_attempt_at
            """,
            tenant.tenant_id,
            new_id(),
            event_id,
            endpoint_id,
        )
        assert row is not None  # noqa: S101 - INSERT … RETURNING always returns the row
        return DeliveryOut(
            id=row["id"],
            event_id=row["event_id"],
            endpoint_id=row["endpoint_id"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
        )
