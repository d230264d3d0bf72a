"""Exports of lists and saved views: round trips, formats, visibility, jobs, isolation."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from openpyxl import Workbook, load_workbook

from orbit.platform.events.worker import EventWorker
from tests.conftest import Member, sign_up
from tests.integration.crm.test_visibility import _join
from tests.integration.imports.test_imports import csv_bytes, imported, run, upload

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orbit.platform.db.servers import Endpoints
    from orbit.platform.runtime import Runtime


def read_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.fixture
async def member(app: object) -> Member:
    return await sign_up(app, f"Export {secrets.token_hex(3)}")


@pytest.fixture
async def worker(runtime: Runtime) -> AsyncIterator[EventWorker]:
    running = EventWorker(runtime, queue_name=f"test-{uuid.uuid4().hex[:8]}", poll_interval=0.05)
    await running.start()
    yield running
    await running.stop()


async def until_done(member: Member, url: str, timeout: float = 20.0) -> dict[str, Any]:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await member.client.get(url)).json()
        if body["status"] in {"done", "failed", "cancelled"}:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"{url} still {body['status']} after {timeout}s")
        await asyncio.sleep(0.1)


PEOPLE = [
    ["First", "Last", "E-mail", "Company", "Tags"],
    ["Ελένη", "Παπαδοπούλου", "eleni@x.gr", "Ακρόπολη ΑΕ", "vip, athens"],
    ["Сергей", "Иванов", "sergei@x.ru", "", ""],
    ["伟", "王", "wang@x.cn", "北京公司", "vip"],
]
MAPPING = {
    "First": "first_name",
    "Last": "last_name",
    "E-mail": "email",
    "Company": "company_name",
    "Tags": "tags",
}


async def test_csv_round_trip_export_then_reimport_updates(
    runtime: Runtime, member: Member
) -> None:
    await imported(runtime, member, PEOPLE, MAPPING)
    response = await member.client.get(
        "/api/v1/exports/download", params={"object_type": "contacts"}
    )
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    rows = read_csv(response.content)
    by_email = {row["email"]: row for row in rows}
    assert set(by_email) == {"eleni@x.gr", "sergei@x.ru", "wang@x.cn"}
    assert by_email["eleni@x.gr"]["last_name"] == "Παπαδοπούλου"
    assert by_email["eleni@x.gr"]["company_name"] == "Ακρόπολη ΑΕ"
    assert by_email["eleni@x.gr"]["tags"] == "athens, vip"
    again = await upload(
        member,
        response.content,
        file_name="contacts.csv",
        mapping={"first_name": "first_name", "last_name": "last_name", "email": "email"},
    )
    assert again.status_code == 201, again.text
    result = await run(runtime, member, again.json()["import"]["id"])
    assert (result["created"], result["updated"], result["errors"]) == (0, 3, 0)


async def test_xlsx_export_and_xlsx_import(runtime: Runtime, member: Member) -> None:
    await imported(runtime, member, PEOPLE, MAPPING)
    response = await member.client.get(
        "/api/v1/exports/download",
        params={"object_type": "contact", "format": "xlsx", "columns": "email,last_name"},
    )
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == ["id", "email", "last_name"]
    assert sorted(row[2] for row in values[1:]) == sorted(["Παπαδοπούλου", "Иванов", "王"])
    book = Workbook()
    book.active.append(["Name", "Website"])  # type: ignore[union-attr]
    book.active.append(["Σούπερ Μάρκετ", "market.gr"])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    companies = await upload(
        member,
        out.getvalue(),
        "company",
        file_name="companies.xlsx",
        mapping={"Name": "name", "Website": "domain"},
    )
    assert companies.status_code == 201, companies.text
    assert companies.json()["import"]["file_format"] == "xlsx"
    result = await run(runtime, member, companies.json()["import"]["id"])
    assert result["created"] == 1


async def test_export_of_a_saved_view_and_of_filters(runtime: Runtime, member: Member) -> None:
    await imported(runtime, member, PEOPLE, MAPPING)
    view = await member.client.post(
        "/api/v1/views",
        json={
            "object_type": "contact",
            "name": "VIPs",
            "filters": [{"field": "tags", "op": "contains", "value": "vip"}],
        },
    )
    assert view.status_code == 201, view.text
    response = await member.client.get(
        "/api/v1/exports/download", params={"object_type": "contact", "view": view.json()["id"]}
    )
    assert sorted(r["email"] for r in read_csv(response.content)) == ["eleni@x.gr", "wang@x.cn"]
    filtered = await member.client.get(
        "/api/v1/exports/download",
        params={
            "object_type": "contact",
            "filters": '[{"field": "email", "op": "contains", "value": ".ru"}]',
        },
    )
    assert [r["email"] for r in read_csv(filtered.content)] == ["sergei@x.ru"]
    bad = await member.client.get(
        "/api/v1/exports/download",
        params={"object_type": "contact", "filters": '[{"field": "colour"}]'},
    )
    assert bad.status_code == 400


async def test_exports_respect_record_visibility(app: object, member: Member) -> None:
    mia, mia_id = await _join(app, member, f"mia-{secrets.token_hex(3)}@example.com")
    await member.client.post("/api/v1/contacts", json={"first_name": "Owner's"})
    await member.client.post("/api/v1/contacts", json={"first_name": "Mia's", "owner_id": mia_id})
    assert (
        await member.client.put("/api/v1/settings/visibility", json={"member": "own"})
    ).status_code == 200
    response = await mia.client.get("/api/v1/exports/download", params={"object_type": "contact"})
    assert [r["first_name"] for r in read_csv(response.content)] == ["Mia's"]
    everything = await member.client.get(
        "/api/v1/exports/download", params={"object_type": "contact"}
    )
    assert sorted(r["first_name"] for r in read_csv(everything.content)) == ["Mia's", "Owner's"]


async def test_background_export_runs_in_the_worker_and_only_its_requester_downloads(
    app: object, runtime: Runtime, member: Member, worker: EventWorker
) -> None:
    assert worker is not None
    rows = [["E-mail", "Last"]] + [[f"w{i}@x.io", f"W{i}"] for i in range(300)]
    response = await upload(
        member, csv_bytes(rows), mapping={"E-mail": "email", "Last": "last_name"}
    )
    done = await until_done(member, f"/api/v1/imports/{response.json()['import']['id']}")
    assert (done["status"], done["created"]) == ("done", 300)
    created = await member.client.post(
        "/api/v1/exports", json={"object_type": "contact", "format": "csv"}
    )
    assert created.status_code == 201, created.text
    export = await until_done(member, f"/api/v1/exports/{created.json()['id']}")
    assert (export["status"], export["rows_done"]) == ("done", 300)
    file = await member.client.get(export["download_url"])
    assert len(read_csv(file.content)) == 300
    other = await sign_up(app, "Other export")
    assert (await other.client.get(export["download_url"])).status_code == 404
    assert (await other.client.get(f"/api/v1/exports/{export['id']}")).status_code == 404
    audit = (await member.client.get("/api/v1/audit", params={"action": "export"})).json()
    assert any(entry["action"] == "export" for entry in audit["items"])


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
async def test_companies_and_deals_export_with_names_of_what_they_link(
    member: Member, file_format: str
) -> None:
    company = await member.client.post("/api/v1/companies", json={"name": "Ακρόπολη ΑΕ"})
    deal = await member.client.post(
        "/api/v1/deals",
        json={
            "title": "Πρώτη",
            "currency": "EUR",
            "amount": "12.5",
            "company_id": company.json()["id"],
        },
    )
    assert deal.status_code == 201, deal.text
    for kind in ("company", "deal"):
        response = await member.client.get(
            "/api/v1/exports/download", params={"object_type": kind, "format": file_format}
        )
        assert response.status_code == 200, response.text
        if file_format == "csv":
            rows = read_csv(response.content)
        else:
            sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
            values = [list(row) for row in sheet.iter_rows(values_only=True)]
            rows = [dict(zip(values[0], row, strict=False)) for row in values[1:]]
        assert len(rows) == 1
        if kind == "deal":
            assert rows[0]["title"] == "Πρώτη"
            assert rows[0]["company_name"] == "Ακρόπολη ΑΕ"
            assert rows[0]["stage_name"]
        else:
            assert rows[0]["name"] == "Ακρόπολη ΑΕ"


async def test_the_worker_resumes_an_import_whose_worker_died(
    runtime: Runtime, member: Member, endpoints: Endpoints
) -> None:
    rows = [["E-mail"]] + [[f"k{i}@x.io"] for i in range(60)]
    response = await upload(member, csv_bytes(rows), mapping={"E-mail": "email"})
    import_id = response.json()["import"]["id"]

    def die(batch: int) -> None:
        if batch == 2:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        await run(runtime, member, import_id, batch_rows=20, after_batch=die)
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:  # time passes: the dead worker's lease runs out
        await admin.execute(
            "UPDATE imports SET lease_until = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(import_id),
        )
    finally:
        await admin.close()
    running = EventWorker(runtime, queue_name=f"test-{uuid.uuid4().hex[:8]}", poll_interval=0.05)
    await running.start()
    try:
        done = await until_done(member, f"/api/v1/imports/{import_id}")
    finally:
        await running.stop()
    assert (done["status"], done["rows_done"], done["created"]) == ("done", 60, 60)
    exported = await member.client.get(
        "/api/v1/exports/download", params={"object_type": "contact"}
    )
    assert sorted(r["email"] for r in read_csv(exported.content)) == sorted(
        f"k{i}@x.io" for i in range(60)
    )
