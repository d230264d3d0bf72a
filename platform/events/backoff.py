"""When a failed webhook delivery is tried again: exponential backoff within 24 hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays double from ``first_delay`` up to ``max_delay``; nothing starts after ``window``."""

    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=4)
    window: timedelta = timedelta(hours=24)

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        # Capping the exponent first keeps huge attempt numbers from overflowing.
        factor = 2 ** min(attempt - 1, 40)
        delay: timedelta = min(self.first_delay * factor, self.max_delay)
        return delay

    def next_attempt(
        self, attempt: int, started_at: datetime, failed_at: datetime
    ) -> datetime | None:
        """When to try again after attempt ``attempt`` failed, or ``None`` to give up.

        ``started_at`` is when the delivery was created (or redelivered): no attempt
        is scheduled later than ``window`` after it.
        """
        due = failed_at + self.delay(attempt)
        if due > started_at + self.window:
            return None
        return due

    def schedule(self) -> list[timedelta]:
        """Every delay of a delivery that always fails, in order (for docs and tests)."""
        delays: list[timedelta] = []
        elapsed = timedelta(0)
        attempt = 1
        while True:
            wait = self.delay(attempt)
            if elapsed + wait > self.window:
                return delays
            delays.append(wait)
            elapsed += wait
            attempt += 1


DEFAULT_POLICY = RetryPolicy()
