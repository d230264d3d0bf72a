"""Quotes & invoices fixtures: workspaces that enabled the plugin, and a catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Member, enable_plugin, sign_up

PLUGIN = "invoicing"
API = f"/api/v1/apps/{PLUGIN}"


async def enable(member: Member, settings: dict[str, object] | None = None) -> None:
    """Enable the plugin from the marketplace with every scope it asks for, as an admin would."""
    await enable_plugin(member, PLUGIN, settings)


async def created(member: Member, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to the plugin's API; the created record."""
    response = await member.client.post(API + path, json=body)
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


def error_fields(response: Any) -> set[str]:
    """The fields a 4xx JSON error names."""
    return {item["key"] for item in response.json().get("extra", [])}


@pytest.fixture
async def seller(app: object) -> AsyncIterator[Member]:
    """A workspace whose admin enabled quotes & invoices."""
    member = await sign_up(app, "Seller Co")
    await enable(member)
    yield member
    await member.client.aclose()


@pytest.fixture
async def rival(app: object) -> AsyncIterator[Member]:
    """A second workspace with the plugin enabled: it must see none of the first's data."""
    member = await sign_up(app, "Rival Co")
    await enable(member)
    yield member
    await member.client.aclose()


async def catalogue(member: Member) -> dict[str, Any]:
    """A 19 % VAT rate, a product with a EUR price: what most tests sell."""
    vat = await created(member, "/tax-rates", {"name": "VAT 19%", "rate": "19"})
    product = await created(
        member,
        "/products",
        {"name": "Consulting", "sku": "CONS", "unit_code": "HUR", "tax_rate_ids": [vat["id"]]},
    )
    prices = await created(
        member, "/price-lists", {"name": "EUR list", "currency": "EUR", "is_default": True}
    )
    put = await member.client.put(
        f"{API}/price-lists/{prices['id']}/prices/{product['id']}", json={"unit_price": "100.00"}
    )
    assert put.status_code == 200, put.text
    return {"vat": vat, "product": product, "price_list": prices}
