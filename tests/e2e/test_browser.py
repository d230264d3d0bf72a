"""A new user's first minutes in Orbit, driven through a real browser (Debian chromium)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.async_api import Dialog, Locator, Page, expect

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

FIRST_NAME = "Γιώργος"
LAST_NAME = "Παπαδόπουλος"
FULL_NAME = f"{FIRST_NAME} {LAST_NAME}"
CONTACT_URL = re.compile(r"/t/[^/]+/contacts/[0-9a-f-]{36}$")
CONTACT_LIST_URL = re.compile(r"/t/(?P<slug>[^/?]+)/contacts$")
PASSWORD = "correct horse battery staple"


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
    await page.get_by_label("Password (10+ characters)").fill(PASSWORD)
    await page.get_by_label("Company or team name").fill(workspace)
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/signup")
    ) as answer:
        await page.get_by_role("button", name="Sign up").click()
    response = await answer.value
    # htmx submitted the form and followed the server's HX-Redirect (not a native 303)
    # to the new workspace's dashboard; from there, its contacts.
    assert response.status == 204, await response.text()
    assert re.search(r"/t/[^/]+/$", response.headers.get("hx-redirect", ""))
    await page.wait_for_url(re.compile(r"/t/[^/]+/$"))
    await expect(page.locator("#dash-pipeline")).to_contain_text("No open deals")
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
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


def accept_dialogs(page: Page) -> list[str]:
    """Accept every ``confirm()`` (htmx's hx-confirm) on ``page``; returns their messages."""
    messages: list[str] = []

    async def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    return messages


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


async def test_admin_invites_a_member_creates_an_api_key_and_deletes_a_contact(
    page: Page, second_page: Page, page_problems: list[str], live_url: str
) -> None:
    confirmed = accept_dialogs(page)
    nav = page.locator("header nav")

    # 1. An admin signs up and adds a contact.
    email = f"e2e-{secrets.token_hex(6)}@example.com"
    workspace = f"Team Test {secrets.token_hex(3)}"
    slug = await sign_up(page, email, workspace)
    await add_contact(page, FIRST_NAME, LAST_NAME, "giorgos@example.gr", "Μέλι Θάσου")
    await expect(page.get_by_role("heading", level=1)).to_have_text(FULL_NAME)

    # 2. Team: invite someone as a member; the page shows the link to send them.
    await nav.get_by_role("link", name="Team").click()
    await page.wait_for_url(re.compile(f"/t/{slug}/members$"))
    await expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    invitee_email = f"invitee-{secrets.token_hex(6)}@example.com"
    invitee_name = "Μαρία Invitee"
    await page.get_by_label("Email").fill(invitee_email)
    await page.get_by_label("Role").select_option("member")
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/members/invitations")
    ) as answer:
        await page.get_by_role("button", name="Invite").click()
    assert (await answer.value).status == 200
    invite_link = page.locator("#invite-link")
    await expect(invite_link).to_have_text(re.compile(r"/invite/[A-Za-z0-9_-]{20,}$"))
    link = (await invite_link.inner_text()).strip()
    assert link.startswith(f"{live_url}/invite/"), link
    open_invitations = page.locator("#invite table")
    await expect(
        open_invitations.get_by_role("row").filter(has_text=invitee_email)
    ).to_contain_text("member")

    # 3. The invitee, in a browser of their own (no cookies), accepts with a new account.
    assert await second_page.context.cookies() == []
    await second_page.goto(link)
    await expect(second_page.get_by_role("heading", level=1)).to_have_text(f"Join {workspace}")
    await expect(second_page.locator("main")).to_contain_text(
        f"Invitation for {invitee_email} as member."
    )
    await second_page.get_by_label("Your name").fill(invitee_name)
    await second_page.get_by_label("Password (10+ characters)").fill("another horse battery staple")
    async with second_page.expect_response(
        lambda r: r.request.method == "POST" and "/invite/" in r.url
    ) as answer:
        await second_page.get_by_role("button", name="Accept invitation").click()
    assert (await answer.value).status == 204
    # Accepting lands on the workspace's dashboard, which lists the newest contacts.
    await second_page.wait_for_url(re.compile(f"/t/{slug}/$"))
    await expect(second_page.locator("#dash-contacts").get_by_role("link")).to_have_text(
        ["Newest contacts", FULL_NAME]
    )
    member_nav = second_page.locator("header nav")
    await expect(member_nav.get_by_role("link", name="Team")).to_be_visible()
    await expect(member_nav.get_by_role("link", name="API keys")).to_have_count(0)

    # 4. Back in the admin's browser: the invitee is an active member, the invitation is used.
    await page.reload()
    members = page.locator("table", has=page.get_by_role("columnheader", name="Status"))
    await expect(
        members.get_by_role("row").filter(has_text=invitee_email).get_by_role("cell")
    ).to_have_text([invitee_name, invitee_email, "member", "active"])
    await expect(
        members.get_by_role("row").filter(has_text=email).get_by_role("cell")
    ).to_have_text(["Eleni Browser", email, "owner", "active"])
    await expect(page.locator("#invite-link")).to_have_count(0)
    await expect(page.locator("#invite")).not_to_contain_text(invitee_email)

    # 5. API keys: create one, use it like curl would, see it listed, revoke it.
    await nav.get_by_role("link", name="API keys").click()
    await page.wait_for_url(re.compile(f"/t/{slug}/api-keys$"))
    await expect(page.get_by_text("No API keys yet.")).to_be_visible()
    await page.get_by_label("Name").fill("curl")
    await page.get_by_label("contacts:read").check()
    await page.get_by_label("contacts:write").check()
    await expect(page.get_by_label("members:read")).not_to_be_checked()
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api-keys")
    ) as answer:
        await page.get_by_role("button", name="Create key").click()
    assert (await answer.value).status == 200
    new_key = page.locator("#new-key")
    await expect(new_key).to_have_text(re.compile(r"^orbit_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}$"))
    key = (await new_key.inner_text()).strip()
    parts = re.fullmatch(r"(?P<prefix>orbit_[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{20,})", key)
    assert parts is not None, key  # the secret itself may contain "_"

    async with httpx.AsyncClient(
        base_url=live_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as api:
        listed = await api.get("/api/v1/contacts")
        assert listed.status_code == 200, listed.text
        assert [c["email"] for c in listed.json()["items"]] == ["giorgos@example.gr"]
        created = await api.post(
            "/api/v1/contacts",
            json={"first_name": "Curl", "last_name": "Created", "email": "curl@example.com"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["email"] == "curl@example.com"

        await page.reload()
        await expect(page.locator("#new-key")).to_have_count(0)
        assert key not in await page.content()
        assert parts["secret"] not in await page.content()
        row = page.get_by_role("row").filter(has_text="curl")
        cells = row.get_by_role("cell")
        await expect(cells).to_have_text(
            [
                "curl",
                f"{parts['prefix']}_…",
                "contacts:read, contacts:write",
                re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"),
                "Revoke",
            ]
        )
        shown = await cells.nth(3).inner_text()  # UTC, to the minute
        last_used = datetime.strptime(f"{shown} +0000", "%Y-%m-%d %H:%M %z")
        assert abs(last_used - datetime.now(UTC)) < timedelta(minutes=2), shown

        async with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/revoke")
        ) as answer:
            await row.get_by_role("button", name="Revoke").click()
        assert (await answer.value).status == 204
        assert confirmed == ["Revoke this key?"]
        await expect(cells.nth(4)).to_have_text("revoked")
        await expect(row.get_by_role("button", name="Revoke")).to_have_count(0)

        refused = await api.get("/api/v1/contacts")
        assert refused.status_code == 401, refused.text
        assert "revoked" in refused.json()["detail"]

    # 6. Delete the contact from its page; the list no longer has it.
    await nav.get_by_role("link", name="Contacts").click()
    await page.wait_for_url(CONTACT_LIST_URL)
    rows = page.locator("#contact-rows")
    await expect(rows.get_by_role("link")).to_have_count(2)
    await rows.get_by_role("link", name=FULL_NAME).click()
    await page.wait_for_url(CONTACT_URL)
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/delete")
    ) as answer:
        await page.get_by_role("button", name="Delete").click()
    assert (await answer.value).status == 204
    assert confirmed == ["Revoke this key?", "Delete this contact?"]
    await page.wait_for_url(CONTACT_LIST_URL)
    await expect(rows.get_by_role("link")).to_have_text(["Curl Created"])
    await expect(rows).not_to_contain_text(FULL_NAME)

    # 7. Log out, then log in again through the form: back in the workspace.
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(re.compile(r"/login$"))
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(f"/t/{slug}/$"))
    await expect(page.locator("#dash-contacts").get_by_role("link")).to_have_text(
        ["Newest contacts", "Curl Created"]
    )
    await expect(page.locator("header")).to_contain_text(workspace)

    assert page_problems == []
