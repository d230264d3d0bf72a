"""Global search and lists' q: multilingual, typo tolerant, ranked, highlighted, walled off."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.conftest import Member, api_key, bearer, sign_up

PEOPLE = (
    ("Γιώργος", "Παπαδόπουλος"),
    ("Анна", "Иванова"),
    ("王伟", ""),
    ("王伟明", ""),
    ("王芳", ""),
    ("Juan", "dela Cruz"),
    ("Maria", "Papadopoulou"),
    ("José", "Müller"),
)


async def _join(app: object, owner: Member, email: str) -> tuple[Member, str]:
    """A new member (role member) of ``owner``'s workspace and their membership id."""
    invited = await owner.client.post(
        "/api/v1/invitations", json={"email": email, "role": "member"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, "Joiner", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    await member.client.get(f"/t/{owner.slug}/")  # the session now acts in owner's workspace
    members = (await owner.client.get("/api/v1/members")).json()
    membership: str = next(m["id"] for m in members if m["email"] == email)
    member.slug = owner.slug
    return member, membership


async def _contact(member: Member, first: str, last: str = "", **extra: Any) -> str:
    response = await member.client.post(
        "/api/v1/contacts", json={"first_name": first, "last_name": last, **extra}
    )
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["id"]
    return contact_id


async def _search(member: Member, q: str, **params: Any) -> dict[str, Any]:
    response = await member.client.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _titles(body: dict[str, Any], group: str) -> list[str]:
    return [hit["title"] for g in body["groups"] if g["type"] == group for hit in g["items"]]


@pytest.fixture
async def people(alice: Member) -> Member:
    for first, last in PEOPLE:
        await _contact(alice, first, last)
    return alice


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Παπαδόπουλος", "Γιώργος Παπαδόπουλος"),
        ("παπαδοπουλοσ", "Γιώργος Παπαδόπουλος"),  # no accent, final sigma typed as σ
        ("ΠΑΠΑΔ", "Γιώργος Παπαδόπουλος"),
        ("Иванова", "Анна Иванова"),
        ("иван", "Анна Иванова"),
        ("王伟", "王伟"),
        ("dela Cruz", "Juan dela Cruz"),
        ("DELA CRUZ", "Juan dela Cruz"),
        ("PAPADÓPOUL", "Maria Papadopoulou"),
        ("muller", "José Müller"),
    ],
)
async def test_search_finds_names_in_any_script_case_and_accent(
    people: Member, query: str, expected: str
) -> None:
    body = await _search(people, query, types="contacts")
    assert _titles(body, "contacts")[0] == expected


async def test_search_tolerates_typos_in_queries_of_four_or_more_characters(
    people: Member,
) -> None:
    assert "Maria Papadopoulou" in _titles(await _search(people, "Papadopolou"), "contacts")
    assert "Анна Иванова" in _titles(await _search(people, "Иванва"), "contacts")
    assert "Juan dela Cruz" in _titles(await _search(people, "delacruz"), "contacts")


async def test_identifiers_match_as_substrings_never_by_similarity(alice: Member) -> None:
    await _contact(alice, "Jim", "Rossi", email="james.rossi.333333@example.com")
    assert _titles(await _search(alice, "rossi.3333"), "contacts") == ["Jim Rossi"]
    assert _titles(await _search(alice, "jmes.rossi.333333"), "contacts") == []  # a typo
    assert _titles(await _search(alice, "Rosi"), "contacts") == ["Jim Rossi"]  # names: similar


async def test_two_character_chinese_names_match_exactly_first_and_never_by_similarity(
    people: Member,
) -> None:
    titles = _titles(await _search(people, "王伟"), "contacts")
    # 王伟 (the whole name) before 王伟明 (contains it); 王芳 shares only the family name.
    assert titles[:2] == ["王伟", "王伟明"]
    assert "王芳" not in titles
    assert set(_titles(await _search(people, "王"), "contacts")) == {"王伟", "王伟明", "王芳"}
    assert _titles(await _search(people, "伟明"), "contacts") == ["王伟明"]


async def test_results_rank_prefix_before_word_start_before_substring(alice: Member) -> None:
    await _contact(alice, "Xanderson")  # contains "ander"
    await _contact(alice, "Paul", "Anderson")  # a word starts with it
    await _contact(alice, "Anderson")  # the text starts with it
    titles = _titles(await _search(alice, "ander"), "contacts")
    assert titles == ["Anderson", "Paul Anderson", "Xanderson"]
    scores = [hit["score"] for g in (await _search(alice, "ander"))["groups"] for hit in g["items"]]
    assert scores == sorted(scores, reverse=True)


async def test_results_are_grouped_by_type_and_highlighted(alice: Member) -> None:
    contact_id = await _contact(alice, "Zephyrine", "Okafor")
    company = await alice.client.post("/api/v1/companies", json={"name": "Zephyr Tools"})
    deal = await alice.client.post(
        "/api/v1/deals", json={"title": "Zephyr renewal", "currency": "EUR"}
    )
    note = await alice.client.post(
        "/api/v1/activities",
        json={"kind": "note", "body": "Called about the zephyr pricing", "contact_id": contact_id},
    )
    assert {company.status_code, deal.status_code, note.status_code} == {201}
    body = await _search(alice, "ZEPHYR")
    assert [g["type"] for g in body["groups"]] == ["contacts", "companies", "deals", "notes"]
    contact_hit = body["groups"][0]["items"][0]
    assert contact_hit["title_html"] == "<mark>Zephyr</mark>ine Okafor"
    assert contact_hit["url"] == f"/t/{alice.slug}/contacts/{contact_id}"
    assert body["groups"][1]["items"][0]["title_html"] == "<mark>Zephyr</mark> Tools"
    assert body["groups"][3]["items"][0]["subtitle_html"] == (
        "Called about the <mark>zephyr</mark> pricing"
    )
    only = await _search(alice, "zephyr", types="companies,deals", limit=1)
    assert [g["type"] for g in only["groups"]] == ["companies", "deals"]


