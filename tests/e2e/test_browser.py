"""A new user's first minutes in Orbit, driven through a real browser (Debian chromium)."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Locator, Page, expect

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

FIRST_NAME = "Γιώργος"
LAST_NAME = "Παπαδόπουλος"
FULL_NAME = f"{FIRST_NAME} {LAST_NAME}"
CONTACT_URL = re.compile(r"/t/[^/]+/contacts/[0-9a-f-]{36}$")
CONTACT_LIST_URL = re.compile(r"/t/(?P<slug>[^/?]+)/contacts$")


def detail(page: Page, label: str) -> Locator:
    """The value shown next to ``label`` on the contact detail page."""
    return page.locator("dl dt", has_text=re.compile(f"^{label}$")).locator(
        "xpath=following-sibling::dd[1]"
    )


async def sign_up(page: Page, email: str, workspace: str) -> str:
    """Sign up through the form; returns the new workspace's slug."""
    await page.goto("/signup")
    await expect(page.get_by_role("heading", name="Create your workspace")).to_be_visible()
    await page.get_by_label("Your name").fill("Eleni Browser")
    await page.get_by_label("Work email").fill(email)
    await page.get_by_label("Password (10+ characters)").fill("correct horse battery staple")
    await page.get_by_label("Company or team name").fill(workspace)
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/signup")
    ) as answer:
        await page.get_by_role("button", name="Sign up").click()
    response = await answer.value
    # htmx submitted the form and followed the server's HX-Redirect (not a native 303).
    assert response.status == 204, await response.text()
    assert response.headers.get("hx-redirect", "").endswith("/contacts")
    await page.wait_for_url(CONTACT_LIST_URL)
    match = CONTACT_LIST_URL.search(page.url)
    assert match is not None
    return match["slug"]


async def add_contact(page: Page, first: str, last: str, email: str, company: str) -> None:
    """From the contact list, add a contact with the form; ends on its detail page."""
    await page.get_by_role("link", name="Add contact").click()
    await expect(page.get_by_role("heading", name="New contact")).to_be_visible()
    await page.get_by_label("First name").fill(first)
    await page.get_by_label("Last name").fill(last)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Company").fill(company)
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(CONTACT_URL)


