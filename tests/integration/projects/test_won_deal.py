"""A won deal becomes its project once, dated in working days; projects by hand too."""

from __future__ import annotations

import asyncio
from datetime import date
from uuid import UUID

import asyncpg

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.projects import service
from tests.conftest import Member
from tests.integration.projects.conftest import (
    API,
    configure,
    deliver,
    new_project,
    plugin_context,
    win_deal,
)


async def test_winning_a_deal_creates_its_project_from_the_template_once(
    manager: Member, outsider: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    deal_id = await win_deal(manager, "Website relaunch", "15000.00")
    await deliver(runtime)

    projects = (await manager.client.get(f"{API}/projects")).json()["items"]
    assert [(p["name"], p["deal_id"]) for p in projects] == [("Website relaunch", deal_id)]
    project = (await manager.client.get(f"{API}/projects/{projects[0]['id']}")).json()
    assert project["currency"] == "EUR"
    assert project["budget"] == "15000.00"
    assert project["contact_id"] is not None
    tasks = (await manager.client.get(f"{API}/projects/{project['id']}/tasks")).json()["items"]
    assert [t["title"] for t in tasks] == [
        "Kickoff",
        "Discovery",
        "Build",
        "Review with the client",
        "Delivery",
    ]
    for task in tasks:  # every task starts and ends on a working day (Monday to Friday)
        assert date.fromisoformat(task["start_date"]).weekday() < 5
        assert date.fromisoformat(task["due_date"]).weekday() < 5
    by_title = {t["title"]: t for t in tasks}
    # Finish-to-start: each starts after its predecessor ends; Discovery lasts 3 working days.
    assert by_title["Discovery"]["start_date"] > by_title["Kickoff"]["due_date"]
    assert by_title["Build"]["start_date"] > by_title["Discovery"]["due_date"]
    assert by_title["Delivery"]["milestone"] is True
    assert by_title["Delivery"]["milestone_amount"] == "15000.00"
    gantt = (await manager.client.get(f"{API}/projects/{project['id']}/gantt")).json()
    assert len(gantt["critical_path"]) == 5  # a single chain: every task is critical

    # At least once: the same events delivered again change nothing.
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE plugin_event_deliveries SET status = 'pending', next_attempt_at = now() "
            "WHERE tenant_id = $1::uuid AND plugin_id = 'projects'",
            manager.workspace_id,
        )
        await deliver(runtime)
        count = await admin.fetchval(
            "SELECT count(*) FROM projects_projects WHERE tenant_id = $1::uuid",
            manager.workspace_id,
        )
        assert count == 1
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM projects_tasks WHERE tenant_id = $1::uuid",
                manager.workspace_id,
            )
            == 5
        )
    finally:
        await admin.close()

    # The other workspace sees nothing of it.
    assert (await outsider.client.get(f"{API}/projects")).json()["items"] == []
    assert (await outsider.client.get(f"{API}/projects/{project['id']}")).status_code == 404
    assert (await outsider.client.get(f"{API}/projects/{project['id']}/tasks")).status_code == 404


async def test_concurrent_won_events_for_one_deal_make_one_project(
    manager: Member, runtime: Runtime
) -> None:
    deal = {
        "id": str(UUID(int=7)),
        "title": "Racing deal",
        "amount": "100",
        "currency": "EUR",
        "closed_at": "2026-11-20T10:00:00+00:00",
        "contact_ids": [],
    }

    async def once() -> tuple[UUID, bool]:
        async with plugin_context(runtime, manager) as ctx:
            found = await service.project_from_won_deal(ctx, deal)
            await asyncio.sleep(0.05)  # hold the transaction open: the other one must wait
            return found

    results = await asyncio.gather(*(once() for _ in range(4)))
    assert len({project_id for project_id, _created in results}) == 1
    assert sorted(created for _id, created in results) == [False, False, False, True]
    projects = (await manager.client.get(f"{API}/projects")).json()["items"]
    assert [p["name"] for p in projects] == ["Racing deal"]
    tasks = (await manager.client.get(f"{API}/projects/{projects[0]['id']}/tasks")).json()
    assert len(tasks["items"]) == 5


