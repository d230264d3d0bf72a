"""Companies: CRUD, unique domain per workspace, contacts linked by id or by name."""

from __future__ import annotations

import pytest

from tests.conftest import Member


async def test_company_crud_with_normalised_domain(alice: Member) -> None:
    created = await alice.client.post(
        "/api/v1/companies",
        json={
            "name": "Aegean Foods",
            "domain": "https://www.Aegean-Foods.gr/about",
            "size": "11-50",
            "industry": "Food",
            "tags": ["b2b"],
        },
    )
    assert created.status_code == 201, created.text
    company = created.json()
    assert company["domain"] == "aegean-foods.gr"
    url = f"/api/v1/companies/{company['id']}"
    assert (await alice.client.get(url)).json() == company
    patched = await alice.client.patch(url, json={"phone": "+30 210 1234", "size": None})
    assert patched.json()["phone"] == "+30 210 1234"
    assert patched.json()["size"] is None
    found = (await alice.client.get("/api/v1/companies", params={"q": "AEGEAN"})).json()
    assert [c["id"] for c in found["items"]] == [company["id"]]
    assert (await alice.client.delete(url)).status_code == 204
    assert (await alice.client.get(url)).status_code == 404


async def test_domain_is_unique_per_workspace_not_globally(alice: Member, bob: Member) -> None:
    first = await alice.client.post("/api/v1/companies", json={"name": "A", "domain": "acme.com"})
    assert first.status_code == 201
    clash = await alice.client.post("/api/v1/companies", json={"name": "B", "domain": "ACME.com"})
    assert clash.status_code == 409
    assert clash.json()["extra"][0]["key"] == "domain"
    elsewhere = await bob.client.post("/api/v1/companies", json={"name": "A", "domain": "acme.com"})
    assert elsewhere.status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "X", "domain": "not a domain"}, "domain"),
        ({"name": "X", "size": "huge"}, "size"),
        ({"name": "X", "shoe": 1}, "shoe"),
    ],
)
async def test_bad_company_input_names_the_field(
    alice: Member, payload: dict[str, object], field: str
) -> None:
    response = await alice.client.post("/api/v1/companies", json=payload)
    assert response.status_code == 400, response.text
    assert field in {item["key"] for item in response.json()["extra"]}
    assert (await alice.client.get("/api/v1/companies")).json()["items"] == []


async def test_contacts_link_to_a_company_by_name_or_id(alice: Member) -> None:
    by_name = (
        await alice.client.post(
            "/api/v1/contacts", json={"first_name": "Ana", "company_name": "Lima Ltd"}
        )
    ).json()
    again = (
        await alice.client.post(
            "/api/v1/contacts", json={"first_name": "Bo", "company_name": "LIMA LTD"}
        )
    ).json()
    assert by_name["company_id"] == again["company_id"] is not None
    assert again["company_name"] == "Lima Ltd"
    companies = (await alice.client.get("/api/v1/companies")).json()["items"]
    assert [c["name"] for c in companies] == ["Lima Ltd"]
    other = (await alice.client.post("/api/v1/companies", json={"name": "Other"})).json()
    moved = await alice.client.patch(
        f"/api/v1/contacts/{by_name['id']}", json={"company_id": other["id"]}
    )
    assert moved.json()["company_name"] == "Other"
    cleared = await alice.client.patch(
        f"/api/v1/contacts/{by_name['id']}", json={"company_name": None}
    )
    assert cleared.json()["company_id"] is None


async def test_companies_are_walled_per_workspace(alice: Member, bob: Member) -> None:
    company = (await alice.client.post("/api/v1/companies", json={"name": "Secret Co"})).json()
    url = f"/api/v1/companies/{company['id']}"
    assert (await bob.client.get(url)).status_code == 404
    assert (await bob.client.patch(url, json={"name": "Mine"})).status_code == 404
    assert (await bob.client.delete(url)).status_code == 404
    assert (await bob.client.get("/api/v1/companies", params={"q": "secret"})).json()["items"] == []
    linked = await bob.client.post(
        "/api/v1/contacts", json={"first_name": "X", "company_id": company["id"]}
    )
    assert linked.status_code == 400
    assert linked.json()["extra"][0]["key"] == "company_id"
    assert (await bob.client.get(f"{url}/timeline")).status_code == 404
