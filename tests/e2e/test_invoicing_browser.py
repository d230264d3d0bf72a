"""Quotes & invoices in a real browser: the customer signs a quote on the portal's canvas."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from playwright.async_api import Page, expect

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.outbox import run_due
from tests.conftest import sign_up as api_sign_up
from tests.integration.invoicing.conftest import API, created, enable

pytestmark = pytest.mark.e2e


async def test_the_customer_draws_a_signature_and_accepts_the_quote(
    page: Page, page_problems: list[str], app: object, runtime: Runtime
) -> None:
    seller = await api_sign_up(app, f"Portal {secrets.token_hex(3)}")
    await enable(seller)
    vat = await created(seller, "/tax-rates", {"name": "VAT 20%", "rate": "20"})
    quote = await created(
        seller,
        "/quotes",
        {
            "customer": {"name": "Canvas Buyer Ltd"},
            "terms": "Payment within 14 days.",
            "lines": [
                {"description": "Logo design", "unit_price": "500", "tax_rate_ids": [vat["id"]]}
            ],
        },
    )
    sent = await seller.client.post(f"{API}/quotes/{quote['id']}/send")
    tenant = UUID(seller.workspace_id)
    async with runtime.db.transaction(tenant):
        plugins = await runtime.plugins.for_tenant(tenant, seller.slug)
        await run_due(plugins.context("invoicing"))

    await page.goto(urlsplit(sent.json()["portal_url"]).path)
    await expect(page.locator("#quote-status")).to_have_attribute("data-status", "sent")
    await expect(page.get_by_text("Payment within 14 days.")).to_be_visible()
    await page.get_by_label("I have read the quote").check()
    await page.get_by_label("Your full name").fill("Grace Hopper")
    pad = page.locator("#signature-pad")
    await pad.scroll_into_view_if_needed()
    box = await pad.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 20, box["y"] + 100)
    await page.mouse.down()
    for step in range(1, 30):
        await page.mouse.move(box["x"] + 20 + step * 12, box["y"] + 100 - (step % 5) * 15)
    await page.mouse.up()
    assert (await page.locator("#signature").input_value()).startswith("data:image/png;base64,")
    await page.get_by_role("button", name="Accept and sign").click()
    await expect(page.locator("#quote-status")).to_have_attribute("data-status", "accepted")
    await expect(page.locator("#quote-status")).to_contain_text("Grace Hopper")

    accepted = (await seller.client.get(f"{API}/quotes/{quote['id']}")).json()
    assert accepted["status"] == "accepted"
    assert accepted["accepted_user_agent"]
    async with runtime.db.transaction(tenant):
        png = await runtime.db.fetchval(
            "SELECT accepted_signature FROM invoicing_quotes WHERE id = $1", UUID(quote["id"])
        )
    assert bytes(png).startswith(b"\x89PNG")
    assert len(png) > 500  # a drawn stroke, not an empty canvas
    assert page_problems == []
    await seller.client.aclose()
