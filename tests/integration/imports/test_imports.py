"""Imports of contacts, companies and deals: modes, dedupe, strict, encodings, resume, isolation."""

from __future__ import annotations

import csv
import io
import json
import secrets
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import pytest

from orbit.platform.imports.engine import run_import
from tests.conftest import Member, sign_up

if TYPE_CHECKING:
    from orbit.platform.db.servers import Endpoints
    from orbit.platform.runtime import Runtime


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


async def upload(member: Member, body: bytes, object_type: str = "contact", **params: Any) -> Any:
    query = {"object_type": object_type, "file_name": params.pop("file_name", "people.csv")}
    query.update({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in params.items()})
    return await member.client.post("/api/v1/imports", params=query, content=body)


async def run(runtime: Runtime, member: Member, import_id: str, **kwargs: Any) -> dict[str, Any]:
    await run_import(
        runtime.db, runtime.settings.home, UUID(member.workspace_id), UUID(import_id), **kwargs
    )
    response = await member.client.get(f"/api/v1/imports/{import_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def imported(
    runtime: Runtime,
    member: Member,
    rows: list[list[str]],
    mapping: dict[str, str],
    object_type: str = "contact",
    **params: Any,
) -> dict[str, Any]:
    response = await upload(member, csv_bytes(rows), object_type, mapping=mapping, **params)
    assert response.status_code == 201, response.text
    return await run(runtime, member, response.json()["import"]["id"])


async def contacts(member: Member) -> list[dict[str, Any]]:
    response = await member.client.get("/api/v1/contacts", params={"limit": 200})
    items: list[dict[str, Any]] = response.json()["items"]
    return items


CONTACT_MAP = {"First": "first_name", "Last": "last_name", "E-mail": "email"}


@pytest.fixture
async def member(app: object) -> Member:
    return await sign_up(app, f"Import {secrets.token_hex(3)}")


async def test_upload_previews_rows_and_suggests_a_mapping(member: Member) -> None:
    body = csv_bytes([["First", "Surname", "E-mail", "Company"], ["Ann", "Lee", "a@x.io", "Acme"]])
    response = await upload(member, body)
    assert response.status_code == 201, response.text
    preview = response.json()
    assert preview["import"]["status"] == "uploaded"
    assert preview["import"]["total_rows"] == 1
    assert preview["rows"] == [["Ann", "Lee", "a@x.io", "Acme"]]
    assert preview["suggested_mapping"] == {
        "First": "first_name",
        "Surname": "last_name",
        "E-mail": "email",
        "Company": "company_name",
    }
    assert "email" in preview["dedupe_keys"]


async def test_upsert_creates_then_updates_by_email_and_lists_bad_rows(
    runtime: Runtime, member: Member
) -> None:
    first = await imported(
        runtime,
        member,
        [
            ["First", "Last", "E-mail"],
            ["Ann", "Lee", "ann@x.io"],
            ["Bo", "Ng", "not-an-email"],
            ["", "", ""],
            ["Cy", "Do", "cy@x.io"],
        ],
        CONTACT_MAP,
    )
    assert first["status"] == "done"
    assert (first["created"], first["updated"], first["errors"]) == (2, 0, 2)
    errors = await member.client.get(f"/api/v1/imports/{first['id']}/errors.csv")
    lines = list(csv.reader(io.StringIO(errors.content.decode("utf-8-sig"))))
    assert lines[0] == ["line", "reason"]
    assert [row[0] for row in lines[1:]] == ["3", "4"]
    assert "not a valid email" in lines[1][1]
    second = await imported(
        runtime,
        member,
        [["First", "E-mail"], ["Anna", "ann@x.io"], ["Dee", "dee@x.io"]],
        {"First": "first_name", "E-mail": "email"},
    )
    assert (second["created"], second["updated"]) == (1, 1)
    people = {c["email"]: c for c in await contacts(member)}
    assert len(people) == 3
    assert people["ann@x.io"]["first_name"] == "Anna"
    assert people["ann@x.io"]["last_name"] == "Lee"  # not in the file: kept


