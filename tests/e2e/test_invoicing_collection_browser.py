"""An invoice's collection in a real browser: its PDF, a partial payment, then the overdue
remainder walked through reminder → call task → lawyer from the invoice's own page."""

from __future__ import annotations

import re
import secrets
from uuid import UUID

import pytest
from playwright.async_api import Page, expect

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.outbox import run_due
from tests.conftest import sign_up as api_sign_up
from tests.integration.invoicing.conftest import API, enable
from tests.integration.invoicing.test_documents_issue import finalized_invoice, plugin_context

pytestmark = pytest.mark.e2e


async def test_a_partial_payment_then_reminder_call_and_lawyer_from_the_invoice_page(
    page: Page, page_problems: list[str], app: object, runtime: Runtime, live_url: str
) -> None:
    seller = await api_sign_up(app, f"Collect {secrets.token_hex(3)}")
    await enable(seller, {"dunning_lawyer_email": "counsel@law.example"})
    invoice = await finalized_invoice(seller)
    async with plugin_context(runtime, seller) as ctx:
        await run_due(ctx)  # the worker issues the PDF
    # The browser carries the same signed-in session.
    await page.context.add_cookies(
        [
            {"name": c.name, "value": c.value or "", "url": live_url}
            for c in seller.client.cookies.jar
        ]
    )
    await page.goto(f"/t/{seller.slug}/apps/invoicing/invoices/{invoice['id']}")
    pdf = await page.request.get(await page.locator("#download-pdf").get_attribute("href") or "")
    assert pdf.status == 200
    assert (await pdf.body()).startswith(b"%PDF")

    await page.locator("#collection").click()
    await page.wait_for_url(re.compile(r"/collection/?$"))
    await expect(page.locator("#balance")).to_contain_text("open")
    await page.get_by_label("Amount").fill("100.00")
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Record payment").click()
    answer = await posted.value
    assert answer.status == 303  # recorded, back to the page
    await expect(page.locator("#balance")).to_contain_text("partially_paid")
    await expect(page.locator("#balance")).to_contain_text("due €352.80")

    for level in ("reminder", "call", "lawyer"):
        await page.get_by_role("button", name="Send the next reminder now").click()
        await expect(page.get_by_text(re.compile(rf"Level \d · {level}"))).to_be_visible()
    await expect(page.get_by_text("Case: escalated")).to_be_visible()
    dossier = page.get_by_role("link", name="Lawyer's dossier (zip)")
    answer = await page.request.get(await dossier.get_attribute("href") or "")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/zip"
    case = (await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")).json()
    assert [s["action"] for s in case["steps"]] == ["reminder", "call", "lawyer"]
    async with plugin_context(runtime, seller) as ctx:
        task = await ctx.tasks.get(UUID(case["steps"][1]["task_id"]))
    assert task is not None
    assert task.title.startswith("Call about overdue invoice")
    assert page_problems == []
    await seller.client.aclose()
