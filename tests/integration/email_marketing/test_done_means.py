"""The issue's "done means", in one run through the real app and a local SMTP sink.

An admin enables the plugin from the marketplace, builds a segment, sends a campaign
to the sink, sees opens and clicks split between people and machines, unsubscribes
one recipient with a one-click POST, and sees a bounce suppress another: the next
campaign to the same segment reaches only the third.
"""

from __future__ import annotations

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from tests.conftest import sign_up

from .conftest import API, Sink, campaign, contact, enable, run_send_job, template
from .test_tracking import BROWSER, _age_messages, _links, _path, _public


async def test_enable_segment_send_track_unsubscribe_and_bounce(
    app: object, sink: Sink, runtime: Runtime, endpoints: Endpoints
) -> None:
    admin = await sign_up(app, "Done Means Ltd")
    await enable(admin, {"smtp_url": sink.url, "from_email": "news@done.example.com",
                         "rate_per_second": 1000, "domain_rate_per_second": 1000})  # fmt: skip
    for name in ("Ada", "Bob", "Cy"):
        await contact(admin, first_name=name, email=f"{name.lower()}@example.org",
                      tags=["customer"])  # fmt: skip
    await contact(admin, first_name="Lead", email="lead@example.org", tags=["lead"])
    sink.refuse["bob@example.org"] = (550, "5.1.1 <bob@example.org>: Recipient address rejected")
    segment = (
        await admin.client.post(
            f"{API}/segments",
            json={"name": "Customers",
                  "filters": [{"field": "tags", "op": "contains", "value": "customer"}]},
        )
    ).json()  # fmt: skip
    assert segment["member_count"] == 3
    made = await template(admin)
    first = await campaign(admin, made["id"], "segment", segment["id"])
    await admin.client.post(f"{API}/campaigns/{first}/schedule", json={})
    await run_send_job(runtime)

    assert sorted(rcpt for _, [rcpt], _ in sink.received) == ["ada@example.org", "cy@example.org"]
    report = (await admin.client.get(f"{API}/campaigns/{first}")).json()
    assert (report["status"], report["sent"], report["bounced"]) == ("sent", 2, 1)

    [ada] = sink.to("ada@example.org")
    [cy] = sink.to("cy@example.org")
    async with _public(app, "203.0.113.20") as web:
        # Cy's gateway scans every link on delivery; Ada reads and clicks an hour later.
        for url in _links(cy)["clicks"]:
            await web.get(_path(url), headers={"user-agent": BROWSER})
        await _age_messages(endpoints, first)
        await web.get(_path(_links(ada)["pixel"][0]), headers={"user-agent": BROWSER})
        await web.get(_path(_links(ada)["clicks"][0]), headers={"user-agent": BROWSER})
        # Ada's mail provider sends the RFC 8058 one-click POST.
        https = str(ada["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
        done = await web.post(
            _path(https),
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
    report = (await admin.client.get(f"{API}/campaigns/{first}")).json()
    assert report["opened_human"] == 1
    assert report["clicked_human"] == 1
    assert report["clicked_machine"] == 1
    assert report["unsubscribed"] == 1

    listed = (await admin.client.get(f"{API}/suppressions")).json()["items"]
    reasons = {(item["email"], item["reason"]) for item in listed}
    assert ("ada@example.org", "unsubscribe") in reasons
    assert ("bob@example.org", "bounce-hard") in reasons

    second = await campaign(admin, made["id"], "segment", segment["id"])
    await admin.client.post(f"{API}/campaigns/{second}/schedule", json={})
    await run_send_job(runtime)
    again = (await admin.client.get(f"{API}/campaigns/{second}")).json()
    assert (again["recipients"], again["suppressed"], again["sent"]) == (3, 2, 1)
    assert len(sink.to("cy@example.org")) == 2
    assert len(sink.to("ada@example.org")) == 1
    await admin.client.aclose()
