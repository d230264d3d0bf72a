"""Opens and clicks split people from machines; one-click unsubscribe; the contact's timeline."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from tests.conftest import Member

from .conftest import API, Sink, campaign, contact, list_of, run_send_job, template

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0"


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _path(url: str) -> str:
    split = urlsplit(url)
    return split.path + (f"?{split.query}" if split.query else "")


def _links(message: EmailMessage) -> dict[str, list[str]]:
    html = _html(message)
    hrefs = re.findall(r'href="([^"]+)"', html)
    return {
        "pixel": re.findall(r'src="([^"]*/p/email_marketing/o/[^"]+)"', html),
        "clicks": [h for h in hrefs if "/p/email_marketing/c/" in h],
        "unsubscribe": [h for h in hrefs if "/p/email_marketing/u/" in h],
    }


def _public(app: object, ip: str) -> httpx.AsyncClient:
    """A cookie-less visitor from ``ip`` (a mail reader, a proxy, a scanner)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _age_messages(endpoints: Endpoints, campaign_id: str) -> None:
    """Time passes: the campaign's messages were delivered an hour ago."""
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE email_marketing_messages SET sent_at = sent_at - interval '1 hour' "
            "WHERE campaign_id = $1",
            UUID(campaign_id),
        )
    finally:
        await admin.close()


async def _delivered_now(endpoints: Endpoints, campaign_id: str, email: str) -> None:
    """The message to ``email`` was delivered just now (however long the test took)."""
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "UPDATE email_marketing_messages SET sent_at = now() "
            "WHERE campaign_id = $1 AND email = $2",
            UUID(campaign_id),
            email,
        )
    finally:
        await admin.close()


async def _sent(marketer: Member, sink: Sink, runtime: Runtime) -> tuple[str, str, list[dict]]:
    people = [
        await contact(marketer, first_name="Ada", email="ada@example.org"),
        await contact(marketer, first_name="Bob", email="bob@example.net"),
        await contact(marketer, first_name="Cy", email="cy@example.com"),
    ]
    list_id = await list_of(marketer, people)
    made = await template(marketer)
    campaign_id = await campaign(marketer, made["id"], "list", list_id)
    await marketer.client.post(f"{API}/campaigns/{campaign_id}/schedule", json={})
    await run_send_job(runtime)
    assert len(sink.received) == 3
    return campaign_id, list_id, people


async def test_opens_and_clicks_are_split_between_people_and_machines(
    app: object, marketer: Member, sink: Sink, runtime: Runtime, endpoints: Endpoints
) -> None:
    campaign_id, _, people = await _sent(marketer, sink, runtime)
    [ada] = sink.to("ada@example.org")
    [bob] = sink.to("bob@example.net")
    [cy] = sink.to("cy@example.com")
    ada_links, bob_links, cy_links = _links(ada), _links(bob), _links(cy)
    assert len(ada_links["pixel"]) == 1
    assert len(ada_links["clicks"]) == 3  # the button, the image, the hidden honeypot
    for url in ada_links["pixel"] + ada_links["clicks"] + ada_links["unsubscribe"]:
        assert "ada" not in url.lower()  # no personal data in URLs
        assert "example.org" not in url

    await _delivered_now(endpoints, campaign_id, "bob@example.net")
    async with _public(app, "203.0.113.7") as reader:
        # A scanner at delivery: opens at once.
        soon = await reader.get(_path(bob_links["pixel"][0]), headers={"user-agent": BROWSER})
        assert soon.status_code == 200
        assert soon.headers["content-type"] == "image/gif"
        # Apple Mail Privacy Protection prefetches from Apple's network.
        async with _public(app, "17.58.63.1") as apple:
            await apple.get(_path(cy_links["pixel"][0]), headers={"user-agent": "Mozilla/5.0"})
        await _age_messages(endpoints, campaign_id)
        # Ada opens an hour later and clicks the offer: a person.
        opened = await reader.get(_path(ada_links["pixel"][0]), headers={"user-agent": BROWSER})
        assert opened.status_code == 200
        clicked = await reader.get(_path(ada_links["clicks"][0]), headers={"user-agent": BROWSER})
        assert clicked.status_code == 302
        assert clicked.headers["location"] == "https://shop.example.com/spring"
        # Bob's mail gateway follows every link of his message at once.
        for url in bob_links["clicks"]:
            await reader.get(_path(url), headers={"user-agent": BROWSER})
        # Cy's scanner follows the hidden honeypot link only.
        honeypot = await reader.get(_path(cy_links["clicks"][-1]), headers={"user-agent": BROWSER})
        assert honeypot.status_code == 200

    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["opened_human"] == 1
    assert report["opened_machine"] == 2
    assert report["clicked_human"] == 1
    assert report["clicked_machine"] == 2
    assert report["report"]["open_rate"] == 33.3

    page = await marketer.client.get(f"/t/{marketer.slug}/contacts/{people[0]['id']}")
    assert page.status_code == 200
    assert "Opened “Spring 2027”" in page.text
    assert "Clicked a link in “Spring 2027”" in page.text
    bob_page = await marketer.client.get(f"/t/{marketer.slug}/contacts/{people[1]['id']}")
    assert "not counted as a person" in bob_page.text


