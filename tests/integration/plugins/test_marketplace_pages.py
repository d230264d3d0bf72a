"""The marketplace pages: browse, read, consent and enable, configure, uninstall."""

from __future__ import annotations

from tests.conftest import Member


async def test_admins_browse_search_and_read_a_plugin_with_its_readme_escaped(
    alice: Member,
) -> None:
    listing = await alice.client.get(f"/t/{alice.slug}/marketplace")
    assert listing.status_code == 200
    assert 'data-plugin="probe"' in listing.text
    assert "Incompatible" in listing.text
    assert "needs Orbit &gt;=9" in listing.text
    found = await alice.client.get(
        f"/t/{alice.slug}/marketplace", params={"q": "never"}, headers={"HX-Request": "true"}
    )
    assert 'data-plugin="hanger"' in found.text
    assert 'data-plugin="probe"' not in found.text
    detail = await alice.client.get(f"/t/{alice.slug}/marketplace/probe")
    assert "<strong>everything</strong>" in detail.text  # Markdown rendered
    assert "<script>alert(1)</script>" not in detail.text  # raw HTML is not
    assert 'name="scopes" value="contacts:read"' in detail.text


async def test_enabling_from_the_page_needs_the_consent_box_then_settings_can_be_saved(
    alice: Member,
) -> None:
    base = f"/t/{alice.slug}/marketplace/probe"
    refused = await alice.client.post(f"{base}/enable", data={"csrf_token": alice.csrf})
    assert refused.status_code == 422
    assert "consent to contacts:read" in refused.text
    enabled = await alice.client.post(
        f"{base}/enable", data={"csrf_token": alice.csrf, "scopes": "contacts:read"}
    )
    assert enabled.status_code == 303
    page = await alice.client.get(base)
    assert 'id="plugin-state">Enabled' in page.text
    assert 'id="settings"' in page.text
    bad = await alice.client.post(
        f"{base}/settings", data={"csrf_token": alice.csrf, "settings.threshold": "0"}
    )
    assert bad.status_code == 422
    assert "Threshold must be at least 1" in bad.text
    good = await alice.client.post(
        f"{base}/settings",
        data={"csrf_token": alice.csrf, "settings.greeting": "Hey", "settings.threshold": "5"},
    )
    assert good.status_code == 303
    saved = (await alice.client.get("/api/v1/marketplace/probe")).json()["settings"]
    assert saved == {"greeting": "Hey", "threshold": 5, "fail_events": False}
    no_choice = await alice.client.post(f"{base}/uninstall", data={"csrf_token": alice.csrf})
    assert no_choice.status_code == 422
    assert "keep or delete" in no_choice.text
    removed = await alice.client.post(
        f"{base}/uninstall", data={"csrf_token": alice.csrf, "data": "keep"}
    )
    assert removed.status_code == 303
    assert (await alice.client.get("/api/v1/marketplace/probe")).json()["installed"] is False


async def test_the_marketplace_link_and_pages_are_for_admins_only(
    alice: Member, bob: Member
) -> None:
    home = await alice.client.get(f"/t/{alice.slug}/")
    assert f'href="/t/{alice.slug}/marketplace"' in home.text
    other = await bob.client.get(f"/t/{alice.slug}/marketplace")
    assert other.status_code in {403, 404}


async def test_the_consent_page_lists_the_new_scopes_with_what_they_allow(alice: Member) -> None:
    detail = await alice.client.get(f"/t/{alice.slug}/marketplace/servant")
    assert detail.status_code == 200
    for scope, says in (
        ("tasks:write", "Create tasks for members"),
        ("users:read", "members: names, email addresses, roles, time zones"),
        ("mail:send", "Send email from the workspace"),
        ("deals:write", "Move deals between stages"),
    ):
        assert f'name="scopes" value="{scope}"' in detail.text
        assert says in detail.text