async def test_highlighting_escapes_html_in_record_text(alice: Member) -> None:
    await _contact(alice, "<script>alert(1)</script>", "Quillon")
    body = await _search(alice, "quillon")
    html = body["groups"][0]["items"][0]["title_html"]
    assert "<script>" not in html
    assert html == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Quillon</mark>"
    page = await alice.client.get(f"/t/{alice.slug}/search", params={"q": "quillon"})
    assert "<script>alert(1)" not in page.text
    assert "<mark>Quillon</mark>" in page.text


async def test_search_rejects_bad_types_and_limits(alice: Member) -> None:
    bad = await alice.client.get("/api/v1/search", params={"q": "a", "types": "contacts,cats"})
    assert bad.status_code == 400
    assert bad.json()["extra"][0]["key"] == "types"
    assert "cats" in bad.json()["extra"][0]["message"]
    too_many = await alice.client.get("/api/v1/search", params={"q": "a", "limit": 500})
    assert too_many.status_code == 400
    empty = await _search(alice, "   ")
    assert empty["groups"] == []


async def test_an_api_key_without_deal_scope_searches_only_what_it_may_read(
    app: object, alice: Member
) -> None:
    await _contact(alice, "Scopewright")
    await alice.client.post("/api/v1/deals", json={"title": "Scopewright deal", "currency": "EUR"})
    client = bearer(app, await api_key(alice, ["contacts:read"]))
    body = (await client.get("/api/v1/search", params={"q": "scopewright"})).json()
    assert [g["type"] for g in body["groups"]] == ["contacts"]
    refused = await client.get("/api/v1/search", params={"q": "scopewright", "types": "deals"})
    assert refused.status_code == 403
    await client.aclose()


async def test_another_workspace_never_sees_search_results(alice: Member, bob: Member) -> None:
    contact_id = await _contact(alice, "Isolda", "Wintermere")
    await alice.client.post("/api/v1/companies", json={"name": "Wintermere Ltd"})
    await alice.client.post("/api/v1/deals", json={"title": "Wintermere deal", "currency": "EUR"})
    await alice.client.post(
        "/api/v1/activities",
        json={"kind": "note", "body": "wintermere secret", "contact_id": contact_id},
    )
    assert len((await _search(alice, "wintermere"))["groups"]) == 4
    assert (await _search(bob, "wintermere"))["groups"] == []
    assert (await _search(bob, "wintermer"))["groups"] == []  # nor by typo tolerance
    for path in ("contacts", "companies", "deals"):
        listed = await bob.client.get(f"/api/v1/{path}", params={"q": "wintermere"})
        assert listed.json()["items"] == []
    page = await bob.client.get(f"/t/{bob.slug}/search", params={"q": "wintermere"})
    assert "Wintermere" not in page.text
    dropdown = await bob.client.get(
        f"/t/{bob.slug}/search", params={"q": "wintermere"}, headers={"HX-Request": "true"}
    )
    assert "Wintermere" not in dropdown.text


async def test_lists_q_is_typo_tolerant_and_pages_through_every_match(alice: Member) -> None:
    for n in range(7):
        await _contact(alice, f"Brightwater{n}")
    await alice.client.post("/api/v1/companies", json={"name": "Brightwater Holdings"})
    await alice.client.post("/api/v1/deals", json={"title": "Brightwater", "currency": "EUR"})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "brigtwater", "limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await alice.client.get("/api/v1/contacts", params=params)).json()
        seen += [c["first_name"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == [f"Brightwater{n}" for n in range(7)]
    companies = await alice.client.get("/api/v1/companies", params={"q": "brightwatr"})
    assert [c["name"] for c in companies.json()["items"]] == ["Brightwater Holdings"]
    deals = await alice.client.get("/api/v1/deals", params={"q": "BRIGHTWATER"})
    assert [d["title"] for d in deals.json()["items"]] == ["Brightwater"]


async def test_search_honours_record_visibility(app: object, alice: Member) -> None:
    mia, mia_id = await _join(app, alice, f"mia-{secrets.token_hex(4)}@example.com")
    me = (await alice.client.get("/api/v1/members")).json()[0]["id"]
    mine = await _contact(alice, "Hollowmere", "Own", owner_id=mia_id)
    theirs = await _contact(alice, "Hollowmere", "Other", owner_id=me)
    await alice.client.post(
        "/api/v1/activities",
        json={"kind": "note", "body": "hollowmere private", "contact_id": theirs},
    )
    await alice.client.post(
        "/api/v1/activities", json={"kind": "note", "body": "hollowmere shared", "contact_id": mine}
    )
    await alice.client.put("/api/v1/settings/visibility", json={"member": "own"})
    body = await _search(mia, "hollowmere")
    assert _titles(body, "contacts") == ["Hollowmere Own"]
    assert [h["subtitle"] for g in body["groups"] if g["type"] == "notes" for h in g["items"]] == [
        "hollowmere shared"
    ]
    listed = await mia.client.get("/api/v1/contacts", params={"q": "hollowmere"})
    assert [c["id"] for c in listed.json()["items"]] == [mine]
    await mia.client.aclose()
