"""Signed tokens and absolute links for plugins' public pages (``ctx.sign``, ``ctx.url``).

A token is one URL-safe base64 string (no padding) of::

    version (1 byte) | tenant id (16) | expiry (4, Unix seconds, 0 = never) | data (JSON)
    | HMAC-SHA256 tag (16, truncated)

The tag covers the purpose and every byte before it, under a key derived with HKDF
from ``ORBIT_SECRET_KEY`` for that plugin alone. So a token only verifies for the
plugin that signed it, for the purpose it was signed for, and names the workspace
it belongs to without a way to change it. The purpose is not in the token (it is
what the verifying route expects), which keeps links short: a token carrying one
UUID is about 110 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orbit.platform.errors import OrbitError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

_VERSION = 1
_HEAD = struct.Struct(">B16sI")
_TAG_BYTES = 16
"""128 bits of HMAC-SHA256: far beyond guessing, and 22 characters fewer than the whole tag."""
MAX_TOKEN_CHARS = 2000
"""Longer strings are refused before decoding (links in emails stay well below)."""
PURPOSE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""What a purpose may be: a short name such as ``unsubscribe`` or ``quote.accept``."""


class TokenError(OrbitError):
    """A token that is not valid here: forged, altered, another plugin's, purpose or workspace.

    Public routes answer it with a 404, as if the link did not exist.
    """

    status_code = 404


class TokenExpiredError(TokenError):
    """A genuine token past its expiry (a 410: the link was real, it is too old now)."""

    status_code = 410


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _purpose(purpose: str) -> bytes:
    if not PURPOSE.fullmatch(purpose):
        raise ValueError(
            f"token purpose {purpose!r} must be 1-64 letters, digits or '_.:-' (e.g. 'unsubscribe')"
        )
    return purpose.encode("ascii")


class PluginLinks:
    """Signs and verifies plugins' tokens and builds absolute links, for one Orbit installation."""

    def __init__(
        self, secret_key: str, public_url: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret_key.encode()
        self.clock = clock
        """Unix seconds now (tests move it)."""
        self.public_url = public_url.rstrip("/")
        """``ORBIT_PUBLIC_URL``: where people reach this Orbit."""
        self._keys: dict[str, bytes] = {}

    def _key(self, plugin_id: str) -> bytes:
        key = self._keys.get(plugin_id)
        if key is None:
            key = self._keys[plugin_id] = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"orbit plugin tokens v1\x00" + plugin_id.encode(),
            ).derive(self._secret)
        return key

    def _tag(self, plugin_id: str, purpose: bytes, body: bytes) -> bytes:
        message = len(purpose).to_bytes(1, "big") + purpose + body
        return hmac.new(self._key(plugin_id), message, hashlib.sha256).digest()[:_TAG_BYTES]

    def sign(
        self,
        plugin_id: str,
        tenant_id: UUID,
        data: dict[str, Any],
        purpose: str,
        max_age: timedelta | None = None,
    ) -> str:
        """A token carrying ``data`` for ``plugin_id`` in ``tenant_id``, for ``purpose``.

        ``data`` is encoded as JSON: it comes back from :meth:`verify` as JSON types
        (a UUID or a datetime as its string). ``max_age`` ``None`` never expires.
        """
        if not isinstance(data, dict):
            raise TypeError(f"token data must be a dict, got {type(data).__name__}")
        expires = 0
        if max_age is not None:
            seconds = max_age.total_seconds()
            if seconds <= 0:
                raise ValueError(f"max_age must be positive, got {max_age}")
            expires = int(self.clock() + seconds) + 1
        body = _HEAD.pack(_VERSION, tenant_id.bytes, expires) + msgspec.json.encode(data)
        return _b64(body + self._tag(plugin_id, _purpose(purpose), body))

    def verify(self, plugin_id: str, token: str, purpose: str) -> tuple[UUID, dict[str, Any]]:
        """The workspace and data of a token ``plugin_id`` signed for ``purpose``.

        Raises :class:`TokenError` for anything not signed exactly so (checked before
        the expiry, so an altered expiry is a forgery), :class:`TokenExpiredError`
        for a genuine token past its expiry.
        """
        wanted = _purpose(purpose)
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("this link is not valid")
        try:
            raw = _unb64(token)
        except (binascii.Error, ValueError):
            raise TokenError("this link is not valid") from None
        if len(raw) < _HEAD.size + _TAG_BYTES:
            raise TokenError("this link is not valid")
        body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(plugin_id, wanted, body)):
            raise TokenError("this link is not valid")
        version, tenant, expires = _HEAD.unpack_from(body)
        if version != _VERSION:
            raise TokenError("this link is not valid")
        if expires and self.clock() >= expires:
            raise TokenExpiredError("this link has expired; ask the sender for a new one")
        data = msgspec.json.decode(body[_HEAD.size :])
        if not isinstance(data, dict):
            raise TokenError("this link is not valid")
        return UUID(bytes=tenant), data

    def url(self, path: str, *, plugin_id: str, tenant_slug: str, public: bool = False) -> str:
        """The absolute URL of a plugin page (``/t/{slug}/apps/{id}…``) or public route."""
        if not path.startswith("/"):
            path = "/" + path
        prefix = f"/p/{plugin_id}" if public else f"/t/{tenant_slug}/apps/{plugin_id}"
        return f"{self.public_url}{prefix}{path}"
