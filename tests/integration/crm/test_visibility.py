"""Record visibility: members see all, their team's, or only their own records."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import Member, make_client, sign_up


async def _join(app: object, owner: Member, email: str) -> tuple[Member, str]:
    """A new member of ``owner``'s workspace (role member); returns them and their membership id."""
    invited = await owner.client.post(
        "/api/v1/invitations", json={"email": email, "role": "member"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, f"{email.split('@', maxsplit=1)[0]} own", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    # The member's API session now acts in the owner's workspace (opened last).
    await member.client.get(f"/t/{owner.slug}/")
    members = (await owner.client.get("/api/v1/members")).json()
    membership = next(m["id"] for m in members if m["email"] == email)
    member.slug = owner.slug
    return member, membership


async def _records(member: Member, owner_id: str, label: str) -> dict[str, str]:
    contact = await member.client.post(
        "/api/v1/contacts", json={"first_name": label, "owner_id": owner_id}
    )
    company = await member.client.post(
        "/api/v1/companies", json={"name": f"{label} Co", "owner_id": owner_id}
    )
    deal = await member.client.post(
        "/api/v1/deals", json={"title": f"{label} deal", "currency": "EUR", "owner_id": owner_id}
    )
    note = await member.client.post(
        "/api/v1/activities",
        json={"kind": "note", "subject": f"{label} note", "contact_id": contact.json()["id"]},
    )
    assert {r.status_code for r in (contact, company, deal, note)} == {201}, contact.text
    return {
        "contact": contact.json()["id"],
        "company": company.json()["id"],
        "deal": deal.json()["id"],
    }


@pytest.fixture
async def crew(app: object, alice: Member) -> dict[str, object]:
    """Alice (owner) with members Mia and Noah; each owns a contact, company and deal."""
    suffix = secrets.token_hex(4)
    mia, mia_id = await _join(app, alice, f"mia-{suffix}@example.com")
    noah, noah_id = await _join(app, alice, f"noah-{suffix}@example.com")
    me = (await alice.client.get("/api/v1/members")).json()[0]["id"]
    return {
        "mia": mia,
        "noah": noah,
        "ids": {"mia": mia_id, "noah": noah_id, "alice": me},
        "records": {
            "alice": await _records(alice, me, "Alpha"),
            "mia": await _records(alice, mia_id, "Mint"),
            "noah": await _records(alice, noah_id, "Nutmeg"),
        },
    }


async def _visible_names(member: Member) -> set[str]:
    contacts = (await member.client.get("/api/v1/contacts")).json()["items"]
    companies = (await member.client.get("/api/v1/companies")).json()["items"]
    deals = (await member.client.get("/api/v1/deals")).json()["items"]
    return (
        {c["first_name"] for c in contacts}
        | {c["name"] for c in companies}
        | {d["title"] for d in deals}
    )


async def test_by_default_members_see_every_record(crew: dict[str, object]) -> None:
    mia = crew["mia"]
    assert isinstance(mia, Member)
    assert {"Alpha", "Mint", "Nutmeg"} <= await _visible_names(mia)


async def test_own_visibility_limits_lists_search_detail_and_timeline(
    alice: Member, crew: dict[str, object]
) -> None:
    updated = await alice.client.put("/api/v1/settings/visibility", json={"member": "own"})
    assert updated.json() == {"member": "own", "viewer": "all"}
    mia = crew["mia"]
    assert isinstance(mia, Member)
    records = crew["records"]
    assert isinstance(records, dict)
    assert await _visible_names(mia) == {"Mint", "Mint Co", "Mint deal"}
    searched = (await mia.client.get("/api/v1/contacts", params={"q": "Nutmeg"})).json()
    assert searched["items"] == []
    for kind in ("contact", "company", "deal"):
        other = records["noah"][kind]
        plural = {"contact": "contacts", "company": "companies", "deal": "deals"}[kind]
        assert (await mia.client.get(f"/api/v1/{plural}/{other}")).status_code == 404
        assert (await mia.client.get(f"/api/v1/{plural}/{other}/timeline")).status_code == 404
        own = records["mia"][kind]
        assert (await mia.client.get(f"/api/v1/{plural}/{own}")).status_code == 200
    timeline = await mia.client.get(f"/api/v1/contacts/{records['mia']['contact']}/timeline")
    assert [a["subject"] for a in timeline.json()["items"]] == ["Mint note"]
    dashboard = (await mia.client.get(f"/t/{alice.slug}/")).text
    assert "Nutmeg" not in dashboard
    # The owner still sees everything.
    assert {"Alpha", "Mint", "Nutmeg"} <= await _visible_names(alice)


async def test_team_visibility_shows_teammates_records(
    alice: Member, crew: dict[str, object]
) -> None:
    ids = crew["ids"]
    assert isinstance(ids, dict)
    await alice.client.put("/api/v1/settings/visibility", json={"member": "team"})
    team = (await alice.client.post("/api/v1/teams", json={"name": "North"})).json()
    mia = crew["mia"]
    assert isinstance(mia, Member)
    assert await _visible_names(mia) == {"Mint", "Mint Co", "Mint deal"}  # no team yet
    set_members = await alice.client.put(
        f"/api/v1/teams/{team['id']}/members", json={"membership_ids": [ids["mia"], ids["noah"]]}
    )
    assert sorted(set_members.json()["member_ids"]) == sorted([ids["mia"], ids["noah"]])
    names = await _visible_names(mia)
    assert {"Mint", "Nutmeg"} <= names
    assert "Alpha" not in names


async def test_visibility_and_teams_are_admin_only_and_validated(
    app: object, alice: Member, bob: Member, crew: dict[str, object]
) -> None:
    mia = crew["mia"]
    assert isinstance(mia, Member)
    refused = await mia.client.put("/api/v1/settings/visibility", json={"member": "all"})
    assert refused.status_code == 403
    bad = await alice.client.put("/api/v1/settings/visibility", json={"member": "nobody"})
    assert bad.status_code == 400
    team = (await alice.client.post("/api/v1/teams", json={"name": "South"})).json()
    bobs = (await bob.client.get("/api/v1/members")).json()[0]["id"]
    foreign = await alice.client.put(
        f"/api/v1/teams/{team['id']}/members", json={"membership_ids": [bobs]}
    )
    assert foreign.status_code == 400
    assert (await bob.client.delete(f"/api/v1/teams/{team['id']}")).status_code == 404
    assert (await bob.client.get("/api/v1/teams")).json() == []
    async with make_client(app) as anonymous:
        assert (await anonymous.get("/api/v1/teams")).status_code == 401


async def test_admins_set_visibility_and_teams_on_the_team_page(
    alice: Member, crew: dict[str, object]
) -> None:
    ids = crew["ids"]
    assert isinstance(ids, dict)
    base = f"/t/{alice.slug}/members"
    page = (await alice.client.get(base)).text
    assert "Who sees which records" in page
    saved = await alice.client.post(f"{base}/visibility", data={"member": "own", "viewer": "team"})
    assert saved.status_code == 303
    assert (await alice.client.get("/api/v1/settings/visibility")).json() == {
        "member": "own",
        "viewer": "team",
    }
    assert (await alice.client.post(f"{base}/teams", data={"name": "East"})).status_code == 303
    team = (await alice.client.get("/api/v1/teams")).json()[0]
    ticked = await alice.client.post(
        f"{base}/teams/{team['id']}", data={"membership_ids": [ids["mia"], ids["noah"]]}
    )
    assert ticked.status_code == 303
    members = (await alice.client.get("/api/v1/teams")).json()[0]["member_ids"]
    assert sorted(members) == sorted([ids["mia"], ids["noah"]])
    duplicate = await alice.client.post(f"{base}/teams", data={"name": "East"})
    assert duplicate.status_code == 422
    assert 'data-field="team_name"' in duplicate.text
    mia = crew["mia"]
    assert isinstance(mia, Member)
    assert "Who sees which records" not in (await mia.client.get(base)).text
