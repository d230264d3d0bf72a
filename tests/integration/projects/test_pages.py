"""The pages render in Orbit's layout for the workspace, and 404 for another one."""

from __future__ import annotations

from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.projects.conftest import API, deliver, new_project, new_task, win_deal


async def test_every_page_renders_here_and_is_absent_elsewhere(
    manager: Member, outsider: Member
) -> None:
    project = await new_project(manager, name="Pages <b>")
    task = await new_task(manager, project["id"], title="Card <i>", lane="Design")
    base = f"/t/{manager.slug}/apps/projects"
    pages = {
        "/": "Pages &lt;b&gt;",
        f"/{project['id']}": 'class="prj-cards"',
        f"/{project['id']}/list": "Card &lt;i&gt;",
        f"/{project['id']}/gantt": 'id="prj-gantt"',
        f"/{project['id']}/time": "Start timer",
        f"/{project['id']}/billing": "Bill project",
        f"/{project['id']}/settings": 'id="prj-settings"',
        f"/{project['id']}/gantt.json": task["id"],
        "/static/frappe-gantt.umd.js": "Gantt",
        "/static/frappe-gantt.LICENSE.txt": "MIT",
    }
    for path, needle in pages.items():
        response = await manager.client.get(base + path)
        assert response.status_code == 200, (path, response.text[:300])
        assert needle in response.text, path
        assert "<b>" not in response.text or path.startswith("/static")
    board = await manager.client.get(f"{base}/{project['id']}")
    assert 'data-lane="Design"' in board.text
    assert "Marketplace" in board.text  # inside Orbit's layout (its navigation)
    assert (await manager.client.get(f"{base}/static/../__init__.py")).status_code == 404
    own = await outsider.client.get(f"/t/{outsider.slug}/apps/projects/")
    assert own.status_code == 200
    assert "Pages" not in own.text  # its own, empty list
    for path in pages:
        if path == "/" or path.startswith("/static"):
            continue
        other = await outsider.client.get(f"/t/{outsider.slug}/apps/projects{path}")
        assert other.status_code == 404, path


async def test_the_task_page_shows_checklist_subtasks_dependencies_and_comments(
    manager: Member, outsider: Member
) -> None:
    project = await new_project(manager)
    first = await new_task(manager, project["id"], title="Before")
    task = await new_task(
        manager, project["id"], title="Main", checklist=[{"text": "Check <this>", "done": True}]
    )
    await new_task(manager, project["id"], title="Child", parent_id=task["id"])
    linked = await manager.client.post(
        f"{API}/dependencies",
        json={"predecessor_id": first["id"], "successor_id": task["id"], "lag_days": 2},
    )
    assert linked.status_code == 200
    said = await manager.client.post(
        f"{API}/tasks/{task['id']}/comments", json={"body": "Ready <soon>", "shared": True}
    )
    assert said.status_code == 201
    url = f"/t/{manager.slug}/apps/projects/task/{task['id']}"
    page = await manager.client.get(url)
    assert page.status_code == 200
    for needle in (
        "Check &lt;this&gt;",
        "checked",
        "Child",
        "Before (+2 d)",
        "Ready &lt;soon&gt;",
        "shared",
        'id="prj-comment"',
    ):
        assert needle in page.text, needle
    assert (
        await outsider.client.get(f"/t/{outsider.slug}/apps/projects/task/{task['id']}")
    ).status_code == 404


async def test_a_won_deal_shows_its_project_on_the_deal_page(
    manager: Member, runtime: Runtime
) -> None:
    deal_id = await win_deal(manager, "Sidebar deal")
    await deliver(runtime)
    page = await manager.client.get(f"/t/{manager.slug}/deals/{deal_id}")
    assert page.status_code == 200
    assert 'id="deal-project"' in page.text
    assert "Sidebar deal" in page.text
    projects = (await manager.client.get(f"{API}/projects")).json()["items"]
    assert f"/apps/projects/{projects[0]['id']}" in page.text
