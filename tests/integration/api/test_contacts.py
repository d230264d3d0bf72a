"""Contacts over the JSON API, on the real database."""

from __future__ import annotations

import pytest

from tests.conftest import Member


async def _create(member: Member, **fields: object) -> dict[str, object]:
    response = await member.client.post("/api/v1/contacts", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_read_update_delete_a_contact(alice: Member) -> None:
    created = await _create(
        alice,
        first_name=" Ana ",
        last_name="Lima",
        email="Ana@Example.com",
        phone="+30 210 000",
        company_name="Lima Ltd",
        tags=["vip", "vip", "lead"],
        custom={"source": "fair"},
    )
    assert created["first_name"] == "Ana"
    assert created["email"] == "Ana@example.com"  # domain normalised, local part kept
    assert created["tags"] == ["lead", "vip"]
    contact_url = f"/api/v1/contacts/{created['id']}"

    fetched = (await alice.client.get(contact_url)).json()
    assert fetched == created

    patched = await alice.client.patch(contact_url, json={"phone": None, "last_name": "Silva"})
    assert patched.status_code == 200
    assert patched.json()["phone"] is None
    assert patched.json()["last_name"] == "Silva"
    assert patched.json()["company_name"] == "Lima Ltd"
    assert patched.json()["updated_at"] > created["updated_at"]

    assert (await alice.client.delete(contact_url)).status_code == 204
    gone = await alice.client.get(contact_url)
    assert gone.status_code == 404
    assert "not found in this workspace" in gone.json()["detail"]


async def test_list_pages_with_a_cursor_newest_first_without_gaps(alice: Member) -> None:
    ids = [(await _create(alice, first_name=f"Page{i:02d}"))["id"] for i in range(7)]
    seen: list[object] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await alice.client.get("/api/v1/contacts", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        assert len(page["items"]) <= 3
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ({"first_name": "Γιώργος", "last_name": "Παπαδόπουλος"}, "ΠΑΠΑΔΟΠΟΥΛΟΣ"),
        ({"first_name": "Анна", "last_name": "Иванова"}, "иванов"),
        ({"first_name": "伟", "last_name": "王"}, "王"),
        ({"first_name": "Jose", "last_name": "dela Cruz"}, "Dela CRUZ"),
        ({"first_name": "José", "last_name": "Müller"}, "jose muller"),
        ({"first_name": "Kim", "email": "kim.park@orbit-example.com"}, "PARK@ORBIT"),
    ],
)
async def test_search_is_case_and_accent_insensitive_in_every_script(
    alice: Member, stored: dict[str, str], query: str
) -> None:
    target = await _create(alice, **stored)
    await _create(alice, first_name="Unrelated", last_name="Person")
    result = (await alice.client.get("/api/v1/contacts", params={"q": query})).json()
    assert [item["id"] for item in result["items"]] == [target["id"]]


async def test_search_pages_with_a_cursor_too(alice: Member) -> None:
    for i in range(5):
        await _create(alice, first_name=f"Searchable{i}")
    first = (
        await alice.client.get("/api/v1/contacts", params={"q": "searchable", "limit": 2})
    ).json()
    assert len(first["items"]) == 2
    rest = (
        await alice.client.get(
            "/api/v1/contacts",
            params={"q": "searchable", "limit": 10, "cursor": first["next_cursor"]},
        )
    ).json()
    assert len(rest["items"]) == 3
    assert rest["next_cursor"] is None
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in rest["items"]}


async def test_search_treats_like_wildcards_literally(alice: Member) -> None:
    await _create(alice, first_name="Percent", last_name="Nobody")
    result = (await alice.client.get("/api/v1/contacts", params={"q": "%"})).json()
    assert result["items"] == []


async def test_owner_must_be_a_member_of_the_workspace(alice: Member, bob: Member) -> None:
    members = (await alice.client.get("/api/v1/members")).json()
    ok = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Owned", "owner_id": members[0]["id"]}
    )
    assert ok.status_code == 201
    bobs_membership = (await bob.client.get("/api/v1/members")).json()[0]["id"]
    refused = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Stolen", "owner_id": bobs_membership}
    )
    assert refused.status_code == 400
    assert refused.json()["extra"][0]["key"] == "owner_id"
