"""Finish-to-start dependencies: cycle checks and the critical path, in working days.

A dependency ``a → b`` with lag ``n`` means b may start only ``n`` working days after
the working day following a's end (lag 0: the next working day). Everything here is
pure: tasks and links in, answers out.
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date
    from uuid import UUID

    from orbit.plugins.builtin.projects.calendar import WorkCalendar


@dataclass(frozen=True, slots=True)
class Link:
    """``predecessor`` finishes, then ``successor`` starts (after ``lag`` working days)."""

    predecessor: UUID
    successor: UUID
    lag: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    """A task's dates."""

    id: UUID
    start: date
    end: date


def find_cycle(links: Iterable[Link]) -> list[UUID] | None:
    """The tasks of one cycle (first task repeated at the end), or ``None`` when acyclic."""
    graph: dict[UUID, set[UUID]] = {}
    for link in links:
        graph.setdefault(link.successor, set()).add(link.predecessor)
        graph.setdefault(link.predecessor, set())
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle: list[UUID] = list(exc.args[1])
        return cycle
    return None


def earliest_start(pred: Span, lag: int, calendar: WorkCalendar) -> date:
    """The first day a successor of ``pred`` may start."""
    return calendar.add(pred.end, 1 + lag)


def violations(
    spans: dict[UUID, Span], links: Iterable[Link], calendar: WorkCalendar
) -> list[Link]:
    """Links whose successor starts before its predecessor allows."""
    return [
        link
        for link in links
        if link.predecessor in spans
        and link.successor in spans
        and spans[link.successor].start
        < earliest_start(spans[link.predecessor], link.lag, calendar)
    ]


def critical_path(spans: dict[UUID, Span], links: list[Link], calendar: WorkCalendar) -> list[UUID]:
    """The tasks on the longest chain (in working days) through the dependency graph.

    A forward pass gives each task's earliest finish from its own duration and its
    predecessors' finishes plus lags; the project's finish is the latest of them; a
    backward pass keeps the tasks with no slack. Durations are the tasks' own working
    days, so the path follows the plan, not today's drift.
    """
    if not spans:
        return []
    preds: dict[UUID, list[Link]] = {task: [] for task in spans}
    succs: dict[UUID, list[Link]] = {task: [] for task in spans}
    graph: dict[UUID, set[UUID]] = {task: set() for task in spans}
    for link in links:
        if link.predecessor in spans and link.successor in spans:
            preds[link.successor].append(link)
            succs[link.predecessor].append(link)
            graph[link.successor].add(link.predecessor)
    order = list(TopologicalSorter(graph).static_order())
    duration = {t: max(calendar.between(s.start, s.end), 1) for t, s in spans.items()}
    finish: dict[UUID, int] = {}
    for task in order:
        start = max((finish[link.predecessor] + link.lag for link in preds[task]), default=0)
        finish[task] = start + duration[task]
    end = max(finish.values())
    latest: dict[UUID, int] = {}
    for task in reversed(order):
        latest[task] = min(
            (latest[link.successor] - duration[link.successor] - link.lag for link in succs[task]),
            default=end,
        )
    return [task for task in order if latest[task] == finish[task]]
