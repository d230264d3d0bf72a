"""The import pages: upload form, mapping with a preview, progress bar, result, export form."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from tests.conftest import sign_up
from tests.integration.imports.test_imports import csv_bytes, run, upload

if TYPE_CHECKING:
    from orbit.platform.runtime import Runtime


async def test_map_preview_start_progress_and_result_pages(app: object, runtime: Runtime) -> None:
    member = await sign_up(app, f"Pages {secrets.token_hex(3)}")
    base = f"/t/{member.slug}/imports"
    listing = await member.client.get(f"{base}/")
    assert listing.status_code == 200
    assert 'id="import-upload"' in listing.text
    assert "/api/v1/exports/download" in listing.text
    body = csv_bytes([["Name", "Mail"], ["Ann", "ann@x.io"], ["Bob", "not-mail"]])
    uploaded = (await upload(member, body)).json()["import"]
    mapping = await member.client.get(f"{base}/{uploaded['id']}")
    assert mapping.status_code == 200
    assert "ann@x.io" in mapping.text  # the preview
    assert 'name="map_1"' in mapping.text
    bad = await member.client.post(
        f"{base}/{uploaded['id']}/start", data={"map_0": "colour", "mode": "upsert"}
    )
    assert bad.status_code == 400
    assert "colour" in bad.text
    started = await member.client.post(
        f"{base}/{uploaded['id']}/start",
        data={"map_0": "first_name", "map_1": "email", "mode": "upsert"},
    )
    assert started.status_code == 303, started.text
    progress = await member.client.get(f"{base}/{uploaded['id']}/progress")
    assert 'data-status="queued"' in progress.text
    assert 'hx-trigger="every 1s"' in progress.text
    await run(runtime, member, uploaded["id"])
    result = await member.client.get(f"{base}/{uploaded['id']}")
    assert 'data-status="done"' in result.text
    assert uploaded["errors_url"] in result.text  # one row was skipped
    other = await sign_up(app, "Other pages")
    assert (await other.client.get(f"/t/{other.slug}/imports/{uploaded['id']}")).status_code == 404
