"""Throttling of logins (per IP and per email) and sign-ups (per IP), counted in Redis.

Every attempt is counted *before* the password is checked, with an atomic
``INCR``, so concurrent guesses cannot slip past the limit between a check and
a count. A successful login forgets its email's count and gives its IP
attempt back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orbit.platform.errors import RateLimitedError

if TYPE_CHECKING:
    from redis.asyncio import Redis

LOGIN_WINDOW_SECONDS = 15 * 60
MAX_LOGINS_PER_EMAIL = 5
MAX_LOGINS_PER_IP = 30
SIGNUP_WINDOW_SECONDS = 60 * 60
MAX_SIGNUPS_PER_IP = 20


class LoginThrottle:
    """Counts attempts; refuses further ones once a limit is reached."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def _keys(ip: str, email_key: str) -> tuple[str, str]:
        return f"orbit:login:ip:{ip}", f"orbit:login:email:{email_key}"

    async def attempt(self, ip: str, email_key: str) -> None:
        """Count one login attempt; 429 when this email or IP is over its limit."""
        ip_key, mail_key = self._keys(ip, email_key)
        ip_count, mail_count = await self._count((ip_key, mail_key), LOGIN_WINDOW_SECONDS)
        if mail_count > MAX_LOGINS_PER_EMAIL:
            await self._refuse(mail_key, "too many failed logins for this email")
        if ip_count > MAX_LOGINS_PER_IP:
            await self._refuse(ip_key, "too many failed logins from this address")

    async def succeeded(self, ip: str, email_key: str) -> None:
        """Forget the email's failures and give the IP its attempt back."""
        ip_key, mail_key = self._keys(ip, email_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(mail_key)
            pipe.decr(ip_key)
            await pipe.execute()

    async def sign_up(self, ip: str) -> None:
        """Count one sign-up; 429 when this IP has created too many workspaces lately."""
        key = f"orbit:signup:ip:{ip}"
        (count,) = await self._count((key,), SIGNUP_WINDOW_SECONDS)
        if count > MAX_SIGNUPS_PER_IP:
            await self._refuse(key, "too many sign-ups from this address")

    async def _count(self, keys: tuple[str, ...], window: int) -> list[int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
            results = await pipe.execute()
        return [int(value) for value in results[::2]]

    async def _refuse(self, key: str, reason: str) -> None:
        ttl = max(int(await self.redis.ttl(key)), 1)
        minutes = (ttl + 59) // 60
        plural = "s" if minutes != 1 else ""
        raise RateLimitedError(f"{reason}; try again in {minutes} minute{plural}", retry_after=ttl)
