"""Bad input as a 400 naming each field, in the shape Orbit's own API answers with."""

from __future__ import annotations

from litestar.exceptions import NotFoundException, ValidationException


class Problems:
    """Collects what is wrong with one request, then raises all of it at once."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        """Note a problem with ``field`` (the first one per field is kept)."""
        self.fields.setdefault(field, message)

    def raise_any(self) -> None:
        """Raise a 400 listing every problem, when there is one."""
        if self.fields:
            raise invalid(self.fields)


def invalid(fields: dict[str, str]) -> ValidationException:
    """A 400 whose ``extra`` names each field and says what is wrong with it."""
    detail = "; ".join(f"{key}: {message}" for key, message in fields.items())
    return ValidationException(
        detail, extra=[{"key": key, "message": message} for key, message in fields.items()]
    )


def not_found(what: str, ident: object) -> NotFoundException:
    """A 404 saying which record this workspace does not have."""
    return NotFoundException(f"{what} {ident} not found in this workspace")
