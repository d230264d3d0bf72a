"""API keys: created by admins with scopes, shown once, stored hashed, revocable.

A key reads ``orbit_<prefix>_<secret>``: the prefix finds the row, the SHA-256
of the secret must match (keys are random, so a fast hash is enough).
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.auth.models import ApiKey
from orbit.platform.errors import InvalidInputError, NotAuthenticatedError, NotFoundError
from orbit.platform.ids import new_id
from orbit.tenants.roles import API_KEY_SCOPES, Scope
from orbit.tenants.service import token_hash

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

_KEY_RE = re.compile(r"^orbit_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    """A valid key: its workspace and scopes."""

    tenant_id: UUID
    key_id: UUID
    scopes: frozenset[Scope]
    workspace: Any = None
    """The workspace's row: slug, name, plan, subscription_status, past_due_since,
    api_requests_per_minute."""


_KEY_AND_WORKSPACE = """
    SELECT k.id, k.tenant_id, k.secret_hash, k.revoked_at, k.scopes,
           set_config('app.tenant_id', k.tenant_id::text, true),
           t.slug, t.name, t.plan, t.subscription_status, t.past_due_since,
           t.api_requests_per_minute
    FROM orbit_api_key_by_prefix($1) k JOIN tenants t ON t.id = k.tenant_id
"""


def _scopes(requested: list[str]) -> list[str]:
    allowed = {s.value for s in API_KEY_SCOPES}
    unknown = [s for s in requested if s not in allowed]
    if unknown or not requested:
        reason = (
            f"unknown scope {', '.join(map(repr, unknown))}; "
            if unknown
            else "at least one scope; "
        ) + f"choose from {', '.join(sorted(allowed))}"
        raise InvalidInputError(f"scopes: {reason}", fields={"scopes": reason})
    return sorted(set(requested))


class ApiKeyService:
    """Workspace API keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, ctx: TenantContext, name: str, scopes: list[str]
    ) -> tuple[dict[str, Any], str]:
        """Create a key; returns its row and the full key, which is never shown again."""
        ctx.require(Scope.API_KEYS_WRITE)
        name = validation.text(name, "name", max_length=100, required=True)
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(30)
        key = ApiKey(
            tenant_id=ctx.tenant_id,
            id=new_id(),
            name=name,
            prefix=prefix,
            secret_hash=token_hash(secret),
            scopes=_scopes(scopes),
            created_by=ctx.membership_id,
            created_at=datetime.now(UTC),
        )
        await ApiKey.insert(key)
        public = _public(key.to_dict())
        after = {k: public[k] for k in ("name", "prefix", "scopes")}
        await record(self.db, ctx, "create", "api_key", key.id, label=name, after=after)
        return public, f"orbit_{prefix}_{secret}"

    async def list(self, ctx: TenantContext) -> list[dict[str, Any]]:
        """The workspace's keys (revoked ones too), newest first; never the secret."""
        ctx.require(Scope.API_KEYS_WRITE)
        rows = await (
            ApiKey.select()
            .where(ApiKey.tenant_id == ctx.tenant_id)
            .order_by(ApiKey.created_at, ascending=False)
        )
        return [_public(row) for row in rows]

    async def revoke(self, ctx: TenantContext, key_id: UUID) -> None:
        """Revoke a key; requests with it get 401 from now on."""
        ctx.require(Scope.API_KEYS_WRITE)
        revoked = await self.db.fetchrow(
            """
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
            WHERE tenant_id = $1 AND id = $2 RETURNING name, scopes
            """,
            ctx.tenant_id,
            key_id,
        )
        if revoked is None:
            raise NotFoundError(f"API key {key_id} not found in this workspace")
        before = {"name": revoked["name"], "scopes": list(revoked["scopes"])}
        await record(
            self.db, ctx, "delete", "api_key", key_id, label=revoked["name"], before=before
        )

    async def authenticate(self, presented: str) -> AuthenticatedKey:
        """Check a presented key; 401 naming why when it is malformed, unknown or revoked.

        In the same round trip the transaction is scoped to the key's workspace and the
        workspace's row read (``AuthenticatedKey.workspace``: slug, name, plan,
        subscription and rate); a key that fails the check leaves the scope cleared.
        """
        match = _KEY_RE.match(presented)
        if match is None:
            raise NotAuthenticatedError("malformed API key; expected orbit_<prefix>_<secret>")
        prefix, secret = match.groups()
        row = await self.db.fetchrow(_KEY_AND_WORKSPACE, prefix)
        if row is None:
            raise NotAuthenticatedError("unknown API key")
        problem = None
        if not hmac.compare_digest(row["secret_hash"], token_hash(secret)):
            problem = "unknown API key"
        elif row["revoked_at"] is not None:
            problem = "this API key has been revoked"
        if problem is not None:
            await self.db.clear_tenant()
            raise NotAuthenticatedError(problem)
        return AuthenticatedKey(
            tenant_id=row["tenant_id"],
            key_id=row["id"],
            scopes=frozenset(Scope(s) for s in row["scopes"]),
            workspace=row,
        )

    async def touch(self, tenant_id: UUID, key_id: UUID) -> None:
        """Record use (at most once a minute per key, to keep requests read-only).

        This process remembers when it last recorded each key, so most requests skip
        the round trip; other processes record their own, at most once a minute too.
        """
        now = time.monotonic()
        if now - _TOUCHED.get(key_id, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        if len(_TOUCHED) > MAX_TOUCHED:
            _TOUCHED.clear()
        _TOUCHED[key_id] = now
        await self.db.execute(
            """
            UPDATE api_keys SET last_used_at = now()
            WHERE tenant_id = $1 AND id = $2
              AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
            """,
            tenant_id,
            key_id,
        )


TOUCH_EVERY = 60.0
MAX_TOUCHED = 100_000
_TOUCHED: dict[UUID, float] = {}
"""Key id → when this process last recorded its use (``time.monotonic``)."""


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": f"orbit_{row['prefix']}_…",
        "scopes": list(row["scopes"]),
        "created_at": row["created_at"],
        "last_used_at": row["last_used_at"],
        "revoked_at": row["revoked_at"],
    }
