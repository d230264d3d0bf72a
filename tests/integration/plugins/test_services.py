"""The context's data services: each works, needs its scope, and sees one workspace only.

The ``servant`` fixture plugin calls each service from its own API routes
(tests/plugin_fixtures/services.py); ``bare`` serves the same routes granted nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from orbit.platform.db.servers import Endpoints
from orbit.platform.errors import PaymentRequiredError
from orbit.platform.events.mail import SmtpServer, send_due_emails
from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.events.test_mail import Inbox, _free_port
from tests.plugin_fixtures.services import SERVICE_SCOPES

APP = "/api/v1/apps/servant"


async def _enable(member: Member, plugin: str = "servant") -> None:
    scopes = list(SERVICE_SCOPES) if plugin == "servant" else []
    response = await member.client.post(
        f"/api/v1/marketplace/{plugin}/enable", json={"scopes": scopes}
    )
    assert response.status_code == 201, response.text


async def _contact(member: Member, **fields: Any) -> dict[str, Any]:
    response = await member.client.post("/api/v1/contacts", json=fields)
    assert response.status_code == 201, response.text
    contact: dict[str, Any] = response.json()
    return contact


def _problems(response: Any) -> dict[str, str]:
    """The 400's problems by field (the API's ``extra``)."""
    return {item["key"]: item["message"] for item in response.json().get("extra", [])}


async def _admin_fetch(endpoints: Endpoints, query: str, *args: object) -> list[asyncpg.Record]:
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        return await admin.fetch(query, *args)
    finally:
        await admin.close()


async def test_query_count_and_by_email_see_the_workspace_only(alice: Member, bob: Member) -> None:
    await _enable(alice)
    vip = await _contact(alice, first_name="Ada", email="Ada@Example.com", tags=["vip"])
    await _contact(alice, first_name="Bea", tags=["lead"])
    theirs = await _contact(bob, first_name="Ada", email="bert@example.com", tags=["vip"])

    vips = [{"field": "tags", "op": "contains", "value": "vip"}]
    found = (await alice.client.post(f"{APP}/contacts/query", json={"filters": vips})).json()
    assert [c["id"] for c in found] == [vip["id"]]
    assert found[0]["email"] == "Ada@example.com"
    assert found[0]["tags"] == ["vip"]
    counted = await alice.client.post(f"{APP}/contacts/count", json={"filters": vips})
    assert counted.json() == {"count": 1}
    everyone = await alice.client.post(f"{APP}/contacts/count", json={})
    assert everyone.json() == {"count": 2}
    by_q = (await alice.client.post(f"{APP}/contacts/query", json={"q": "ADA"})).json()
    assert [c["id"] for c in by_q] == [vip["id"]]

    by_email = await alice.client.get(
        f"{APP}/contacts/by-email", params={"email": "ADA@example.COM"}
    )
    assert by_email.json()["id"] == vip["id"]
    # Bob's contact is not there for Alice's plugin, by any road.
    for road in (
        alice.client.get(f"{APP}/contacts/by-email", params={"email": "bert@example.com"}),
        alice.client.get(f"{APP}/contacts/{theirs['id']}"),
    ):
        response = await road
        assert response.status_code == 200
        assert response.content in (b"", b"null")
    ids = [{"field": "tags", "op": "in", "value": ["vip", "lead"]}]
    found = (await alice.client.post(f"{APP}/contacts/query", json={"filters": ids})).json()
    assert theirs["id"] not in [c["id"] for c in found]
    assert len(found) == 2


async def test_query_pages_by_id_with_after(alice: Member) -> None:
    await _enable(alice)
    made = sorted([(await _contact(alice, first_name=f"P{i}"))["id"] for i in range(5)])
    seen: list[str] = []
    after = None
    while True:
        page = await alice.client.post(f"{APP}/contacts/query", json={"limit": 2, "after": after})
        ids = [c["id"] for c in page.json()]
        if not ids:
            break
        seen += ids
        after = ids[-1]
    assert seen == made
    too_many = await alice.client.post(f"{APP}/contacts/query", json={"limit": 5000})
    assert too_many.status_code == 400
    assert "limit" in _problems(too_many)


async def test_query_filters_custom_fields_as_saved_views_do(alice: Member, bob: Member) -> None:
    await _enable(alice)
    for member in (alice, bob):
        defined = await member.client.post(
            "/api/v1/custom-fields",
            json={
                "object_type": "contact",
                "key": "tier",
                "label": "Tier",
                "type": "select",
                "options": ["gold", "silver"],
            },
        )
        assert defined.status_code == 201, defined.text
    gold = await _contact(alice, first_name="Goldie", custom={"tier": "gold"})
    await _contact(alice, first_name="Silvia", custom={"tier": "silver"})
    await _contact(bob, first_name="Bob Gold", custom={"tier": "gold"})
    golden = [{"field": "custom.tier", "op": "equals", "value": "gold"}]
    found = (await alice.client.post(f"{APP}/contacts/query", json={"filters": golden})).json()
    assert [c["id"] for c in found] == [gold["id"]]
    assert found[0]["custom"] == {"tier": "gold"}
    counted = await alice.client.post(f"{APP}/contacts/count", json={"filters": golden})
    assert counted.json() == {"count": 1}
    platinum = [{"field": "custom.tier", "op": "equals", "value": "platinum"}]
    refused = await alice.client.post(f"{APP}/contacts/count", json={"filters": platinum})
    assert refused.status_code == 400
    assert "not one of: gold, silver" in _problems(refused)["filters[0].value"]


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        ([{"field": "colour", "op": "equals", "value": "red"}], "filters[0].field"),
        ([{"field": "email", "op": "range", "value": "x"}], "filters[0].op"),
        ([{"field": "created_at", "op": "range", "value": {"min": "soon"}}], "filters[0].value"),
        ("not json", "filters"),
    ],
)
async def test_a_malformed_filter_is_a_400_naming_it(
    alice: Member, filters: Any, named: str
) -> None:
    await _enable(alice)
    for route in ("query", "count"):
        response = await alice.client.post(f"{APP}/contacts/{route}", json={"filters": filters})
        assert response.status_code == 400, response.text
        assert named in _problems(response), response.text


async def test_each_service_refuses_without_its_scope(alice: Member) -> None:
    await _enable(alice, "bare")
    contact = await _contact(alice, first_name="Ada", email="ada@example.com")
    bare = "/api/v1/apps/bare"
    calls = {
        "contacts:read": alice.client.post(f"{bare}/contacts/query", json={}),
        "contacts:read ": alice.client.post(f"{bare}/contacts/count", json={}),
        "contacts:read  ": alice.client.get(
            f"{bare}/contacts/by-email", params={"email": "ada@example.com"}
        ),
        "contacts:write": alice.client.patch(
            f"{bare}/contacts/{contact['id']}", json={"first_name": "Eve"}
        ),
        "contacts:write ": alice.client.post(
            f"{bare}/contacts/{contact['id']}/tags", json={"tags": ["x"]}
        ),
        "companies:read": alice.client.get(f"{bare}/companies/{contact['id']}"),
        "deals:write": alice.client.post(f"{bare}/deals/{contact['id']}/won"),
        "deals:write ": alice.client.post(
            f"{bare}/deals/{contact['id']}/move", json={"stage_id": contact["id"]}
        ),
        "tasks:write": alice.client.post(f"{bare}/tasks", json={"title": "Call"}),
        "tasks:read": alice.client.get(f"{bare}/tasks/{contact['id']}"),
        "users:read": alice.client.get(f"{bare}/users"),
        "mail:send": alice.client.post(
            f"{bare}/mail", json={"to": "a@example.com", "subject": "Hi", "text": "Hi"}
        ),
    }
    for scope, call in calls.items():
        response = await call
        assert response.status_code == 403, (scope, response.text)
        assert repr(scope.strip()) in response.text, (scope, response.text)
    unchanged = (await alice.client.get(f"/api/v1/contacts/{contact['id']}")).json()
    assert unchanged["first_name"] == "Ada"
    assert unchanged["tags"] == []
    tasks = (await alice.client.get("/api/v1/tasks")).json()
    assert tasks == [] or all(t["title"] != "Call" for t in tasks)


async def _entries(member: Member, **params: str) -> list[dict[str, Any]]:
    response = await member.client.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _events(endpoints: Endpoints, member: Member, event_type: str) -> list[dict[str, Any]]:
    rows = await _admin_fetch(
        endpoints,
        "SELECT data FROM outbox_events WHERE tenant_id = $1 AND type = $2 "
        "ORDER BY occurred_at, id",
        member.workspace_id,
        event_type,
    )
    return [json.loads(row["data"]) for row in rows]


async def test_contact_writes_leave_the_audit_entries_and_events_the_api_leaves(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    await _enable(alice)
    by_api = await _contact(alice, first_name="Ada", tags=["lead"])
    by_plugin = await _contact(alice, first_name="Ada", tags=["lead"])
    change = {"last_name": "Lovelace", "custom": {"tier": "gold"}}
    api = await alice.client.patch(f"/api/v1/contacts/{by_api['id']}", json=change)
    assert api.status_code == 200, api.text
    plugin = await alice.client.patch(f"{APP}/contacts/{by_plugin['id']}", json=change)
    assert plugin.status_code == 200, plugin.text
    assert plugin.json()["last_name"] == "Lovelace"
    assert plugin.json()["custom"] == {"tier": "gold"}
    tagged = await alice.client.post(
        f"{APP}/contacts/{by_plugin['id']}/tags", json={"tags": ["vip", "lead"]}
    )
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == ["lead", "vip"]

    api_entry, plugin_entry = [
        (await _entries(alice, record_type="contact", record_id=c["id"], action="update"))[-1]
        for c in (by_api, by_plugin)
    ]
    assert (
        plugin_entry["changes"]
        == api_entry["changes"]
        == {
            "last_name": {"before": "", "after": "Lovelace"},
            "custom.tier": {"before": None, "after": "gold"},
        }
    )
    assert plugin_entry["actor_type"] == "system"
    assert plugin_entry["actor_display"] == "plugin servant"
    tags_entry = (
        await _entries(alice, record_type="contact", record_id=by_plugin["id"], action="update")
    )[0]
    assert tags_entry["changes"] == {"tags": {"before": ["lead"], "after": ["lead", "vip"]}}
    updates = await _events(endpoints, alice, "contact.updated")
    mine = [e for e in updates if e["id"] == by_plugin["id"]]
    theirs = [e for e in updates if e["id"] == by_api["id"]]
    assert len(mine) == 2
    assert len(theirs) == 1
    assert set(mine[0]) == set(theirs[0])
    assert mine[-1]["tags"] == ["lead", "vip"]


async def test_contact_writes_refuse_bad_fields_and_other_workspaces(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    await _enable(alice)
    mine = await _contact(alice, first_name="Ada")
    theirs = await _contact(bob, first_name="Bert", tags=["x"])
    for body, field in (
        ({"email": "not an email"}, "email"),
        ({"colour": "red"}, "colour"),
        ({"first_name": 7}, "first_name"),
        ({"owner_id": theirs["id"]}, "owner_id"),
    ):
        response = await alice.client.patch(f"{APP}/contacts/{mine['id']}", json=body)
        assert response.status_code == 400, response.text
        assert field in _problems(response), response.text
    for call in (
        alice.client.patch(f"{APP}/contacts/{theirs['id']}", json={"first_name": "Eve"}),
        alice.client.post(f"{APP}/contacts/{theirs['id']}/tags", json={"tags": ["y"]}),
    ):
        response = await call
        assert response.status_code == 404, response.text
    still = (await bob.client.get(f"/api/v1/contacts/{theirs['id']}")).json()
    assert (still["first_name"], still["tags"]) == ("Bert", ["x"])
    assert await _events(endpoints, bob, "contact.updated") == []
    assert (await alice.client.get(f"/api/v1/contacts/{mine['id']}")).json()["email"] is None


async def _deal(member: Member, **fields: Any) -> dict[str, Any]:
    response = await member.client.post(
        "/api/v1/deals",
        json={"title": "Olive oil", "amount": "1200.50", "currency": "EUR"} | fields,
    )
    assert response.status_code == 201, response.text
    deal: dict[str, Any] = response.json()
    return deal


async def _stage(member: Member, name: str) -> str:
    pipeline = (await member.client.get("/api/v1/pipelines")).json()[0]
    return str(next(s["id"] for s in pipeline["stages"] if s["name"] == name))


async def test_deals_move_and_mark_won_as_the_api_does(
    alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    await _enable(alice)
    contact = await _contact(alice, first_name="Ada")
    by_api = await _deal(alice)
    by_plugin = await _deal(alice, contact_ids=[contact["id"]])
    seen = (await alice.client.get(f"{APP}/deals/{by_plugin['id']}")).json()
    assert seen["stage_name"] == "Lead"
    assert seen["amount"] == "1200.5000"
    assert seen["contact_id"] == contact["id"]
    assert seen["contact_ids"] == [contact["id"]]
    proposal = await _stage(alice, "Proposal")
    moved = await alice.client.post(
        f"{APP}/deals/{by_plugin['id']}/move", json={"stage_id": proposal}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_name"] == "Proposal"
    won = await alice.client.post(f"{APP}/deals/{by_plugin['id']}/won")
    assert won.status_code == 200, won.text
    assert (won.json()["status"], won.json()["stage_name"]) == ("won", "Won")
    assert won.json()["closed_at"] is not None
    again = await alice.client.post(f"{APP}/deals/{by_plugin['id']}/won")
    assert again.json()["status"] == "won"
    api_won = await alice.client.post(
        f"/api/v1/deals/{by_api['id']}/move", json={"stage_id": await _stage(alice, "Won")}
    )
    assert api_won.status_code == 200

    wins = await _events(endpoints, alice, "deal.won")
    assert sorted(e["id"] for e in wins) == sorted([by_api["id"], by_plugin["id"]])
    assert set(wins[0]) == set(wins[1])
    changes = await _events(endpoints, alice, "deal.stage_changed")
    assert [e["stage_name"] for e in changes if e["id"] == by_plugin["id"]] == ["Proposal", "Won"]
    history = (await alice.client.get(f"/api/v1/deals/{by_plugin['id']}/history")).json()
    assert len(history) == 3
    timeline = (await alice.client.get(f"/api/v1/deals/{by_plugin['id']}/timeline")).json()
    assert [a["subject"] for a in timeline["items"]] == ["Proposal → Won", "Lead → Proposal"]
    api_entry, plugin_entry = [
        (await _entries(alice, record_type="deal", record_id=d["id"], action="update"))[0]
        for d in (by_api, by_plugin)
    ]
    assert set(api_entry["changes"]) == set(plugin_entry["changes"])
    assert plugin_entry["changes"]["stage_name"] == {"before": "Proposal", "after": "Won"}
    assert plugin_entry["actor_display"] == "plugin servant"

    bad = await alice.client.post(
        f"{APP}/deals/{by_api['id']}/move", json={"stage_id": contact["id"]}
    )
    assert bad.status_code == 400
    assert "stage_id" in _problems(bad)
    theirs = await _deal(bob)
    bobs_stage = await _stage(bob, "Proposal")
    for call in (
        alice.client.post(f"{APP}/deals/{theirs['id']}/won"),
        alice.client.post(f"{APP}/deals/{theirs['id']}/move", json={"stage_id": bobs_stage}),
    ):
        response = await call
        assert response.status_code == 404, response.text
    assert (await alice.client.get(f"{APP}/deals/{theirs['id']}")).content in (b"", b"null")
    unchanged = (await bob.client.get(f"/api/v1/deals/{theirs['id']}")).json()
    assert (unchanged["stage_name"], unchanged["status"]) == ("Lead", "open")
    assert await _events(endpoints, bob, "deal.stage_changed") == []


async def test_tasks_users_and_companies(alice: Member, bob: Member) -> None:
    await _enable(alice)
    members = (await alice.client.get(f"{APP}/users")).json()
    assert [(m["email"], m["role"], m["time_zone"]) for m in members] == [
        (alice.email, "owner", "UTC")
    ]
    company = (await alice.client.post("/api/v1/companies", json={"name": "Acme"})).json()
    contact = await _contact(alice, first_name="Ada", company_id=company["id"])
    seen = (await alice.client.get(f"{APP}/companies/{company['id']}")).json()
    assert (seen["name"], seen["tags"], seen["custom"]) == ("Acme", [], {})
    created = await alice.client.post(
        f"{APP}/tasks",
        json={
            "title": "Call Ada",
            "assignee_id": members[0]["id"],
            "contact_id": contact["id"],
            "due_at": "2027-01-05T09:00:00+02:00",
            "notes": "About the invoice",
        },
    )
    assert created.status_code == 201, created.text
    task = (await alice.client.get(f"/api/v1/tasks/{created.json()['id']}")).json()
    assert (task["title"], task["assignee_id"], task["contact_id"]) == (
        "Call Ada",
        members[0]["id"],
        contact["id"],
    )
    assert task["due_at"].startswith("2027-01-05T07:00:00")
    read = (await alice.client.get(f"{APP}/tasks/{task['id']}")).json()
    assert (read["title"], read["notes"], read["done_at"]) == (
        "Call Ada",
        "About the invoice",
        None,
    )
    entry = (await _entries(alice, record_type="task", record_id=task["id"]))[0]
    assert (entry["action"], entry["actor_display"]) == ("create", "plugin servant")

    bobs_company = (await bob.client.post("/api/v1/companies", json={"name": "Bobco"})).json()
    bobs_contact = await _contact(bob, first_name="Bert")
    bobs_task = await bob.client.post(
        "/api/v1/tasks", json={"title": "Bob's", "due_at": "2027-01-05T09:00:00+00:00"}
    )
    assert bobs_task.status_code == 201, bobs_task.text
    theirs = await alice.client.get(f"{APP}/tasks/{bobs_task.json()['id']}")
    assert theirs.content in (b"", b"null")
    assert (await alice.client.get(f"{APP}/companies/{bobs_company['id']}")).content in (
        b"",
        b"null",
    )
    for body, field in (
        ({"title": "x", "contact_id": bobs_contact["id"]}, "contact_id"),
        ({"title": "x", "assignee_id": bobs_contact["id"]}, "assignee_id"),
        ({"title": ""}, "title"),
    ):
        response = await alice.client.post(f"{APP}/tasks", json=body)
        assert response.status_code == 400, response.text
        assert field in _problems(response)
    bobs_members = (await bob.client.get("/api/v1/members")).json()
    assert [m["email"] for m in bobs_members] == [bob.email]
    assert not {m["id"] for m in bobs_members} & {m["id"] for m in members}


@pytest.fixture
def mail_sink() -> Iterator[tuple[Inbox, SmtpServer]]:
    """A local SMTP server keeping what it receives."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpServer.from_url(f"smtp://127.0.0.1:{port}", "Orbit <no-reply@example.com>")
    finally:
        controller.stop()


