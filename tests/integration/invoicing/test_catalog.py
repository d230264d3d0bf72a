"""Products, units, tax rates and price lists: per workspace, validated, nothing half-written."""

from __future__ import annotations

from tests.conftest import Member
from tests.integration.invoicing.conftest import API, catalogue, created, error_fields


async def test_a_new_workspace_has_units_and_builds_a_catalogue(seller: Member) -> None:
    units = (await seller.client.get(f"{API}/units")).json()
    assert {"code": "HUR", "name": "hour"} in units
    made = await catalogue(seller)
    product = (await seller.client.get(f"{API}/products/{made['product']['id']}")).json()
    assert product["unit_code"] == "HUR"
    assert product["tax_rate_ids"] == [made["vat"]["id"]]
    assert product["prices"] == [
        {
            "price_list_id": made["price_list"]["id"],
            "name": "EUR list",
            "currency": "EUR",
            "prices_include_tax": False,
            "unit_price": "100.00",
        }
    ]
    found = (await seller.client.get(f"{API}/products", params={"q": "consult"})).json()
    assert [p["id"] for p in found] == [made["product"]["id"]]


async def test_one_default_price_list_per_currency(seller: Member) -> None:
    first = await created(
        seller, "/price-lists", {"name": "A", "currency": "CHF", "is_default": True}
    )
    second = await created(
        seller, "/price-lists", {"name": "B", "currency": "CHF", "is_default": True}
    )
    lists = {x["id"]: x for x in (await seller.client.get(f"{API}/price-lists")).json()}
    assert lists[first["id"]]["is_default"] is False
    assert lists[second["id"]]["is_default"] is True


async def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(seller: Member) -> None:
    cases = [
        ("/tax-rates", {"name": "Odd", "rate": "12", "category": "X"}, "category"),
        ("/tax-rates", {"name": "Exempt", "rate": "5", "category": "E"}, "rate"),
        ("/tax-rates", {"name": "IRPF", "rate": "15", "kind": "withholding"}, "rate"),
        ("/tax-rates", {"name": "", "rate": "5"}, "name"),
        ("/tax-rates", {"name": "NaN", "rate": "abc"}, "rate"),
        ("/units", {"code": "hour!", "name": "Hour"}, "code"),
        ("/products", {"name": "P", "unit_code": "ZZZ"}, "unit_code"),
        (
            "/products",
            {"name": "P", "tax_rate_ids": ["01a213c7-9cfd-713e-9f3e-ca921ceeb4d3"]},
            "tax_rate_ids",
        ),
        ("/products", {"name": "P", "colour": "red"}, "colour"),
        ("/price-lists", {"name": "L", "currency": "EURO"}, "currency"),
    ]
    for path, body, field in cases:
        response = await seller.client.post(API + path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert field in error_fields(response), (path, response.json())
    assert (await seller.client.get(f"{API}/tax-rates")).json() == []
    assert (await seller.client.get(f"{API}/products")).json() == []
    assert (await seller.client.get(f"{API}/price-lists")).json() == []
    made = await catalogue(seller)
    negative = await seller.client.put(
        f"{API}/price-lists/{made['price_list']['id']}/prices/{made['product']['id']}",
        json={"unit_price": "-1"},
    )
    assert negative.status_code == 400
    assert "unit_price" in error_fields(negative)
    duplicate = await seller.client.post(f"{API}/products", json={"name": "Again", "sku": "CONS"})
    assert duplicate.status_code == 409


async def test_another_workspace_sees_and_changes_none_of_the_catalogue(
    seller: Member, rival: Member
) -> None:
    made = await catalogue(seller)
    assert (await rival.client.get(f"{API}/products")).json() == []
    assert (await rival.client.get(f"{API}/tax-rates")).json() == []
    assert (await rival.client.get(f"{API}/price-lists")).json() == []
    product_id = made["product"]["id"]
    assert (await rival.client.get(f"{API}/products/{product_id}")).status_code == 404
    changed = await rival.client.patch(f"{API}/products/{product_id}", json={"name": "Mine"})
    assert changed.status_code == 404
    list_id = made["price_list"]["id"]
    priced = await rival.client.put(
        f"{API}/price-lists/{list_id}/prices/{product_id}", json={"unit_price": "1"}
    )
    assert priced.status_code == 404
    # Using the first workspace's tax rate on the rival's product is refused.
    stolen = await rival.client.post(
        f"{API}/products", json={"name": "P", "tax_rate_ids": [made["vat"]["id"]]}
    )
    assert stolen.status_code == 400
    product = (await seller.client.get(f"{API}/products/{product_id}")).json()
    assert product["name"] == "Consulting"
    assert product["prices"][0]["unit_price"] == "100.00"
