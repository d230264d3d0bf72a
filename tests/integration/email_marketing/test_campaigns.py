"""A campaign from a list to a local SMTP sink: headers, personalisation, counters, states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.plugin_fixtures.relay import RELAYED

from .conftest import (
    API,
    Sink,
    campaign,
    configure,
    contact,
    free_port,
    list_of,
    run_send_job,
    template,
)


async def test_a_list_campaign_reaches_the_sink_personalised_with_one_click_unsubscribe(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    bob = await contact(marketer, first_name="Bob", email="bob@example.net")
    nobody = await contact(marketer, first_name="No address")
    list_id = await list_of(marketer, [ada, bob, nobody])
    made = await template(marketer)
    campaign_id = await campaign(marketer, made["id"], "list", list_id)
    scheduled = await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"

    await run_send_job(runtime)

    [to_ada] = sink.to("ada@example.org")
    assert len(sink.to("bob@example.net")) == 1
    assert len(sink.received) == 2  # the contact without an address gets nothing
    assert to_ada["Subject"] == "Spring for Ada"
    assert to_ada["From"] == "Shop <news@shop.example.com>"
    assert "<mailto:news@shop.example.com?subject=unsubscribe" in to_ada["List-Unsubscribe"]
    assert to_ada.get_content_type() == "multipart/alternative"
    text = to_ada.get_body(preferencelist=("plain",))
    html = to_ada.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "Hello Ada" in text.get_content()
    assert "See the offer" in text.get_content()
    body = html.get_content()
    assert "Hello Ada" in body
    assert "See you soon &amp; thanks!" in body
    assert 'style="' in body  # CSS inlined onto the elements
    assert len(body.encode()) < 102 * 1024

    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["status"] == "sent"
    assert report["recipients"] == 2
    assert report["sent"] == 2
    assert report["report"]["queued"] == 0
    assert report["started_at"] is not None
    assert report["finished_at"] is not None


async def test_pause_resume_and_cancel_follow_the_campaign_states(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    list_id = await list_of(marketer, [ada])
    made = await template(marketer)
    campaign_id = await campaign(marketer, made["id"], "list", list_id)
    base = f"{API}/campaigns/{campaign_id}"
    early = await marketer.client.post(f"{base}/pause")
    assert early.status_code == 409
    assert "draft" in early.json()["detail"]
    later = await marketer.client.post(
        f"{base}/schedule", json={"scheduled_at": "2099-01-01T09:00:00+00:00"}
    )
    assert later.json()["status"] == "scheduled"
    await run_send_job(runtime)
    assert sink.received == []  # not due yet
    assert (await marketer.client.post(f"{base}/pause")).json()["status"] == "paused"
    assert (await marketer.client.post(f"{base}/resume")).json()["status"] == "scheduled"
    cancelled = await marketer.client.post(f"{base}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert (await marketer.client.post(f"{base}/resume")).status_code == 409
    await run_send_job(runtime)
    assert sink.received == []


async def test_bad_campaign_input_names_each_field_and_writes_nothing(marketer: Member) -> None:
    response = await marketer.client.post(
        f"{API}/campaigns",
        json={"name": "", "template_id": "nope", "audience_kind": "everyone",
              "audience_id": "00000000-0000-0000-0000-000000000000", "from_email": "x@"},
    )  # fmt: skip
    assert response.status_code == 400
    keys = {item["key"] for item in response.json()["extra"]}
    assert keys == {"name", "template_id", "audience_kind", "from_email"}
    assert (await marketer.client.get(f"{API}/campaigns")).json()["items"] == []


async def test_bad_template_blocks_are_named(marketer: Member) -> None:
    response = await marketer.client.post(
        f"{API}/templates",
        json={"name": "T", "subject": "{{ oops", "blocks": [
            {"type": "heading", "text": "Hi"},
            {"type": "button", "text": "Go", "url": "javascript:alert(1)"},
            {"type": "poster"},
        ]},
    )  # fmt: skip
    assert response.status_code == 400
    keys = {item["key"] for item in response.json()["extra"]}
    assert keys == {"subject", "blocks[1].url", "blocks[2].type"}
    huge = await marketer.client.post(
        f"{API}/templates",
        json={"name": "Huge", "subject": "Hi",
              "blocks": [{"type": "text", "text": "word " * 3000}] * 10},
    )  # fmt: skip
    assert huge.status_code == 400
    assert "Gmail clips" in huge.json()["detail"]
    assert (await marketer.client.get(f"{API}/templates")).json()["items"] == []


async def test_a_plugin_transport_sends_instead_of_smtp_and_its_refusals_bounce(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    enabled = await marketer.client.post(
        "/api/v1/marketplace/mail_relay/enable", json={"scopes": []}
    )
    assert enabled.status_code == 201, enabled.text
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    gone = await contact(marketer, first_name="Gone", email="gone@refused.example")
    list_id = await list_of(marketer, [ada, gone])
    made = await template(marketer)
    campaign_id = await campaign(marketer, made["id"], "list", list_id)
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)

    assert sink.received == []  # the relay sent them, not the SMTP server
    relayed = RELAYED[marketer.slug]
    assert sorted(m.recipient for m in relayed) == ["ada@example.org", "gone@refused.example"]
    assert all(m.sender.startswith("b+") for m in relayed)  # the VERP return path
    assert all(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in m.data for m in relayed)
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert (report["status"], report["sent"], report["bounced"]) == ("sent", 1, 1)


async def test_a_scheduled_campaign_waits_for_its_time_and_a_test_send_goes_to_one_address(
    marketer: Member, sink: Sink, runtime: Runtime, endpoints: Endpoints
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    list_id = await list_of(marketer, [ada])
    made = await template(marketer)
    tested = await marketer.client.post(
        f"{API}/templates/{made['id']}/test",
        json={"email": "me@shop.example.com", "contact_id": ada["id"],
              "from_email": "news@shop.example.com"},
    )  # fmt: skip
    assert tested.json() == {"sent": True, "code": 250, "detail": ""}
    [sample] = sink.to("me@shop.example.com")
    assert sample["Subject"] == "[Test] Spring for Ada"
    assert sample["List-Unsubscribe"] is None  # nobody to unsubscribe
    campaign_id = await campaign(marketer, made["id"], "list", list_id)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    await marketer.client.post(
        f"{API}/campaigns/{campaign_id}/schedule", json={"scheduled_at": soon.isoformat()}
    )
    await run_send_job(runtime)
    assert sink.to("ada@example.org") == []  # not yet
    # Time passes: its time comes.
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE email_marketing_campaigns SET scheduled_at = now() - interval '1 second' "
            "WHERE id = $1",
            UUID(campaign_id),
        )
    finally:
        await admin.close()
    await run_send_job(runtime)
    assert len(sink.to("ada@example.org")) == 1


async def test_an_unreachable_smtp_server_defers_the_messages_and_says_why(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    await configure(marketer, {"smtp_url": f"smtp://127.0.0.1:{free_port()}"})  # nobody there
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    made = await template(marketer)
    campaign_id = await campaign(marketer, made["id"], "list", await list_of(marketer, [ada]))
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert (report["status"], report["sent"], report["deferred"]) == ("sending", 0, 1)
    assert report["report"]["queued"] == 1  # waiting for its retry
    assert "cannot connect" in report["last_error"]
    page = await marketer.client.get(
        f"/t/{marketer.slug}/apps/email_marketing/campaigns/{campaign_id}"
    )
    assert "Last delivery problem (retried later)" in page.text
