"""The plugin's pages: forms that post, errors shown in place, another workspace kept out."""

from __future__ import annotations

from tests.conftest import Member

from .conftest import API, campaign, contact, list_of, template

BASE = "/t/{slug}/apps/email_marketing"


async def test_pages_build_a_segment_and_show_form_errors_in_place(marketer: Member) -> None:
    base = BASE.format(slug=marketer.slug)
    await contact(marketer, first_name="Vip", email="vip@example.org", tags=["vip"])
    for path in ("/", "/lists", "/segments", "/templates"):
        page = await marketer.client.get(base + path)
        assert page.status_code == 200, (path, page.text[:200])
        assert 'class="em-menu"' in page.text
    form = {"csrf_token": marketer.csrf, "name": "VIPs", "tag": "vip", "event": "", "days": ""}
    saved = await marketer.client.post(f"{base}/segments", data=form)
    assert saved.status_code == 303
    listed = await marketer.client.get(f"{base}/segments")
    assert "VIPs" in listed.text
    assert ">1</span>" in listed.text  # its count
    bad = await marketer.client.post(
        f"{base}/templates",
        data={"csrf_token": marketer.csrf, "name": "T", "subject": "Hi", "heading": "Hi",
              "button_text": "Go", "button_url": "ftp://nope"},
    )  # fmt: skip
    assert bad.status_code == 400
    assert "blocks[1].url" in bad.text
    assert "must be an http(s) URL" in bad.text


async def test_a_campaign_page_and_its_counters_are_the_workspaces_own(
    marketer: Member, outsider: Member
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    list_id = await list_of(marketer, [ada])
    made = await template(marketer)
    campaign_id = await campaign(marketer, made["id"], "list", list_id)
    base = BASE.format(slug=marketer.slug)
    page = await marketer.client.get(f"{base}/campaigns/{campaign_id}")
    assert page.status_code == 200
    assert 'data-counter="status">draft<' in page.text
    assert "Send now" in page.text
    sent = await marketer.client.post(
        f"{base}/campaigns/{campaign_id}/schedule", data={"csrf_token": marketer.csrf}
    )
    assert sent.status_code == 303
    fragment = await marketer.client.get(f"{base}/campaigns/{campaign_id}/counters")
    assert 'hx-trigger="every 2s"' in fragment.text  # scheduled: it keeps polling
    assert 'data-counter="status">scheduled<' in fragment.text
    theirs = BASE.format(slug=outsider.slug)
    assert (await outsider.client.get(f"{theirs}/campaigns/{campaign_id}")).status_code == 404
    assert (
        await outsider.client.get(f"{theirs}/campaigns/{campaign_id}/counters")
    ).status_code == 404
    cancel = await outsider.client.post(
        f"{theirs}/campaigns/{campaign_id}/cancel", data={"csrf_token": outsider.csrf}
    )
    assert cancel.status_code == 404
    assert (await marketer.client.get(f"{API}/campaigns/{campaign_id}")).json()[
        "status"
    ] == "scheduled"


async def test_the_dashboard_card_shows_the_workspaces_latest_campaigns(
    marketer: Member, outsider: Member
) -> None:
    ada = await contact(marketer, first_name="Ada", email="ada@example.org")
    made = await template(marketer)
    await campaign(marketer, made["id"], "list", await list_of(marketer, [ada]))
    mine = await marketer.client.get(f"/t/{marketer.slug}/")
    assert 'id="em-dashboard"' in mine.text
    assert "Spring 2027" in mine.text
    theirs = await outsider.client.get(f"/t/{outsider.slug}/")
    assert theirs.status_code == 200
    assert "Spring 2027" not in theirs.text  # nothing of the other workspace's
