"""Roles: viewers read projects, members track their own time, owners and admins bill."""

from __future__ import annotations

import secrets

from tests.conftest import Member, sign_up
from tests.integration.projects.conftest import API, new_project, new_task


async def _join(app: object, owner: Member, role: str) -> Member:
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    invited = await owner.client.post("/api/v1/invitations", json={"email": email, "role": role})
    assert invited.status_code == 201, invited.text
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, f"{role} own", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    await member.client.get(f"/t/{owner.slug}/")  # the session now acts in the owner's workspace
    member.slug = owner.slug
    return member


async def test_viewers_read_members_log_their_time_and_managers_bill(
    app: object, manager: Member
) -> None:
    project = await new_project(manager)
    task = await new_task(manager, project["id"], title="Shared work")
    viewer = await _join(app, manager, "viewer")
    worker = await _join(app, manager, "member")
    try:
        assert (await viewer.client.get(f"{API}/projects/{project['id']}")).status_code == 200
        assert (await viewer.client.get(f"{API}/projects/{project['id']}/tasks")).status_code == 200
        for method, url, body in (
            ("POST", f"{API}/projects/{project['id']}/tasks", {"title": "Nope"}),
            ("PATCH", f"{API}/tasks/{task['id']}", {"version": task["version"], "title": "Nope"}),
            ("POST", f"{API}/projects/{project['id']}/time", {"day": "2026-11-20", "minutes": 5}),
        ):
            refused = await viewer.client.request(method, url, json=body)
            assert refused.status_code == 403, (method, url, refused.text)
        assert (await manager.client.get(f"{API}/tasks/{task['id']}")).json()["title"] == (
            "Shared work"
        )

        mine = await worker.client.post(
            f"{API}/projects/{project['id']}/time", json={"day": "2026-11-20", "minutes": 30}
        )
        assert mine.status_code == 201, mine.text
        theirs = await manager.client.post(
            f"{API}/projects/{project['id']}/time", json={"day": "2026-11-20", "minutes": 60}
        )
        assert mine.json()["user_id"] != theirs.json()["user_id"]
        touch = await worker.client.patch(
            f"{API}/time/{theirs.json()['id']}", json={"version": 1, "minutes": 1}
        )
        assert touch.status_code == 403
        self_approve = await worker.client.post(
            f"{API}/projects/{project['id']}/time/status",
            json={"ids": [mine.json()["id"]], "status": "approved"},
        )
        assert self_approve.status_code == 403
        assert (await worker.client.post(f"{API}/projects/{project['id']}/bill")).status_code == 403
        members = (await manager.client.get("/api/v1/members")).json()
        worker_id = next(m["id"] for m in members if m["email"] == worker.email)
        assert mine.json()["user_id"] == worker_id  # the member's id, as ctx.users lists it
        approved = await manager.client.post(
            f"{API}/projects/{project['id']}/time/status",
            json={"ids": [mine.json()["id"]], "status": "approved"},
        )
        assert approved.json() == {"updated": 1}
    finally:
        await viewer.client.aclose()
        await worker.client.aclose()
