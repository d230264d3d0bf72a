"""Plugin settings of type ``secret``: encrypted at rest with a key derived from ORBIT_SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``; the key is derived with
HKDF under its own label, so it never equals the key that signs sessions.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretsUnreadableError(RuntimeError):
    """Stored secrets that this key cannot decrypt (ORBIT_SECRET_KEY changed)."""


class SettingsCipher:
    """Encrypts a plugin's secret settings (a JSON object) for one Orbit installation."""

    def __init__(self, secret_key: str) -> None:
        raw = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"orbit plugin settings v1"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, secrets: dict[str, Any]) -> bytes:
        """The ciphertext of ``secrets``."""
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode())

    def decrypt(self, token: bytes) -> dict[str, Any]:
        """The secrets in ``token``."""
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(bytes(token)))
        except InvalidToken as exc:
            raise SecretsUnreadableError(
                "plugin secrets cannot be decrypted: ORBIT_SECRET_KEY differs from the one "
                "they were saved with; enter them again"
            ) from exc
        return value
