"""Webhook deliveries end to end: real worker, real HTTP receiver, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from orbit.platform.events.worker import EventWorker
from tests.conftest import Member
from tests.integration.events.conftest import Receiver, eventually


async def _endpoint(
    member: Member, receiver: Receiver, path: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = await member.client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url + path, "events": events or ["contact.created"]},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secrets[path] = created["secret"]
    return created


async def _attempts(member: Member, webhook_id: str) -> list[dict[str, Any]]:
    response = await member.client.get(f"/api/v1/webhooks/{webhook_id}/attempts")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _settled_attempts(member: Member, webhook_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        items = await _attempts(member, webhook_id)
        if len(items) >= count and items[0]["delivery_status"] != "pending":
            return items
        await asyncio.sleep(0.05)
    return await _attempts(member, webhook_id)


async def test_a_contact_created_is_posted_signed_to_the_endpoint(
    alice: Member, receiver: Receiver, worker: EventWorker
) -> None:
    hook = await _endpoint(alice, receiver, "/alice")
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Zoë"})).json()
    await eventually(lambda: len(receiver.answered_ok("/alice")) == 1)
    got = receiver.answered_ok("/alice")[0]
    assert got.verified, "the receiver could not verify the signature"
    payload = got.payload
    assert payload["type"] == "contact.created"
    assert payload["tenant"] == alice.slug
    assert payload["data"]["id"] == contact["id"]
    assert payload["data"]["first_name"] == "Zoë"
    assert payload["occurred_at"].endswith("Z")
    assert got.headers["orbit-event-id"] == payload["id"]
    assert got.headers["orbit-signature"].startswith("v1=")
    assert got.headers["content-type"] == "application/json"
    attempts = await _settled_attempts(alice, hook["id"], 1)
    assert [(a["attempt"], a["status_code"], a["error"]) for a in attempts] == [(1, 200, None)]
    assert attempts[0]["event_id"] == payload["id"]
    assert attempts[0]["delivery_status"] == "succeeded"
    assert attempts[0]["duration_ms"] >= 0


async def test_tenant_b_endpoint_never_receives_tenant_a_events(
    alice: Member, bob: Member, receiver: Receiver, worker: EventWorker
) -> None:
    await _endpoint(alice, receiver, "/alice", ["contact.created", "contact.updated"])
    await _endpoint(bob, receiver, "/bob", ["contact.created", "contact.updated"])
    for name in ("A1", "A2"):
        await alice.client.post("/api/v1/contacts", json={"first_name": name})
    await bob.client.post("/api/v1/contacts", json={"first_name": "B1"})
    await eventually(lambda: len(receiver.answered_ok()) == 3)
    await asyncio.sleep(0.5)  # anything misrouted would arrive by now
    alice_names = {r.payload["data"]["first_name"] for r in receiver.on("/alice")}
    bob_names = {r.payload["data"]["first_name"] for r in receiver.on("/bob")}
    assert alice_names == {"A1", "A2"}
    assert bob_names == {"B1"}
    assert {r.payload["tenant"] for r in receiver.on("/bob")} == {bob.slug}


async def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    alice: Member, receiver: Receiver, worker: EventWorker
) -> None:
    receiver.statuses = [500, 503]
    hook = await _endpoint(alice, receiver, "/flaky")
    await alice.client.post("/api/v1/contacts", json={"first_name": "Retry"})
    await eventually(lambda: len(receiver.answered_ok("/flaky")) == 1)
    requests = receiver.on("/flaky")
    assert [r.answered for r in requests] == [500, 503, 200]
    assert len({r.payload["id"] for r in requests}) == 1, "retries carry the same event id"
    assert [r.headers["orbit-delivery-attempt"] for r in requests] == ["1", "2", "3"]
    attempts = await _settled_attempts(alice, hook["id"], 3)
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(3, 200), (2, 503), (1, 500)]
    assert attempts[1]["error"] == "the receiver answered HTTP 503"
    assert {a["delivery_status"] for a in attempts} == {"succeeded"}


async def test_an_unreachable_endpoint_logs_the_error_and_keeps_retrying(
    alice: Member, worker: EventWorker
) -> None:
    response = await alice.client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/nothing", "events": ["contact.created"]},
    )
    hook = response.json()
    await alice.client.post("/api/v1/contacts", json={"first_name": "Nowhere"})
    deadline = time.monotonic() + 15
    attempts: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(attempts) < 2:
        attempts = await _attempts(alice, hook["id"])
        await asyncio.sleep(0.05)
    assert len(attempts) >= 2
    assert attempts[-1]["status_code"] is None
    assert "Connect" in attempts[-1]["error"]
    assert attempts[0]["delivery_status"] == "pending"
    await alice.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False})


async def test_redeliver_sends_the_same_event_again(
    alice: Member, receiver: Receiver, worker: EventWorker
) -> None:
    hook = await _endpoint(alice, receiver, "/again")
    await alice.client.post("/api/v1/contacts", json={"first_name": "Twice"})
    await eventually(lambda: len(receiver.answered_ok("/again")) == 1)
    event_id = receiver.answered_ok("/again")[0].payload["id"]
    await _settled_attempts(alice, hook["id"], 1)
    response = await alice.client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{event_id}/redeliver"
    )
    assert response.status_code == 202, response.text
    assert response.json()["event_id"] == event_id
    await eventually(lambda: len(receiver.answered_ok("/again")) == 2)
    assert [r.payload["id"] for r in receiver.answered_ok("/again")] == [event_id, event_id]
    attempts = await _settled_attempts(alice, hook["id"], 2)
    assert [a["attempt"] for a in attempts] == [2, 1]


async def test_only_subscribed_types_reach_an_endpoint_and_paused_ones_get_nothing(
    alice: Member, receiver: Receiver, worker: EventWorker
) -> None:
    await _endpoint(alice, receiver, "/deleted", ["contact.deleted"])
    paused = await _endpoint(alice, receiver, "/paused", ["contact.created", "contact.deleted"])
    await alice.client.patch(f"/api/v1/webhooks/{paused['id']}", json={"active": False})
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Gone"})).json()
    await alice.client.delete(f"/api/v1/contacts/{contact['id']}")
    await eventually(lambda: len(receiver.answered_ok("/deleted")) == 1)
    await asyncio.sleep(0.5)
    assert [r.payload["type"] for r in receiver.on("/deleted")] == ["contact.deleted"]
    assert receiver.on("/paused") == []


async def test_a_slow_plugin_job_does_not_hold_back_deliveries(
    alice: Member, receiver: Receiver, worker: EventWorker
) -> None:
    from tests import plugin_fixtures  # noqa: PLC0415

    enabled = await alice.client.post("/api/v1/marketplace/dozer/enable", json={"scopes": []})
    assert enabled.status_code == 201, enabled.text
    plugin_fixtures.WAKE.clear()
    try:
        await eventually(plugin_fixtures.DOZING.is_set, timeout=30)  # the job is running
        await _endpoint(alice, receiver, "/while-dozing")
        await alice.client.post("/api/v1/contacts", json={"first_name": "Prompt"})
        await eventually(lambda: len(receiver.answered_ok("/while-dozing")) == 1, timeout=10)
        assert plugin_fixtures.DOZING.is_set()  # delivered while the job still ran
    finally:
        plugin_fixtures.WAKE.set()


async def test_a_slow_plugin_event_does_not_hold_back_webhooks(
    alice: Member, receiver: Receiver, worker: EventWorker
) -> None:
    from tests import plugin_fixtures  # noqa: PLC0415

    enabled = await alice.client.post("/api/v1/marketplace/dozer/enable", json={"scopes": []})
    assert enabled.status_code == 201, enabled.text
    plugin_fixtures.WAKE.set()  # let a job round of dozer pass at once
    await asyncio.sleep(0.5)
    plugin_fixtures.WAKE.clear()
    await _endpoint(alice, receiver, "/beside-dozer")
    try:
        await alice.client.post("/api/v1/contacts", json={"first_name": "Quick"})
        await eventually(plugin_fixtures.DOZING.is_set, timeout=10)  # dozer has the event
        await eventually(lambda: len(receiver.answered_ok("/beside-dozer")) == 1, timeout=5)
        assert plugin_fixtures.DOZING.is_set()  # the webhook went out while dozer dozed
    finally:
        plugin_fixtures.WAKE.set()
