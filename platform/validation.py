"""Field rules shared by the API, the pages and the CLI; each error names its field."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any, TypeVar

from email_validator import EmailNotValidError, validate_email

from orbit.platform.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def no_control_characters(value: str, field: str) -> str:
    """``value`` unchanged, or a 400 naming ``field`` when it holds control characters.

    PostgreSQL cannot store NUL in text at all, and the others only hide text.
    """
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        reason = "must not contain control characters"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return value


def json_without_nul(value: Any, field: str) -> Any:
    """``value`` unchanged, or a 400 naming ``field`` when a key or string holds NUL.

    PostgreSQL's jsonb refuses the NUL character; newlines and tabs are fine in JSON.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            reason = "must not contain the NUL character"
            raise InvalidInputError(f"{field} {reason}", fields={field: reason})
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def email_address(value: str, field: str = "email") -> str:
    """``value`` as a normalised email address, or a 400 naming ``field``."""
    candidate = no_control_characters(value, field).strip()
    if not candidate:
        raise InvalidInputError(f"{field} is required", fields={field: "is required"})
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        reason = f"{candidate!r} is not a valid email address ({exc})"
        raise InvalidInputError(f"{field}: {reason}", fields={field: reason}) from None
    return str(result.normalized)


def text(value: str | None, field: str, *, max_length: int, required: bool = False) -> str:
    """``value`` trimmed; a 400 naming ``field`` when empty but required, or too long."""
    cleaned = no_control_characters(value or "", field).strip()
    if required and not cleaned:
        raise InvalidInputError(f"{field} is required", fields={field: "is required"})
    if len(cleaned) > max_length:
        reason = f"must be at most {max_length} characters (got {len(cleaned)})"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return cleaned


EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def plausible_time(value: Any, field: str) -> Any:
    """``value`` (a date or datetime, or ``None``) unless its year is outside 1900–2999."""
    if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        reason = f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return value


def email_key(email: str) -> str:
    """The case-insensitive form under which an email is unique."""
    return email.strip().casefold()


class FieldProblems:
    """Collects what is wrong with each field, so one 400 can name them all."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def check(self, rule: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``rule(*args, **kwargs)``, or ``None`` with its problem noted."""
        try:
            return rule(*args, **kwargs)
        except InvalidInputError as exc:
            self.fields.update(exc.fields)
            return None

    def add(self, field: str, reason: str) -> None:
        """Note a problem found by hand."""
        self.fields.setdefault(field, reason)

    def raise_any(self) -> None:
        """Raise one 400 naming every field noted so far."""
        if self.fields:
            summary = "; ".join(f"{field}: {reason}" for field, reason in self.fields.items())
            raise InvalidInputError(summary, fields=self.fields)
