"""Errors the projects API answers with: 4xx that name the field or the clash."""

from __future__ import annotations

from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY


def invalid(field: str, message: str) -> ValidationException:
    """A 422 naming ``field``."""
    return ValidationException(
        detail=f"{field}: {message}",
        extra=[{"key": field, "message": message}],
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
    )


def conflict(message: str) -> ClientException:
    """A 409: the change clashes with the current state (a stale version, a lock)."""
    return ClientException(detail=message, status_code=HTTP_409_CONFLICT)


def not_found(what: str, ident: object) -> NotFoundException:
    """A 404 for ``what`` (also what another workspace's id gets)."""
    return NotFoundException(detail=f"{what} {ident} not found in this workspace")
