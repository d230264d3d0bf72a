"""Tasks: fields, subtasks, dependencies (cycles refused), board moves, bulk edit, Gantt."""

from __future__ import annotations

from typing import Any

from tests.conftest import Member
from tests.integration.projects.conftest import API, new_project, new_task


async def _task(member: Member, task_id: str) -> dict[str, Any]:
    response = await member.client.get(f"{API}/tasks/{task_id}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


async def test_a_task_keeps_assignees_watchers_checklist_subtasks_and_comments(
    manager: Member, outsider: Member
) -> None:
    project = await new_project(manager)
    people = ["0190f4c8-0000-7000-8000-000000000001", "0190f4c8-0000-7000-8000-000000000002"]
    task = await new_task(
        manager,
        project["id"],
        title="Design",
        priority=0,
        assignees=people,
        watchers=people[:1],
        checklist=[{"text": "Wireframes"}, {"text": "Palette", "done": True}],
        estimate_hours="12.5",
        due_date="2026-11-30",
    )
    assert task["assignees"] == people
    assert task["checklist"] == [
        {"text": "Wireframes", "done": False},
        {"text": "Palette", "done": True},
    ]
    child = await new_task(manager, project["id"], title="Logo", parent_id=task["id"])
    comment = await manager.client.post(
        f"{API}/tasks/{task['id']}/comments", json={"body": "Looks good", "shared": True}
    )
    assert comment.status_code == 201, comment.text
    shown = await _task(manager, task["id"])
    assert [s["id"] for s in shown["subtasks"]] == [child["id"]]
    assert [c["body"] for c in shown["comments"]] == ["Looks good"]

    # Bad input: 422 naming the field, nothing changed.
    for body, field in (
        ({"version": task["version"], "priority": 9}, "priority"),
        ({"version": task["version"], "status": "someday"}, "status"),
        ({"version": task["version"], "due_date": "2026-01-01"}, "due_date"),
        ({"version": task["version"], "checklist": [{"text": ""}]}, "checklist[0].text"),
        ({"version": task["version"], "assignees": ["nobody"]}, "assignees"),
        ({"priority": 1}, "version"),
    ):
        response = await manager.client.patch(f"{API}/tasks/{task['id']}", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["extra"][0]["key"] == field
    assert (await _task(manager, task["id"]))["version"] == task["version"]
    missing_title = await manager.client.post(f"{API}/projects/{project['id']}/tasks", json={})
    assert missing_title.status_code == 422

    # Optimistic concurrency: a stale version is a 409 and changes nothing.
    ok = await manager.client.patch(
        f"{API}/tasks/{task['id']}", json={"version": task["version"], "title": "Design v2"}
    )
    assert ok.status_code == 200, ok.text
    stale = await manager.client.patch(
        f"{API}/tasks/{task['id']}", json={"version": task["version"], "title": "Lost update"}
    )
    assert stale.status_code == 409
    assert (await _task(manager, task["id"]))["title"] == "Design v2"

    # The other workspace can neither read nor change any of it.
    assert (await outsider.client.get(f"{API}/tasks/{task['id']}")).status_code == 404
    for method, url, body in (
        ("PATCH", f"{API}/tasks/{task['id']}", {"version": 2, "title": "Hijack"}),
        ("POST", f"{API}/tasks/{task['id']}/move", {"version": 2, "status": "done"}),
        ("POST", f"{API}/tasks/{task['id']}/comments", {"body": "Hi"}),
        ("POST", f"{API}/projects/{project['id']}/tasks", {"title": "Intruder"}),
        ("DELETE", f"{API}/tasks/{task['id']}", None),
    ):
        response = await outsider.client.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.text)
    assert (await _task(manager, task["id"]))["title"] == "Design v2"


async def test_a_dependency_cycle_is_refused_with_the_tasks_named(manager: Member) -> None:
    project = await new_project(manager)
    a = await new_task(manager, project["id"], title="Alpha")
    b = await new_task(manager, project["id"], title="Beta")
    c = await new_task(manager, project["id"], title="Gamma")
    for first, second in ((a, b), (b, c)):
        linked = await manager.client.post(
            f"{API}/dependencies",
            json={"predecessor_id": first["id"], "successor_id": second["id"], "lag_days": 1},
        )
        assert linked.status_code == 200, linked.text
    cycle = await manager.client.post(
        f"{API}/dependencies", json={"predecessor_id": c["id"], "successor_id": a["id"]}
    )
    assert cycle.status_code == 422
    detail = cycle.json()["detail"]
    assert "cycle" in detail
    assert all(name in detail for name in ("Alpha", "Beta", "Gamma"))
    self_link = await manager.client.post(
        f"{API}/dependencies", json={"predecessor_id": a["id"], "successor_id": a["id"]}
    )
    assert self_link.status_code == 422
    other = await new_project(manager, name="Other")
    elsewhere = await new_task(manager, other["id"], title="Elsewhere")
    across = await manager.client.post(
        f"{API}/dependencies", json={"predecessor_id": a["id"], "successor_id": elsewhere["id"]}
    )
    assert across.status_code == 422
    shown = await _task(manager, c["id"])
    assert shown["depends_on"] == [{"task_id": b["id"], "lag_days": 1}]
    removed = await manager.client.delete(f"{API}/dependencies/{b['id']}/{c['id']}")
    assert removed.status_code == 204
    assert (await _task(manager, c["id"]))["depends_on"] == []


async def _column(member: Member, project_id: str, status: str) -> list[str]:
    response = await member.client.get(
        f"{API}/projects/{project_id}/tasks", params={"status": status}
    )
    return [t["title"] for t in response.json()["items"]]


async def test_board_moves_use_fractional_positions_versions_and_wip_limits(
    manager: Member, outsider: Member
) -> None:
    project = await new_project(manager)
    cards = [await new_task(manager, project["id"], title=name) for name in "ABCD"]
    a, b, c, d = cards
    # D between A and B: no other card is renumbered.
    moved = await manager.client.post(
        f"{API}/tasks/{d['id']}/move",
        json={"version": d["version"], "status": "todo", "after_id": a["id"], "before_id": b["id"]},
    )
    assert moved.status_code == 200, moved.text
    assert a["position"] < moved.json()["position"] < b["position"]
    assert await _column(manager, project["id"], "todo") == ["A", "D", "B", "C"]
    # Thirty halvings between the same two neighbours still keep the order.
    version = moved.json()["version"]
    for _ in range(60):
        again = await manager.client.post(
            f"{API}/tasks/{d['id']}/move",
            json={"version": version, "status": "todo", "after_id": a["id"], "before_id": b["id"]},
        )
        assert again.status_code == 200, again.text
        version = again.json()["version"]
        b = (await manager.client.get(f"{API}/tasks/{b['id']}")).json()
        mover = await manager.client.post(
            f"{API}/tasks/{b['id']}/move",
            json={
                "version": b["version"],
                "status": "todo",
                "after_id": d["id"],
                "before_id": c["id"],
            },
        )
        assert mover.status_code == 200, mover.text
    assert await _column(manager, project["id"], "todo") == ["A", "D", "B", "C"]

    # Into another column and swimlane; a stale version is a 409.
    into = await manager.client.post(
        f"{API}/tasks/{c['id']}/move",
        json={"version": c["version"], "status": "doing", "lane": "Design"},
    )
    assert into.status_code == 200, into.text
    assert into.json()["lane"] == "Design"
    stale = await manager.client.post(
        f"{API}/tasks/{c['id']}/move", json={"version": c["version"], "status": "done"}
    )
    assert stale.status_code == 409
    assert await _column(manager, project["id"], "done") == []

    # WIP limit: one card in "doing" at most.
    limited = await manager.client.patch(
        f"{API}/projects/{project['id']}", json={"wip_limits": {"doing": 1}}
    )
    assert limited.status_code == 200, limited.text
    a = (await manager.client.get(f"{API}/tasks/{a['id']}")).json()
    over = await manager.client.post(
        f"{API}/tasks/{a['id']}/move", json={"version": a["version"], "status": "doing"}
    )
    assert over.status_code == 409
    assert "WIP limit" in over.json()["detail"]
    bad_limits = await manager.client.patch(
        f"{API}/projects/{project['id']}", json={"wip_limits": {"doing": -1}}
    )
    assert bad_limits.status_code == 422
    assert await _column(manager, project["id"], "doing") == ["C"]
    # The other workspace cannot move the card.
    denied = await outsider.client.post(
        f"{API}/tasks/{a['id']}/move", json={"version": a["version"], "status": "done"}
    )
    assert denied.status_code == 404


async def test_list_filters_sorts_and_bulk_edits(manager: Member, outsider: Member) -> None:
    project = await new_project(manager)
    made = [
        await new_task(
            manager,
            project["id"],
            title=f"Item {i}",
            priority=i % 4,
            due_date=f"2026-12-{10 + i:02d}",
        )
        for i in range(6)
    ]
    by_priority = (
        await manager.client.get(
            f"{API}/projects/{project['id']}/tasks", params={"sort": "priority"}
        )
    ).json()["items"]
    assert [t["priority"] for t in by_priority] == sorted(t["priority"] for t in made)
    found = (
        await manager.client.get(f"{API}/projects/{project['id']}/tasks", params={"q": "item 3"})
    ).json()["items"]
    assert [t["title"] for t in found] == ["Item 3"]
    ids = [t["id"] for t in made[:4]]
    bulk = await manager.client.post(
        f"{API}/projects/{project['id']}/tasks/bulk", json={"ids": ids, "set": {"status": "done"}}
    )
    assert bulk.json() == {"updated": 4}
    assert len(await _column(manager, project["id"], "done")) == 4
    # A foreign or unknown id makes the whole edit fail: nothing half-written.
    other = await new_project(outsider)
    theirs = await new_task(outsider, other["id"], title="Theirs")
    mixed = await manager.client.post(
        f"{API}/projects/{project['id']}/tasks/bulk",
        json={"ids": [made[4]["id"], theirs["id"]], "set": {"status": "review"}},
    )
    assert mixed.status_code == 422
    assert mixed.json()["extra"][0]["key"] == "ids"
    assert await _column(manager, project["id"], "review") == []
    bad = await manager.client.post(
        f"{API}/projects/{project['id']}/tasks/bulk", json={"ids": ids, "set": {"title": "x"}}
    )
    assert bad.status_code == 422
    assert (await outsider.client.get(f"{API}/tasks/{theirs['id']}")).json()["status"] == "todo"
    bad_sort = await manager.client.get(
        f"{API}/projects/{project['id']}/tasks", params={"sort": "chaos"}
    )
    assert bad_sort.status_code == 422


async def test_gantt_shows_the_critical_path_and_flags_or_blocks_violations(
    manager: Member,
) -> None:
    project = await new_project(manager, start_date="2026-11-23")  # a Monday
    long = await new_task(
        manager, project["id"], title="Long", start_date="2026-11-23", due_date="2026-11-27"
    )
    short = await new_task(
        manager, project["id"], title="Short", start_date="2026-11-23", due_date="2026-11-24"
    )
    last = await new_task(
        manager, project["id"], title="Last", start_date="2026-11-30", due_date="2026-12-01"
    )
    for first in (long, short):
        linked = await manager.client.post(
            f"{API}/dependencies", json={"predecessor_id": first["id"], "successor_id": last["id"]}
        )
        assert linked.status_code == 200
    gantt = (await manager.client.get(f"{API}/projects/{project['id']}/gantt")).json()
    assert gantt["critical_path"] == [long["id"], last["id"]]
    assert gantt["violations"] == []
    by_id = {t["id"]: t for t in gantt["tasks"]}
    assert by_id[last["id"]]["dependencies"].count(",") == 1
    assert "critical" in by_id[long["id"]]["custom_class"]

    # Flag (the default): a drag that breaks a dependency is saved and reported.
    dragged = await manager.client.post(
        f"{API}/tasks/{last['id']}/dates",
        json={"version": last["version"], "start_date": "2026-11-26", "due_date": "2026-11-27"},
    )
    assert dragged.status_code == 200, dragged.text
    assert dragged.json()["violations"] == [
        {"predecessor_id": long["id"], "successor_id": last["id"], "lag_days": 0}
    ]
    after = (await manager.client.get(f"{API}/projects/{project['id']}/gantt")).json()
    assert len(after["violations"]) == 1

    # Block: the same kind of drag is refused and nothing moves.
    blocking = await manager.client.patch(
        f"{API}/projects/{project['id']}", json={"enforce_dependencies": True}
    )
    assert blocking.status_code == 200
    long = (await manager.client.get(f"{API}/tasks/{long['id']}")).json()
    refused = await manager.client.post(
        f"{API}/tasks/{long['id']}/dates",
        json={"version": long["version"], "start_date": "2026-11-30", "due_date": "2026-12-04"},
    )
    assert refused.status_code == 422
    assert refused.json()["extra"][0]["key"] == "start_date"
    assert (await manager.client.get(f"{API}/tasks/{long['id']}")).json()["due_date"] == (
        "2026-11-27"
    )
    backwards = await manager.client.post(
        f"{API}/tasks/{long['id']}/dates",
        json={"version": long["version"], "start_date": "2026-11-27", "due_date": "2026-11-23"},
    )
    assert backwards.status_code == 422


async def test_with_auto_shift_successors_follow_a_task_moved_later(manager: Member) -> None:
    project = await new_project(manager, start_date="2026-11-23")
    shifting = await manager.client.patch(
        f"{API}/projects/{project['id']}", json={"auto_shift": True, "enforce_dependencies": True}
    )
    assert shifting.status_code == 200
    a = await new_task(
        manager, project["id"], title="A", start_date="2026-11-23", due_date="2026-11-24"
    )
    b = await new_task(
        manager, project["id"], title="B", start_date="2026-11-25", due_date="2026-11-26"
    )
    c = await new_task(
        manager, project["id"], title="C", start_date="2026-11-30", due_date="2026-11-30"
    )
    for first, second, lag in ((a, b, 0), (b, c, 1)):
        linked = await manager.client.post(
            f"{API}/dependencies",
            json={"predecessor_id": first["id"], "successor_id": second["id"], "lag_days": lag},
        )
        assert linked.status_code == 200
    # A now ends on Friday 27: B (two days) moves to Mon 30 – Tue 1, C to Thu 3 (lag 1).
    moved = await manager.client.post(
        f"{API}/tasks/{a['id']}/dates",
        json={"version": a["version"], "start_date": "2026-11-26", "due_date": "2026-11-27"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["shifted"] == [b["id"], c["id"]]
    assert moved.json()["violations"] == []
    tasks = {
        t["title"]: t
        for t in (await manager.client.get(f"{API}/projects/{project['id']}/tasks")).json()["items"]
    }
    assert (tasks["B"]["start_date"], tasks["B"]["due_date"]) == ("2026-11-30", "2026-12-01")
    assert (tasks["C"]["start_date"], tasks["C"]["due_date"]) == ("2026-12-03", "2026-12-03")
    # A successor still may not be dragged before its predecessor (blocked).
    refused = await manager.client.post(
        f"{API}/tasks/{c['id']}/dates",
        json={
            "version": tasks["C"]["version"],
            "start_date": "2026-11-27",
            "due_date": "2026-11-27",
        },
    )
    assert refused.status_code == 422