async def test_create_only_skips_existing_and_update_only_skips_new(
    runtime: Runtime, member: Member
) -> None:
    await imported(
        runtime,
        member,
        [["E-mail", "First"], ["a@x.io", "A"]],
        {"E-mail": "email", "First": "first_name"},
    )
    created = await imported(
        runtime,
        member,
        [["E-mail", "First"], ["a@x.io", "A2"], ["b@x.io", "B"]],
        {"E-mail": "email", "First": "first_name"},
        mode="create",
    )
    assert (created["created"], created["updated"], created["errors"]) == (1, 0, 1)
    updated = await imported(
        runtime,
        member,
        [["E-mail", "First"], ["a@x.io", "A3"], ["c@x.io", "C"]],
        {"E-mail": "email", "First": "first_name"},
        mode="update",
    )
    assert (updated["created"], updated["updated"], updated["errors"]) == (0, 1, 1)
    names = sorted(c["first_name"] for c in await contacts(member))
    assert names == ["A3", "B"]


async def test_the_same_email_twice_in_a_file_makes_one_contact(
    runtime: Runtime, member: Member
) -> None:
    result = await imported(
        runtime,
        member,
        [["E-mail", "First"], ["d@x.io", "One"], ["d@x.io", "Two"]],
        {"E-mail": "email", "First": "first_name"},
    )
    assert result["status"] == "done"
    people = await contacts(member)
    assert [(c["email"], c["first_name"]) for c in people] == [("d@x.io", "Two")]


async def test_strict_mode_rolls_everything_back(runtime: Runtime, member: Member) -> None:
    rows = [["E-mail", "First"]] + [[f"s{i}@x.io", f"S{i}"] for i in range(30)]
    rows.append(["broken", "X"])
    response = await upload(
        member, csv_bytes(rows), mapping={"E-mail": "email", "First": "first_name"}, strict="true"
    )
    result = await run(runtime, member, response.json()["import"]["id"], batch_rows=7)
    assert result["status"] == "failed"
    assert "nothing was imported" in result["message"]
    assert result["errors"] == 1
    assert await contacts(member) == []


async def test_companies_dedupe_by_domain_and_deals_find_stages(
    runtime: Runtime, member: Member
) -> None:
    first = await imported(
        runtime,
        member,
        [["Company", "Website"], ["Acme", "https://www.acme.com/x"]],
        {"Company": "name", "Website": "domain"},
        object_type="company",
    )
    again = await imported(
        runtime,
        member,
        [["Company", "Website", "Industry"], ["Acme Inc", "acme.com", "Tools"]],
        {"Company": "name", "Website": "domain", "Industry": "industry"},
        object_type="company",
    )
    assert (first["created"], again["updated"]) == (1, 1)
    companies = (await member.client.get("/api/v1/companies")).json()["items"]
    assert [(c["name"], c["domain"], c["industry"]) for c in companies] == [
        ("Acme Inc", "acme.com", "Tools")
    ]
    stages = (await member.client.get("/api/v1/pipelines")).json()[0]["stages"]
    deals = await imported(
        runtime,
        member,
        [
            ["Deal", "Value", "Currency", "Stage", "Company"],
            ["Big", "1,250.50", "eur", stages[1]["name"], "Acme Inc"],
            ["Bad", "lots", "EUR", "", ""],
            ["Nowhere", "1", "EUR", "No such stage", ""],
        ],
        {
            "Deal": "title",
            "Value": "amount",
            "Currency": "currency",
            "Stage": "stage",
            "Company": "company_name",
        },
        object_type="deal",
        mode="create",
    )
    assert (deals["created"], deals["errors"]) == (1, 2)
    listed = (await member.client.get("/api/v1/deals")).json()["items"]
    assert len(listed) == 1
    assert listed[0]["stage_id"] == stages[1]["id"]
    assert listed[0]["amount"] in {"1250.5", "1250.50", "1250.5000", 1250.5}
    assert listed[0]["company_id"] == companies[0]["id"]


