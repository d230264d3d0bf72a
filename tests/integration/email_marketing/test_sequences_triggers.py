"""Sequence triggers from Orbit's and the plugin's own events; conditions; the webhook step."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest

from orbit.platform.events.signing import verify
from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing import consent
from tests.conftest import Member

from .conftest import API, Sink, configure, contact
from .deliverability import acting
from .test_sequences import _deliver, _enrolments, _run, _sequence


class Hook:
    """A local webhook receiver: records each POST, answers with the queued statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses: list[int] = []
        self.raw: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.url = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            body = json.loads(raw)
            with state.lock:
                state.raw[self.headers.get("idempotency-key", "")] = raw
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/orbit"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


async def _stages(member: Member) -> dict[str, str]:
    pipeline = (await member.client.get("/api/v1/pipelines")).json()[0]
    return {s["name"]: s["id"] for s in pipeline["stages"]}


def _tag(name: str) -> list[dict[str, Any]]:
    return [{"type": "tag", "tags": [name]}]


async def test_deal_stage_field_segment_and_opt_in_triggers_enrol_the_right_contacts_once(
    marketer: Member, runtime: Runtime
) -> None:
    stages = await _stages(marketer)
    segment = await marketer.client.post(
        f"{API}/segments",
        json={"name": "VIPs", "filters": [{"field": "tags", "op": "contains", "value": "vip"}]},
    )
    assert segment.status_code == 201, segment.text
    by_stage = await _sequence(
        marketer,
        {"name": "Qualified", "steps": _tag("s-stage"),
         "trigger": {"type": "deal_stage", "stage_id": stages["Qualified"]}},
    )  # fmt: skip
    by_field = await _sequence(
        marketer,
        {"name": "Pro plan", "steps": _tag("s-field"),
         "trigger": {"type": "field_changed", "field": "custom.plan", "value": "pro"}},
    )  # fmt: skip
    by_segment = await _sequence(
        marketer,
        {"name": "VIP", "steps": _tag("s-segment"),
         "trigger": {"type": "segment_entered", "segment_id": segment.json()["id"]}},
    )  # fmt: skip
    by_opt_in = await _sequence(
        marketer,
        {"name": "Welcome", "steps": _tag("s-opt-in"),
         "trigger": {"type": "opt_in_confirmed", "purpose": "newsletter"}},
    )  # fmt: skip
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    bob = await contact(marketer, first_name="Bob", email="bob@example.org")
    cy = await contact(marketer, first_name="Cy", email="cy@example.org")
    dee = await contact(marketer, first_name="Dee", email="dee@example.org")

    deal = await marketer.client.post(
        "/api/v1/deals",
        json={"title": "Ada's order", "currency": "EUR", "contact_ids": [ada["id"]]},
    )
    await marketer.client.post(
        f"/api/v1/deals/{deal.json()['id']}/move", json={"stage_id": stages["Qualified"]}
    )
    await marketer.client.patch(f"/api/v1/contacts/{bob['id']}", json={"custom": {"plan": "pro"}})
    await marketer.client.patch(f"/api/v1/contacts/{dee['id']}", json={"custom": {"plan": "free"}})
    await marketer.client.patch(f"/api/v1/contacts/{cy['id']}", json={"tags": ["vip"]})
    async with acting(runtime, marketer) as ctx:
        consent_id, _link = await consent.request_double_opt_in(
            ctx, email="dee@example.org", purpose="newsletter", source="form:footer",
            contact_id=UUID(dee["id"]),
        )  # fmt: skip
    async with acting(runtime, marketer) as ctx:
        await consent.confirm(ctx, consent_id, ip="198.51.100.1", user_agent="Mozilla/5.0 (x)")
    await _deliver(runtime)
    # Later changes of the same contacts enrol nobody again.
    await marketer.client.patch(f"/api/v1/contacts/{bob['id']}", json={"first_name": "Robert"})
    await marketer.client.patch(f"/api/v1/contacts/{cy['id']}", json={"tags": ["vip", "gold"]})
    await _deliver(runtime)

    stage_in = await _enrolments(marketer, by_stage["id"])
    assert set(stage_in) == {ada["id"]}
    assert stage_in[ada["id"]]["deal_id"] == deal.json()["id"]
    assert set(await _enrolments(marketer, by_field["id"])) == {bob["id"]}
    assert set(await _enrolments(marketer, by_segment["id"])) == {cy["id"]}
    assert set(await _enrolments(marketer, by_opt_in["id"])) == {dee["id"]}

    await _run(runtime, marketer, datetime.now(UTC) + timedelta(minutes=1))
    for person, tag in ((ada, "s-stage"), (bob, "s-field"), (cy, "s-segment"), (dee, "s-opt-in")):
        tags = (await marketer.client.get(f"/api/v1/contacts/{person['id']}")).json()["tags"]
        assert [t for t in tags if t.startswith("s-")] == [tag]


