"""Sequences under a frozen clock: trigger, waits, a person's click, email, task; exits; isolation.

The sequence job is called with an explicit ``now`` days apart; the campaign send job
then delivers what the sequence queued to the local SMTP sink.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx
import pytest

from orbit.platform.db.servers import Endpoints
from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing import sequences
from orbit.plugins.jobs import deliver_plugin_events
from tests.conftest import Member

from .conftest import API, Sink, configure, contact, run_send_job, template
from .deliverability import acting

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0"
SCANNER = "Mozilla/5.0 (compatible; Barracuda Sentinel scanner)"


async def _deliver(runtime: Runtime) -> None:
    """What the worker does: dispatch committed events, then deliver them to plugins."""
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    while await deliver_plugin_events(runtime.plugins):
        pass


async def _run(runtime: Runtime, member: Member, now: datetime) -> int:
    """One run of the sequence job in the member's workspace, at ``now``."""
    async with acting(runtime, member) as ctx:
        return await sequences.run_due(ctx, now)


async def _admin(endpoints: Endpoints, query: str, *args: Any) -> Any:
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        return await admin.fetch(query, *args)
    finally:
        await admin.close()


async def _sequence(
    member: Member, body: dict[str, Any], *, activate: bool = True
) -> dict[str, Any]:
    made = await member.client.post(
        f"{API}/sequences", json={"from_email": "hello@shop.example.com", **body}
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "draft"
    if activate:
        active = await member.client.post(f"{API}/sequences/{made.json()['id']}/activate")
        assert active.status_code == 200, active.text
        assert active.json()["status"] == "active"
        return dict(active.json())
    return dict(made.json())


async def _enrolments(member: Member, sequence_id: str) -> dict[str, dict[str, Any]]:
    """The sequence's enrolments by contact id."""
    listed = await member.client.get(f"{API}/sequences/{sequence_id}/enrolments")
    assert listed.status_code == 200, listed.text
    return {row["contact_id"]: row for row in listed.json()["items"]}


async def _owner(member: Member) -> str:
    members = (await member.client.get("/api/v1/members")).json()
    return str(members[0]["id"])


def _links(message: Any) -> tuple[list[str], list[str]]:
    """(tracked click links, unsubscribe links) of a received message's HTML."""
    part = message.get_body(preferencelist=("html",))
    hrefs = re.findall(r'href="([^"]+)"', str(part.get_content()))
    return (
        [h for h in hrefs if "/p/email_marketing/c/" in h],
        [h for h in hrefs if "/p/email_marketing/u/" in h],
    )


def _public(app: object) -> httpx.AsyncClient:
    """A cookie-less visitor (a mail reader, a scanner)."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _path(url: str) -> str:
    return urlsplit(url).path


async def test_a_sequence_waits_two_days_emails_and_gives_the_owner_a_task_for_a_person_s_click(
    app: object, marketer: Member, sink: Sink, runtime: Runtime, endpoints: Endpoints
) -> None:
    owner = await _owner(marketer)
    ada = await contact(marketer, first_name="Ada", email="ada@example.org", owner_id=owner)
    bob = await contact(marketer, first_name="Bob", email="bob@example.net", owner_id=owner)
    made = await template(marketer)
    created = await marketer.client.post(f"{API}/lists", json={"name": "Trial"})
    list_id = created.json()["id"]
    sequence = await _sequence(
        marketer,
        {
            "name": "Trial follow-up",
            "trigger": {"type": "list_joined", "list_id": list_id},
            "quiet_hours": None,
            "steps": [
                {"type": "wait", "days": 2},
                {"type": "email", "template_id": made["id"]},
                {"type": "wait", "days": 1},
                {"type": "condition", "when": "clicked", "yes": "next", "no": "end"},
                {"type": "task", "title": "Call about the trial", "due_in_hours": 4},
            ],
        },
    )
    joined = await marketer.client.post(
        f"{API}/lists/{list_id}/members", json={"contact_ids": [ada["id"], bob["id"]]}
    )
    assert joined.status_code == 201, joined.text
    await _deliver(runtime)
    enrolled = await _enrolments(marketer, sequence["id"])
    assert set(enrolled) == {ada["id"], bob["id"]}
    assert enrolled[ada["id"]]["step"] == 1
    assert enrolled[ada["id"]]["status"] == "active"
    t0 = datetime.fromisoformat(enrolled[ada["id"]]["enrolled_at"])
    assert datetime.fromisoformat(enrolled[ada["id"]]["due_at"]) == t0 + timedelta(days=2)

    # The event delivered again enrols nobody twice.
    await _admin(
        endpoints,
        "UPDATE plugin_event_deliveries SET status = 'pending', next_attempt_at = now() "
        "WHERE tenant_id = $1 AND plugin_id = 'email_marketing'",
        UUID(marketer.workspace_id),
    )
    await _deliver(runtime)
    assert len(await _enrolments(marketer, sequence["id"])) == 2

    # Day 1: still waiting, nothing sent.
    assert await _run(runtime, marketer, t0 + timedelta(days=1)) == 0
    await run_send_job(runtime)
    assert sink.received == []

    # Day 2: the email goes out once, however often the job runs.
    day2 = t0 + timedelta(days=2, minutes=1)
    assert await _run(runtime, marketer, day2) == 4  # the wait and the email, twice
    assert await _run(runtime, marketer, day2) == 0
    await run_send_job(runtime)
    [to_ada] = sink.to("ada@example.org")
    [to_bob] = sink.to("bob@example.net")
    assert to_ada["Subject"] == "Spring for Ada"
    assert to_ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/p/email_marketing/u/" in to_ada["List-Unsubscribe"]
    enrolled = await _enrolments(marketer, sequence["id"])
    assert enrolled[ada["id"]]["step"] == 3
    assert datetime.fromisoformat(enrolled[ada["id"]]["due_at"]) == day2 + timedelta(days=1)

    # Ada clicks herself an hour later; Bob's mail scanner follows the links.
    await _admin(
        endpoints,
        "UPDATE email_marketing_messages SET sent_at = sent_at - interval '1 hour' "
        "WHERE tenant_id = $1",
        UUID(marketer.workspace_id),
    )
    ada_clicks, _ = _links(to_ada)
    bob_clicks, _ = _links(to_bob)
    async with _public(app) as visitor:
        clicked = await visitor.get(_path(ada_clicks[0]), headers={"User-Agent": BROWSER})
        assert clicked.status_code == 302
        for url in bob_clicks:  # every link at once, the hidden one included
            await visitor.get(_path(url), headers={"User-Agent": SCANNER})

    # Day 3: the condition sees Ada's click as a person's and Bob's as a machine's.
    day3 = day2 + timedelta(days=1, minutes=1)
    await _run(runtime, marketer, day3)
    await _run(runtime, marketer, day3)
    enrolled = await _enrolments(marketer, sequence["id"])
    assert enrolled[ada["id"]]["status"] == "completed"
    assert enrolled[bob["id"]]["status"] == "completed"
    assert enrolled[ada["id"]]["step"] is None
    assert enrolled[ada["id"]]["due_at"] is None
    ada_steps = {h["step"]: h for h in enrolled[ada["id"]]["history"]}
    bob_steps = {h["step"]: h for h in enrolled[bob["id"]]["history"]}
    assert ada_steps[4]["outcome"] == "yes"
    assert bob_steps[4]["outcome"] == "no"
    assert 5 not in bob_steps
    task_id = ada_steps[5]["detail"]["task_id"]
    task = (await marketer.client.get(f"/api/v1/tasks/{task_id}")).json()
    assert task["title"] == "Call about the trial"
    assert task["assignee_id"] == owner
    assert task["contact_id"] == ada["id"]
    assert datetime.fromisoformat(task["due_at"]) == day3 + timedelta(hours=4)
    mine = (await marketer.client.get("/api/v1/tasks")).json()
    assert [t["id"] for t in mine if t["contact_id"] in {ada["id"], bob["id"]}] == [task_id]

    # A retried job that walks Ada's enrolment again from the email sends and creates nothing.
    email_step = sequence["steps"][1]["id"]
    await _admin(
        endpoints,
        "UPDATE email_marketing_enrolments SET status = 'active', step_id = $2, "
        "due_at = $3, finished_at = NULL WHERE tenant_id = $1 AND contact_id = $4",
        UUID(marketer.workspace_id),
        UUID(email_step),
        day2,
        UUID(ada["id"]),
    )
    await _run(runtime, marketer, day3 + timedelta(days=2))
    await run_send_job(runtime)
    assert len(sink.to("ada@example.org")) == 1
    mine = (await marketer.client.get("/api/v1/tasks")).json()
    assert [t["id"] for t in mine if t["contact_id"] == ada["id"]] == [task_id]
    queued = await _admin(
        endpoints,
        "SELECT count(*) AS n FROM email_marketing_messages WHERE tenant_id = $1",
        UUID(marketer.workspace_id),
    )
    assert queued[0]["n"] == 2
    # The step campaign counted both sends and Ada's human click only.
    report = await _admin(
        endpoints,
        "SELECT sent, clicked_human, status FROM email_marketing_campaigns WHERE id = $1",
        UUID(email_step),
    )
    assert dict(report[0]) == {"sent": 2, "clicked_human": 1, "status": "sending"}
    listed = (await marketer.client.get(f"{API}/campaigns")).json()["items"]
    assert listed == []  # a sequence's emails are not campaigns of their own on the list


def _keys(response: httpx.Response) -> set[str]:
    return {item["key"] for item in response.json()["extra"]}


async def test_contacts_leave_on_unsubscribe_deal_won_and_reply_and_the_rest_go_on(
    app: object, marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    people = {
        name: await contact(marketer, first_name=name.title(), email=f"{name}@example.org")
        for name in ("ada", "bob", "cy", "dee")
    }
    made = await template(marketer)
    sequence = await _sequence(
        marketer,
        {
            "name": "Onboarding",
            "trigger": {"type": "manual"},
            "quiet_hours": None,
            "steps": [
                {"type": "email", "template_id": made["id"]},
                {"type": "wait", "days": 1},
                {"type": "email", "template_id": made["id"]},
            ],
        },
    )
    url = f"{API}/sequences/{sequence['id']}/enrolments"
    enrolled = await marketer.client.post(
        url, json={"contact_ids": [c["id"] for c in people.values()]}
    )
    assert enrolled.json() == {"enrolled": 4}, enrolled.text
    t0 = datetime.fromisoformat(
        (await _enrolments(marketer, sequence["id"]))[people["ada"]["id"]]["enrolled_at"]
    )
    await _run(runtime, marketer, t0 + timedelta(minutes=1))
    await run_send_job(runtime)
    assert sorted(rcpt for _, [rcpt], _ in sink.received) == [
        "ada@example.org", "bob@example.org", "cy@example.org", "dee@example.org",
    ]  # fmt: skip

    # Ada unsubscribes with the one-click POST of her email's List-Unsubscribe header.
    [to_ada] = sink.to("ada@example.org")
    https, _mailto = (p.strip().strip("<>") for p in str(to_ada["List-Unsubscribe"]).split(","))
    assert "/p/email_marketing/u/" in https
    async with _public(app) as mail_provider:
        done = await mail_provider.post(
            _path(https),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200, done.text
    # Bob's deal is won.
    deal = await marketer.client.post(
        "/api/v1/deals",
        json={"title": "Bob's order", "currency": "EUR", "contact_ids": [people["bob"]["id"]]},
    )
    assert deal.status_code == 201, deal.text
    pipeline = (await marketer.client.get("/api/v1/pipelines")).json()[0]
    won = next(s["id"] for s in pipeline["stages"] if s["kind"] == "won")
    moved = await marketer.client.post(
        f"/api/v1/deals/{deal.json()['id']}/move", json={"stage_id": won}
    )
    assert moved.status_code == 200, moved.text
    await _deliver(runtime)
    # Cy replies.
    replied = await marketer.client.post(
        f"{API}/sequences/replies", json={"email": "CY@example.org"}
    )
    assert replied.json() == {"exited": 1}, replied.text

    state = await _enrolments(marketer, sequence["id"])
    assert state[people["bob"]["id"]]["status"] == "exited"
    assert state[people["bob"]["id"]]["exit_reason"] == "a deal was won"
    assert state[people["cy"]["id"]]["exit_reason"] == "replied"
    assert state[people["ada"]["id"]]["status"] == "exited"
    assert state[people["ada"]["id"]]["exit_reason"] == "suppressed (unsubscribe)"
    assert state[people["dee"]["id"]]["status"] == "active"

    await _run(runtime, marketer, t0 + timedelta(days=1, minutes=2))
    await run_send_job(runtime)
    state = await _enrolments(marketer, sequence["id"])
    assert state[people["dee"]["id"]]["status"] == "completed"
    assert len(sink.to("dee@example.org")) == 2
    for name in ("ada", "bob", "cy"):
        assert len(sink.to(f"{name}@example.org")) == 1
    # Each contact's timeline says when they entered and why they left.
    async with acting(runtime, marketer) as ctx:
        entries = await sequences.timeline(ctx, UUID(people["bob"]["id"]))
    assert [(e.title, e.body) for e in entries] == [
        ("Entered the sequence “Onboarding”", "enrolled by hand"),
        ("Left the sequence “Onboarding”", "a deal was won"),
    ]
    # Bob's data export lists the enrolment; erasing him forgets it.
    exported = (await marketer.client.get(f"/api/v1/contacts/{people['bob']['id']}/export")).json()
    [enrolment] = exported["plugins"]["email_marketing"]["sequences"]
    assert (enrolment["sequence"], enrolment["status"]) == ("Onboarding", "exited")
    erased = await marketer.client.post(f"/api/v1/contacts/{people['bob']['id']}/erase")
    assert erased.status_code == 200, erased.text
    assert people["bob"]["id"] not in await _enrolments(marketer, sequence["id"])


async def test_emails_wait_out_quiet_hours_in_the_contact_s_time_zone_or_the_workspace_s(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    wrong = await marketer.client.put(
        "/api/v1/marketplace/email_marketing/settings",
        json={"settings": {"smtp_url": sink.url, "time_zone": "Mars/Olympus_Mons"}},
    )
    assert wrong.status_code == 400
    assert "not an IANA time zone" in wrong.text
    await configure(
        marketer,
        {"smtp_url": sink.url, "rate_per_second": 1000, "domain_rate_per_second": 1000,
         "time_zone": "Europe/Athens"},
    )  # fmt: skip
    tokyo = await contact(
        marketer, first_name="Aiko", email="aiko@example.jp", custom={"time_zone": "Asia/Tokyo"}
    )
    athens = await contact(marketer, first_name="Eleni", email="eleni@example.gr")
    made = await template(marketer)
    sequence = await _sequence(
        marketer,
        {
            "name": "Welcome",
            "trigger": {"type": "manual"},
            "quiet_hours": {"start": "21:00", "end": "08:00"},
            "steps": [{"type": "email", "template_id": made["id"]}],
        },
    )
    await marketer.client.post(
        f"{API}/sequences/{sequence['id']}/enrolments",
        json={"contact_ids": [tokyo["id"], athens["id"]]},
    )
    # 14:00 UTC: 23:00 in Tokyo (quiet), 16:00 in Athens.
    now = datetime(2027, 3, 10, 14, 0, tzinfo=UTC)
    await _run(runtime, marketer, now)
    state = await _enrolments(marketer, sequence["id"])
    assert state[athens["id"]]["status"] == "completed"
    assert state[tokyo["id"]]["status"] == "active"
    assert state[tokyo["id"]]["waiting"] == "quiet hours"
    morning = datetime(2027, 3, 10, 23, 0, tzinfo=UTC)  # 08:00 on the 11th in Tokyo
    assert datetime.fromisoformat(state[tokyo["id"]]["due_at"]) == morning
    await _run(runtime, marketer, morning - timedelta(minutes=1))
    await run_send_job(runtime)
    assert [rcpt for _, [rcpt], _ in sink.received] == ["eleni@example.gr"]
    await _run(runtime, marketer, morning)
    await run_send_job(runtime)
    assert len(sink.to("aiko@example.jp")) == 1
    assert (await _enrolments(marketer, sequence["id"]))[tokyo["id"]]["status"] == "completed"


async def test_bad_sequences_are_refused_naming_each_field_and_steps_stay_while_people_are_in(
    marketer: Member,
) -> None:
    made = await template(marketer)
    refused = await marketer.client.post(
        f"{API}/sequences",
        json={
            "name": "",
            "trigger": {"type": "list_joined", "list_id": "0190b3c4-0000-7000-8000-000000000000"},
            "from_email": "not an address",
            "quiet_hours": {"start": "25:00", "end": "08:00"},
            "steps": [
                {"type": "wait"},
                {"type": "condition", "when": "clicked"},
                {"type": "email", "template_id": "nope"},
                {"type": "condition", "when": "opened", "email": 3, "yes": 1},
                {"type": "condition", "when": "fields", "filters": [{"field": "x", "op": "eq"}]},
                {"type": "tag", "tags": []},
                {"type": "webhook", "url": "ftp://example.com"},
                {"type": "dance"},
            ],
        },
    )
    assert refused.status_code == 400, refused.text
    assert {
        "name", "trigger.list_id", "from_email", "quiet_hours.start", "steps[0]",
        "steps[1].when", "steps[2].template_id", "steps[3].yes", "steps[5].tags",
        "steps[6].url", "steps[7].type",
    } <= _keys(refused)  # fmt: skip
    assert any(key.startswith("steps[4].filters") for key in _keys(refused))
    assert (await marketer.client.get(f"{API}/sequences")).json() == {"items": []}

    person = await contact(marketer, first_name="Ada", email="ada@example.org")
    sequence = await _sequence(
        marketer,
        {
            "name": "Nurture",
            "trigger": {"type": "manual"},
            "steps": [{"type": "wait", "days": 3}, {"type": "email", "template_id": made["id"]}],
        },
    )
    assert sequence["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    await marketer.client.post(
        f"{API}/sequences/{sequence['id']}/enrolments", json={"contact_ids": [person["id"]]}
    )
    changed = await marketer.client.put(
        f"{API}/sequences/{sequence['id']}", json={"steps": [{"type": "wait", "days": 1}]}
    )
    assert changed.status_code == 409, changed.text
    renamed = await marketer.client.put(
        f"{API}/sequences/{sequence['id']}", json={"name": "Nurture 2"}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Nurture 2"
    assert [s["type"] for s in renamed.json()["steps"]] == ["wait", "email"]


async def test_another_workspace_sees_no_sequence_and_its_events_enrol_nobody_here(
    marketer: Member, outsider: Member, runtime: Runtime
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    zed = await contact(outsider, first_name="Zed", email="zed@example.org")
    own_list = (await marketer.client.post(f"{API}/lists", json={"name": "Trial"})).json()["id"]
    their_list = (await outsider.client.post(f"{API}/lists", json={"name": "Trial"})).json()["id"]
    made = await template(marketer)
    theirs_made = await template(outsider)
    steps = [{"type": "wait", "days": 1}, {"type": "tag", "tags": ["followed"]}]
    ours = await _sequence(
        marketer,
        {"name": "Trial", "trigger": {"type": "list_joined", "list_id": own_list}, "steps": steps},
    )
    theirs = await _sequence(
        outsider,
        {"name": "Trial", "trigger": {"type": "list_joined", "list_id": their_list},
         "steps": [*steps, {"type": "email", "template_id": theirs_made["id"]}]},
    )  # fmt: skip
    assert made["id"] != theirs_made["id"]

    await outsider.client.post(
        f"{API}/lists/{their_list}/members", json={"contact_ids": [zed["id"]]}
    )
    await _deliver(runtime)
    assert await _enrolments(marketer, ours["id"]) == {}
    assert set(await _enrolments(outsider, theirs["id"])) == {zed["id"]}
    await marketer.client.post(f"{API}/lists/{own_list}/members", json={"contact_ids": [ada["id"]]})
    await _deliver(runtime)
    assert set(await _enrolments(marketer, ours["id"])) == {ada["id"]}
    assert set(await _enrolments(outsider, theirs["id"])) == {zed["id"]}

    # Nothing of ours is reachable from there.
    assert [s["id"] for s in (await outsider.client.get(f"{API}/sequences")).json()["items"]] == [
        theirs["id"]
    ]
    for method, path in [
        ("GET", f"{API}/sequences/{ours['id']}"),
        ("PUT", f"{API}/sequences/{ours['id']}"),
        ("POST", f"{API}/sequences/{ours['id']}/pause"),
        ("GET", f"{API}/sequences/{ours['id']}/enrolments"),
        ("POST", f"{API}/sequences/{ours['id']}/enrolments"),
    ]:
        response = await outsider.client.request(
            method,
            path,
            json={"name": "x", "contact_ids": [zed["id"]]} if method != "GET" else None,
        )
        assert response.status_code == 404, (method, path, response.text)
    stolen = await outsider.client.post(
        f"{API}/sequences/{theirs['id']}/enrolments", json={"contact_ids": [ada["id"]]}
    )
    assert stolen.status_code == 400
    assert _keys(stolen) == {"contact_ids[0]"}
    borrowed = await outsider.client.post(
        f"{API}/sequences",
        json={"name": "Borrowed", "from_email": "a@b.example", "trigger":
              {"type": "list_joined", "list_id": own_list},
              "steps": [{"type": "email", "template_id": made["id"]}]},
    )  # fmt: skip
    assert _keys(borrowed) == {"trigger.list_id", "steps[0].template_id"}
    reply = await outsider.client.post(
        f"{API}/sequences/replies", json={"email": "ada@example.org"}
    )
    assert reply.json() == {"exited": 0}

    # Their job, however late, walks only their enrolments.
    later = datetime.now(UTC) + timedelta(days=3)
    await _run(runtime, outsider, later)
    assert (await _enrolments(outsider, theirs["id"]))[zed["id"]]["status"] == "completed"
    mine = (await _enrolments(marketer, ours["id"]))[ada["id"]]
    assert mine["status"] == "active"
    assert mine["step"] == 1
    assert (
        "followed"
        not in (await marketer.client.get(f"/api/v1/contacts/{ada['id']}")).json()["tags"]
    )
    await _run(runtime, marketer, later)
    assert "followed" in (await marketer.client.get(f"/api/v1/contacts/{ada['id']}")).json()["tags"]


async def test_a_crashed_run_leaves_nothing_and_two_workers_never_walk_one_enrolment(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    made = await template(marketer)
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    bob = await contact(marketer, first_name="Bob", email="bob@example.org")
    sequence = await _sequence(
        marketer,
        {
            "name": "Hello",
            "trigger": {"type": "manual"},
            "quiet_hours": None,
            "steps": [
                {"type": "email", "template_id": made["id"]},
                {"type": "tag", "tags": ["hi"]},
            ],
        },
    )
    await marketer.client.post(
        f"{API}/sequences/{sequence['id']}/enrolments", json={"contact_ids": [ada["id"], bob["id"]]}
    )
    now = datetime.now(UTC) + timedelta(minutes=1)

    # A worker dies after walking both: its transaction rolls back, the timers stay.
    async def killed() -> None:
        async with acting(runtime, marketer) as ctx:
            assert await sequences.run_due(ctx, now) == 4
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError, match="worker killed"):
        await killed()
    state = await _enrolments(marketer, sequence["id"])
    assert {row["status"] for row in state.values()} == {"active"}
    assert {row["step"] for row in state.values()} == {1}

    # Two workers at once: the enrolments one has claimed, the other skips.
    claimed, release = asyncio.Event(), asyncio.Event()

    async def first() -> int:
        async with acting(runtime, marketer) as ctx:
            done = await sequences.run_due(ctx, now)
            claimed.set()
            await asyncio.wait_for(release.wait(), 30)
            return done

    async def second() -> int:
        await asyncio.wait_for(claimed.wait(), 30)
        try:
            async with acting(runtime, marketer) as ctx:
                return await sequences.run_due(ctx, now)
        finally:
            release.set()

    assert await asyncio.gather(first(), second()) == [4, 0]
    await run_send_job(runtime)
    assert len(sink.to("ada@example.org")) == 1
    assert len(sink.to("bob@example.org")) == 1
    state = await _enrolments(marketer, sequence["id"])
    assert {row["status"] for row in state.values()} == {"completed"}
