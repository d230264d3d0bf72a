"""Domain events land in the outbox in the same transaction as the change."""

from __future__ import annotations

import json
import uuid

from orbit.platform.runtime import Runtime
from tests.conftest import Member


async def _events(runtime: Runtime, workspace_id: str) -> list[tuple[str, dict[str, object]]]:
    async with runtime.db.transaction(uuid.UUID(workspace_id)):
        rows = await runtime.db.fetch(
            "SELECT type, data FROM outbox_events ORDER BY occurred_at, id"
        )
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def test_contact_changes_emit_events_with_the_change(runtime: Runtime, alice: Member) -> None:
    created = (await alice.client.post("/api/v1/contacts", json={"first_name": "Evt"})).json()
    url = f"/api/v1/contacts/{created['id']}"
    await alice.client.patch(url, json={"last_name": "Two"})
    await alice.client.delete(url)
    events = await _events(runtime, alice.workspace_id)
    assert [kind for kind, _ in events] == ["contact.created", "contact.updated", "contact.deleted"]
    assert events[0][1]["first_name"] == "Evt"
    assert events[1][1]["last_name"] == "Two"
    assert events[2][1] == {"id": created["id"]}


async def test_a_refused_change_writes_no_event(runtime: Runtime, alice: Member) -> None:
    response = await alice.client.post("/api/v1/contacts", json={"email": "broken@"})
    assert response.status_code == 400
    assert await _events(runtime, alice.workspace_id) == []


async def test_events_are_walled_per_workspace(
    runtime: Runtime, alice: Member, bob: Member
) -> None:
    await alice.client.post("/api/v1/contacts", json={"first_name": "OnlyAlice"})
    assert await _events(runtime, bob.workspace_id) == []
    assert len(await _events(runtime, alice.workspace_id)) == 1
