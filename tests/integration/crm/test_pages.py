"""The CRM pages over HTTP: forms create, pages show, isolation holds."""

from __future__ import annotations

import re

from tests.conftest import Member


async def test_company_and_deal_pages_from_form_to_board(alice: Member) -> None:
    base = f"/t/{alice.slug}"
    empty = await alice.client.get(f"{base}/companies")
    assert "No companies yet" in empty.text
    created = await alice.client.post(
        f"{base}/companies", data={"name": "Ελαιόλαδο ΑΕ", "domain": "elaiolado.gr"}
    )
    assert created.status_code == 303
    company_url = created.headers["location"]
    page = await alice.client.get(company_url)
    assert "Ελαιόλαδο ΑΕ" in page.text
    assert "Nothing logged yet" in page.text
    company_id = company_url.rsplit("/", 1)[1]

    board = await alice.client.get(f"{base}/deals")
    assert board.status_code == 200
    assert len(re.findall(r'class="column"', board.text)) == 6
    deal = await alice.client.post(
        f"{base}/deals",
        data={
            "title": "Harvest 2027",
            "amount": "900.10",
            "currency": "eur",
            "company_id": company_id,
        },
    )
    assert deal.status_code == 303, deal.text
    deal_url = deal.headers["location"]
    detail = await alice.client.get(deal_url)
    assert "€900.10" in detail.text
    board = await alice.client.get(f"{base}/deals")
    assert "Harvest 2027" in board.text


async def test_bad_deal_form_comes_back_with_the_field_error(alice: Member) -> None:
    response = await alice.client.post(
        f"/t/{alice.slug}/deals", data={"title": "X", "currency": "XYZ"}
    )
    assert response.status_code == 422
    assert 'data-field="currency"' in response.text
    assert "ISO 4217" in response.text


async def test_a_note_logged_on_a_contact_shows_on_its_company_page(alice: Member) -> None:
    contact = (
        await alice.client.post(
            "/api/v1/contacts", json={"first_name": "Ana", "company_name": "Lima Ltd"}
        )
    ).json()
    back = f"/t/{alice.slug}/contacts/{contact['id']}"
    logged = await alice.client.post(
        f"/t/{alice.slug}/activities",
        data={
            "kind": "note",
            "subject": "Sent the price list",
            "contact_id": contact["id"],
            "back": back,
        },
    )
    assert logged.status_code == 303
    assert logged.headers["location"] == back
    assert "Sent the price list" in (await alice.client.get(back)).text
    company_page = await alice.client.get(f"/t/{alice.slug}/companies/{contact['company_id']}")
    assert "Sent the price list" in company_page.text
    assert "Ana" in company_page.text


async def test_a_note_cannot_be_logged_on_another_workspaces_contact(
    alice: Member, bob: Member
) -> None:
    contact = (await alice.client.post("/api/v1/contacts", json={"first_name": "Ana"})).json()
    response = await bob.client.post(
        f"/t/{bob.slug}/activities",
        data={"kind": "note", "subject": "x", "contact_id": contact["id"]},
    )
    assert response.status_code == 400
    assert (await bob.client.get(f"/t/{bob.slug}/companies")).status_code == 200
    assert (await bob.client.get(f"/t/{alice.slug}/deals")).status_code == 404


async def test_deal_list_filters_by_text_and_status(alice: Member, bob: Member) -> None:
    for title in ("Olive harvest", "Honey export"):
        await alice.client.post("/api/v1/deals", json={"title": title, "currency": "EUR"})
    base = f"/t/{alice.slug}/deals/list"
    everything = (await alice.client.get(base)).text
    assert "Olive harvest" in everything
    assert "Honey export" in everything
    honey = await alice.client.get(base, params={"q": "HONEY"}, headers={"HX-Request": "true"})
    assert "Honey export" in honey.text
    assert "Olive harvest" not in honey.text
    assert "<html" not in honey.text  # just the rows for live filtering
    won = (await alice.client.get(base, params={"status": "won"})).text
    assert "No deal matches these filters." in won
    assert "Olive harvest" not in (await bob.client.get(f"/t/{bob.slug}/deals/list")).text


async def test_company_and_deal_forms_carry_the_workspaces_custom_fields(alice: Member) -> None:
    for object_type in ("company", "deal"):
        defined = await alice.client.post(
            "/api/v1/custom-fields",
            json={
                "object_type": object_type,
                "key": "tier",
                "label": "Tier",
                "type": "select",
                "options": ["gold", "silver"],
                "required": True,
            },
        )
        assert defined.status_code == 201, defined.text
    base = f"/t/{alice.slug}"
    form = (await alice.client.get(f"{base}/companies/new")).text
    assert "Tier" in form
    missing = await alice.client.post(f"{base}/companies", data={"name": "Tiered Co"})
    assert missing.status_code == 422
    assert 'data-field="custom.tier"' in missing.text
    created = await alice.client.post(
        f"{base}/companies", data={"name": "Tiered Co", "custom.tier": "gold"}
    )
    assert created.status_code == 303, created.text
    detail = (await alice.client.get(created.headers["location"])).text
    assert "Tier" in detail
    assert "gold" in detail
    deal = await alice.client.post(
        f"{base}/deals", data={"title": "Tiered deal", "currency": "EUR", "custom.tier": "silver"}
    )
    assert deal.status_code == 303, deal.text
    assert "silver" in (await alice.client.get(deal.headers["location"])).text


async def test_list_pages_filter_by_choice_custom_fields(alice: Member, bob: Member) -> None:
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
    for name, tier in (("Goldie", "gold"), ("Silvia", "silver")):
        created = await alice.client.post(
            "/api/v1/contacts", json={"first_name": name, "custom": {"tier": tier}}
        )
        assert created.status_code == 201, created.text
    base = f"/t/{alice.slug}/contacts"
    page = (await alice.client.get(base)).text
    assert 'name="custom.tier"' in page
    assert "Any Tier" in page
    gold = (await alice.client.get(base, params={"custom.tier": "gold"})).text
    assert "Goldie" in gold
    assert "Silvia" not in gold
    both = await alice.client.get(base, params={"custom.tier": "gold", "q": "Gold"})
    assert both.status_code == 200
    assert "Goldie" in both.text
    neither = await alice.client.get(base, params={"custom.tier": "silver", "q": "Gold"})
    assert "Goldie" not in neither.text
    assert "Silvia" not in neither.text
    assert 'name="custom.tier"' not in (await bob.client.get(f"/t/{bob.slug}/contacts")).text
