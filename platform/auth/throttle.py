"""Login throttling per IP address and per email, counted in Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orbit.platform.errors import RateLimitedError

if TYPE_CHECKING:
    from redis.asyncio import Redis

WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 30


class LoginThrottle:
    """Counts failed logins; refuses further attempts once a limit is reached."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def _keys(ip: str, email_key: str) -> tuple[str, str]:
        return f"orbit:login-fail:ip:{ip}", f"orbit:login-fail:email:{email_key}"

    async def check(self, ip: str, email_key: str) -> None:
        """Raise 429 when this IP or this email has failed too often recently."""
        ip_key, email_key_ = self._keys(ip, email_key)
        ip_count, email_count = await self.redis.mget(ip_key, email_key_)
        for count, limit, key in (
            (email_count, MAX_FAILURES_PER_EMAIL, email_key_),
            (ip_count, MAX_FAILURES_PER_IP, ip_key),
        ):
            if count is not None and int(count) >= limit:
                ttl = max(int(await self.redis.ttl(key)), 1)
                minutes = (ttl + 59) // 60
                raise RateLimitedError(
                    f"too many failed logins; try again in {minutes} minute"
                    + ("s" if minutes != 1 else ""),
                    retry_after=ttl,
                )

    async def failed(self, ip: str, email_key: str) -> None:
        """Count one failed attempt."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(ip, email_key):
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS, nx=True)
            await pipe.execute()

    async def succeeded(self, email_key: str) -> None:
        """Forget this email's failures after a successful login."""
        await self.redis.delete(self._keys("", email_key)[1])
