"""Errors a user can act on. Services raise them; the app maps them to 4xx responses."""

from __future__ import annotations


class OrbitError(Exception):
    """Base of the errors that become a 4xx response."""

    status_code = 400

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        """Field name → what is wrong with it."""


class InvalidInputError(OrbitError):
    """Input that passed parsing but breaks a rule (an invalid email, an empty name)."""

    status_code = 400


class NotAuthenticatedError(OrbitError):
    """No valid session or API key (expired session, revoked key)."""

    status_code = 401


class PermissionDeniedError(OrbitError):
    """The principal lacks the role or scope for this action."""

    status_code = 403


class PaymentRequiredError(OrbitError):
    """The plan or the subscription's status does not allow this (a seat limit, read-only)."""

    status_code = 402


class NotFoundError(OrbitError):
    """Not found in this workspace (also what another workspace's id gets)."""

    status_code = 404


class ConflictError(OrbitError):
    """The change clashes with existing data (an email already registered)."""

    status_code = 409


class RateLimitedError(OrbitError):
    """Too many attempts; ``retry_after`` says how many seconds to wait."""

    status_code = 429

    def __init__(
        self, message: str, *, retry_after: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers or {"Retry-After": str(retry_after)}
        """Response headers: ``Retry-After``, and the RateLimit fields for API limits."""
