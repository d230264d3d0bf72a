"""Time tracking: one timer per person, manual entries, approval, the week, totals, CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta

from tests.conftest import Member, api_key, bearer
from tests.integration.projects.conftest import API, new_project, new_task


async def test_one_timer_runs_per_person_and_stopping_logs_the_time(
    app: object, manager: Member, outsider: Member
) -> None:
    project = await new_project(manager)
    task = await new_task(manager, project["id"], title="Build")
    started = await manager.client.post(
        f"{API}/timer/start", json={"project_id": project["id"], "task_id": task["id"]}
    )
    assert started.status_code == 201, started.text
    assert started.json()["running"] is True
    # Starting another one stops the first: still one running timer.
    second = await manager.client.post(f"{API}/timer/start", json={"project_id": project["id"]})
    assert second.status_code == 201
    entries = (await manager.client.get(f"{API}/projects/{project['id']}/time")).json()["items"]
    assert sorted(e["running"] for e in entries) == [False, True]
    assert next(e for e in entries if not e["running"])["minutes"] == 1
    running = (await manager.client.get(f"{API}/timer")).json()["timer"]
    assert running["id"] == second.json()["id"]
    stopped = await manager.client.post(f"{API}/timer/stop")
    assert stopped.status_code == 200
    assert stopped.json()["running"] is False
    assert (await manager.client.post(f"{API}/timer/stop")).status_code == 409
    assert (await manager.client.get(f"{API}/timer")).json()["timer"] is None
    # Rate snapshot: the project's rate when the entry was made.
    assert stopped.json()["rate"] == "100.00"
    # Another workspace cannot start a timer on this project, nor see its time.
    foreign = await outsider.client.post(f"{API}/timer/start", json={"project_id": project["id"]})
    assert foreign.status_code == 404
    assert (await outsider.client.get(f"{API}/projects/{project['id']}/time")).status_code == 404
    # An API key has no person behind it: no timers.
    key = await api_key(manager, ["contacts:read"])
    async with bearer(app, key) as client:
        assert (await client.post(f"{API}/timer/stop")).status_code in (403, 404)


async def test_entries_are_approved_summed_by_week_and_exported(
    manager: Member, outsider: Member
) -> None:
    project = await new_project(manager, name="Timed")
    task = await new_task(manager, project["id"], title="Write", estimate_hours="1")
    today = date.today()  # noqa: DTZ011 - the server's day, as the API's default week
    monday = today - timedelta(days=today.weekday())
    made = []
    for offset, minutes, billable in ((0, 45, True), (1, 30, True), (1, 15, False)):
        response = await manager.client.post(
            f"{API}/projects/{project['id']}/time",
            json={
                "day": (monday + timedelta(days=offset)).isoformat(),
                "minutes": minutes,
                "task_id": task["id"],
                "note": "=cmd()" if offset else "drafting",
                "billable": billable,
            },
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    for body, field in (
        ({"day": "2026-11-20", "minutes": 0}, "minutes"),
        ({"day": "2026-11-20", "minutes": 1441}, "minutes"),
        ({"day": "yesterday", "minutes": 10}, "day"),
        ({"day": "2026-11-20", "minutes": 10, "billable": "yes"}, "billable"),
    ):
        bad = await manager.client.post(f"{API}/projects/{project['id']}/time", json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["extra"][0]["key"] == field
    approved = await manager.client.post(
        f"{API}/projects/{project['id']}/time/status",
        json={"ids": [e["id"] for e in made[:2]], "status": "approved"},
    )
    assert approved.json() == {"updated": 2}

    week = (await manager.client.get(f"{API}/timesheet", params={"week": str(monday)})).json()
    assert week["total"] == 90
    assert week["per_day"][:2] == [45, 45]
    assert [line["task"] for line in week["lines"]] == ["Write"]

    totals = (await manager.client.get(f"{API}/projects/{project['id']}/totals")).json()["items"]
    assert totals == [
        {
            "task_id": task["id"],
            "title": "Write",
            "estimate_hours": "1.00",
            "hours": "1.50",
            "billable_hours": "1.25",
            "approved_hours": "1.25",
            "over_estimate": True,
        }
    ]
    exported = await manager.client.get(f"{API}/projects/{project['id']}/time.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["hours"] for r in rows] == ["0.75", "0.50", "0.25"]
    assert rows[1]["note"] == "'=cmd()"  # no spreadsheet formula

    # Editing needs the current version; an approved entry that changes needs approval again.
    entry = made[0]
    edited = await manager.client.patch(
        f"{API}/time/{entry['id']}", json={"version": entry["version"] + 1, "minutes": 50}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "open"
    stale = await manager.client.patch(
        f"{API}/time/{entry['id']}", json={"version": entry["version"], "minutes": 55}
    )
    assert stale.status_code == 409

    # The other workspace sees none of it and cannot change it.
    assert (
        await outsider.client.patch(f"{API}/time/{entry['id']}", json={"version": 3, "minutes": 1})
    ).status_code == 404
    assert (await outsider.client.delete(f"{API}/time/{entry['id']}")).status_code == 404
    assert (await outsider.client.get(f"{API}/timesheet", params={"week": str(monday)})).json()[
        "total"
    ] == 0
    assert (await outsider.client.get(f"{API}/projects/{project['id']}/time.csv")).status_code == (
        404
    )


async def test_two_timer_starts_at_once_leave_one_timer_running(manager: Member) -> None:
    project = await new_project(manager)
    starts = await asyncio.gather(
        *(
            manager.client.post(f"{API}/timer/start", json={"project_id": project["id"]})
            for _ in range(4)
        )
    )
    assert {r.status_code for r in starts} <= {201, 409}
    assert any(r.status_code == 201 for r in starts)
    entries = (await manager.client.get(f"{API}/projects/{project['id']}/time")).json()["items"]
    assert sum(e["running"] for e in entries) == 1