async def test_dates_skip_holidays_and_days_off(app: object, manager: Member) -> None:
    await configure(manager, {"holiday_country": "GR", "work_week": "mon,tue,wed,thu,fri"})
    added = await manager.client.post(f"{API}/holidays", json={"day": "2026-12-28", "name": "Shut"})
    assert added.status_code == 201, added.text
    template = await manager.client.post(
        f"{API}/templates",
        json={
            "name": "Two steps",
            "tasks": [
                {"key": "a", "title": "First", "days": 2},
                {"key": "b", "title": "Second", "days": 2, "after": ["a"], "lag": 1},
            ],
        },
    )
    assert template.status_code == 201, template.text
    # Thursday 24 December 2026: the 25th and 26th are Greek holidays, the 28th the workspace's.
    project = await new_project(manager, start_date="2026-12-24", template_id=template.json()["id"])
    tasks = (await manager.client.get(f"{API}/projects/{project['id']}/tasks")).json()["items"]
    first, second = tasks
    assert (first["start_date"], first["due_date"]) == ("2026-12-24", "2026-12-29")
    # lag 1: one working day (the 30th) between them.
    assert (second["start_date"], second["due_date"]) == ("2026-12-31", "2027-01-04")


async def test_bad_settings_and_projects_are_refused_naming_the_field(
    manager: Member, outsider: Member
) -> None:
    bad = await manager.client.put(
        "/api/v1/marketplace/projects/settings", json={"settings": {"work_week": "mon,funday"}}
    )
    assert bad.status_code == 400
    assert "fun" in bad.text
    for body, field in (
        ({"name": ""}, "name"),
        ({"name": "X", "currency": "euro"}, "currency"),
        ({"name": "X", "billing_mode": "barter"}, "billing_mode"),
        ({"name": "X", "hourly_rate": "-1"}, "hourly_rate"),
        ({"name": "X", "start_date": "soon"}, "start_date"),
    ):
        response = await manager.client.post(f"{API}/projects", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["extra"][0]["key"] == field
    cycle = await manager.client.post(
        f"{API}/templates",
        json={
            "name": "Loop",
            "tasks": [
                {"key": "a", "title": "A", "after": ["b"]},
                {"key": "b", "title": "B", "after": ["a"]},
            ],
        },
    )
    assert cycle.status_code == 422
    assert "cycle" in cycle.json()["detail"]
    assert (await manager.client.get(f"{API}/projects")).json()["items"] == []
    other = await new_project(outsider, name="Theirs")
    mine = await manager.client.post(f"{API}/projects", json={"name": "Mine"})
    assert mine.status_code == 201
    assert [p["name"] for p in (await manager.client.get(f"{API}/projects")).json()["items"]] == [
        "Mine"
    ]
    assert (
        await manager.client.patch(f"{API}/projects/{other['id']}", json={"name": "Taken"})
    ).status_code == 404


async def test_uninstalling_with_delete_data_empties_this_workspace_only(
    manager: Member, outsider: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await win_deal(manager, "Doomed")
    await deliver(runtime)
    kept = await new_project(outsider, name="Kept")
    removed = await manager.client.delete(
        "/api/v1/marketplace/projects", params={"keep_data": "false"}
    )
    assert removed.status_code in (200, 204), removed.text
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        for table in projects_tables():
            count = await admin.fetchval(
                f"SELECT count(*) FROM {table} WHERE tenant_id = $1::uuid",
                manager.workspace_id,
            )
            assert count == 0, table
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM projects_projects WHERE tenant_id = $1::uuid",
                outsider.workspace_id,
            )
            == 1
        )
    finally:
        await admin.close()
    assert (await outsider.client.get(f"{API}/projects/{kept['id']}")).status_code == 200


def projects_tables() -> tuple[str, ...]:
    from orbit.plugins.builtin.projects import MANIFEST  # noqa: PLC0415

    return MANIFEST.tables
