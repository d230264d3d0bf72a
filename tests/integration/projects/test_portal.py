"""The client portal: chosen contacts see their project's shared tasks, nothing else."""

from __future__ import annotations

from typing import Any

from tests.conftest import Member, make_client
from tests.integration.projects.conftest import API, new_project, new_task


async def _contact(member: Member, first: str) -> str:
    response = await member.client.post(
        "/api/v1/contacts", json={"first_name": first, "last_name": "Client"}
    )
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["id"]
    return contact_id


async def _shared_project(member: Member, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    project = await new_project(member, name=name, hourly_rate="135.00")
    shared = await new_task(member, project["id"], title=f"{name}: shared task", shared=True)
    await new_task(member, project["id"], title=f"{name}: internal task")
    for body, is_shared in ((f"{name}: client note", True), (f"{name}: internal note", False)):
        response = await member.client.post(
            f"{API}/tasks/{shared['id']}/comments", json={"body": body, "shared": is_shared}
        )
        assert response.status_code == 201
    return project, shared


def _path(url: str) -> str:
    return "/p/" + url.split("/p/", 1)[1]


async def test_each_client_sees_only_their_projects_shared_tasks(
    app: object, manager: Member, outsider: Member
) -> None:
    first, _ = await _shared_project(manager, "Alpha")
    second, _ = await _shared_project(manager, "Beta")
    theirs, _ = await _shared_project(outsider, "Gamma")
    ann, ben = await _contact(manager, "Ann"), await _contact(manager, "Ben")
    grants = {}
    for who, project in ((ann, first), (ben, second)):
        response = await manager.client.post(
            f"{API}/projects/{project['id']}/portal", json={"contact_id": who}
        )
        assert response.status_code == 201, response.text
        grants[who] = response.json()
    other = await outsider.client.post(
        f"{API}/projects/{theirs['id']}/portal", json={"contact_id": await _contact(outsider, "Cy")}
    )
    assert other.status_code == 201
    # Another workspace's contact or project cannot be shared from here.
    assert (
        await manager.client.post(f"{API}/projects/{theirs['id']}/portal", json={"contact_id": ann})
    ).status_code == 404
    assert (
        await outsider.client.post(f"{API}/projects/{first['id']}/portal", json={"contact_id": ann})
    ).status_code == 404

    visitor = make_client(app)  # no session: a client opening the link from an email
    async with visitor:
        page = await visitor.get(_path(grants[ann]["url"]))
        assert page.status_code == 200, page.text
        assert "Alpha: shared task" in page.text
        assert "Alpha: client note" in page.text
        for hidden in ("internal task", "internal note", "Beta", "Gamma", "135"):
            assert hidden not in page.text
        data = (await visitor.get(_path(grants[ben]["url"]) + "/tasks")).json()
        assert data["project"]["name"] == "Beta"
        assert [t["title"] for t in data["tasks"]] == ["Beta: shared task"]
        assert "rate" not in str(data)
        gamma = (await visitor.get(_path(other.json()["url"]) + "/tasks")).json()
        assert [t["title"] for t in gamma["tasks"]] == ["Gamma: shared task"]

        # A tampered token is a 404; a revoked access ends the link.
        token = grants[ann]["token"]
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert (await visitor.get(f"/p/projects/portal/{forged}")).status_code == 404
        revoked = await manager.client.delete(
            f"{API}/projects/{first['id']}/portal/{grants[ann]['id']}"
        )
        assert revoked.status_code == 204
        assert (await visitor.get(_path(grants[ann]["url"]))).status_code == 404
        assert (await visitor.get(_path(grants[ben]["url"]))).status_code == 200
        # Disabling the app in the workspace closes its portal.
        disabled = await manager.client.post("/api/v1/marketplace/projects/disable")
        assert disabled.status_code in (200, 201, 204), disabled.text
        assert (await visitor.get(_path(grants[ben]["url"]))).status_code == 404
        assert (await visitor.get(_path(other.json()["url"]))).status_code == 200
