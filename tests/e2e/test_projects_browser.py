"""Projects in a real browser: a card dragged on the board and a bar dragged on the Gantt stay."""

from __future__ import annotations

import re
import secrets
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_browser import sign_up

pytestmark = pytest.mark.e2e

API = "/api/v1/apps/projects"

CALL = """
async ([method, url, body]) => {
  const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
  const response = await fetch(url, {
    method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
    body: body === null ? undefined : JSON.stringify(body),
  });
  return {status: response.status, body: await response.json()};
}
"""


async def _api(page: Page, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    answer = await page.evaluate(CALL, [method, url, body])
    assert answer["status"] in (200, 201), answer
    return answer["body"]


async def _drag(page: Page, source: Any, target_x: float, target_y: float) -> None:
    box = await source.bounding_box()
    assert box is not None
    start_x, start_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(start_x, start_y)
    await page.mouse.down()
    steps = 12
    for i in range(1, steps + 1):
        await page.mouse.move(
            start_x + (target_x - start_x) * i / steps, start_y + (target_y - start_y) * i / steps
        )
        await page.wait_for_timeout(20)
    await page.mouse.up()


async def test_board_and_gantt_drags_persist(
    page: Page, page_problems: list[str], artifacts_dir: Path
) -> None:
    slug = await sign_up(page, f"pm-{secrets.token_hex(6)}@example.com", "Gantt Shop")
    await page.goto(f"/t/{slug}/marketplace/projects")
    consent = page.locator("#consent")
    for box in await consent.get_by_role("checkbox").all():
        await box.check()
    await consent.get_by_role("button", name="Enable").click()
    await expect(page.locator("#plugin-state")).to_have_text("Enabled")

    # The nav link opens the projects page; a project and tasks made through the API.
    await page.locator("header nav").get_by_role("link", name="Projects", exact=True).click()
    await page.wait_for_url(re.compile(rf"/t/{slug}/apps/projects/$"))
    project = await _api(
        page, "POST", f"{API}/projects", {"name": "Launch", "start_date": "2026-11-23"}
    )
    tasks = [
        await _api(
            page,
            "POST",
            f"{API}/projects/{project['id']}/tasks",
            {"title": title, "start_date": "2026-11-23", "due_date": "2026-11-25"},
        )
        for title in ("Alpha", "Beta", "Gamma")
    ]
    await _api(
        page,
        "POST",
        f"{API}/dependencies",
        {"predecessor_id": tasks[0]["id"], "successor_id": tasks[2]["id"]},
    )

    # Board: drag Alpha from "To do" into "In progress".
    await page.goto(f"/t/{slug}/apps/projects/{project['id']}")
    alpha = page.locator(f'.prj-card[data-id="{tasks[0]["id"]}"]')
    doing = page.locator('.prj-cards[data-status="doing"]')
    target = await doing.bounding_box()
    assert target is not None
    await _drag(page, alpha, target["x"] + target["width"] / 2, target["y"] + 20)
    await expect(alpha).to_have_attribute("data-saved", "1")
    moved = await _api(page, "GET", f"{API}/tasks/{tasks[0]['id']}")
    assert moved["status"] == "doing"
    await page.reload()
    await expect(
        page.locator(f'.prj-cards[data-status="doing"] .prj-card[data-id="{tasks[0]["id"]}"]')
    ).to_have_count(1)
    await page.screenshot(path=artifacts_dir / "browser-projects-board.png")

    # Gantt: drag Beta two days to the right; the new dates are saved.
    await page.goto(f"/t/{slug}/apps/projects/{project['id']}/gantt")
    bar = page.locator(f'.bar-wrapper[data-id="{tasks[1]["id"]}"] .bar')
    await expect(bar).to_be_visible()
    await bar.scroll_into_view_if_needed()
    box = await bar.bounding_box()
    assert box is not None
    column = box["width"] / 3  # Beta lasts three days
    await _drag(page, bar, box["x"] + box["width"] / 2 + 2 * column, box["y"] + box["height"] / 2)
    await expect(page.locator("#prj-gantt")).to_have_attribute("data-saved", tasks[1]["id"])
    await expect(page.locator("#prj-message")).to_have_text("Saved")
    shifted = await _api(page, "GET", f"{API}/tasks/{tasks[1]['id']}")
    assert date.fromisoformat(shifted["start_date"]) == date(2026, 11, 25)
    assert date.fromisoformat(shifted["due_date"]) == date(2026, 11, 27)
    # The critical path is drawn.
    await expect(page.locator(".bar-wrapper.critical")).to_have_count(2)
    await page.screenshot(path=artifacts_dir / "browser-projects-gantt.png")

    # The task page: a shared comment and a checklist item added through its forms.
    await page.goto(f"/t/{slug}/apps/projects/task/{tasks[0]['id']}")
    await page.locator('#prj-check-add input[name="text"]').fill("Brief signed")
    await page.locator("#prj-check-add").get_by_role("button", name="Add").click()
    await expect(page.locator("#prj-checklist")).to_contain_text("Brief signed")
    await page.locator('#prj-comment textarea[name="body"]').fill("Kick-off done")
    await page.locator('#prj-comment input[name="shared"]').check()
    await page.locator("#prj-comment").get_by_role("button", name="Comment").click()
    await expect(page.locator(".prj-comment")).to_contain_text("Kick-off done")

    # A project from a template with milestones on the critical path: every bar is drawn.
    template = await _api(
        page,
        "POST",
        f"{API}/templates",
        {
            "name": "Milestones",
            "tasks": [
                {"key": "start", "title": "Start", "days": 0, "milestone": True},
                {"key": "work", "title": "Work", "days": 3, "after": ["start"]},
                {
                    "key": "end",
                    "title": "Handover",
                    "days": 0,
                    "milestone": True,
                    "after": ["work"],
                },
            ],
        },
    )
    planned = await _api(
        page,
        "POST",
        f"{API}/projects",
        {"name": "Planned", "start_date": "2026-11-23", "template_id": template["id"]},
    )
    await page.goto(f"/t/{slug}/apps/projects/{planned['id']}/gantt")
    await expect(page.locator(".bar-wrapper")).to_have_count(3)
    await expect(page.locator(".bar-wrapper.critical")).to_have_count(3)

    # The project's settings: a WIP limit and successors that follow, saved from the form.
    await page.goto(f"/t/{slug}/apps/projects/{project['id']}/settings")
    await page.locator('input[name="wip_doing"]').fill("2")
    await page.locator('input[name="auto_shift"]').check()
    await page.locator("#prj-settings").get_by_role("button", name="Save").click()
    await expect(page.locator("#prj-message")).to_have_text("Saved")
    saved = await _api(page, "GET", f"{API}/projects/{project['id']}")
    assert saved["wip_limits"] == {"doing": 2}
    assert saved["auto_shift"] is True
    assert page_problems == []
