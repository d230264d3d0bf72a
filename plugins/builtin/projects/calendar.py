"""Working days: the workspace's work week, its country's public holidays and its own days off.

Templates date tasks in working days from a project's start ("day 3, two days long");
:class:`WorkCalendar` turns those offsets into dates and back.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import holidays

if TYPE_CHECKING:
    from collections.abc import Iterable

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_work_week(text: str) -> frozenset[int]:
    """``"mon,tue,wed,thu,fri"`` as weekday numbers (Monday 0); a ValueError names bad days."""
    days = {part.strip().lower()[:3] for part in text.split(",") if part.strip()}
    unknown = sorted(days - set(WEEKDAYS))
    if unknown or not days:
        raise ValueError(f"work week: {', '.join(unknown) or 'empty'} (use {', '.join(WEEKDAYS)})")
    return frozenset(WEEKDAYS.index(d) for d in days)


@lru_cache(maxsize=64)
def _country(code: str) -> holidays.HolidayBase | None:
    if not code:
        return None
    try:
        return holidays.country_holidays(code.upper())
    except NotImplementedError:
        return None


def known_country(code: str) -> bool:
    """Whether the ``holidays`` package knows the public holidays of ``code`` (ISO 3166)."""
    return not code or _country(code) is not None


class WorkCalendar:
    """Which days are worked: the work week minus public holidays and the workspace's own."""

    def __init__(
        self,
        work_week: frozenset[int] = frozenset(range(5)),
        country: str = "",
        days_off: Iterable[date] = (),
    ) -> None:
        """A calendar; ``country`` (ISO 3166 code) adds its public holidays."""
        self.work_week = work_week or frozenset(range(5))
        self.country = _country(country)
        self.days_off = frozenset(days_off)

    def is_working(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        if day.weekday() not in self.work_week or day in self.days_off:
            return False
        return self.country is None or day not in self.country

    def next_working(self, day: date) -> date:
        """``day`` itself when worked, else the next working day."""
        for _ in range(3660):
            if self.is_working(day):
                return day
            day += timedelta(days=1)
        raise ValueError("no working day within ten years")

    def add(self, day: date, working_days: int) -> date:
        """The working day ``working_days`` after (or before, when negative) ``day``."""
        day = self.next_working(day)
        step = 1 if working_days >= 0 else -1
        left = abs(working_days)
        while left:
            day += timedelta(days=step)
            if self.is_working(day):
                left -= 1
        return day

    def span(self, start: date, duration: int) -> tuple[date, date]:
        """First and last day of a task lasting ``duration`` working days (0: a milestone)."""
        first = self.next_working(start)
        return first, self.add(first, max(duration - 1, 0))

    def between(self, start: date, end: date) -> int:
        """Working days from ``start`` to ``end``, both included (0 when ``end`` is before)."""
        count = 0
        day = start
        while day <= end:
            count += self.is_working(day)
            day += timedelta(days=1)
        return count