async def test_sign_up_add_find_and_edit_a_contact_in_the_browser(
    page: Page, page_problems: list[str], artifacts_dir: Path
) -> None:
    # 1. Sign up: the new workspace opens on its (empty) contact list.
    email = f"e2e-{secrets.token_hex(6)}@example.com"
    slug = await sign_up(page, email, f"Browser Test {secrets.token_hex(3)}")
    assert slug
    rows = page.locator("#contact-rows")
    await expect(rows).to_contain_text("No contacts yet")
    await expect(page.get_by_role("link", name="Add the first one")).to_be_visible()

    # 2. A malformed email comes back as an inline error next to the field (the
    # forms are novalidate, so the server's message is the one people see).
    await page.get_by_role("link", name="Add contact").click()
    await page.wait_for_url(re.compile(r"/contacts/new$"))
    form_url = page.url
    email_field = page.get_by_label("Email")
    await page.get_by_label("First name").fill(FIRST_NAME)
    await email_field.fill("not-an-email")
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/contacts")
    ) as answer:
        await page.get_by_role("button", name="Save").click()
    assert (await answer.value).status == 422
    error = page.locator(".field-error[data-field=email]")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("not a valid email address")
    await expect(email_field).to_have_attribute("aria-invalid", "true")
    # The error sits in the email field's own block, and what was typed is kept.
    await expect(error.locator("xpath=..").locator("#f-email")).to_have_count(1)
    await expect(page.get_by_label("First name")).to_have_value(FIRST_NAME)
    assert page.url == form_url

    # 3. Correct the email and save: the contact's page shows what was entered.
    await page.get_by_label("Last name").fill(LAST_NAME)
    await email_field.fill("giorgos@example.gr")
    await page.get_by_label("Company").fill("Ελαιόλαδο Κρήτης")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(CONTACT_URL)
    await expect(page.get_by_role("heading", level=1)).to_have_text(FULL_NAME)
    await expect(detail(page, "Email")).to_have_text("giorgos@example.gr")
    await expect(detail(page, "Company")).to_have_text("Ελαιόλαδο Κρήτης")
    contact_url = page.url

    # A second contact, so that the search below has something to leave out.
    await page.get_by_role("link", name="All contacts").click()
    await page.wait_for_url(CONTACT_LIST_URL)
    await add_contact(page, "Maria", "Schmidt", "maria@example.de", "Schmidt GmbH")

    # 4. Live search folds case and accents: "ΠΑΠΑΔΟΠΟΥΛΟΣ" finds "Παπαδόπουλος" only.
    await page.get_by_role("link", name="All contacts").click()
    await page.wait_for_url(CONTACT_LIST_URL)
    names = rows.get_by_role("link")
    await expect(names).to_have_count(2)
    search = page.get_by_role("searchbox", name="Search contacts")
    await search.fill("ΠΑΠΑΔΟΠΟΥΛΟΣ")
    await expect(names).to_have_text([FULL_NAME])
    await expect(rows).to_contain_text("Ελαιόλαδο Κρήτης")
    await expect(page).to_have_url(re.compile(r"[?&]q="))  # the search is in the address bar

    await search.fill("zzz-nobody")
    await expect(rows).to_contain_text("No contact matches “zzz-nobody”.")
    await expect(names).to_have_count(0)

    await search.fill("παπαδοπουλ")  # lower case, no accent, a prefix
    await expect(names).to_have_text([FULL_NAME])

    # 5. Open the contact from the results, edit it, and see the new values.
    await names.first.click()
    await page.wait_for_url(contact_url)
    await page.get_by_role("link", name="Edit").click()
    await page.wait_for_url(re.compile(r"/edit$"))
    await expect(page.get_by_role("heading", name="Edit contact")).to_be_visible()
    await expect(page.get_by_label("Company")).to_have_value("Ελαιόλαδο Κρήτης")
    await page.get_by_label("Phone").fill("+30 210 555 0101")
    await page.get_by_label("Company").fill("Μέλι Θάσου")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(contact_url)
    await expect(page.get_by_role("heading", level=1)).to_have_text(FULL_NAME)
    await expect(detail(page, "Phone")).to_have_text("+30 210 555 0101")
    await expect(detail(page, "Company")).to_have_text("Μέλι Θάσου")
    await expect(detail(page, "Email")).to_have_text("giorgos@example.gr")

    # 6. A screenshot of the edited contact, for a human to look at.
    screenshot = artifacts_dir / "browser-contact-edited.png"
    screenshot.unlink(missing_ok=True)
    await page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0

    assert page_problems == []


async def test_back_from_a_contact_found_by_live_search_shows_the_search_page(
    page: Page, page_problems: list[str]
) -> None:
    await sign_up(page, f"e2e-{secrets.token_hex(6)}@example.com", f"Back {secrets.token_hex(3)}")
    await add_contact(page, FIRST_NAME, LAST_NAME, "giorgos@example.gr", "Μέλι Θάσου")
    await page.get_by_role("link", name="All contacts").click()
    await page.wait_for_url(CONTACT_LIST_URL)
    await page.get_by_role("searchbox", name="Search contacts").fill("παπαδ")
    await expect(page).to_have_url(re.compile(r"[?&]q="))
    search_url = page.url
    await page.locator("#contact-rows").get_by_role("link", name=FULL_NAME).click()
    await page.wait_for_url(CONTACT_URL)

    await page.go_back()
    await page.wait_for_url(search_url)
    await expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    await expect(page.get_by_role("searchbox", name="Search contacts")).to_have_value("παπαδ")
    await expect(page.locator("#contact-rows").get_by_role("link")).to_have_text([FULL_NAME])
    assert page_problems == []