@pytest.mark.parametrize(
    ("encoding", "names"),
    [
        ("cp1251", ["Иванова", "Сергей Петров"]),
        ("cp1253", ["Παπαδόπουλος", "Ελένη Γεωργίου"]),
        ("gb18030", ["王伟", "李娜"]),
        ("utf-16", ["dela Cruz", "Παπαδόπουλος"]),
        ("utf-8-sig", ["Müller", "Иванова"]),
    ],
)
async def test_encodings_are_detected(
    runtime: Runtime, member: Member, encoding: str, names: list[str]
) -> None:
    rows = [["Last", "E-mail"]] + [
        [f"{name} {i}", f"p{i}@x.io"] for i in range(40) for name in names[i % 2 : i % 2 + 1]
    ]
    response = await upload(member, csv_bytes(rows, encoding))
    assert response.status_code == 201, response.text
    assert response.json()["rows"][0] == rows[1]
    started = await member.client.post(
        f"/api/v1/imports/{response.json()['import']['id']}/start",
        json={"mapping": {"Last": "last_name", "E-mail": "email"}},
    )
    assert started.status_code == 200, started.text
    result = await run(runtime, member, started.json()["id"])
    assert result["created"] == 40
    last_names = {c["last_name"] for c in await contacts(member)}
    assert f"{names[0]} 0" in last_names


