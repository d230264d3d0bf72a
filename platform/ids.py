"""Identifiers: time-ordered UUIDv7 from Python (works on PostgreSQL 15 and 18 alike)."""

from __future__ import annotations

from uuid import UUID

from uuid_utils.compat import uuid7


def new_id() -> UUID:
    """A new time-ordered id; inserts stay index-local."""
    return uuid7()


def parse_id(value: str, what: str) -> UUID:
    """Parse ``value`` as an id, or raise a 404 naming ``what`` (a malformed id names nothing)."""
    from orbit.platform.errors import NotFoundError  # noqa: PLC0415

    try:
        return UUID(value)
    except ValueError:
        raise NotFoundError(f"{what} {value!r} not found in this workspace") from None
