"""Saved views and list filters: any field, any sort, keyset pages, counts, privacy, isolation."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from tests.conftest import Member, api_key, bearer, sign_up


def problems(response: Any) -> dict[str, str]:
    return {item["key"]: item["message"] for item in response.json().get("extra", [])}


async def _join(app: object, owner: Member, role: str = "member") -> tuple[Member, str]:
    """A new member of ``owner``'s workspace with ``role``, and their membership id."""
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    invited = await owner.client.post("/api/v1/invitations", json={"email": email, "role": role})
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, "Joiner", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    await member.client.get(f"/t/{owner.slug}/")  # the session now acts in owner's workspace
    members = (await owner.client.get("/api/v1/members")).json()
    membership: str = next(m["id"] for m in members if m["email"] == email)
    member.slug = owner.slug
    return member, membership


async def _contacts(member: Member, rows: list[dict[str, Any]]) -> list[str]:
    ids = []
    for row in rows:
        response = await member.client.post("/api/v1/contacts", json=row)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def _list(member: Member, path: str = "/api/v1/contacts", **params: Any) -> Any:
    if "filters" in params and not isinstance(params["filters"], str):
        params["filters"] = json.dumps(params["filters"])
    response = await member.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _all_pages(member: Member, path: str, key: str, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page = await _list(member, path, **params, **({"cursor": cursor} if cursor else {}))
        seen += [item[key] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            return seen
    pytest.fail("the pages never ended")


async def test_filters_on_standard_and_custom_fields(alice: Member) -> None:
    await alice.client.post(
        "/api/v1/custom-fields",
        json={
            "object_type": "contact",
            "key": "tier",
            "label": "Tier",
            "type": "select",
            "options": ["gold", "silver"],
        },
    )
    await alice.client.post(
        "/api/v1/custom-fields",
        json={"object_type": "contact", "key": "score", "label": "Score", "type": "number"},
    )
    await _contacts(
        alice,
        [
            {
                "first_name": "Ada",
                "last_name": "Papadopoulou",
                "email": "ada@example.gr",
                "tags": ["vip"],
                "custom": {"tier": "gold", "score": 90},
            },
            {
                "first_name": "Boris",
                "last_name": "Ivanov",
                "tags": ["lead"],
                "custom": {"tier": "silver", "score": 40},
            },
            {"first_name": "Chen", "last_name": "Wei", "email": "chen@example.cn"},
        ],
    )

    async def names(*filters: dict[str, Any]) -> set[str]:
        page = await _list(alice, filters=list(filters), limit=50)
        return {c["first_name"] for c in page["items"]}

    assert await names({"field": "last_name", "op": "contains", "value": "PAPA"}) == {"Ada"}
    assert await names({"field": "first_name", "op": "equals", "value": "boris"}) == {"Boris"}
    assert await names({"field": "first_name", "op": "in", "value": ["Ada", "Chen"]}) == {
        "Ada",
        "Chen",
    }
    assert await names({"field": "email", "op": "empty", "value": True}) == {"Boris"}
    assert await names({"field": "email", "op": "empty", "value": False}) == {"Ada", "Chen"}
    assert await names({"field": "tags", "op": "contains", "value": "vip"}) == {"Ada"}
    assert await names({"field": "tags", "op": "in", "value": ["vip", "lead"]}) == {"Ada", "Boris"}
    assert await names({"field": "custom.tier", "op": "equals", "value": "silver"}) == {"Boris"}
    assert await names({"field": "custom.tier", "op": "empty"}) == {"Chen"}
    assert await names({"field": "custom.score", "op": "range", "value": {"min": 50}}) == {"Ada"}
    assert await names(
        {"field": "custom.score", "op": "range", "value": {"min": 10, "max": 100}},
        {"field": "tags", "op": "contains", "value": "lead"},
    ) == {"Boris"}


@pytest.mark.parametrize(
    ("filters", "key", "says"),
    [
        ([{"field": "colour", "op": "equals", "value": "red"}], "filters[0].field", "no field"),
        (
            [{"field": "tags", "op": "range", "value": {"min": 1}}],
            "filters[0].op",
            "not an operator",
        ),
        (
            [{"field": "created_at", "op": "range", "value": {"min": "yesterday"}}],
            "filters[0].value",
            "not a time",
        ),
        ([{"field": "owner_id", "op": "equals", "value": "me"}], "filters[0].value", "not an id"),
        ([{"field": "first_name", "op": "in", "value": "Ada"}], "filters[0].value", "list"),
        ([{"field": "first_name", "op": "equals"}], "filters[0].value", "single value"),
        (
            [{"field": "first_name", "op": "equals", "value": "x", "extra": 1}],
            "filters[0]",
            "unknown key",
        ),
        ("not json", "filters", "JSON list"),
        ({"field": "first_name"}, "filters", "list of filters"),
    ],
)
async def test_a_malformed_filter_is_a_400_naming_what_is_wrong(
    alice: Member, filters: Any, key: str, says: str
) -> None:
    raw = filters if isinstance(filters, str) else json.dumps(filters)
    response = await alice.client.get("/api/v1/contacts", params={"filters": raw})
    assert response.status_code == 400, response.text
    assert says in problems(response)[key]


async def test_bad_sort_and_view_are_400s(alice: Member) -> None:
    unsortable = await alice.client.get("/api/v1/contacts", params={"sort": "tags"})
    assert unsortable.status_code == 400
    assert "sortable fields" in problems(unsortable)["sort"]
    deal_sort = await alice.client.get("/api/v1/deals", params={"sort": "-amount"})
    assert deal_sort.status_code == 200
    unknown_view = await alice.client.get(
        "/api/v1/contacts", params={"view": str(secrets.token_hex(16))}
    )
    assert unknown_view.status_code in {400, 404}
    bad_custom = await alice.client.post(
        "/api/v1/views",
        json={
            "object_type": "deal",
            "name": "Bad",
            "filters": [{"field": "status", "op": "equals", "value": "pending"}],
        },
    )
    assert bad_custom.status_code == 400
    assert "not one of" in problems(bad_custom)["filters[0].value"]


@pytest.mark.parametrize("sort", ["last_name", "-last_name", "email", "-email", "created_at"])
async def test_keyset_pages_over_any_sort_return_each_row_exactly_once(
    alice: Member, sort: str
) -> None:
    # Duplicate and missing sort keys: ties are broken by id, empty values come last.
    rows = [
        {
            "first_name": f"P{i}",
            "last_name": ["Zeta", "alpha", "Beta", ""][i % 4],
            **({"email": f"p{i % 3}@example.com"} if i % 2 else {}),
        }
        for i in range(23)
    ]
    ids = await _contacts(alice, rows)
    seen = await _all_pages(alice, "/api/v1/contacts", "id", sort=sort, limit=4)
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    one_page = (await _list(alice, sort=sort, limit=50))["items"]
    assert [c["id"] for c in one_page] == seen  # paging keeps the order of one big page
    field = sort.removeprefix("-")
    values = [c[field] or None for c in one_page]
    present = [v.lower() if isinstance(v, str) else v for v in values if v is not None]
    assert present == sorted(present, reverse=sort.startswith("-"))
    assert values[len(present) :] == [None] * (len(values) - len(present))  # empty ones last


async def test_deals_sort_by_amount_with_keyset_and_a_cursor_from_another_sort_is_refused(
    alice: Member,
) -> None:
    for n in range(9):
        created = await alice.client.post(
            "/api/v1/deals", json={"title": f"D{n}", "currency": "EUR", "amount": str(n % 4)}
        )
        assert created.status_code == 201
    seen = await _all_pages(alice, "/api/v1/deals", "title", sort="-amount", limit=2)
    assert sorted(seen) == [f"D{n}" for n in range(9)]
    first = await _list(alice, "/api/v1/deals", sort="-amount", limit=2)
    wrong = await alice.client.get(
        "/api/v1/deals", params={"sort": "title", "cursor": first["next_cursor"]}
    )
    assert wrong.status_code == 400
    assert "cursor" in problems(wrong)


async def test_a_saved_view_applies_its_filters_and_sort(alice: Member) -> None:
    await _contacts(
        alice,
        [
            {"first_name": "Vera", "last_name": "Adams", "tags": ["vip"]},
            {"first_name": "Vlad", "last_name": "Brown", "tags": ["vip"]},
            {"first_name": "Wim", "last_name": "Cole"},
        ],
    )
    created = await alice.client.post(
        "/api/v1/views",
        json={
            "object_type": "contact",
            "name": "VIPs A–Z",
            "sort": "-last_name",
            "filters": [{"field": "tags", "op": "contains", "value": "vip"}],
            "columns": ["first_name", "email", "custom.nope"],
        },
    )
    assert created.status_code == 400  # columns must be fields too
    created = await alice.client.post(
        "/api/v1/views",
        json={
            "object_type": "contact",
            "name": "VIPs",
            "sort": "-last_name",
            "filters": [{"field": "tags", "op": "contains", "value": "vip"}],
            "columns": ["first_name", "email"],
        },
    )
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["editable"] is True
    assert view["shared"] is False
    page = await _list(alice, view=view["id"])
    assert [c["first_name"] for c in page["items"]] == ["Vlad", "Vera"]
    narrowed = await _list(
        alice, view=view["id"], filters=[{"field": "first_name", "op": "equals", "value": "vera"}]
    )
    assert [c["first_name"] for c in narrowed["items"]] == ["Vera"]
    count = (await alice.client.get("/api/v1/contacts/count", params={"view": view["id"]})).json()
    assert count == {"count": 2, "exact": True}
    changed = await alice.client.patch(f"/api/v1/views/{view['id']}", json={"sort": "last_name"})
    assert changed.json()["sort"] == "last_name"
    page = await _list(alice, view=view["id"])
    assert [c["first_name"] for c in page["items"]] == ["Vera", "Vlad"]
    wrong_type = await alice.client.get("/api/v1/deals", params={"view": view["id"]})
    assert wrong_type.status_code == 400
    assert (await alice.client.delete(f"/api/v1/views/{view['id']}")).status_code == 204
    assert (await alice.client.get(f"/api/v1/views/{view['id']}")).status_code == 404


async def test_a_private_view_is_invisible_to_other_members_and_a_shared_one_visible(
    app: object, alice: Member
) -> None:
    mia, _ = await _join(app, alice)
    viewer, _ = await _join(app, alice, "viewer")
    mine = (
        await mia.client.post(
            "/api/v1/views", json={"object_type": "contact", "name": "Mia's private"}
        )
    ).json()
    shared = (
        await mia.client.post(
            "/api/v1/views", json={"object_type": "contact", "name": "Team list", "shared": True}
        )
    ).json()
    names = {v["name"] for v in (await alice.client.get("/api/v1/views")).json()}
    assert "Team list" in names
    assert "Mia's private" not in names
    assert (await alice.client.get(f"/api/v1/views/{mine['id']}")).status_code == 404
    used = await alice.client.get("/api/v1/contacts", params={"view": mine["id"]})
    assert used.status_code == 404
    assert (
        await alice.client.get("/api/v1/contacts", params={"view": shared["id"]})
    ).status_code == 200
    assert (await viewer.client.get(f"/api/v1/views/{shared['id']}")).json()["editable"] is False
    refused = await viewer.client.patch(f"/api/v1/views/{shared['id']}", json={"name": "Mine"})
    assert refused.status_code == 403
    assert (
        await viewer.client.post(
            "/api/v1/views", json={"object_type": "contact", "name": "Share", "shared": True}
        )
    ).status_code == 403  # a viewer cannot share
    assert (
        await viewer.client.post(
            "/api/v1/views", json={"object_type": "contact", "name": "Just me"}
        )
    ).status_code == 201
    # An admin (the owner) may tidy up shared views, not private ones.
    assert (await alice.client.delete(f"/api/v1/views/{mine['id']}")).status_code == 404
    assert (
        await alice.client.patch(f"/api/v1/views/{shared['id']}", json={"name": "Renamed"})
    ).status_code == 200
    key_client = bearer(app, await api_key(alice, ["contacts:read"]))
    key_views = {v["name"] for v in (await key_client.get("/api/v1/views")).json()}
    assert key_views == {"Renamed"}
    await key_client.aclose()
    for member in (mia, viewer):
        await member.client.aclose()


async def test_another_workspace_never_sees_views_or_their_rows(alice: Member, bob: Member) -> None:
    await _contacts(alice, [{"first_name": "Secretia", "tags": ["vip"]}])
    view = (
        await alice.client.post(
            "/api/v1/views",
            json={
                "object_type": "contact",
                "name": "Alice VIPs",
                "shared": True,
                "filters": [{"field": "tags", "op": "contains", "value": "vip"}],
            },
        )
    ).json()
    assert (await bob.client.get("/api/v1/views")).json() == []
    assert (await bob.client.get(f"/api/v1/views/{view['id']}")).status_code == 404
    assert (
        await bob.client.get("/api/v1/contacts", params={"view": view["id"]})
    ).status_code == 404
    assert (
        await bob.client.patch(f"/api/v1/views/{view['id']}", json={"name": "x"})
    ).status_code == 404
    assert (await bob.client.delete(f"/api/v1/views/{view['id']}")).status_code == 404
    filtered = await _list(bob, filters=[{"field": "tags", "op": "contains", "value": "vip"}])
    assert filtered["items"] == []
    count = (await bob.client.get("/api/v1/contacts/count", params={"exact": "true"})).json()
    assert count == {"count": 0, "exact": True}
    page = await bob.client.get(f"/t/{bob.slug}/contacts", params={"view": view["id"]})
    assert "Secretia" not in page.text
    assert (await alice.client.get(f"/api/v1/views/{view['id']}")).status_code == 200


async def test_views_respect_record_visibility(app: object, alice: Member) -> None:
    mia, mia_id = await _join(app, alice)
    me = (await alice.client.get("/api/v1/members")).json()[0]["id"]
    await _contacts(
        alice,
        [
            {"first_name": "Own", "tags": ["vip"], "owner_id": mia_id},
            {"first_name": "Hidden", "tags": ["vip"], "owner_id": me},
        ],
    )
    await alice.client.put("/api/v1/settings/visibility", json={"member": "own"})
    vips = [{"field": "tags", "op": "contains", "value": "vip"}]
    page = await _list(mia, filters=vips, sort="first_name")
    assert [c["first_name"] for c in page["items"]] == ["Own"]
    count = (
        await mia.client.get(
            "/api/v1/contacts/count", params={"filters": json.dumps(vips), "exact": "true"}
        )
    ).json()
    assert count["count"] == 1
    await mia.client.aclose()


async def test_count_is_estimated_for_big_lists_and_exact_on_demand(alice: Member) -> None:
    await _contacts(alice, [{"first_name": f"N{i}"} for i in range(3)])
    small = (await alice.client.get("/api/v1/companies/count")).json()
    assert small["exact"] is True  # a small estimate is checked exactly
    exact = (await alice.client.get("/api/v1/contacts/count", params={"exact": "true"})).json()
    assert exact == {"count": 3, "exact": True}
    searched = (await alice.client.get("/api/v1/contacts/count", params={"q": "N1"})).json()
    assert searched == {"count": 1, "exact": True}


async def test_fields_endpoint_lists_operators_per_kind(alice: Member) -> None:
    fields = (await alice.client.get("/api/v1/views/fields", params={"object_type": "deal"})).json()
    by_name = {f["name"]: f for f in fields}
    assert by_name["amount"]["operators"] == ["equals", "in", "range", "empty"]
    assert by_name["status"]["options"] == ["open", "won", "lost"]
    assert by_name["amount"]["sortable"] is True


async def test_list_pages_apply_builder_filters_sort_and_columns(alice: Member) -> None:
    await _contacts(
        alice,
        [
            {"first_name": "Pia", "last_name": "Zorn", "email": "pia@example.com", "tags": ["vip"]},
            {"first_name": "Pol", "last_name": "Abel", "email": "pol@example.com", "tags": ["vip"]},
            {"first_name": "Quin", "last_name": "Moss"},
        ],
    )
    base = f"/t/{alice.slug}/contacts"
    page = await alice.client.get(
        base,
        params=[
            ("ff", "tags"),
            ("fo", "contains"),
            ("fv", "vip"),
            ("sort", "last_name"),
            ("col", "last_name"),
            ("col", "email"),
        ],
    )
    assert page.status_code == 200
    text = page.text
    assert "Quin" not in text
    assert text.index("Abel") < text.index("Zorn")  # sorted by last name
    assert "<th>Email</th>" in text
    assert "pol@example.com" in text
    bad = await alice.client.get(base, params=[("ff", "tags"), ("fo", "range"), ("fv", "1..2")])
    assert bad.status_code == 200
    assert "not an operator for tags" in bad.text
    row = await alice.client.get(
        f"/t/{alice.slug}/views/filter-row", params={"object_type": "contact", "ff": "created_at"}
    )
    assert 'value="range"' in row.text
    assert 'value="contains"' not in row.text
    count = await alice.client.get(
        f"/t/{alice.slug}/views/count",
        params={
            "object_type": "contact",
            "filters": json.dumps([{"field": "tags", "op": "contains", "value": "vip"}]),
        },
    )
    assert "2 records" in count.text


async def test_saving_a_view_from_the_page_and_picking_it(app: object, alice: Member) -> None:
    await _contacts(alice, [{"first_name": "Rhea", "tags": ["press"]}, {"first_name": "Sam"}])
    saved = await alice.client.post(
        f"/t/{alice.slug}/views",
        data={
            "object_type": "contact",
            "name": "Press",
            "shared": "on",
            "q": "",
            "filters": json.dumps([{"field": "tags", "op": "contains", "value": "press"}]),
            "sort": "first_name",
            "columns": "first_name,tags",
        },
    )
    assert saved.status_code == 303
    assert "?view=" in saved.headers["location"]
    page = await alice.client.get(saved.headers["location"])
    assert "Rhea" in page.text
    assert "Sam" not in page.text
    assert "Press" in page.text  # the picker names it
    listing = await alice.client.get(f"/t/{alice.slug}/contacts")
    assert f"?view={saved.headers['location'].rsplit('=', 1)[1]}" in listing.text
    mia, _ = await _join(app, alice)
    assert "Press" in (await mia.client.get(f"/t/{alice.slug}/contacts")).text  # shared
    private = await mia.client.post(
        f"/t/{alice.slug}/views",
        data={"object_type": "contact", "name": "Mias secret list", "filters": "[]"},
    )
    assert private.status_code == 303
    assert "Mias secret list" not in (await alice.client.get(f"/t/{alice.slug}/contacts")).text
    await mia.client.aclose()


async def test_the_deal_list_count_follows_the_pages_status_filter(alice: Member) -> None:
    for title in ("Open one", "Open two"):
        await alice.client.post("/api/v1/deals", json={"title": title, "currency": "EUR"})
    base = f"/t/{alice.slug}/views/count"
    every = await alice.client.get(base, params={"object_type": "deal"})
    assert "2 records" in every.text
    won = await alice.client.get(base, params={"object_type": "deal", "status": "won"})
    assert "0 records" in won.text
    api = await alice.client.get("/api/v1/deals/count", params={"status": "open"})
    assert api.json() == {"count": 2, "exact": True}
    page = await alice.client.get(f"/t/{alice.slug}/deals/list", params={"status": "won"})
    assert "status=won" in page.text  # the count the page loads keeps the filter
