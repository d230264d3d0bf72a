"""The CRM in a real browser: the 360° timeline and the deal board's drag and drop."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_browser import add_contact, sign_up

pytestmark = pytest.mark.e2e
DEAL_URL = re.compile(r"/t/[^/]+/deals/[0-9a-f-]{36}$")


async def drag(page: Page, source: str, target: str) -> None:
    """Drag with the mouse, in small steps, as a person does (Sortable's fallback mode)."""
    start = await page.locator(source).bounding_box()
    end = await page.locator(target).bounding_box()
    assert start is not None
    assert end is not None
    await page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=25)
    await page.mouse.up()


async def test_a_note_shows_on_the_contact_and_its_company_and_a_deal_moves_on_the_board(
    page: Page, page_problems: list[str], artifacts_dir: Path
) -> None:
    await sign_up(page, f"crm-{secrets.token_hex(6)}@example.com", f"Honey {secrets.token_hex(3)}")
    await add_contact(page, "Ελένη", "Βλάχου", "eleni@example.gr", "Μέλι Θάσου")

    # A note on the contact's timeline …
    await page.get_by_label("Subject").fill("Tasted the thyme honey")
    await page.get_by_label("Details").fill("Wants 40 jars before Easter")
    await page.get_by_role("button", name="Log activity").click()
    timeline = page.locator("#timeline .timeline")
    await expect(timeline).to_contain_text("Tasted the thyme honey")
    await expect(timeline).to_contain_text("Wants 40 jars before Easter")

    # … shows on the company's timeline too.
    await page.locator("dl").get_by_role("link", name="Μέλι Θάσου").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Μέλι Θάσου")
    await expect(page.locator("#timeline .timeline")).to_contain_text("Tasted the thyme honey")
    await expect(page.get_by_role("link", name="Ελένη Βλάχου")).to_be_visible()

    # A deal, created from the board, dragged from Lead to Proposal.
    await page.get_by_role("navigation").get_by_role("link", name="Deals").click()
    await expect(page.locator("#board .column")).to_have_count(6)
    await page.get_by_role("link", name="Add deal").click()
    await page.get_by_label("Title").fill("Easter order")
    await page.get_by_label("Amount").fill("1480.50")
    await page.get_by_label("Currency (ISO 4217)").fill("EUR")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(DEAL_URL)
    await expect(page.locator("#deal-amount")).to_have_text("€1,480.50")
    await page.get_by_role("link", name="← Board").click()

    lead = page.locator('section.column[aria-label="Lead"]')
    proposal = page.locator('section.column[aria-label="Proposal"]')
    await expect(lead.locator(".deal-card")).to_have_count(1)
    async with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/move")
    ) as moved:
        await drag(
            page,
            "section.column[aria-label='Lead'] .deal-card",
            "section.column[aria-label='Proposal'] .cards",
        )
    assert (await moved.value).status == 204
    await page.reload()
    await expect(proposal.locator(".deal-card")).to_contain_text("Easter order")
    await expect(lead.locator(".deal-card")).to_have_count(0)

    # The deal's page shows the move in its stage history and timeline.
    await proposal.get_by_role("link", name="Easter order").click()
    await expect(page.locator("#deal-stage")).to_contain_text("Proposal")
    await expect(page.locator("#stage-history li")).to_have_count(2)
    await expect(page.locator("#stage-history")).to_contain_text("Lead")
    await expect(page.locator("#timeline .timeline")).to_contain_text("Lead → Proposal")

    screenshot = artifacts_dir / "browser-deal-moved.png"
    await page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0
    assert page_problems == []


async def test_add_and_complete_a_task(page: Page, page_problems: list[str]) -> None:
    await sign_up(page, f"task-{secrets.token_hex(6)}@example.com", f"Tasks {secrets.token_hex(3)}")
    await page.get_by_role("navigation").get_by_role("link", name="Tasks").click()
    await expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    await page.get_by_label("Task").fill("Call Eleni about the jars")
    await page.get_by_label("Due", exact=True).fill("2020-01-01T09:00")
    await page.get_by_role("button", name="Add task").click()
    overdue = page.locator("#tasks-overdue")
    await expect(overdue).to_contain_text("Call Eleni about the jars")

    await page.get_by_role("button", name="Add task").click()  # nothing filled in
    await expect(page.locator(".field-error[data-field=title]")).to_be_visible()
    await expect(page.locator(".field-error[data-field=due_at]")).to_be_visible()

    await overdue.get_by_role("button", name="Complete Call Eleni about the jars").click()
    await expect(overdue).not_to_contain_text("Call Eleni about the jars")
    await expect(overdue).to_contain_text("Nothing here.")
    assert page_problems == []
