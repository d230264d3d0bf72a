"""Each user's time zone: set on the account page, used for task times and "today"."""

from __future__ import annotations

from tests.conftest import Member


async def test_time_zone_is_validated_and_used_for_task_times(alice: Member) -> None:
    bad = await alice.client.post("/account", data={"name": "Alice", "time_zone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert 'data-field="time_zone"' in bad.text
    saved = await alice.client.post(
        "/account", data={"name": "Alice", "time_zone": "Europe/Athens"}
    )
    assert saved.status_code == 303
    page = (await alice.client.get("/account")).text
    assert 'value="Europe/Athens" selected' in page

    created = await alice.client.post(
        f"/t/{alice.slug}/tasks", data={"title": "Morning call", "due_at": "2026-12-01T09:00"}
    )
    assert created.status_code == 303, created.text
    tasks = (await alice.client.get("/api/v1/tasks")).json()
    assert [t["due_at"] for t in tasks] == ["2026-12-01T07:00:00Z"]  # 09:00 in Athens
    listing = (await alice.client.get(f"/t/{alice.slug}/tasks")).text
    assert "Times are in Europe/Athens" in listing
    assert "2026-12-01 09:00" in listing


async def test_the_account_page_needs_a_login(app: object) -> None:
    from tests.conftest import make_client  # noqa: PLC0415

    async with make_client(app) as client:
        response = await client.get("/account/")
    assert response.status_code in {302, 303}
    assert response.headers["location"].startswith("/login")
