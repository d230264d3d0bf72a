"""The suppression list through the API and the admin page, per workspace."""

from __future__ import annotations

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing.bounces import record_smtp_failure
from orbit.plugins.builtin.email_marketing.suppression import Reason, suppress, suppressed
from tests.conftest import Member

from .deliverability import acting, seed_messages

API = "/api/v1/apps/email_marketing/suppressions"


async def test_admins_list_add_and_remove_manual_entries(
    runtime: Runtime, marketer: Member, outsider: Member
) -> None:
    added = await marketer.client.post(
        API, json={"email": " Manual@Example.com ", "detail": "asked"}
    )
    assert added.status_code == 201, added.text
    assert added.json() == {"email": "manual@example.com", "reason": "manual", "added": True}
    again = await marketer.client.post(API, json={"email": "manual@example.com"})
    assert again.json()["added"] is False
    async with acting(runtime, marketer) as ctx:
        await suppress(ctx, "spam@example.com", Reason.COMPLAINT, "arf")
        assert await suppressed(ctx, ["MANUAL@example.com"]) == {"MANUAL@example.com"}

    listed = (await marketer.client.get(API)).json()["items"]
    assert {(i["email"], i["reason"], i["removable"]) for i in listed} == {
        ("manual@example.com", "manual", True),
        ("spam@example.com", "complaint", False),
    }
    assert [
        i["email"] for i in (await marketer.client.get(API, params={"q": "spam"})).json()["items"]
    ] == ["spam@example.com"]

    # The other workspace sees none of it and cannot remove it.
    assert (await outsider.client.get(API)).json()["items"] == []
    assert (await outsider.client.delete(f"{API}/manual@example.com")).status_code == 404

    # A complaint is the person's own decision: an admin cannot lift it.
    refused = await marketer.client.delete(
        f"{API}/spam@example.com", params={"reason": "complaint"}
    )
    assert refused.status_code == 403
    removed = await marketer.client.delete(f"{API}/manual@example.com")
    assert removed.status_code == 204
    assert (await marketer.client.delete(f"{API}/manual@example.com")).status_code == 404
    assert [i["email"] for i in (await marketer.client.get(API)).json()["items"]] == [
        "spam@example.com"
    ]


async def test_bad_input_names_the_field_and_writes_nothing(marketer: Member) -> None:
    for body, field in (({"email": "not-an-address"}, "email"), ({"email": "a@b"}, "email")):
        response = await marketer.client.post(API, json=body)
        assert response.status_code == 400, response.text
        assert field in response.text
    bad_reason = await marketer.client.get(API, params={"reason": "whatever"})
    assert bad_reason.status_code == 400
    assert "reason" in bad_reason.text
    assert (await marketer.client.get(API)).json()["items"] == []


async def test_the_deliverability_page_adds_and_removes(
    runtime: Runtime, marketer: Member, outsider: Member
) -> None:
    base = f"/t/{marketer.slug}/apps/email_marketing/deliverability"
    assert "No bounces or complaints" in (await marketer.client.get(base)).text
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["refused@example.com"])
        await record_smtp_failure(ctx, message_id, 550, "5.1.1 User unknown")
    page = await marketer.client.get(base)
    assert page.status_code == 200, page.text
    assert "<td>hard</td><td>smtp</td><td>1</td>" in page.text
    other = await outsider.client.get(f"/t/{outsider.slug}/apps/email_marketing/deliverability")
    assert "No bounces or complaints" in other.text
    assert "refused@example.com" not in other.text
    assert 'id="suppression-add"' in page.text
    assert 'class="em-menu"' in page.text  # reachable from the plugin's other pages
    campaigns = await marketer.client.get(f"/t/{marketer.slug}/apps/email_marketing/")
    assert base in campaigns.text
    assert "/p/email_marketing/bounces/ses/" in page.text
    added = await marketer.client.post(
        f"{base}/add", data={"email": "page@example.com"}, headers={"HX-Request": "true"}
    )
    assert added.status_code in {200, 302, 303}, added.text
    assert "page@example.com" in (await marketer.client.get(base)).text
    removed = await marketer.client.post(
        f"{base}/remove",
        data={"email": "page@example.com", "reason": "manual"},
        headers={"HX-Request": "true"},
    )
    assert removed.status_code in {200, 302, 303}, removed.text
    assert "page@example.com" not in (await marketer.client.get(base)).text
