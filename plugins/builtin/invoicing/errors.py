"""Errors the invoicing routes answer with: 4xx JSON naming the field, like Orbit's own."""

from __future__ import annotations

from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_409_CONFLICT


def invalid(field: str, message: str) -> ValidationException:
    """A 400 about ``field`` (Orbit's error handler puts it in the response's ``fields``)."""
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"key": field, "message": message}]
    )


def not_found(what: str) -> NotFoundException:
    """A 404: ``what`` does not exist in this workspace (nor, for it, in any other)."""
    return NotFoundException(detail=f"{what} not found in this workspace")


def conflict(message: str) -> ClientException:
    """A 409: the request clashes with the record's state (a finalized invoice, say)."""
    return ClientException(detail=message, status_code=HTTP_409_CONFLICT)
