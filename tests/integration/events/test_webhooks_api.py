"""The webhooks API and settings page: admin-only, validated by field, walled per workspace."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Member, api_key, bearer

VALID = {"url": "https://hooks.example.com/orbit", "events": ["contact.created"]}


async def test_create_shows_the_secret_once_then_get_list_update_delete(alice: Member) -> None:
    created = await alice.client.post("/api/v1/webhooks", json={**VALID, "description": "CRM"})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["active"] is True
    assert hook["events"] == ["contact.created"]
    one = (await alice.client.get(f"/api/v1/webhooks/{hook['id']}")).json()
    listed = (await alice.client.get("/api/v1/webhooks")).json()["items"]
    assert "secret" not in one
    assert [item["id"] for item in listed] == [hook["id"]]
    assert all("secret" not in item for item in listed)
    changed = await alice.client.patch(
        f"/api/v1/webhooks/{hook['id']}",
        json={"url": "http://other.example.com/x", "events": ["deal.won", "deal.won"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == "http://other.example.com/x"
    assert changed.json()["events"] == ["deal.won"]
    assert changed.json()["description"] == "CRM"
    assert (await alice.client.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await alice.client.get(f"/api/v1/webhooks/{hook['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "url": "ftp://files.example.com/in"}, "url"),
        ({**VALID, "url": "javascript:alert(1)"}, "url"),
        ({**VALID, "url": "hooks.example.com/no-scheme"}, "url"),
        ({**VALID, "url": "https://"}, "url"),
        ({**VALID, "url": "https://user:pw@example.com/"}, "url"),
        ({**VALID, "url": "https://example.com:99999/"}, "url"),
        ({**VALID, "url": ""}, "url"),
        ({**VALID, "url": 42}, "url"),
        ({**VALID, "events": ["contact.exploded"]}, "events"),
        ({**VALID, "events": []}, "events"),
        ({**VALID, "events": "contact.created"}, "events"),
        ({**VALID, "active": "yes"}, "active"),
        ({**VALID, "description": "x" * 201}, "description"),
        ({**VALID, "secret": "mine"}, "secret"),
        ({"events": ["contact.created"]}, "url"),
        ({"url": "https://hooks.example.com/orbit"}, "events"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    alice: Member, body: dict[str, object], field: str
) -> None:
    response = await alice.client.post("/api/v1/webhooks", json=body)
    assert response.status_code == 400, response.text
    assert field in {item["key"] for item in response.json()["extra"]}, response.text
    assert (await alice.client.get("/api/v1/webhooks")).json()["items"] == []


async def test_a_bad_update_changes_nothing(alice: Member) -> None:
    hook = (await alice.client.post("/api/v1/webhooks", json=VALID)).json()
    response = await alice.client.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"url": "file:///etc/passwd", "active": False}
    )
    assert response.status_code == 400
    assert response.json()["extra"] == [
        {"key": "url", "message": "'file:///etc/passwd' is not an http:// or https:// URL"}
    ]
    after = (await alice.client.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert (after["url"], after["active"]) == (VALID["url"], True)


async def test_api_keys_cannot_manage_webhooks(app: object, alice: Member) -> None:
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    client = bearer(app, key)
    assert (await client.get("/api/v1/webhooks")).status_code == 403
    assert (await client.post("/api/v1/webhooks", json=VALID)).status_code == 403
    refused = await alice.client.post(
        "/api/v1/api-keys", json={"name": "hooks", "scopes": ["webhooks:write"]}
    )
    assert refused.status_code == 400
    await client.aclose()


async def test_another_workspace_gets_404_for_every_webhook_route(
    alice: Member, bob: Member
) -> None:
    hook = (await alice.client.post("/api/v1/webhooks", json=VALID)).json()
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Own"})).json()
    assert contact["id"]
    base = f"/api/v1/webhooks/{hook['id']}"
    event_id = str(uuid.uuid4())
    responses = [
        await bob.client.get(base),
        await bob.client.patch(base, json={"active": False}),
        await bob.client.get(f"{base}/attempts"),
        await bob.client.post(f"{base}/deliveries/{event_id}/redeliver"),
        await bob.client.delete(base),
    ]
    assert [r.status_code for r in responses] == [404] * 5
    assert (await bob.client.get("/api/v1/webhooks")).json()["items"] == []
    still = (await alice.client.get(base)).json()
    assert still["active"] is True


async def test_redeliver_refuses_an_event_of_another_workspace(
    runtime: object, alice: Member, bob: Member
) -> None:
    alice_hook = (await alice.client.post("/api/v1/webhooks", json=VALID)).json()
    await bob.client.post("/api/v1/contacts", json={"first_name": "BobOnly"})
    from orbit.platform.runtime import Runtime  # noqa: PLC0415

    assert isinstance(runtime, Runtime)
    async with runtime.db.transaction(uuid.UUID(bob.workspace_id)):
        bob_event = await runtime.db.fetchval("SELECT id FROM outbox_events LIMIT 1")
    response = await alice.client.post(
        f"/api/v1/webhooks/{alice_hook['id']}/deliveries/{bob_event}/redeliver"
    )
    assert response.status_code == 404
    assert "not found in this workspace" in response.json()["detail"]
    bad = await alice.client.post(f"/api/v1/webhooks/{alice_hook['id']}/deliveries/nope/redeliver")
    assert bad.status_code == 404


async def test_the_openapi_document_lists_the_webhook_routes(alice: Member) -> None:
    schema = (await alice.client.get("/api/docs/openapi.json")).json()
    paths = set(schema["paths"])
    assert "/api/v1/webhooks" in paths
    assert "/api/v1/webhooks/{webhook_id}/attempts" in paths
    assert "/api/v1/webhooks/{webhook_id}/deliveries/{event_id}/redeliver" in paths
    assert not any(path.startswith("/t/") for path in paths)


async def test_the_settings_page_creates_shows_the_secret_and_lists(alice: Member) -> None:
    page = await alice.client.get(f"/t/{alice.slug}/webhooks")
    assert page.status_code == 200
    assert f'href="/t/{alice.slug}/webhooks"' in page.text
    assert 'value="contact.created"' in page.text
    form = {
        "csrf_token": alice.csrf,
        "url": "https://page.example.com/in",
        "events": ["contact.created", "deal.won"],
    }
    created = await alice.client.post(f"/t/{alice.slug}/webhooks", data=form)
    assert created.status_code == 200, created.text
    assert "whsec_" in created.text
    assert "https://page.example.com/in" in created.text
    again = await alice.client.get(f"/t/{alice.slug}/webhooks")
    assert "whsec_" not in again.text
    assert "https://page.example.com/in" in again.text


async def test_the_settings_page_shows_field_errors_and_writes_nothing(alice: Member) -> None:
    form = {"csrf_token": alice.csrf, "url": "ftp://x.example.com", "events": ["contact.created"]}
    response = await alice.client.post(f"/t/{alice.slug}/webhooks", data=form)
    assert response.status_code == 422
    assert 'data-field="url"' in response.text
    no_events = await alice.client.post(
        f"/t/{alice.slug}/webhooks", data={"csrf_token": alice.csrf, "url": "https://ok.example"}
    )
    assert no_events.status_code == 422
    assert 'data-field="events"' in no_events.text
    assert (await alice.client.get("/api/v1/webhooks")).json()["items"] == []
