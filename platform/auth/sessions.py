"""Server-side sessions in Redis; the cookie carries only a random id."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from redis.asyncio import Redis

COOKIE_NAME = "orbit_session"
CSRF_HEADER = "x-csrf-token"
TTL_SECONDS = 14 * 24 * 3600
_PREFIX = "orbit:session:"
_MAX_ID_LENGTH = 100


@dataclass(slots=True)
class Session:
    """One logged-in browser."""

    id: str
    user_id: UUID
    csrf_token: str
    tenant_slug: str | None
    """The workspace the JSON API acts in for this session (the last one opened)."""
    time_zone: str = "UTC"
    """The user's IANA time zone, for showing times and finding "today"."""


class SessionStore:
    """Creates, reads, updates and deletes sessions; each read slides the expiry."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def create(
        self, user_id: UUID, tenant_slug: str | None, time_zone: str = "UTC"
    ) -> Session:
        """Start a session for ``user_id``."""
        session = Session(
            id=secrets.token_urlsafe(32),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            tenant_slug=tenant_slug,
            time_zone=time_zone,
        )
        await self.save(session)
        return session

    async def save(self, session: Session) -> None:
        """Store ``session`` with a fresh expiry."""
        data = asdict(session)
        data["user_id"] = str(session.user_id)
        await self.redis.set(_PREFIX + session.id, json.dumps(data), ex=TTL_SECONDS)

    async def load(self, session_id: str) -> Session | None:
        """The session with this id, or ``None`` when unknown or expired."""
        if not session_id or len(session_id) > _MAX_ID_LENGTH:
            return None
        raw = await self.redis.getex(_PREFIX + session_id, ex=TTL_SECONDS)
        if raw is None:
            return None
        data = json.loads(raw)
        return Session(
            id=data["id"],
            user_id=UUID(data["user_id"]),
            csrf_token=data["csrf_token"],
            tenant_slug=data.get("tenant_slug"),
            time_zone=data.get("time_zone", "UTC"),
        )

    async def delete(self, session_id: str) -> None:
        """End a session (logout)."""
        await self.redis.delete(_PREFIX + session_id)
