"""Segments over contact fields and email behaviour, counts, and what a second workspace sees."""

from __future__ import annotations

import time
from collections import Counter
from uuid import UUID

import pytest

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing import audiences, sending, tracking
from tests.conftest import Member

from .conftest import (
    API,
    Sink,
    campaign,
    configure,
    contact,
    deliver_events,
    list_of,
    run_send_job,
    template,
)


async def test_a_segment_follows_contact_filters_and_its_campaign_reaches_only_them(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    await contact(marketer, first_name="Vip", email="vip1@example.org", tags=["vip"])
    await contact(marketer, first_name="Vip", email="vip2@example.org", tags=["vip", "de"])
    await contact(marketer, first_name="Plain", email="plain@example.org", tags=["de"])
    made = await marketer.client.post(
        f"{API}/segments",
        json={"name": "VIPs", "filters": [{"field": "tags", "op": "contains", "value": "vip"}]},
    )
    assert made.status_code == 201, made.text
    segment = made.json()
    assert segment["member_count"] == 2
    # Membership follows the contacts: a new VIP is in on the next count.
    await contact(marketer, first_name="Vip", email="vip3@example.org", tags=["vip"])
    counted = await marketer.client.post(f"{API}/segments/{segment['id']}/count")
    assert counted.json()["member_count"] == 3

    tpl = await template(marketer)
    campaign_id = await campaign(marketer, tpl["id"], "segment", segment["id"])
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)
    assert sorted(rcpt for _, [rcpt], _ in sink.received) == [
        "vip1@example.org",
        "vip2@example.org",
        "vip3@example.org",
    ]

    # Email behaviour: nobody has opened yet, so "opened" is empty and "not_opened" is all.
    opened = await marketer.client.post(
        f"{API}/segments",
        json={"name": "VIPs who opened", "filters": segment["filters"],
              "behaviour": [{"event": "opened", "campaign_id": campaign_id}]},
    )  # fmt: skip
    assert opened.json()["member_count"] == 0
    not_opened = await marketer.client.post(
        f"{API}/segments",
        json={"name": "Did not open", "behaviour": [{"event": "not_opened", "days": 7}]},
    )
    assert not_opened.json()["member_count"] == 4


async def test_bad_segments_name_the_field_and_save_nothing(marketer: Member) -> None:
    bad_filter = await marketer.client.post(
        f"{API}/segments",
        json={"name": "Bad", "filters": [{"field": "colour", "op": "equals", "value": "red"}]},
    )
    assert bad_filter.status_code == 400
    assert "filters[0].field" in bad_filter.text
    bad_behaviour = await marketer.client.post(
        f"{API}/segments",
        json={"name": "Bad", "behaviour": [{"event": "danced", "days": 0}]},
    )
    assert bad_behaviour.status_code == 400
    assert {item["key"] for item in bad_behaviour.json()["extra"]} == {"behaviour[0].event"}
    assert (await marketer.client.get(f"{API}/segments")).json()["items"] == []


async def test_a_spike_of_bounces_in_the_first_messages_pauses_the_campaign(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    await configure(
        marketer, {"smtp_url": sink.url, "rate_per_second": 25, "domain_rate_per_second": 1000}
    )
    people = [
        await contact(marketer, first_name=f"P{i}", email=f"p{i}@example.org") for i in range(80)
    ]
    for person in people[:5]:  # the first five addresses do not exist
        sink.refuse[person["email"]] = (550, "5.1.1 User unknown")
    list_id = await list_of(marketer, people)
    tpl = await template(marketer)
    campaign_id = await campaign(marketer, tpl["id"], "list", list_id)
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)

    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["status"] == "paused", str(report)
    assert "bounces in the first" in report["paused_reason"]
    assert report["bounced"] == 5
    assert report["sent"] == len(sink.received) < 75  # stopped before the end
    assert report["report"]["queued"] == 80 - 5 - report["sent"]