async def test_conditions_on_fields_and_deal_stage_and_a_webhook_retried_until_it_answers(
    marketer: Member, runtime: Runtime, hook: Hook, monkeypatch: pytest.MonkeyPatch, sink: Sink
) -> None:
    await configure(marketer, {"smtp_url": sink.url, "sequence_webhook_secret": "whsec_test"})
    stages = await _stages(marketer)
    sequence = await _sequence(
        marketer,
        {
            "name": "VIP desk",
            "trigger": {"type": "manual"},
            "steps": [
                {"type": "condition", "when": "fields", "yes": "next", "no": "end",
                 "filters": [{"field": "tags", "op": "contains", "value": "vip"}]},
                {"type": "webhook", "url": hook.url},
                {"type": "condition", "when": "deal_stage", "stage_id": stages["Qualified"]},
                {"type": "tag", "tags": ["qualified"]},
            ],
        },
    )  # fmt: skip
    ada = await contact(marketer, first_name="Ada", email="ada@example.org", tags=["vip"])
    bob = await contact(marketer, first_name="Bob", email="bob@example.org", tags=["vip"])
    cy = await contact(marketer, first_name="Cy", email="cy@example.org")
    deal = await marketer.client.post(
        "/api/v1/deals",
        json={"title": "Ada's order", "currency": "EUR", "contact_ids": [ada["id"]],
              "stage_id": stages["Qualified"]},
    )  # fmt: skip
    assert deal.status_code == 201, deal.text
    await marketer.client.post(
        f"{API}/sequences/{sequence['id']}/enrolments",
        json={"contact_ids": [ada["id"], bob["id"], cy["id"]]},
    )
    t0 = datetime.now(UTC) + timedelta(minutes=1)

    # The receiver is on a loopback address: refused unless private networks are allowed.
    monkeypatch.delenv("ORBIT_WEBHOOK_ALLOW_PRIVATE", raising=False)
    await _run(runtime, marketer, t0)
    state = await _enrolments(marketer, sequence["id"])
    assert hook.received == []
    assert state[cy["id"]]["status"] == "completed"  # not a VIP: the sequence ends for Cy
    for person in (ada, bob):
        assert state[person["id"]]["waiting"] == "retry"
        assert "non-public address" in state[person["id"]]["last_error"]
        assert datetime.fromisoformat(state[person["id"]]["due_at"]) == t0 + timedelta(minutes=1)

    monkeypatch.setenv("ORBIT_WEBHOOK_ALLOW_PRIVATE", "1")
    hook.statuses = [500]
    await _run(runtime, marketer, t0 + timedelta(minutes=2))
    state = await _enrolments(marketer, sequence["id"])
    failed = [p for p in (ada, bob) if state[p["id"]]["status"] == "active"]
    assert len(failed) == 1
    assert "500" in state[failed[0]["id"]]["last_error"]
    assert state[failed[0]["id"]]["attempts"] == 2
    await _run(runtime, marketer, t0 + timedelta(minutes=8))
    state = await _enrolments(marketer, sequence["id"])
    assert {state[p["id"]]["status"] for p in (ada, bob)} == {"completed"}

    keys = [headers["idempotency-key"] for headers, _body in hook.received]
    assert len(keys) == 3
    assert len(set(keys)) == 2  # the retry carries its first attempt's key
    bodies = {body["contact"]["email"] for _headers, body in hook.received}
    assert bodies == {"ada@example.org", "bob@example.org"}
    assert hook.received[0][1]["sequence"]["name"] == "VIP desk"
    for headers, _body in hook.received:  # signed as Orbit's own webhooks are
        assert verify(
            "whsec_test",
            headers["orbit-signature"],
            int(headers["orbit-timestamp"]),
            hook.raw[headers["idempotency-key"]],
            now=int(time.time()),
        )

    ada_tags = (await marketer.client.get(f"/api/v1/contacts/{ada['id']}")).json()["tags"]
    bob_tags = (await marketer.client.get(f"/api/v1/contacts/{bob['id']}")).json()["tags"]
    assert "qualified" in ada_tags
    assert "qualified" not in bob_tags
