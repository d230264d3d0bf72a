"""The email marketing plugin ships with Orbit, off until a workspace's admin enables it."""

from __future__ import annotations

import asyncpg

from orbit.platform.db.servers import Endpoints
from orbit.plugins.builtin.email_marketing import MANIFEST
from tests.conftest import Member

from .conftest import PLUGIN, enable


async def test_it_is_listed_off_by_default_and_enabled_per_workspace(
    alice: Member, bob: Member
) -> None:
    listed = {
        item["id"]: item for item in (await alice.client.get("/api/v1/marketplace")).json()["items"]
    }
    assert listed[PLUGIN]["compatible"] is True
    assert listed[PLUGIN]["enabled"] is False
    await enable(alice)
    assert (await alice.client.get(f"/api/v1/marketplace/{PLUGIN}")).json()["enabled"] is True
    assert (await bob.client.get(f"/api/v1/marketplace/{PLUGIN}")).json()["enabled"] is False


async def test_its_tables_are_walled_off_per_workspace(endpoints: Endpoints) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relkind = 'r' AND relname LIKE 'email_marketing_%'"
        )
    finally:
        await conn.close()
    assert {row["relname"] for row in rows} >= set(MANIFEST.tables)
    assert all(row["relrowsecurity"] and row["relforcerowsecurity"] for row in rows)


async def test_a_smtp_server_that_is_not_an_smtp_url_is_refused_when_saved(alice: Member) -> None:
    await enable(alice)
    for bad in ("http://mail.example.com", "smtp://", "smtp://mail.example.com:port"):
        saved = await alice.client.put(
            f"/api/v1/marketplace/{PLUGIN}/settings", json={"settings": {"smtp_url": bad}}
        )
        assert saved.status_code == 400, (bad, saved.text)
        assert "smtp_url" in saved.text
    good = await alice.client.put(
        f"/api/v1/marketplace/{PLUGIN}/settings",
        json={"settings": {"smtp_url": "smtps://relay@mail.example.com:465"}},
    )
    assert good.status_code == 200, good.text
