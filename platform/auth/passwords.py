"""Password hashing with Argon2id."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

_hasher = PasswordHasher()

MIN_LENGTH = 10
MAX_LENGTH = 200


async def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``, computed off the event loop (~0.2 s of CPU)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; always does the work of one verification, off the loop."""
    return await asyncio.to_thread(_verify, password_hash, password)


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a miss costs as long as a hit."""
    return _hasher.hash("orbit-dummy-password")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or ``None``."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None
