"""The invoicing pages and the deal sidebar's "Create quote" panel, through the session app."""

from __future__ import annotations

import re

from tests.conftest import Member
from tests.integration.invoicing.conftest import API, catalogue, created
from tests.integration.invoicing.test_quotes import _deal


async def test_a_user_creates_a_quote_from_the_deal_page_and_works_it_on_its_pages(
    seller: Member, rival: Member
) -> None:
    made = await catalogue(seller)
    deal = await _deal(seller)
    base = f"/t/{seller.slug}/apps/invoicing"
    deal_page = await seller.client.get(f"/t/{seller.slug}/deals/{deal['id']}")
    assert deal_page.status_code == 200
    assert 'id="create-quote"' in deal_page.text
    assert f'href="{base}/"' in deal_page.text or f'href="{base}"' in deal_page.text  # nav link

    made_quote = await seller.client.post(
        f"{base}/quotes/new", data={"deal_id": deal["id"]}, headers={"HX-Request": "true"}
    )
    assert made_quote.status_code == 200, made_quote.text
    quote_path = made_quote.headers["HX-Redirect"]
    assert re.fullmatch(rf"{base}/quotes/[0-9a-f-]{{36}}", quote_path)
    quote_id = quote_path.rsplit("/", 1)[1]

    added = await seller.client.post(
        f"{quote_path}/lines",
        data={
            "product_id": made["product"]["id"],
            "quantity": "2",
            "unit_price": "",
            "tax_rate_id": "",
        },
    )
    assert added.status_code == 303, added.text
    freeform = await seller.client.post(
        f"{quote_path}/lines",
        data={
            "product_id": "",
            "description": "Hosting",
            "quantity": "1",
            "unit_price": "50",
            "tax_rate_id": made["vat"]["id"],
        },
    )
    assert freeform.status_code == 303, freeform.text
    page = await seller.client.get(quote_path)
    assert page.status_code == 200
    assert "Consulting" in page.text
    assert "Hosting" in page.text
    assert 'id="payable">€297.50<' in page.text  # (200 + 50) × 1.19
    assert (await seller.client.get(f"{API}/quotes/{quote_id}")).json()["totals"][
        "payable"
    ] == "297.50"
    details = await seller.client.post(
        f"{quote_path}/details",
        data={"title": "Rebuild", "expires_on": "2099-12-31", "discount_percent": "10",
              "notes": "Thanks", "terms": "Half on signature."},
    )  # fmt: skip
    assert details.status_code == 303, details.text
    detailed = (await seller.client.get(f"{API}/quotes/{quote_id}")).json()
    assert (detailed["title"], detailed["expires_on"], detailed["terms"]) == (
        "Rebuild", "2099-12-31", "Half on signature."
    )  # fmt: skip
    assert detailed["totals"]["payable"] == "267.75"  # 250 - 10 % = 225, + 19 %
    bad_date = await seller.client.post(f"{quote_path}/details", data={"expires_on": "soon"})
    assert bad_date.status_code == 400
    bad = await seller.client.post(f"{quote_path}/lines", data={"product_id": "", "quantity": "x"})
    assert bad.status_code == 400
    sent = await seller.client.post(f"{quote_path}/send")
    assert sent.status_code == 303
    sent_page = (await seller.client.get(quote_path)).text
    assert 'data-status="sent"' in sent_page
    assert 'id="portal-link"' in sent_page

    overview = await seller.client.get(f"{base}/")
    assert overview.status_code == 200
    assert quote_path in overview.text
    panel = await seller.client.get(f"/t/{seller.slug}/deals/{deal['id']}")
    assert quote_path in panel.text

    # The rival workspace cannot open the page.
    assert (
        await rival.client.get(f"/t/{rival.slug}/apps/invoicing/quotes/{quote_id}")
    ).status_code == 404


async def test_an_invoice_is_finalized_from_its_page(seller: Member) -> None:
    await catalogue(seller)
    draft = await created(
        seller,
        "/invoices",
        {"customer": {"name": "C"}, "lines": [{"description": "x", "unit_price": "10"}]},
    )
    path = f"/t/{seller.slug}/apps/invoicing/invoices/{draft['id']}"
    page = await seller.client.get(path)
    assert 'id="finalize"' in page.text
    done = await seller.client.post(f"{path}/finalize", data={"exchange_rate": ""})
    assert done.status_code == 303, done.text
    page = await seller.client.get(path)
    assert 'data-status="finalized"' in page.text
    assert 'id="download-pdf"' in page.text
    assert "INV-" in page.text


async def test_the_catalogue_page_adds_taxes_products_lists_and_prices(seller: Member) -> None:
    path = f"/t/{seller.slug}/apps/invoicing/catalog"
    assert (
        await seller.client.post(
            f"{path}/tax-rates",
            data={"name": "VAT 7%", "rate": "7", "category": "S", "kind": "vat"},
        )
    ).status_code == 303
    tax = (await seller.client.get(f"{API}/tax-rates")).json()[0]
    assert (
        await seller.client.post(
            f"{path}/products",
            data={"name": "Book", "sku": "B1", "unit_code": "H87", "tax_rate_id": tax["id"]},
        )
    ).status_code == 303
    assert (
        await seller.client.post(
            f"{path}/price-lists",
            data={
                "name": "Shop",
                "currency": "EUR",
                "prices_include_tax": "yes",
                "is_default": "yes",
            },
        )
    ).status_code == 303
    product = (await seller.client.get(f"{API}/products")).json()[0]
    price_list = (await seller.client.get(f"{API}/price-lists")).json()[0]
    priced = await seller.client.post(
        f"{path}/prices",
        data={
            "price_list_id": price_list["id"],
            "product_id": product["id"],
            "unit_price": "12,90",
        },
    )
    assert priced.status_code == 303
    page = await seller.client.get(path)
    assert page.status_code == 200
    assert "Book" in page.text
    assert "€12.90 (Shop)" in page.text
    refused = await seller.client.post(f"{path}/tax-rates", data={"name": "Bad", "rate": "abc"})
    assert refused.status_code == 400
