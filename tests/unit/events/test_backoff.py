"""The retry schedule of failed webhook deliveries: exponential, capped, within 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orbit.platform.events.backoff import DEFAULT_POLICY, RetryPolicy

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_delays_double_from_thirty_seconds() -> None:
    delays = [DEFAULT_POLICY.delay(n) for n in range(1, 6)]
    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480)]


def test_delays_are_capped() -> None:
    assert DEFAULT_POLICY.delay(9) == timedelta(seconds=30 * 2**8)
    assert DEFAULT_POLICY.delay(10) == timedelta(hours=4)
    assert DEFAULT_POLICY.delay(10_000) == timedelta(hours=4)


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        DEFAULT_POLICY.delay(0)


def test_the_whole_schedule_fits_in_24_hours_and_uses_most_of_it() -> None:
    schedule = DEFAULT_POLICY.schedule()
    total = sum(schedule, timedelta(0))
    assert total <= timedelta(hours=24)
    assert total > timedelta(hours=20)
    assert len(schedule) == 13  # 14 attempts in all
    assert schedule == sorted(schedule)


def test_next_attempt_is_failure_time_plus_delay() -> None:
    failed = T0 + timedelta(minutes=5)
    assert DEFAULT_POLICY.next_attempt(3, T0, failed) == failed + timedelta(minutes=2)


def test_no_attempt_is_scheduled_past_the_window() -> None:
    late = T0 + timedelta(hours=23)
    assert DEFAULT_POLICY.next_attempt(12, T0, late) is None
    last_chance = T0 + timedelta(hours=23, minutes=59, seconds=30)
    assert DEFAULT_POLICY.next_attempt(1, T0, last_chance) == T0 + timedelta(hours=24)
    too_late = last_chance + timedelta(seconds=1)
    assert DEFAULT_POLICY.next_attempt(1, T0, too_late) is None


def test_a_custom_policy_scales() -> None:
    fast = RetryPolicy(
        first_delay=timedelta(milliseconds=100),
        max_delay=timedelta(seconds=1),
        window=timedelta(seconds=3),
    )
    assert fast.delay(1) == timedelta(milliseconds=100)
    assert fast.delay(5) == timedelta(seconds=1)
    assert sum(fast.schedule(), timedelta(0)) <= timedelta(seconds=3)
