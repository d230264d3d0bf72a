"""Email marketing in a real browser: enable it, build a campaign, watch its counters live."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Page, expect

from orbit.platform.runtime import Runtime
from tests.e2e.test_browser import add_contact, sign_up
from tests.integration.email_marketing.conftest import Sink, free_port, run_send_job

pytestmark = pytest.mark.e2e


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink(port=free_port())
    controller = Controller(found, hostname="127.0.0.1", port=found.port)
    controller.start()
    yield found
    controller.stop()


async def test_an_admin_builds_a_campaign_and_watches_its_counters(
    page: Page, page_problems: list[str], artifacts_dir: Path, sink: Sink, runtime: Runtime
) -> None:
    slug = await sign_up(page, f"mail-{secrets.token_hex(6)}@example.com", "Mail Shop")
    contacts_url = page.url
    await add_contact(page, "Ada", "Lovelace", "ada@example.org", "Engines Ltd")
    await page.goto(contacts_url)
    await add_contact(page, "Bob", "Babbage", "bob@example.net", "Engines Ltd")

    # Enable it from the marketplace and point it at the local SMTP sink.
    await page.goto(f"/t/{slug}/marketplace/email_marketing")
    consent = page.locator("#consent")
    for scope in await consent.get_by_role("checkbox").all():  # consent to every scope it asks
        await scope.check()
    await consent.get_by_role("button", name="Enable").click()
    await expect(page.locator("#plugin-state")).to_have_text("Enabled")
    settings = page.locator("#settings")
    await settings.get_by_label("SMTP server").fill(sink.url)
    await settings.get_by_label("Default sender address").fill("news@mailshop.example.com")
    await settings.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#settings").get_by_label("SMTP server")).to_have_value(sink.url)

    # A list from addresses, then a template from blocks.
    await page.locator("header nav").get_by_role("link", name="Email marketing").click()
    await page.wait_for_url(re.compile(rf"/t/{slug}/apps/email_marketing/$"))
    await page.locator(".em-menu").get_by_role("link", name="Lists").click()
    await page.locator("#new-list").get_by_label("Name").fill("Newsletter")
    await page.get_by_role("button", name="Create list").click()
    await expect(page.get_by_role("heading", name="Newsletter")).to_be_visible()
    await page.get_by_label("Add contacts by email").fill("ada@example.org\nbob@example.net")
    await page.get_by_role("button", name="Add").click()
    await expect(page.locator("#member-count")).to_have_text("2")

    await page.locator(".em-menu").get_by_role("link", name="Templates").click()
    form = page.locator("#new-template")
    await form.get_by_label("Name").fill("Launch")
    await form.get_by_label("Subject").fill("News for {{ contact.first_name }}")
    await form.get_by_label("Heading").fill("Hello {{ contact.first_name }}")
    await form.get_by_label("Text").fill("We launched something.")
    await form.get_by_label("Button label").fill("Have a look")
    await form.get_by_label("Button link").fill("https://mailshop.example.com/launch")
    await page.get_by_role("button", name="Save template").click()
    await expect(page.locator("#preview-subject")).to_have_text("News for Ada")
    await (
        page.locator("#preview-for").get_by_label("Preview for the contact").fill("bob@example.net")
    )
    await page.locator("#preview-for").get_by_role("button", name="Preview").click()
    await expect(page.locator("#preview-subject")).to_have_text("News for Bob")
    await page.locator("#test-send").get_by_label("To").fill("me@mailshop.example.com")
    await page.get_by_role("button", name="Send test").click()
    await expect(page.locator("#test-result")).to_have_text("Sent to me@mailshop.example.com.")
    [sample] = sink.to("me@mailshop.example.com")
    assert sample["Subject"] == "[Test] News for Bob"

    # The campaign: created, sent now, and its counters move without a reload.
    await page.locator(".em-menu").get_by_role("link", name="Campaigns").click()
    form = page.locator("#new-campaign")
    await form.get_by_label("Name", exact=True).fill("Launch day")
    await form.get_by_label("Template").select_option(label="Launch")
    await form.get_by_label("Audience").select_option(label="List: Newsletter (2)")
    await page.get_by_role("button", name="Create campaign").click()
    await expect(page.get_by_role("heading", name="Launch day")).to_be_visible()
    await expect(page.locator('[data-counter="status"]')).to_have_text("draft")
    await page.get_by_role("button", name="Send now").click()
    await expect(page.locator('[data-counter="status"]')).to_have_text("scheduled")
    url_before = page.url

    await run_send_job(runtime)  # what the worker does every interval

    await expect(page.locator('[data-counter="sent"]')).to_have_text("2")
    await expect(page.locator('[data-counter="status"]')).to_have_text("sent")
    assert page.url == url_before  # htmx polled the counters: no reload
    assert len(sink.to("ada@example.org")) == 1
    assert len(sink.to("bob@example.net")) == 1
    screenshot = artifacts_dir / "browser-email-campaign.png"
    await page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0
    assert page_problems == []
