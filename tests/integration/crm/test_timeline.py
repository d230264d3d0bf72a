"""The 360° timeline: one interaction shows on every record it touches."""

from __future__ import annotations

from tests.conftest import Member


async def test_a_note_on_a_contact_shows_on_its_company_timeline(alice: Member) -> None:
    contact = (
        await alice.client.post(
            "/api/v1/contacts", json={"first_name": "Ana", "company_name": "Lima Ltd"}
        )
    ).json()
    note = await alice.client.post(
        "/api/v1/activities",
        json={
            "kind": "note",
            "subject": "Met at the fair",
            "body": "Wants samples",
            "contact_id": contact["id"],
            "channel": "in_person",
        },
    )
    assert note.status_code == 201, note.text
    call = await alice.client.post(
        "/api/v1/activities",
        json={
            "kind": "call",
            "channel": "phone",
            "subject": "Follow-up",
            "company_id": contact["company_id"],
            "occurred_at": "2020-01-01T10:00:00Z",
        },
    )
    assert call.status_code == 201
    on_contact = (await alice.client.get(f"/api/v1/contacts/{contact['id']}/timeline")).json()
    assert [a["subject"] for a in on_contact["items"]] == ["Met at the fair"]
    on_company = (
        await alice.client.get(f"/api/v1/companies/{contact['company_id']}/timeline")
    ).json()
    assert [a["subject"] for a in on_company["items"]] == ["Met at the fair", "Follow-up"]
    assert on_company["items"][0]["author_id"] is not None


async def test_timeline_pages_newest_first(alice: Member) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "P"})).json()
    for day in range(1, 6):
        await alice.client.post(
            "/api/v1/activities",
            json={
                "kind": "email",
                "subject": f"day {day}",
                "contact_id": contact["id"],
                "occurred_at": f"2026-01-0{day}T09:00:00Z",
            },
        )
    url = f"/api/v1/contacts/{contact['id']}/timeline"
    first = (await alice.client.get(url, params={"limit": 2})).json()
    rest = (
        await alice.client.get(url, params={"limit": 10, "cursor": first["next_cursor"]})
    ).json()
    subjects = [a["subject"] for a in first["items"] + rest["items"]]
    assert subjects == ["day 5", "day 4", "day 3", "day 2", "day 1"]


async def test_bad_activities_are_refused_by_field(alice: Member, bob: Member) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Z"})).json()
    for payload, field in (
        ({"kind": "note"}, "contact_id"),
        ({"kind": "gossip", "contact_id": contact["id"]}, "kind"),
        ({"kind": "note", "channel": "pigeon", "contact_id": contact["id"]}, "channel"),
    ):
        response = await alice.client.post("/api/v1/activities", json=payload)
        assert response.status_code == 400, response.text
        assert field in {item["key"] for item in response.json()["extra"]}
    foreign = await bob.client.post(
        "/api/v1/activities", json={"kind": "note", "contact_id": contact["id"]}
    )
    assert foreign.status_code == 400
    assert foreign.json()["extra"][0]["key"] == "contact_id"
    assert (await bob.client.get(f"/api/v1/contacts/{contact['id']}/timeline")).status_code == 404
    timeline = (await alice.client.get(f"/api/v1/contacts/{contact['id']}/timeline")).json()
    assert timeline["items"] == []


async def test_old_activities_page_and_absurd_dates_are_refused(alice: Member) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Old"})).json()
    for year in (1990, 1991):
        response = await alice.client.post(
            "/api/v1/activities",
            json={
                "kind": "note",
                "subject": str(year),
                "contact_id": contact["id"],
                "occurred_at": f"{year}-05-01T10:00:00Z",
            },
        )
        assert response.status_code == 201
    url = f"/api/v1/contacts/{contact['id']}/timeline"
    first = (await alice.client.get(url, params={"limit": 1})).json()
    second = await alice.client.get(url, params={"limit": 1, "cursor": first["next_cursor"]})
    assert second.status_code == 200
    assert [a["subject"] for a in second.json()["items"]] == ["1990"]
    absurd = await alice.client.post(
        "/api/v1/activities",
        json={"kind": "note", "contact_id": contact["id"], "occurred_at": "1066-10-14T09:00:00Z"},
    )
    assert absurd.status_code == 400
    assert absurd.json()["extra"][0]["key"] == "occurred_at"


async def test_the_activity_form_only_goes_back_to_plain_workspace_paths(alice: Member) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Back"})).json()
    for back in (
        f"/t/{alice.slug}/x\r\nSet-Cookie: a=b",
        f"/t/{alice.slug}/€",
        "https://evil.example/",
    ):
        response = await alice.client.post(
            f"/t/{alice.slug}/activities",
            data={"kind": "note", "subject": "s", "contact_id": contact["id"], "back": back},
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 204
        assert response.headers["HX-Redirect"] == f"/t/{alice.slug}/contacts"
        assert "set-cookie" not in {k.lower() for k in response.headers}


async def test_a_contact_timeline_merges_its_deals_once_each_across_pages(alice: Member) -> None:
    # The contact's own activities and its deals' are read as separate branches and
    # merged: an activity on both shows once, and pages interleave them by time.
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Merge"})).json()
    other = (await alice.client.post("/api/v1/contacts", json={"first_name": "Other"})).json()
    deal = await alice.client.post(
        "/api/v1/deals",
        json={"title": "Figs", "currency": "EUR", "contact_ids": [contact["id"]]},
    )
    assert deal.status_code == 201, deal.text
    deal_id = deal.json()["id"]
    for day, links in (
        (1, {"contact_id": contact["id"]}),
        (2, {"deal_id": deal_id}),
        (3, {"contact_id": contact["id"], "deal_id": deal_id}),
        (4, {"deal_id": deal_id, "contact_id": other["id"]}),
        (5, {"contact_id": contact["id"]}),
        (6, {"contact_id": other["id"]}),
    ):
        response = await alice.client.post(
            "/api/v1/activities",
            json={
                "kind": "note",
                "subject": f"day {day}",
                "occurred_at": f"2026-02-0{day}T09:00:00Z",
                **links,
            },
        )
        assert response.status_code == 201, response.text
    url = f"/api/v1/contacts/{contact['id']}/timeline"
    subjects, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await alice.client.get(url, params=params)).json()
        subjects += [a["subject"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # The deal's stage-change entry is on the deal's timeline too.
    notes = [s for s in subjects if s.startswith("day")]
    assert notes == ["day 5", "day 4", "day 3", "day 2", "day 1"]
    assert len(subjects) == len(set(subjects))
