"""Merging two contacts in a real browser: the hint, the duplicates page, the side-by-side form."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_browser import add_contact, sign_up

pytestmark = pytest.mark.e2e
CONTACT_URL = re.compile(r"/t/[^/]+/contacts/[0-9a-f-]{36}$")


async def test_two_contacts_with_one_email_are_merged_from_the_ui(
    page: Page, page_problems: list[str]
) -> None:
    await sign_up(
        page, f"merge-{secrets.token_hex(6)}@example.com", f"Olive {secrets.token_hex(3)}"
    )
    await add_contact(page, "Eleni", "Vlachou", "eleni@example.gr", "Meli Thasou")
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await add_contact(page, "Elena", "Vlahou", "ELENI@example.gr", "Meli Thasou")

    # The second contact's page says it has a likely duplicate.
    hint = page.locator("#duplicates-hint")
    await expect(hint).to_contain_text("Possible duplicates")
    await expect(hint).to_contain_text("Eleni Vlachou")

    # The duplicates page lists the pair; its merge form shows them side by side.
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await page.get_by_role("link", name="Possible duplicates").click()
    # (Same email, and a similar name at the same company: two groups of one pair.)
    groups = page.locator("#duplicate-groups .duplicate-group")
    await expect(groups).to_have_count(2)
    group = groups.filter(has_text="Same email")
    await group.get_by_role("link", name="Review and merge").click()
    await expect(page.get_by_role("heading", name="Merge contacts")).to_be_visible()
    await page.get_by_role("radio", name="Keep").first.check()
    await page.locator('tr[data-field="last_name"]').get_by_label("Vlahou").check()
    await page.get_by_role("button", name="Merge").click()

    await page.wait_for_url(CONTACT_URL)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Eleni Vlahou")
    await expect(page.locator("#history")).to_contain_text("merge")
    await expect(page.locator("#duplicates-hint")).to_have_count(0)
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await expect(page.locator("#contact-rows tr")).to_have_count(1)
    assert page_problems == []
