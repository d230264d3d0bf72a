"""Custom fields: definitions (admin-only), typed validation on write, filters, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Member, api_key, bearer, sign_up

FIELDS = "/api/v1/custom-fields"


async def define(member: Member, **body: Any) -> dict[str, Any]:
    body.setdefault("object_type", "contact")
    body.setdefault("label", body["key"].title())
    response = await member.client.post(FIELDS, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def problem_keys(response: Any) -> set[str]:
    return {item["key"] for item in response.json()["extra"]}


async def test_definitions_crud_in_form_order(alice: Member) -> None:
    tier = await define(alice, key="tier", type="select", options=["gold", "silver"], position=1)
    await define(alice, key="since", type="date", position=0)
    await define(alice, key="region", type="text", object_type="company")
    listed = (await alice.client.get(FIELDS, params={"object_type": "contact"})).json()
    assert [f["key"] for f in listed] == ["since", "tier"]
    assert {f["key"] for f in (await alice.client.get(FIELDS)).json()} == {
        "since",
        "tier",
        "region",
    }
    url = f"{FIELDS}/{tier['id']}"
    patched = await alice.client.patch(
        url, json={"label": "Tier", "options": ["gold", "silver", "bronze"], "required": True}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["options"] == ["gold", "silver", "bronze"]
    assert patched.json()["required"] is True
    assert (await alice.client.get(url)).json() == patched.json()
    clash = await alice.client.post(
        FIELDS, json={"object_type": "contact", "key": "tier", "label": "X", "type": "text"}
    )
    assert clash.status_code == 409
    assert problem_keys(clash) == {"key"}
    assert (await alice.client.delete(url)).status_code == 204
    assert (await alice.client.get(url)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "Bad Key", "label": "X", "type": "text"}, "key"),
        ({"key": "k", "label": "X", "type": "colour"}, "type"),
        ({"key": "k", "label": "X", "type": "select"}, "options"),
        ({"key": "k", "label": "X", "type": "text", "options": ["a"]}, "options"),
        ({"key": "k", "label": "X", "type": "select", "options": ["a", "A"]}, "options"),
        ({"key": "k", "label": " ", "type": "text"}, "label"),
        ({"key": "k", "label": "X", "type": "text", "object_type": "task"}, "object_type"),
    ],
)
async def test_bad_definitions_name_the_field(
    alice: Member, body: dict[str, Any], field: str
) -> None:
    response = await alice.client.post(FIELDS, json={"object_type": "contact", **body})
    assert response.status_code == 400, response.text
    assert field in problem_keys(response)
    assert (await alice.client.get(FIELDS)).json() == []


async def test_only_owners_and_admins_change_definitions(app: object, alice: Member) -> None:
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": "cf-member@example.com", "role": "member"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    mia = await sign_up(app, "Mia's own", email="cf-member@example.com")
    assert (await mia.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    # Opening a page of Alice's workspace makes it the one Mia's session acts in.
    assert (await mia.client.get(f"/t/{alice.slug}/contacts")).status_code == 200
    field = await define(alice, key="tier", type="text")
    refused = await mia.client.post(
        FIELDS, json={"object_type": "contact", "key": "x", "label": "X", "type": "text"}
    )
    assert refused.status_code == 403
    assert "custom_fields:write" in refused.json()["detail"]
    assert (await mia.client.delete(f"{FIELDS}/{field['id']}")).status_code == 403
    assert (
        await mia.client.patch(f"{FIELDS}/{field['id']}", json={"label": "Y"})
    ).status_code == 403
    # Members read definitions: their forms need them.
    assert [f["key"] for f in (await mia.client.get(FIELDS)).json()] == ["tier"]
    await mia.client.aclose()
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    async with bearer(app, key) as client:
        response = await client.post(
            FIELDS, json={"object_type": "contact", "key": "y", "label": "Y", "type": "text"}
        )
        assert response.status_code == 403
    assert [f["key"] for f in (await alice.client.get(FIELDS)).json()] == ["tier"]


TYPES: list[tuple[dict[str, Any], Any, Any, Any]] = [
    # definition, good input, stored form, bad input
    ({"type": "text"}, "  Athens ", "Athens", 12),
    ({"type": "long_text"}, "line 1\nline 2", "line 1\nline 2", "x" * 10_001),
    ({"type": "number"}, "42", 42, "4.2"),
    ({"type": "number"}, -7, -7, True),
    ({"type": "decimal"}, "12.50", "12.5", "twelve"),
    ({"type": "decimal"}, 3, "3", "NaN"),
    ({"type": "date"}, "2027-03-31", "2027-03-31", "31/03/2027"),
    ({"type": "select", "options": ["gold", "silver"]}, "gold", "gold", "platinum"),
    (
        {"type": "multi_select", "options": ["a", "b", "c"]},
        ["c", "a", "c"],
        ["a", "c"],
        ["a", "z"],
    ),
    ({"type": "checkbox"}, True, True, "yes"),
    ({"type": "url"}, "https://example.com/x", "https://example.com/x", "javascript:alert(1)"),
    ({"type": "email"}, "Ana@Example.com", "Ana@example.com", "ana@"),
]


@pytest.mark.parametrize(("definition", "good", "stored", "bad"), TYPES)
async def test_each_type_is_normalised_and_bad_values_are_refused_by_name(
    alice: Member, definition: dict[str, Any], good: Any, stored: Any, bad: Any
) -> None:
    await define(alice, key="field", **definition)
    for object_type, path, base in (
        ("contact", "/api/v1/contacts", {"first_name": "Ana"}),
        ("company", "/api/v1/companies", {"name": "Acme"}),
        ("deal", "/api/v1/deals", {"title": "Big", "currency": "EUR"}),
    ):
        if object_type != "contact":
            await define(alice, key="field", object_type=object_type, **definition)
        refused = await alice.client.post(path, json={**base, "custom": {"field": bad}})
        assert refused.status_code == 400, (object_type, refused.text)
        assert problem_keys(refused) == {"custom.field"}
        assert (await alice.client.get(path)).json()["items"] == []
        created = await alice.client.post(
            path, json={**base, "custom": {"field": good, "free": {"any": 1}}}
        )
        assert created.status_code == 201, (object_type, created.text)
        assert created.json()["custom"] == {"field": stored, "free": {"any": 1}}
        url = f"{path}/{created.json()['id']}"
        bad_patch = await alice.client.patch(url, json={"custom": {"field": bad}})
        assert bad_patch.status_code == 400
        assert problem_keys(bad_patch) == {"custom.field"}
        assert (await alice.client.get(url)).json()["custom"]["field"] == stored


async def test_required_fields_must_be_present_when_custom_is_written(alice: Member) -> None:
    await define(alice, key="source", type="select", options=["fair", "web"], required=True)
    await define(alice, key="score", type="number")
    missing = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Ana", "custom": {"score": "x"}}
    )
    assert missing.status_code == 400
    assert problem_keys(missing) == {"custom.source", "custom.score"}
    empty = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Ana", "custom": {"source": ""}}
    )
    assert problem_keys(empty) == {"custom.source"}
    assert (await alice.client.get("/api/v1/contacts")).json()["items"] == []
    created = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Ana", "custom": {"source": "web"}}
    )
    assert created.status_code == 201
    url = f"/api/v1/contacts/{created.json()['id']}"
    # An update that leaves custom alone does not re-check it.
    assert (await alice.client.patch(url, json={"phone": "1"})).status_code == 200
    cleared = await alice.client.patch(url, json={"custom": {"source": None}})
    assert problem_keys(cleared) == {"custom.source"}


async def test_a_company_made_from_a_contacts_company_name_skips_required_fields(
    alice: Member,
) -> None:
    await define(alice, key="vat", type="text", object_type="company", required=True)
    contact = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "Ana", "company_name": "Lima Ltd"}
    )
    assert contact.status_code == 201, contact.text
    direct = await alice.client.post("/api/v1/companies", json={"name": "Other"})
    assert problem_keys(direct) == {"custom.vat"}


async def test_filters_by_custom_fields_with_keyset_pages(alice: Member) -> None:
    await define(alice, key="tier", type="select", options=["gold", "silver"])
    await define(alice, key="langs", type="multi_select", options=["el", "ru", "zh"])
    await define(alice, key="score", type="decimal")
    await define(alice, key="vip", type="checkbox")
    for i in range(5):
        custom = {
            "tier": "gold" if i % 2 == 0 else "silver",
            "langs": ["el", "ru"] if i < 2 else ["zh"],
            "score": "1.50" if i == 4 else str(i),
            "vip": i == 3,
        }
        response = await alice.client.post(
            "/api/v1/contacts", json={"first_name": f"C{i}", "custom": custom}
        )
        assert response.status_code == 201, response.text

    async def names(**params: Any) -> list[str]:
        response = await alice.client.get("/api/v1/contacts", params=params)
        assert response.status_code == 200, response.text
        return [c["first_name"] for c in response.json()["items"]]

    assert await names(**{"custom.tier": "gold"}) == ["C4", "C2", "C0"]
    assert await names(**{"custom.langs": "ru"}) == ["C1", "C0"]
    assert await names(**{"custom.score": "1.5"}) == ["C4"]
    assert await names(**{"custom.vip": "true"}) == ["C3"]
    assert await names(**{"custom.tier": "gold", "custom.langs": "zh"}) == ["C4", "C2"]
    assert await names(**{"custom.tier": "gold", "q": "C2"}) == ["C2"]  # q and filters combine
    first = await alice.client.get("/api/v1/contacts", params={"custom.tier": "gold", "limit": 2})
    assert [c["first_name"] for c in first.json()["items"]] == ["C4", "C2"]
    rest = await alice.client.get(
        "/api/v1/contacts",
        params={"custom.tier": "gold", "limit": 2, "cursor": first.json()["next_cursor"]},
    )
    assert [c["first_name"] for c in rest.json()["items"]] == ["C0"]
    assert rest.json()["next_cursor"] is None
    for params, field in (
        ({"custom.nope": "1"}, "custom.nope"),
        ({"custom.tier": "platinum"}, "custom.tier"),
    ):
        response = await alice.client.get("/api/v1/contacts", params=params)
        assert response.status_code == 400, params
        assert problem_keys(response) == {field}


async def test_companies_and_deals_filter_by_custom_fields(alice: Member) -> None:
    await define(alice, key="region", type="text", object_type="company")
    await define(alice, key="size", type="number", object_type="deal")
    for name, region in (("North Co", "north"), ("South Co", "south")):
        await alice.client.post(
            "/api/v1/companies", json={"name": name, "custom": {"region": region}}
        )
    for title, size in (("Small", 1), ("Large", 100)):
        created = await alice.client.post(
            "/api/v1/deals", json={"title": title, "currency": "EUR", "custom": {"size": size}}
        )
        assert created.status_code == 201, created.text
    companies = await alice.client.get("/api/v1/companies", params={"custom.region": "south"})
    assert [c["name"] for c in companies.json()["items"]] == ["South Co"]
    deals = await alice.client.get("/api/v1/deals", params={"custom.size": "100"})
    assert [d["title"] for d in deals.json()["items"]] == ["Large"]
    unknown = await alice.client.get("/api/v1/deals", params={"custom.region": "south"})
    assert unknown.status_code == 400
    assert problem_keys(unknown) == {"custom.region"}


async def test_workspaces_never_share_definitions(alice: Member, bob: Member) -> None:
    field = await define(alice, key="tier", type="select", options=["gold"], required=True)
    assert (await bob.client.get(FIELDS)).json() == []
    url = f"{FIELDS}/{field['id']}"
    assert (await bob.client.get(url)).status_code == 404
    assert (await bob.client.patch(url, json={"label": "Mine"})).status_code == 404
    assert (await bob.client.delete(url)).status_code == 404
    assert (await alice.client.get(url)).json()["label"] == "Tier"
    # Bob's values are not checked against Alice's definition (free-form there).
    bobs = await bob.client.post(
        "/api/v1/contacts", json={"first_name": "Bo", "custom": {"tier": 12}}
    )
    assert bobs.status_code == 201, bobs.text
    assert bobs.json()["custom"] == {"tier": 12}
    refused = await bob.client.get("/api/v1/contacts", params={"custom.tier": "gold"})
    assert refused.status_code == 400
    # Bob may define the same key for himself.
    await define(bob, key="tier", type="number")
    assert [f["type"] for f in (await bob.client.get(FIELDS)).json()] == ["number"]
    assert [f["type"] for f in (await alice.client.get(FIELDS)).json()] == ["select"]


async def test_contact_form_and_detail_show_custom_fields(alice: Member) -> None:
    base = f"/t/{alice.slug}"
    await define(alice, key="tier", label="Loyalty tier", type="select", options=["gold", "silver"])
    await define(alice, key="vip", label="VIP", type="checkbox")
    await define(alice, key="langs", label="Languages", type="multi_select", options=["el", "ru"])
    await define(alice, key="since", label="Customer since", type="date", required=True)
    form = await alice.client.get(f"{base}/contacts/new")
    assert 'name="custom.tier"' in form.text
    assert "Loyalty tier" in form.text
    assert '<option value="gold"' in form.text
    refused = await alice.client.post(
        f"{base}/contacts", data={"first_name": "Ana", "custom.since": "31/12/2020"}
    )
    assert refused.status_code == 422
    assert 'data-field="custom.since"' in refused.text
    assert (await alice.client.get("/api/v1/contacts")).json()["items"] == []
    created = await alice.client.post(
        f"{base}/contacts",
        data={
            "first_name": "Ana",
            "custom.tier": "gold",
            "custom.vip": "true",
            "custom.langs": ["el", "ru"],
            "custom.since": "2020-12-31",
        },
    )
    assert created.status_code == 303, created.text
    detail = await alice.client.get(created.headers["location"])
    assert "Loyalty tier" in detail.text
    assert "Customer since" in detail.text
    assert "2020-12-31" in detail.text
    contact = (await alice.client.get("/api/v1/contacts")).json()["items"][0]
    assert contact["custom"] == {
        "tier": "gold",
        "vip": True,
        "langs": ["el", "ru"],
        "since": "2020-12-31",
    }
    edit = await alice.client.get(f"{created.headers['location']}/edit")
    assert '<option value="gold" selected' in edit.text


async def test_the_settings_page_adds_and_removes_fields_for_admins_only(
    app: object, alice: Member, bob: Member
) -> None:
    page = f"/t/{alice.slug}/custom-fields"
    assert "No custom fields yet" in (await alice.client.get(page)).text
    bad = await alice.client.post(
        page, data={"object_type": "company", "type": "select", "label": "Region", "key": "region"}
    )
    assert bad.status_code == 422
    assert 'data-field="options"' in bad.text
    added = await alice.client.post(
        page,
        data={
            "object_type": "company",
            "type": "select",
            "label": "Region",
            "key": "region",
            "options": "north, south",
            "required": "true",
        },
    )
    assert added.status_code == 303, added.text
    listed = (await alice.client.get(FIELDS, params={"object_type": "company"})).json()
    assert [(f["key"], f["options"], f["required"]) for f in listed] == [
        ("region", ["north", "south"], True)
    ]
    assert "Region" in (await alice.client.get(page)).text
    assert (await bob.client.get(page)).status_code == 404
    removed = await alice.client.post(f"{page}/{listed[0]['id']}/delete")
    assert removed.status_code == 303
    assert (await alice.client.get(FIELDS)).json() == []
