"""Webhook signatures: ``Orbit-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>``.

The timestamp (Unix seconds, also sent as ``Orbit-Timestamp``) is signed with the
body so a receiver can refuse replays older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that marks secrets, not a secret
DEFAULT_TOLERANCE = 300
"""Seconds a receiver should accept between ``Orbit-Timestamp`` and its own clock."""


def new_secret() -> str:
    """A fresh endpoint secret (shown to the admin once)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Orbit-Signature`` header value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: str,
    header: str,
    timestamp: int,
    body: bytes,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` and ``timestamp`` is recent enough."""
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    # A header may carry several signatures (during a secret rotation), comma-separated.
    return any(
        hmac.compare_digest(candidate.strip().encode(), expected.encode())
        for candidate in header.split(",")
    )