async def test_one_click_post_unsubscribes_at_once_and_a_get_changes_nothing(
    app: object, marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    campaign_id, list_id, people = await _sent(marketer, sink, runtime)
    [ada] = sink.to("ada@example.org")
    header = str(ada["List-Unsubscribe"])
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (part.strip().strip("<>") for part in header.split(","))
    assert "/p/email_marketing/u/" in https
    assert mailto.startswith("mailto:news@shop.example.com?subject=unsubscribe")
    assert _links(ada)["unsubscribe"] == [https]  # the footer link is the same page

    async with _public(app, "198.51.100.4") as scanner:
        page = await scanner.get(_path(https))
        assert page.status_code == 200
        assert "<form" in page.text
        assert "a••@example.org" in page.text
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["unsubscribed"] == 0  # a GET is what scanners do: nothing changes

    async with _public(app, "198.51.100.9") as provider:
        for _ in range(2):  # a provider may retry: once is enough
            done = await provider.post(
                _path(https),
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert done.status_code == 200
            assert "will get no more emails" in done.text
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["unsubscribed"] == 1
    page = await marketer.client.get(f"/t/{marketer.slug}/contacts/{people[0]['id']}")
    assert 'id="em-contact"' in page.text  # the contact's sidebar panel
    assert "Lists: Newsletter" in page.text
    assert "Emails sent: 1, opened by them: 0, clicked: 0" in page.text
    assert "Not emailed: unsubscribe" in page.text

    # The next campaign to the same list skips Ada, and only her.
    made = await template(marketer, name="Summer")
    second = await campaign(marketer, made["id"], "list", list_id)
    await marketer.client.post(f"{API}/campaigns/{second}/schedule", json={})
    await run_send_job(runtime)
    assert len(sink.to("ada@example.org")) == 1
    assert len(sink.to("bob@example.net")) == 2
    second_report = (await marketer.client.get(f"{API}/campaigns/{second}")).json()
    assert second_report["suppressed"] == 1
    assert second_report["sent"] == 2


async def test_a_forged_or_foreign_token_opens_nothing(
    app: object, marketer: Member, outsider: Member, sink: Sink, runtime: Runtime
) -> None:
    await _sent(marketer, sink, runtime)
    [ada] = sink.to("ada@example.org")
    url = _path(_links(ada)["unsubscribe"][0])
    async with _public(app, "192.0.2.1") as visitor:
        forged = await visitor.post(url[:-3] + "AAA")
        assert forged.status_code == 404
        # A click token is not an unsubscribe token.
        click = _path(_links(ada)["clicks"][0]).replace("/c/", "/u/")
        assert (await visitor.post(click)).status_code == 404


async def test_a_contacts_export_has_their_emails_and_erasure_forgets_them(
    app: object, marketer: Member, sink: Sink, runtime: Runtime, endpoints: Endpoints
) -> None:
    campaign_id, _, people = await _sent(marketer, sink, runtime)
    [ada] = sink.to("ada@example.org")
    await _age_messages(endpoints, campaign_id)
    async with _public(app, "203.0.113.30") as reader:
        await reader.get(_path(_links(ada)["clicks"][0]), headers={"user-agent": BROWSER})
    ada_id = people[0]["id"]

    exported = (await marketer.client.get(f"/api/v1/contacts/{ada_id}/export")).json()
    mine = exported["plugins"]["email_marketing"]
    assert [m["campaign"] for m in mine["messages"]] == ["Spring 2027"]
    assert mine["messages"][0]["email"] == "ada@example.org"
    assert [(e["kind"], e["machine"]) for e in mine["events"]] == [("click", False)]
    assert [entry["name"] for entry in mine["lists"]] == ["Newsletter"]

    erased = await marketer.client.post(f"/api/v1/contacts/{ada_id}/erase")
    assert erased.status_code == 200, erased.text
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        kept = await admin.fetch(
            "SELECT email, contact_id, merge_values::text AS v FROM email_marketing_messages "
            "WHERE campaign_id = $1 ORDER BY email",
            UUID(campaign_id),
        )
        events = await admin.fetchval(
            "SELECT count(*) FROM email_marketing_events WHERE contact_id = $1", UUID(ada_id)
        )
    finally:
        await admin.close()
    assert events == 0
    assert "ada@example.org" not in [row["email"] for row in kept]
    assert sum(1 for row in kept if row["contact_id"] is None and row["v"] == "{}") == 1
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert (report["sent"], report["clicked_human"]) == (3, 1)  # the counts stay


async def test_the_preference_centre_lets_a_recipient_leave_some_lists(
    app: object, marketer: Member, sink: Sink, runtime: Runtime
) -> None:
    campaign_id, list_id, people = await _sent(marketer, sink, runtime)
    other = await list_of(marketer, people[:1], name="Offers")
    [ada] = sink.to("ada@example.org")
    page_url = _path(_links(ada)["unsubscribe"][0])
    async with _public(app, "198.51.100.30") as reader:
        page = await reader.get(page_url)
        assert f'value="{list_id}" checked' in page.text
        assert f'value="{other}" checked' in page.text
        kept = await reader.post(
            page_url + "/lists",
            content=f"keep={other}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert kept.status_code == 200
        assert "you left 1 list" in kept.text
    newsletter = (await marketer.client.get(f"{API}/lists/{list_id}")).json()
    offers = (await marketer.client.get(f"{API}/lists/{other}")).json()
    assert (newsletter["member_count"], offers["member_count"]) == (2, 1)
    report = (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()
    assert report["unsubscribed"] == 0  # choosing lists is not unsubscribing from all