async def test_a_second_workspace_sees_and_changes_nothing_of_the_first(
    marketer: Member, outsider: Member, sink: Sink, runtime: Runtime
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org", tags=["vip"])
    list_id = await list_of(marketer, [ada])
    segment = (
        await marketer.client.post(
            f"{API}/segments",
            json={"name": "VIPs", "filters": [{"field": "tags", "op": "contains", "value": "vip"}]},
        )
    ).json()
    tpl = await template(marketer)
    campaign_id = await campaign(marketer, tpl["id"], "list", list_id)
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)

    for kind in ("lists", "segments", "templates", "campaigns"):
        assert (await outsider.client.get(f"{API}/{kind}")).json()["items"] == []
    for path in (f"lists/{list_id}", f"segments/{segment['id']}", f"templates/{tpl['id']}",
                 f"campaigns/{campaign_id}"):  # fmt: skip
        assert (await outsider.client.get(f"{API}/{path}")).status_code == 404
    assert (await outsider.client.post(f"{API}/campaigns/{campaign_id}/cancel")).status_code == 404
    own = (await outsider.client.post(f"{API}/lists", json={"name": "Mine"})).json()
    stolen = await outsider.client.post(
        f"{API}/lists/{own['id']}/members", json={"contact_ids": [ada["id"]]}
    )
    assert stolen.status_code == 400
    # A campaign of its own to its own segment of VIPs reaches none of the first's contacts.
    theirs = (
        await outsider.client.post(
            f"{API}/segments",
            json={"name": "VIPs", "filters": [{"field": "tags", "op": "contains", "value": "vip"}]},
        )
    ).json()
    assert theirs["member_count"] == 0
    page = await outsider.client.get(f"/t/{outsider.slug}/contacts/{ada['id']}")
    assert page.status_code == 404
    assert (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()["sent"] == 1


async def test_the_workspace_and_each_receiving_domain_keep_their_pace(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    await configure(
        marketer, {"smtp_url": sink.url, "rate_per_second": 20, "domain_rate_per_second": 4}
    )
    people = [
        await contact(marketer, first_name=f"P{i}", email=f"p{i}@{domain}")
        for i in range(40)
        for domain in ("one.example", "two.example", "three.example")
    ]
    list_id = await list_of(marketer, people)
    tpl = await template(marketer)
    campaign_id = await campaign(marketer, tpl["id"], "list", list_id)
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    started = time.monotonic()
    await run_send_job(runtime)  # one run: at most RUN_SECONDS of sending
    elapsed = time.monotonic() - started

    per_domain = Counter(rcpt.split("@")[1] for _, [rcpt], _ in sink.received)
    # Each domain: a full bucket (4) then 4 a second; three domains stay under the
    # workspace's 20 a second, so the domains set the pace.
    seconds = min(elapsed, sending.RUN_SECONDS) + 1
    for domain in ("one.example", "two.example", "three.example"):
        assert 0 < per_domain[domain] <= 4 + 4 * seconds, per_domain
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["status"] == "sending"  # 120 messages cannot all go in one run at this pace
    assert report["sent"] == len(sink.received) < 120


async def test_small_and_large_lists_reach_exactly_their_members(
    marketer: Member, sink: Sink, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two: a one-member list is read member by member, a five-member list by
    # paging through the workspace's contacts (three pages), whatever the page size.
    monkeypatch.setattr(audiences, "PAGE", 2)
    people = [
        await contact(marketer, first_name=f"P{i}", email=f"p{i}@example.org") for i in range(6)
    ]
    small = await list_of(marketer, people[:1], name="Small")
    large = await list_of(marketer, people[1:], name="Large")
    tpl = await template(marketer)
    for list_id in (small, large):
        campaign_id = await campaign(marketer, tpl["id"], "list", list_id)
        await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)
    assert sorted(rcpt for _, [rcpt], _ in sink.received) == sorted(p["email"] for p in people)


async def test_one_complaint_early_in_a_campaign_pauses_it(
    marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    await configure(
        marketer, {"smtp_url": sink.url, "rate_per_second": 25, "domain_rate_per_second": 1000}
    )
    people = [
        await contact(marketer, first_name=f"P{i}", email=f"c{i}@example.org") for i in range(200)
    ]
    tpl = await template(marketer)
    campaign_id = await campaign(marketer, tpl["id"], "list", await list_of(marketer, people))
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)  # one run at 25 a second: still sending afterwards
    assert (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()[
        "status"
    ] == "sending"

    tenant_id = UUID(marketer.workspace_id)
    async with runtime.db.transaction(tenant_id):  # a complaint report comes in
        plugins = await runtime.plugins.for_tenant(tenant_id, marketer.slug)
        ctx = plugins.context("email_marketing")
        message_id = await ctx.db.fetchval(
            "SELECT id FROM email_marketing_messages WHERE tenant_id = $1 AND status = 'sent' "
            "LIMIT 1",
            tenant_id,
        )
        assert await tracking.record_bounce(ctx, message_id, complaint=True, reason="abuse")
        await ctx.db.settle(ok=True)

    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["status"] == "paused"
    assert report["complained"] == 1
    assert "complaints in the first" in report["paused_reason"]
    sent = len(sink.received)
    await run_send_job(runtime)
    assert len(sink.received) == sent  # paused: nothing more goes out


async def test_segment_counts_follow_contact_changes_without_a_recount_by_hand(
    marketer: Member, runtime: Runtime
) -> None:
    await contact(marketer, first_name="Vip", email="v1@example.org", tags=["vip"])
    segment = (
        await marketer.client.post(
            f"{API}/segments",
            json={"name": "VIPs", "filters": [{"field": "tags", "op": "contains", "value": "vip"}]},
        )
    ).json()
    assert segment["member_count"] == 1
    later = await contact(marketer, first_name="Vip", email="v2@example.org", tags=["vip"])
    await contact(marketer, first_name="Plain", email="p@example.org")
    await deliver_events(runtime)  # contact.created reaches the plugin: the count is stale
    await run_send_job(runtime)  # the job counts it again
    listed = (await marketer.client.get(f"{API}/segments")).json()["items"]
    assert [s["member_count"] for s in listed] == [2]
    await marketer.client.patch(f"/api/v1/contacts/{later['id']}", json={"tags": []})
    await deliver_events(runtime)
    await run_send_job(runtime)
    listed = (await marketer.client.get(f"{API}/segments")).json()["items"]
    assert [s["member_count"] for s in listed] == [1]