async def test_mail_is_queued_with_the_request_and_sent_with_its_parts(
    alice: Member,
    bob: Member,
    runtime: Runtime,
    endpoints: Endpoints,
    mail_sink: tuple[Inbox, SmtpServer],
) -> None:
    await _enable(alice)
    inbox, server = mail_sink
    to = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    sent = await alice.client.post(
        f"{APP}/mail",
        json={
            "to": to,
            "subject": "Your invoice",
            "text": "Plain words",
            "html": "<p>Rich <b>words</b></p>",
            "reply_to": "billing@example.com",
            "headers": {"List-Unsubscribe": "<https://example.com/u/1>"},
        },
    )
    assert sent.status_code == 201, sent.text
    failed = await alice.client.post(
        f"{APP}/mail",
        json={"to": f"x{to}", "subject": "Never", "text": "rolled back", "then_fail": True},
    )
    assert failed.status_code == 500
    for body, field in (
        ({"to": "nobody", "subject": "Hi", "text": "x"}, "to"),
        ({"to": to, "subject": "Hi\r\nBcc: all@example.com", "text": "x"}, "subject"),
        (
            {"to": to, "subject": "Hi", "text": "x", "headers": {"Bcc": "all@example.com"}},
            "headers",
        ),
        (
            {"to": to, "subject": "Hi", "text": "x", "headers": {"X-A": "1\r\nBcc: b@x.io"}},
            "headers",
        ),
        ({"to": to, "subject": "Hi", "text": "x", "reply_to": "nope"}, "reply_to"),
    ):
        response = await alice.client.post(f"{APP}/mail", json=body)
        assert response.status_code == 400, response.text
        assert field in _problems(response), response.text
    queued = await _admin_fetch(
        endpoints,
        "SELECT tenant_id, to_address FROM outbox_emails WHERE to_address LIKE $1",
        f"%{to}",
    )
    assert [(str(r["tenant_id"]), r["to_address"]) for r in queued] == [(alice.workspace_id, to)]

    while await send_due_emails(runtime.db, server):
        pass
    [(_, raw)] = [m for m in inbox.messages if m[0] == [to]]
    message = message_from_bytes(raw)
    assert message["Subject"] == "Your invoice"
    assert message["Reply-To"] == "billing@example.com"
    assert message["List-Unsubscribe"] == "<https://example.com/u/1>"
    assert message.is_multipart()
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    assert b"Plain words" in parts["text/plain"]
    assert b"<b>words</b>" in parts["text/html"]


async def test_a_read_only_workspace_refuses_plugin_writes_but_not_reads(
    alice: Member, runtime: Runtime, endpoints: Endpoints
) -> None:
    await _enable(alice)
    contact = await _contact(alice, first_name="Ada")
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:  # what billing's webhook does when a subscription is canceled
        await admin.execute(
            "UPDATE tenants SET subscription_status = 'canceled' WHERE id = $1",
            uuid.UUID(alice.workspace_id),
        )
    finally:
        await admin.close()
    tenant_id = uuid.UUID(alice.workspace_id)
    async with runtime.db.transaction(tenant_id):  # as a job or an event delivery would
        ctx = (await runtime.plugins.for_tenant(tenant_id, alice.slug)).context("servant")
        with pytest.raises(PaymentRequiredError, match="read-only"):
            await ctx.contacts.update(uuid.UUID(contact["id"]), first_name="Eve")
        with pytest.raises(PaymentRequiredError):
            await ctx.tasks.create("Call Ada")
        found = await ctx.contacts.get(uuid.UUID(contact["id"]))
        assert found is not None
        assert found.first_name == "Ada"
    assert (await alice.client.get(f"{APP}/contacts/{contact['id']}")).json()["first_name"] == "Ada"
