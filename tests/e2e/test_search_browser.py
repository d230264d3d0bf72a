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


async def test_build_a_filter_save_it_as_a_view_and_pick_it(
    page: Page, page_problems: list[str], artifacts_dir: Path
) -> None:
    await sign_up(
        page, f"views-{secrets.token_hex(6)}@example.com", f"Olive {secrets.token_hex(3)}"
    )
    await add_contact(page, "Иван", "Петров", "ivan@example.ru", "Оливки")
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await add_contact(page, "Juan", "dela Cruz", "juan@example.ph", "Olivo")
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()

    await page.get_by_text("Filter, sort and choose columns").click()
    await page.get_by_role("button", name="Add filter").click()
    # htmx wires up swapped-in content when it settles (and drops .htmx-added then).
    await expect(page.locator("#filter-rows .filter-row")).not_to_have_class(
        re.compile("htmx-added")
    )
    await page.get_by_label("Filter field").select_option(label="Email")
    # Choosing the field re-renders the row with the operators of a text field.
    await expect(page.get_by_label("Filter operator")).to_contain_text("contains")
    await page.get_by_label("Filter operator").select_option("contains")
    await page.get_by_label("Filter value").fill(".ph")
    await page.get_by_label("Sort by").select_option(label="Last name ↑")
    await page.get_by_role("button", name="Apply").click()
    rows = page.locator("#contact-rows")
    await expect(rows).to_contain_text("Juan dela Cruz")
    await expect(rows).not_to_contain_text("Иван")
    await expect(page.locator("#list-count")).to_contain_text("1 record")

    await page.get_by_label("View name").fill("Philippines")
    await page.get_by_role("button", name="Save view").click()
    await page.wait_for_url(re.compile(r"/contacts\?view="))
    await expect(page.get_by_role("navigation", name="Saved views")).to_contain_text("Philippines")
    await expect(rows).to_contain_text("Juan dela Cruz")
    await expect(rows).not_to_contain_text("Иван")
    screenshot = artifacts_dir / "browser-saved-view.png"
    await page.screenshot(path=screenshot, full_page=True)
    assert page_problems == []
