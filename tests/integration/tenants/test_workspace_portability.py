"""A whole workspace: export to a zip, restore into a new workspace, delete."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import asyncpg
import pytest

from orbit.platform.db.servers import Endpoints
from orbit.platform.errors import InvalidInputError
from orbit.platform.runtime import Runtime
from orbit.tenants.portability import import_workspace
from tests.conftest import Member, api_key, bearer


async def _fill(member: Member) -> None:
    company = await member.client.post("/api/v1/companies", json={"name": "Ακρόπολη ΑΕ"})
    assert company.status_code == 201, company.text
    for first, last in (("Иван", "Иванова"), ("Wei", "王"), ("Juan", "dela Cruz")):
        created = await member.client.post(
            "/api/v1/contacts",
            json={
                "first_name": first,
                "last_name": last,
                "company_id": company.json()["id"],
                "tags": ["vip"],
            },
        )
        assert created.status_code == 201, created.text
    await member.client.post(
        "/api/v1/activities",
        json={"kind": "note", "subject": "Met", "contact_id": created.json()["id"]},
    )
    deal = await member.client.post(
        "/api/v1/deals",
        json={
            "title": "Olive oil",
            "amount": "1200.50",
            "currency": "EUR",
            "company_id": company.json()["id"],
            "contact_ids": [created.json()["id"]],
        },
    )
    assert deal.status_code == 201, deal.text
    enabled = await member.client.post(
        "/api/v1/marketplace/probe/enable", json={"scopes": ["contacts:read"]}
    )
    assert enabled.status_code == 201


async def _counts(endpoints: Endpoints, tenant_id: str, tables: list[str]) -> dict[str, int]:
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        return {
            table: await admin.fetchval(
                f"SELECT count(*) FROM {table} WHERE tenant_id = $1::uuid",
                tenant_id,
            )
            for table in tables
        }
    finally:
        await admin.close()


async def test_an_exported_workspace_restores_into_a_new_one_with_every_record(
    alice: Member, bob: Member, runtime: Runtime, endpoints: Endpoints, tmp_path: Path
) -> None:
    await _fill(alice)
    await _fill(bob)
    response = await alice.client.get("/api/v1/workspace/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    manifest = json.loads(archive.read("manifest.json"))
    tables = {t["name"]: t["rows"] for t in manifest["tables"]}
    assert tables["contacts"] == 3
    assert tables["companies"] == 1
    assert tables["deals"] == 1
    assert tables["plugin_installations"] == 1
    assert "outbox_events" not in tables
    assert "api_keys" not in tables
    contacts_csv = archive.read("contacts.csv").decode()
    assert "dela Cruz" in contacts_csv
    assert "Bob" not in contacts_csv  # nothing of another workspace
    path = tmp_path / "alice.zip"
    path.write_bytes(response.content)

    async with runtime.db.transaction():
        restored = await import_workspace(runtime.db, path, "Alice restored")
    assert restored.slug.startswith("alice-restored")
    after = await _counts(endpoints, str(restored.id), list(tables))
    assert after == tables
    # The owner (matched by e-mail) sees the restored workspace and its records.
    page = await alice.client.get(f"/t/{restored.slug}/contacts")
    assert page.status_code == 200
    assert "dela Cruz" in page.text
    assert (await _counts(endpoints, alice.workspace_id, ["contacts"]))["contacts"] == 3


async def test_a_file_that_is_not_an_export_is_refused_clearly(
    runtime: Runtime, tmp_path: Path
) -> None:
    not_zip = tmp_path / "contacts.csv"
    not_zip.write_text("a,b\n1,2\n")
    no_manifest = tmp_path / "other.zip"
    with zipfile.ZipFile(no_manifest, "w") as archive:
        archive.writestr("readme.txt", "hello")
    for path, message in ((not_zip, "not a zip file"), (no_manifest, "no manifest.json")):
        async with runtime.db.transaction():
            with pytest.raises(InvalidInputError, match=message):
                await import_workspace(runtime.db, path)


async def test_only_the_owner_deletes_a_workspace_after_typing_its_slug(
    app: object, alice: Member, bob: Member, endpoints: Endpoints
) -> None:
    await _fill(alice)
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    async with bearer(app, key) as client:
        refused = await client.request("DELETE", "/api/v1/workspace", json={"confirm": alice.slug})
        exported = await client.get("/api/v1/workspace/export")
    assert refused.status_code == 403
    assert exported.status_code == 403
    wrong = await alice.client.request("DELETE", "/api/v1/workspace", json={"confirm": "nope"})
    assert wrong.status_code == 400
    assert wrong.json()["extra"][0]["key"] == "confirm"
    deleted = await alice.client.request(
        "DELETE", "/api/v1/workspace", json={"confirm": alice.slug}
    )
    assert deleted.status_code == 204
    left = await _counts(
        endpoints, alice.workspace_id, ["contacts", "companies", "memberships", "probe_seen"]
    )
    assert left == {"contacts": 0, "companies": 0, "memberships": 0, "probe_seen": 0}
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        assert not await admin.fetchval(
            "SELECT count(*) FROM tenants WHERE id = $1::uuid", alice.workspace_id
        )
    finally:
        await admin.close()
    assert (await bob.client.get("/api/v1/contacts")).status_code == 200
    assert (await alice.client.get(f"/t/{alice.slug}/contacts")).status_code in {403, 404}


async def test_the_pages_export_and_erase_a_person_and_delete_the_workspace(
    alice: Member, bob: Member
) -> None:
    created = await alice.client.post("/api/v1/contacts", json={"first_name": "Forget me"})
    contact_id = created.json()["id"]
    detail = await alice.client.get(f"/t/{alice.slug}/contacts/{contact_id}")
    assert f'href="/api/v1/contacts/{contact_id}/export"' in detail.text
    assert 'id="erase-contact"' in detail.text
    erased = await alice.client.post(
        f"/t/{alice.slug}/contacts/{contact_id}/erase", data={"csrf_token": alice.csrf}
    )
    assert erased.status_code == 303
    assert (await alice.client.get(f"/api/v1/contacts/{contact_id}")).status_code == 404
    team = await alice.client.get(f"/t/{alice.slug}/members")
    assert f'href="/t/{alice.slug}/workspace"' in team.text
    settings = await alice.client.get(f"/t/{alice.slug}/workspace")
    assert 'id="export-workspace"' in settings.text
    wrong = await alice.client.post(
        f"/t/{alice.slug}/workspace/delete", data={"csrf_token": alice.csrf, "confirm": "x"}
    )
    assert wrong.status_code == 422
    assert f"type {alice.slug} to confirm" in wrong.text
    gone = await alice.client.post(
        f"/t/{alice.slug}/workspace/delete", data={"csrf_token": alice.csrf, "confirm": alice.slug}
    )
    assert gone.status_code == 303
    assert (await alice.client.get(f"/t/{alice.slug}/contacts")).status_code in {403, 404}
    assert (await bob.client.get(f"/t/{bob.slug}/contacts")).status_code == 200
