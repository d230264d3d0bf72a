"""Tasks, reminders through the bell, recurrence, and the dashboard."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from orbit.platform.crm.tasks import fire_due_reminders
from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from tests.conftest import Member, make_reminder_due


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def test_tasks_are_created_completed_and_recur(alice: Member) -> None:
    created = await alice.client.post(
        "/api/v1/tasks",
        json={
            "title": "Call Ana back",
            "due_at": "2026-01-31T09:00:00+00:00",
            "recurrence": "monthly",
            "priority": "high",
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["assignee_id"] is not None  # the creator
    done = await alice.client.post(f"/api/v1/tasks/{task['id']}/complete")
    assert done.status_code == 200
    assert done.json()["done_at"] is not None
    open_tasks = (await alice.client.get("/api/v1/tasks")).json()
    assert [(t["title"], t["due_at"][:10]) for t in open_tasks] == [("Call Ana back", "2026-02-28")]
    finished = (await alice.client.get("/api/v1/tasks", params={"done": "true"})).json()
    assert [t["id"] for t in finished] == [task["id"]]


async def test_bad_tasks_are_refused_by_field(alice: Member) -> None:
    for payload, field in (
        (
            {"title": "X", "due_at": _at(timedelta(days=1)), "remind_at": _at(-timedelta(hours=1))},
            "remind_at",
        ),
        ({"title": "X", "due_at": "2026-12-01T09:00:00"}, "due_at"),
        ({"title": "", "due_at": _at(timedelta(days=1))}, "title"),
        ({"title": "X", "due_at": _at(timedelta(days=1)), "recurrence": "hourly"}, "recurrence"),
    ):
        response = await alice.client.post("/api/v1/tasks", json=payload)
        assert response.status_code == 400, response.text
        assert field in {item["key"] for item in response.json()["extra"]}
    assert (await alice.client.get("/api/v1/tasks")).json() == []


async def test_a_due_reminder_rings_the_bell_once_and_emits_task_due(
    runtime: Runtime, endpoints: Endpoints, alice: Member, bob: Member
) -> None:
    task = (
        await alice.client.post(
            "/api/v1/tasks",
            json={
                "title": "Send the quote",
                "due_at": _at(timedelta(hours=2)),
                "remind_at": _at(timedelta(minutes=30)),
            },
        )
    ).json()
    await make_reminder_due(endpoints, task["id"])
    assert await fire_due_reminders(runtime.db) >= 1
    assert await fire_due_reminders(runtime.db) == 0
    inbox = (await alice.client.get("/api/v1/notifications")).json()
    assert inbox["unread"] == 1
    assert [n["title"] for n in inbox["items"]] == ["Send the quote"]
    assert (await bob.client.get("/api/v1/notifications")).json() == {"unread": 0, "items": []}
    async with runtime.db.transaction(uuid.UUID(alice.workspace_id)):
        events = await runtime.db.fetch("SELECT data FROM outbox_events WHERE type = 'task.due'")
    assert [json.loads(e["data"])["id"] for e in events] == [task["id"]]
    read = await alice.client.post(f"/api/v1/notifications/{inbox['items'][0]['id']}/read")
    assert read.status_code == 204
    assert (await alice.client.get("/api/v1/notifications")).json()["unread"] == 0
    assert (
        await bob.client.post(f"/api/v1/notifications/{inbox['items'][0]['id']}/read")
    ).status_code == 404


async def test_tasks_are_walled_per_workspace(alice: Member, bob: Member) -> None:
    task = (
        await alice.client.post(
            "/api/v1/tasks", json={"title": "Mine", "due_at": _at(timedelta(days=1))}
        )
    ).json()
    for response in (
        await bob.client.get(f"/api/v1/tasks/{task['id']}"),
        await bob.client.post(f"/api/v1/tasks/{task['id']}/complete"),
        await bob.client.delete(f"/api/v1/tasks/{task['id']}"),
    ):
        assert response.status_code == 404
    assert (await bob.client.get("/api/v1/tasks")).json() == []
    assigned = await bob.client.post(
        "/api/v1/tasks",
        json={"title": "X", "due_at": _at(timedelta(days=1)), "assignee_id": task["assignee_id"]},
    )
    assert assigned.status_code == 400
    assert assigned.json()["extra"][0]["key"] == "assignee_id"


async def test_dashboard_shows_this_workspaces_pipeline_and_wins(
    alice: Member, bob: Member
) -> None:
    pipeline = (await alice.client.get("/api/v1/pipelines")).json()[0]
    won_stage = next(s["id"] for s in pipeline["stages"] if s["kind"] == "won")
    await alice.client.post(
        "/api/v1/deals", json={"title": "Open one", "amount": "700", "currency": "EUR"}
    )
    won = (
        await alice.client.post(
            "/api/v1/deals", json={"title": "Closed", "amount": "1250", "currency": "EUR"}
        )
    ).json()
    await alice.client.post(f"/api/v1/deals/{won['id']}/move", json={"stage_id": won_stage})
    await alice.client.post(
        "/api/v1/tasks",
        json={
            "title": "Today's call",
            "due_at": datetime.now(UTC).replace(hour=23, minute=59, second=59).isoformat(),
        },
    )
    page = (await alice.client.get(f"/t/{alice.slug}/")).text
    assert "€700.00" in page
    assert "€1,250.00" in page
    assert "Today&#39;s call" in page or "Today's call" in page
    other = (await bob.client.get(f"/t/{bob.slug}/")).text
    assert "€700.00" not in other
    assert "No open deals" in other


async def test_far_future_tasks_and_no_currency_codes_are_refused(alice: Member) -> None:
    task = await alice.client.post(
        "/api/v1/tasks",
        json={"title": "Later", "due_at": "9999-12-31T12:00:00Z", "recurrence": "daily"},
    )
    assert task.status_code == 400
    assert task.json()["extra"][0]["key"] == "due_at"
    deal = await alice.client.post("/api/v1/deals", json={"title": "X", "currency": "XXX"})
    assert deal.status_code == 400
    assert deal.json()["extra"][0]["key"] == "currency"
