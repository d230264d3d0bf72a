"""Field rules shared by the API, the pages and the CLI; each error names its field."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from orbit.platform.errors import InvalidInputError


def email_address(value: str, field: str = "email") -> str:
    """``value`` as a normalised email address, or a 400 naming ``field``."""
    candidate = value.strip()
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
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise InvalidInputError(f"{field} is required", fields={field: "is required"})
    if len(cleaned) > max_length:
        reason = f"must be at most {max_length} characters (got {len(cleaned)})"
        raise InvalidInputError(f"{field} {reason}", fields={field: reason})
    return cleaned


def email_key(email: str) -> str:
    """The case-insensitive form under which an email is unique."""
    return email.strip().casefold()
