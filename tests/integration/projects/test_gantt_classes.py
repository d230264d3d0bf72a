"""The Gantt data gives frappe-gantt one class token per bar, even for a critical milestone."""

from __future__ import annotations

from tests.conftest import Member
from tests.integration.projects.conftest import API, new_project, new_task


async def test_a_critical_milestone_gets_a_single_class_token(manager: Member) -> None:
    project = await new_project(manager)
    work = await new_task(
        manager, project["id"], title="Work", start_date="2026-11-23", due_date="2026-11-25"
    )
    done = await new_task(
        manager,
        project["id"],
        title="Handover",
        milestone=True,
        start_date="2026-11-26",
        due_date="2026-11-26",
    )
    linked = await manager.client.post(
        f"{API}/dependencies", json={"predecessor_id": work["id"], "successor_id": done["id"]}
    )
    assert linked.status_code == 200, linked.text

    gantt = (await manager.client.get(f"{API}/projects/{project['id']}/gantt")).json()
    by_id = {t["id"]: t for t in gantt["tasks"]}
    assert done["id"] in gantt["critical_path"]
    assert by_id[done["id"]]["milestone"] is True
    # classList.add("critical milestone") throws in the browser and no bar is drawn.
    assert by_id[done["id"]]["custom_class"] == "critical"
    assert by_id[work["id"]]["custom_class"] == "critical"
    assert all(" " not in t["custom_class"] for t in gantt["tasks"])
