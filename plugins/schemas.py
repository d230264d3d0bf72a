"""Request bodies of the marketplace API."""

from __future__ import annotations

from typing import Any

import msgspec


class EnableRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Enable a plugin: the admin consents to exactly the scopes it asks for."""

    scopes: list[str] = msgspec.field(default_factory=list)
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class SettingsRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """New settings; a blank secret keeps the saved one."""

    settings: dict[str, Any]
