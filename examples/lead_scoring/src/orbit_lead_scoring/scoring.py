"""The scoring rules that need no database: what a contact's profile is worth."""

from __future__ import annotations

from typing import Any

INTERACTIONS = frozenset({"note", "call", "meeting", "email"})
"""Activity kinds that count as an interaction (system entries such as stage moves do not)."""

PROFILE_POINTS = {"email": 10, "phone": 5, "company": 5}
"""Points for each part of a contact's profile that is filled in."""


def _filled(value: Any) -> bool:
    return value is not None and bool(str(value).strip())


def profile_points(contact: dict[str, Any]) -> int:
    """Points for a contact's profile (its event data, or a :class:`Contact`'s fields)."""
    parts = {
        "email": contact.get("email"),
        "phone": contact.get("phone"),
        "company": contact.get("company_id") or contact.get("company_name"),
    }
    return sum(points for part, points in PROFILE_POINTS.items() if _filled(parts[part]))