async def test_bad_files_and_mappings_are_clear_4xx_and_write_nothing(member: Member) -> None:
    png = await upload(member, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert png.status_code == 400
    assert "not a CSV or XLSX" in png.json()["detail"]
    wrong = await upload(member, "Last\nИванова\n".encode("cp1251"), encoding="utf-8")
    assert wrong.status_code == 400
    assert "encoding" in wrong.text
    unknown = await upload(member, csv_bytes([["Last"], ["X"]]), mapping={"Last": "colour"})
    assert unknown.status_code == 400
    assert "colour" in unknown.json()["detail"]
    missing = await upload(member, csv_bytes([["Last"], ["X"]]), mapping={"Nope": "last_name"})
    assert missing.status_code == 400
    assert (await member.client.get("/api/v1/imports")).json() == []
    assert await contacts(member) == []


async def test_a_crash_mid_import_resumes_without_duplicates_or_gaps(
    runtime: Runtime, member: Member
) -> None:
    rows = [["E-mail", "First"]] + [[f"r{i}@x.io", f"R{i}"] for i in range(100)]
    response = await upload(
        member, csv_bytes(rows), mapping={"E-mail": "email", "First": "first_name"}
    )
    import_id = response.json()["import"]["id"]

    def crash(batch: int) -> None:
        if batch == 3:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        await run(runtime, member, import_id, batch_rows=15, after_batch=crash)
    halfway = (await member.client.get(f"/api/v1/imports/{import_id}")).json()
    assert (halfway["status"], halfway["rows_done"]) == ("running", 45)
    result = await run(runtime, member, import_id, batch_rows=15)
    assert (result["status"], result["rows_done"], result["created"]) == ("done", 100, 100)
    emails = sorted(c["email"] for c in await contacts(member))
    assert emails == sorted(f"r{i}@x.io" for i in range(100))


async def test_cancel_stops_an_import(runtime: Runtime, member: Member) -> None:
    rows = [["E-mail"]] + [[f"c{i}@x.io"] for i in range(50)]
    response = await upload(member, csv_bytes(rows), mapping={"E-mail": "email"})
    import_id = response.json()["import"]["id"]
    cancelled = await member.client.post(f"/api/v1/imports/{import_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    result = await run(runtime, member, import_id)
    assert result["status"] == "cancelled"
    assert await contacts(member) == []
    again = await member.client.post(f"/api/v1/imports/{import_id}/cancel")
    assert again.status_code == 409


async def test_quota_exceeded_writes_nothing(runtime: Runtime, member: Member) -> None:
    rows = [["E-mail"]] + [[f"q{i}@x.io"] for i in range(10_001)]  # free plan: 10,000
    response = await upload(member, csv_bytes(rows), mapping={"E-mail": "email"})
    assert response.status_code == 402, response.text
    assert "contacts quota" in response.json()["detail"]
    assert (await member.client.get("/api/v1/imports")).json() == []
    assert await contacts(member) == []


async def test_another_workspace_cannot_see_or_download_an_import(
    runtime: Runtime, member: Member, app: object
) -> None:
    result = await imported(runtime, member, [["E-mail"], ["bad"]], {"E-mail": "email"})
    other = await sign_up(app, "Other import")
    for path in ("", "/errors.csv", "/preview"):
        response = await other.client.get(f"/api/v1/imports/{result['id']}{path}")
        assert response.status_code == 404
    assert (await other.client.post(f"/api/v1/imports/{result['id']}/cancel")).status_code == 404
    assert (await other.client.get("/api/v1/imports")).json() == []


async def test_remembered_mappings_are_suggested_next_time(
    runtime: Runtime, member: Member
) -> None:
    await imported(runtime, member, [["Kontakt Mail"], ["m@x.io"]], {"Kontakt Mail": "email"})
    preview = (await upload(member, csv_bytes([["Kontakt Mail"], ["n@x.io"]]))).json()
    assert preview["suggested_mapping"] == {"Kontakt Mail": "email"}


async def test_a_custom_field_can_be_the_dedupe_key(runtime: Runtime, member: Member) -> None:
    field = await member.client.post(
        "/api/v1/custom-fields",
        json={"object_type": "contact", "key": "crm_ref", "label": "CRM ref", "type": "text"},
    )
    assert field.status_code == 201, field.text
    mapping = {"Ref": "custom.crm_ref", "First": "first_name"}
    first = await imported(
        runtime,
        member,
        [["Ref", "First"], ["R-1", "Ann"], ["R-2", "Bo"]],
        mapping,
        dedupe_key="custom.crm_ref",
    )
    second = await imported(
        runtime,
        member,
        [["Ref", "First"], ["R-1", "Anna"]],
        mapping,
        dedupe_key="custom.crm_ref",
        mode="update",
    )
    assert (first["created"], second["updated"]) == (2, 1)
    people = {c["custom"]["crm_ref"]: c["first_name"] for c in await contacts(member)}
    assert people == {"R-1": "Anna", "R-2": "Bo"}


async def test_a_file_beyond_the_plans_storage_is_refused_before_it_is_kept(
    runtime: Runtime, member: Member, endpoints: Endpoints
) -> None:
    limit = 1_024 * 1024 * 1024  # the free plan's 1,024 MB
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        await admin.execute(
            "INSERT INTO tenant_usage (tenant_id, quota, used) VALUES ($1, 'storage_bytes', $2) "
            "ON CONFLICT (tenant_id, quota) DO UPDATE SET used = EXCLUDED.used",
            UUID(member.workspace_id),
            limit - 10,
        )
        body = csv_bytes([["E-mail"], ["big@x.io"], ["bigger@x.io"]])
        too_large = await upload(member, body, mapping={"E-mail": "email"})
        assert too_large.status_code == 413
        assert "larger than this workspace may upload" in too_large.json()["detail"]
        await admin.execute(
            "UPDATE tenant_usage SET used = $2 WHERE tenant_id = $1 AND quota = 'storage_bytes'",
            UUID(member.workspace_id),
            limit,
        )
        full = await upload(member, body, mapping={"E-mail": "email"})
        assert full.status_code == 402
        assert "storage quota" in full.json()["detail"]
    finally:
        await admin.close()
    assert (await member.client.get("/api/v1/imports")).json() == []
    assert await contacts(member) == []
    folder = runtime.settings.home / "imports" / member.workspace_id
    assert not list(folder.glob("incoming-*"))
