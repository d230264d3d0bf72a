"""The header's search box in a real browser: type, see grouped, highlighted hits, follow one."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_browser import add_contact, sign_up

pytestmark = pytest.mark.e2e


async def test_typing_in_the_header_search_box_shows_grouped_results(
    page: Page, page_problems: list[str], artifacts_dir: Path
) -> None:
    await sign_up(page, f"search-{secrets.token_hex(6)}@example.com", f"Tea {secrets.token_hex(3)}")
    await add_contact(page, "Γιώργος", "Παπαδόπουλος", "giorgos@example.gr", "Παπαδόπουλος Τσάι")

    box = page.get_by_role("searchbox", name="Search all records", exact=True).first
    await box.fill("παπαδοπουλοσ")  # lower case, no accent, final sigma typed as σ
    results = page.locator("#global-search-results")
    contacts = results.locator('section.search-group[data-type="contacts"]')
    companies = results.locator('section.search-group[data-type="companies"]')
    await expect(contacts).to_contain_text("Γιώργος Παπαδόπουλος")
    await expect(companies).to_contain_text("Παπαδόπουλος Τσάι")
    await expect(contacts.locator("a mark")).to_have_text("Παπαδόπουλος")

    screenshot = artifacts_dir / "browser-global-search.png"
    await page.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 0

    await contacts.get_by_role("link").first.click()
    await page.wait_for_url(re.compile(r"/t/[^/]+/contacts/[0-9a-f-]{36}$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Παπαδόπουλος")
    assert page_problems == []
