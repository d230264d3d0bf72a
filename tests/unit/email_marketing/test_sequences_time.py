"""Sequence timing: quiet hours and "wait until" in a contact's time zone, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from uuid import uuid4
from zoneinfo import ZoneInfo

from orbit.plugins.builtin.email_marketing.sequences import (
    Step,
    entry_due,
    in_quiet,
    next_allowed,
    wait_until,
)

ATHENS = ZoneInfo("Europe/Athens")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = (time(21, 0), time(8, 0))


def test_quiet_hours_may_span_midnight_or_sit_inside_a_day() -> None:
    assert in_quiet(time(23, 30), *NIGHT)
    assert in_quiet(time(7, 59), *NIGHT)
    assert not in_quiet(time(8, 0), *NIGHT)
    assert not in_quiet(time(20, 59), *NIGHT)
    lunch = (time(12, 0), time(13, 30))
    assert in_quiet(time(12, 0), *lunch)
    assert not in_quiet(time(13, 30), *lunch)
    assert not in_quiet(time(9, 0), *lunch)


def test_a_send_in_quiet_hours_moves_to_their_end_in_the_contact_s_zone() -> None:
    # 22:00 in Athens (UTC+2 in winter): the next morning at 08:00 local.
    late = datetime(2027, 1, 15, 20, 0, tzinfo=UTC)
    assert next_allowed(late, ATHENS, *NIGHT) == datetime(2027, 1, 16, 6, 0, tzinfo=UTC)
    # 03:00 in Athens: the same morning.
    early = datetime(2027, 1, 15, 1, 0, tzinfo=UTC)
    assert next_allowed(early, ATHENS, *NIGHT) == datetime(2027, 1, 15, 6, 0, tzinfo=UTC)
    # Daytime, or no quiet hours: at once.
    noon = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)
    assert next_allowed(noon, ATHENS, *NIGHT) == noon
    assert next_allowed(late, ATHENS, None, None) == late


def test_the_end_of_quiet_hours_follows_a_dst_change() -> None:
    # New York springs forward on 2027-03-14: 08:00 local is 12:00 UTC, not 13:00.
    night = datetime(2027, 3, 14, 3, 0, tzinfo=UTC)  # 22:00 EST on the 13th
    assert next_allowed(night, NEW_YORK, *NIGHT) == datetime(2027, 3, 14, 12, 0, tzinfo=UTC)


def test_wait_until_finds_the_next_listed_weekday_at_that_time() -> None:
    friday_noon = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)  # Friday 12:00 in Athens
    monday_9 = datetime(2027, 1, 18, 7, 0, tzinfo=UTC)
    assert wait_until(friday_noon, ATHENS, time(9, 0), ["mon"]) == monday_9
    assert wait_until(friday_noon, ATHENS, time(9, 0), []) == datetime(
        2027, 1, 16, 7, 0, tzinfo=UTC
    )
    assert wait_until(friday_noon, ATHENS, time(13, 0), ["fri"]) == datetime(
        2027, 1, 15, 11, 0, tzinfo=UTC
    )
    # The very moment is not "after": a week later.
    assert wait_until(monday_9, ATHENS, time(9, 0), ["mon"]) == datetime(
        2027, 1, 25, 7, 0, tzinfo=UTC
    )


def test_a_step_comes_due_at_once_and_a_wait_after_its_duration() -> None:
    at = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)
    email = Step(uuid4(), 2, "email", {"template_id": str(uuid4())})
    wait = Step(uuid4(), 1, "wait", {"days": 2, "hours": 3, "minutes": 0})
    until = Step(uuid4(), 3, "wait", {"until": {"time": "09:00", "days": ["mon"]}})
    assert entry_due(email, at, ATHENS) == at
    assert entry_due(wait, at, ATHENS) == datetime(2027, 1, 17, 13, 0, tzinfo=UTC)
    assert entry_due(until, at, ATHENS) == datetime(2027, 1, 18, 7, 0, tzinfo=UTC)
    assert entry_due(None, at, ATHENS) is None
