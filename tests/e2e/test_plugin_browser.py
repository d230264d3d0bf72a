"""The example plugin in a real browser: enable it from the marketplace, see its panel."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_browser import add_contact, sign_up

pytestmark = pytest.mark.e2e


async def test_an_admin_enables_lead_scoring_and_sees_its_panel_on_a_contact(
    page: Page, page_problems: list[str], artifacts_dir: Path, installed_examples: Path
) -> None:
    slug = await sign_up(page, f"apps-{secrets.token_hex(6)}@example.com", "Scored Shop")
    await add_contact(page, "Lea", "Score", "lea@example.com", "Scored Ltd")
    contact_url = page.url
    # Not enabled yet: the contact page has no panel.
    await expect(page.locator("#lead-score")).to_have_count(0)

    await page.get_by_role("link", name="Marketplace").click()
    await page.wait_for_url(re.compile(rf"/t/{slug}/marketplace$"))
    row = page.locator('tr.plugin-row[data-plugin="lead_scoring"]')
    await expect(row).to_contain_text("Not installed")
    await row.get_by_role("link", name="Lead scoring").click()
    await page.wait_for_url(re.compile(rf"/t/{slug}/marketplace/lead_scoring$"))
    await expect(page.get_by_role("heading", level=1).first).to_contain_text("Lead scoring")
    await expect(page.locator(".readme")).to_contain_text("points per won deal")

    consent = page.locator("#consent")
    await consent.get_by_role("checkbox", name="contacts:read").check()
    await consent.get_by_role("button", name="Enable").click()
    await expect(page.locator("#plugin-state")).to_have_text("Enabled")
    await expect(page.locator("#settings")).to_contain_text("Hot from")

    await page.goto(contact_url)
    panel = page.locator("section.plugin-panel", has=page.locator("#lead-score"))
    await expect(panel.get_by_role("heading", name="Lead score")).to_be_visible()
    # An email (10) and a company (5), nothing logged yet.
    await expect(page.locator("#lead-score")).to_have_attribute("data-score", "15")
    screenshot = artifacts_dir / "browser-plugin-panel.png"
    await page.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 0
    assert page_problems == []


async def test_a_plugin_page_sits_in_the_layout_and_its_public_page_opens_without_login(
    page: Page, second_page: Page, page_problems: list[str], artifacts_dir: Path
) -> None:
    slug = await sign_up(page, f"herald-{secrets.token_hex(6)}@example.com", "Herald Shop")
    await add_contact(page, "Hera", "Public", "hera@example.com", "Herald Ltd")
    contact_id = page.url.rsplit("/", 1)[1]
    await page.goto(f"/t/{slug}/marketplace/herald")
    consent = page.locator("#consent")
    await consent.get_by_role("checkbox", name="contacts:read").check()
    await consent.get_by_role("button", name="Enable").click()
    await expect(page.locator("#plugin-state")).to_have_text("Enabled")

    # The nav link opens the plugin's Page inside Orbit's layout; its plain form posts
    # with ctx.csrf_field().
    await page.locator("header nav").get_by_role("link", name="Herald", exact=True).click()
    await page.wait_for_url(re.compile(rf"/t/{slug}/apps/herald/$"))
    await expect(page.locator("#herald-home")).to_have_text("Unsubscribed: 0")
    await expect(page.locator("header nav").get_by_role("link", name="Contacts")).to_be_visible()
    await page.locator('input[name="note"]').fill("hello <b>")
    await page.get_by_role("button", name="Go").click()
    await expect(page.locator("#herald-note")).to_have_text("hello <b>")

    # Someone without an account opens the signed link in another browser.
    links = await page.request.get(
        f"/t/{slug}/apps/herald/links/{contact_id}", params={"email": "hera@example.com"}
    )
    view = urlsplit((await links.json())["view"]).path
    await second_page.goto(view)
    await expect(second_page.locator("#herald-contact")).to_contain_text(f"Hera Public · {slug}")
    await expect(second_page.locator("header")).to_have_count(0)
    screenshot = artifacts_dir / "browser-plugin-public-page.png"
    await second_page.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 0
    assert page_problems == []
