"""The example plugin in a real browser: enable it from the marketplace, see its panel."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

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
