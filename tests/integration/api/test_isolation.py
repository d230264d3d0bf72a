"""Tenant isolation: one workspace never sees or changes another's data."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Member, api_key, bearer, sign_up

NAMES = st.text(alphabet=st.characters(categories=("L",)), min_size=1, max_size=12)


async def test_every_contacts_endpoint_gives_404_for_another_workspaces_contact(
    alice: Member, bob: Member
) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Secret"})).json()
    url = f"/api/v1/contacts/{contact['id']}"
    assert (await bob.client.get(url)).status_code == 404
    assert (await bob.client.patch(url, json={"first_name": "Hijacked"})).status_code == 404
    assert (await bob.client.delete(url)).status_code == 404
    listed = (await bob.client.get("/api/v1/contacts")).json()["items"]
    assert contact["id"] not in {c["id"] for c in listed}
    searched = (await bob.client.get("/api/v1/contacts", params={"q": "Secret"})).json()
    assert searched["items"] == []
    # Alice's contact is untouched.
    assert (await alice.client.get(url)).json()["first_name"] == "Secret"


async def test_an_api_key_acts_only_in_its_own_workspace(
    app: object, alice: Member, bob: Member
) -> None:
    bobs = (await bob.client.post("/api/v1/contacts", json={"first_name": "BobOnly"})).json()
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    async with bearer(app, key) as client:
        assert (await client.get(f"/api/v1/contacts/{bobs['id']}")).status_code == 404
        assert (await client.delete(f"/api/v1/contacts/{bobs['id']}")).status_code == 404
        own = await client.post("/api/v1/contacts", json={"first_name": "ViaKey"})
        assert own.status_code == 201
        listed = {c["first_name"] for c in (await client.get("/api/v1/contacts")).json()["items"]}
    assert listed == {"ViaKey"}
    bob_sees = {c["first_name"] for c in (await bob.client.get("/api/v1/contacts")).json()["items"]}
    assert bob_sees == {"BobOnly"}


async def test_a_member_of_one_workspace_cannot_open_anothers_pages(
    alice: Member, bob: Member
) -> None:
    for path in ("contacts", "members", "api-keys", "contacts/new"):
        response = await alice.client.get(f"/t/{bob.slug}/{path}")
        assert response.status_code == 404, path
        assert "Bob Exports" not in response.text
    assert (await alice.client.get(f"/t/{alice.slug}/contacts")).status_code == 200


async def test_members_invitations_and_keys_lists_are_per_workspace(
    alice: Member, bob: Member
) -> None:
    await alice.client.post("/api/v1/invitations", json={"email": "new@example.com"})
    await api_key(alice, ["contacts:read"])
    assert [m["email"] for m in (await bob.client.get("/api/v1/members")).json()] == [bob.email]
    assert (await bob.client.get("/api/v1/invitations")).json() == []
    assert (await bob.client.get("/api/v1/api-keys")).json() == []
    alice_invitation = (await alice.client.get("/api/v1/invitations")).json()[0]["id"]
    assert (await bob.client.delete(f"/api/v1/invitations/{alice_invitation}")).status_code == 404
    alice_key = (await alice.client.get("/api/v1/api-keys")).json()[0]["id"]
    assert (await bob.client.delete(f"/api/v1/api-keys/{alice_key}")).status_code == 404


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(NAMES, min_size=1, max_size=4), second=st.lists(NAMES, min_size=1, max_size=4)
)
async def test_lists_and_searches_never_cross_workspaces(
    app: object, first: list[str], second: list[str]
) -> None:
    one, two = await sign_up(app, "Hypo One"), await sign_up(app, "Hypo Two")
    try:
        ids: dict[str, set[str]] = {one.slug: set(), two.slug: set()}
        for member, names in ((one, first), (two, second)):
            for name in names:
                response = await member.client.post("/api/v1/contacts", json={"first_name": name})
                assert response.status_code == 201, response.text
                ids[member.slug].add(response.json()["id"])
        for member, other in ((one, two), (two, one)):
            listed = (await member.client.get("/api/v1/contacts", params={"limit": 200})).json()
            assert {c["id"] for c in listed["items"]} == ids[member.slug]
            for name in first + second:
                found = (await member.client.get("/api/v1/contacts", params={"q": name})).json()
                assert not {c["id"] for c in found["items"]} & ids[other.slug]
                box = (await member.client.get("/api/v1/search", params={"q": name})).json()
                hits = {hit["id"] for group in box["groups"] for hit in group["items"]}
                assert not hits & ids[other.slug]
    finally:
        await one.client.aclose()
        await two.client.aclose()
