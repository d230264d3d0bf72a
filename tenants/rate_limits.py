"""Rate limits per workspace (API) and per address (public pages): GCRA, one Redis round trip.

The generic cell rate algorithm keeps a single number per workspace, the
"theoretical arrival time" (TAT): with ``limit`` requests a ``window``, each
request moves it ``window / limit`` later; a request is refused when that would
put it more than ``window`` ahead of now. A workspace that has been quiet may
burst up to ``limit`` requests at once, then gets one every ``window / limit``.
The script reads Redis's own clock, so web pods with skewed clocks agree.

Responses carry the IETF RateLimit header fields
(draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy: "tenant";q=600;w=60``
and ``RateLimit: "tenant";r=<remaining>;t=<seconds until full>``, and refusals a
``Retry-After``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from orbit.platform.errors import RateLimitedError

if TYPE_CHECKING:
    from uuid import UUID

    from redis.asyncio import Redis

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
POLICY = "tenant"

# KEYS[1]: the workspace's TAT key. ARGV: emission interval (µs), window (µs).
# Returns {allowed (0/1), remaining, microseconds until full, microseconds to retry}.
_GCRA = """
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((window - (new_tat - now)) / interval), new_tat - now, 0}
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One request's verdict and what the headers tell the client."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Seconds until the full quota is available again."""
    retry_after: int
    """Seconds to wait before retrying (0 when allowed)."""
    policy: str = POLICY
    """``tenant`` (a workspace's API) or ``ip`` (one client address on public pages)."""

    def headers(self) -> dict[str, str]:
        """The RateLimit-Policy and RateLimit fields (and Retry-After when refused)."""
        fields = {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={WINDOW_SECONDS}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            fields["Retry-After"] = str(self.retry_after)
        return fields

    def refusal(self) -> RateLimitedError:
        """The 429 for a refused request."""
        what = (
            "this workspace's API rate limit"
            if self.policy == POLICY
            else "the limit for requests from your address"
        )
        return RateLimitedError(
            f"{what} of {self.limit} requests a minute is used up; retry in {self.retry_after} s",
            retry_after=self.retry_after,
            headers=self.headers(),
        )


class RateLimiter:
    """GCRA buckets in Redis, one per workspace."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_GCRA)

    async def hit(self, tenant_id: UUID, per_minute: int) -> RateDecision | None:
        """Count one request of ``tenant_id``; ``None`` when Redis cannot answer.

        Redis being down lets requests through (logged): the API stays up, unlimited.
        """
        return await self._hit(f"orbit:rate:{tenant_id}", per_minute, POLICY)

    async def hit_address(self, address: str, per_minute: int) -> RateDecision | None:
        """Count one public-page request from a client address (as :meth:`hit`)."""
        return await self._hit(f"orbit:rate:ip:{address}", per_minute, "ip")

    async def _hit(self, key: str, per_minute: int, policy: str) -> RateDecision | None:
        interval = math.ceil(WINDOW_SECONDS * 1_000_000 / per_minute)
        window = interval * per_minute
        try:
            allowed, remaining, until_full, retry = await self._script(
                keys=[key], args=[interval, window]
            )
        except RedisError:
            log.warning("rate limit not checked: Redis did not answer", exc_info=True)
            return None
        return RateDecision(
            allowed=bool(allowed),
            limit=per_minute,
            remaining=int(remaining),
            reset_seconds=math.ceil(int(until_full) / 1_000_000),
            retry_after=max(math.ceil(int(retry) / 1_000_000), 1) if not allowed else 0,
            policy=policy,
        )
