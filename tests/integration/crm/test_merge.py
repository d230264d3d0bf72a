"""Dedupe and merge: suggestions by reason, merges that move everything, bad input, isolation."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from orbit.platform.runtime import Runtime
from tests.conftest import Member
from tests.integration.crm.test_visibility import _join

CONTACTS = "/api/v1/contacts"
COMPANIES = "/api/v1/companies"


async def _contact(member: Member, **body: Any) -> dict[str, Any]:
    response = await member.client.post(CONTACTS, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _company(member: Member, **body: Any) -> dict[str, Any]:
    response = await member.client.post(COMPANIES, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _groups(member: Member, base: str, **params: Any) -> list[tuple[str, set[str]]]:
    response = await member.client.get(f"{base}/duplicates", params=params)
    assert response.status_code == 200, response.text
    key = "contacts" if base == CONTACTS else "companies"
    return [(g["reason"], {r["id"] for r in g[key]}) for g in response.json()["items"]]


async def _events(runtime: Runtime, member: Member, kind: str) -> list[dict[str, Any]]:
    async with runtime.db.transaction(uuid.UUID(member.workspace_id)):
        rows = await runtime.db.fetch(
            "SELECT data FROM outbox_events WHERE type = $1 ORDER BY occurred_at, id", kind
        )
    return [json.loads(row["data"]) for row in rows]


async def test_contact_duplicates_by_email_phone_and_similar_name(alice: Member) -> None:
    maria = await _contact(alice, first_name="Maria", email="maria@aegean.gr")
    mary = await _contact(alice, first_name="Mary", email="MARIA@Aegean.gr")
    kostas = await _contact(alice, first_name="Kostas", phone="+30 210 123 4567")
    costas = await _contact(alice, first_name="Costas", phone="(30) 2101234567")
    jon = await _contact(alice, first_name="Jon", last_name="Smithson", company_name="Acme")
    john = await _contact(alice, first_name="John", last_name="Smithson", company_name="ACME")
    elsewhere = await _contact(
        alice, first_name="John", last_name="Smithson", company_name="Globex"
    )
    await _contact(alice, first_name="Unrelated", email="other@aegean.gr", phone="12")

    groups = await _groups(alice, CONTACTS)
    assert ("email", {maria["id"], mary["id"]}) in groups
    assert ("phone", {kostas["id"], costas["id"]}) in groups
    assert ("name", {jon["id"], john["id"]}) in groups
    assert len(groups) == 3  # a similar name at another company is not a duplicate
    assert await _groups(alice, CONTACTS, reason="phone") == [
        ("phone", {kostas["id"], costas["id"]})
    ]
    hint = (await alice.client.get(f"{CONTACTS}/{jon['id']}/duplicates")).json()
    assert [(d["id"], d["reason"]) for d in hint] == [(john["id"], "name")]
    assert (await alice.client.get(f"{CONTACTS}/{elsewhere['id']}/duplicates")).json() == []
    bad = await alice.client.get(f"{CONTACTS}/duplicates", params={"reason": "domain"})
    assert bad.status_code == 400
    assert bad.json()["extra"][0]["key"] == "reason"


async def test_duplicate_groups_page_through_every_reason(alice: Member) -> None:
    for n in range(3):
        await _contact(alice, first_name=f"A{n}", email=f"same{n}@example.com")
        await _contact(alice, first_name=f"B{n}", email=f"SAME{n}@example.com")
    await _contact(alice, first_name="P1", phone="555 0100 200")
    await _contact(alice, first_name="P2", phone="5550100200")
    seen: list[tuple[str, set[str]]] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await alice.client.get(f"{CONTACTS}/duplicates", params=params)).json()
        seen += [(g["reason"], {c["id"] for c in g["contacts"]}) for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [reason for reason, _ in seen] == ["email", "email", "email", "phone"]
    bad = await alice.client.get(f"{CONTACTS}/duplicates", params={"cursor": "nope"})
    assert bad.status_code == 400


async def test_company_duplicates_by_domain_and_similar_name(alice: Member) -> None:
    acme = await _company(alice, name="Acme", domain="acme.com")
    acme_eu = await _company(alice, name="Zeta Europe", domain="eu.acme.com")
    globex = await _company(alice, name="Globex Corporation")
    globex_ltd = await _company(alice, name="Globex Corporation Ltd")
    initech = await _company(alice, name="Initech", domain="initech.co.uk")
    initech_ltd = await _company(alice, name="INITECH, Ltd.")
    await _company(alice, name="Umbrella", domain="other.co.uk")
    groups = await _groups(alice, COMPANIES)
    assert groups == [
        ("domain", {acme["id"], acme_eu["id"]}),
        ("name", {globex["id"], globex_ltd["id"]}),
        ("name", {initech["id"], initech_ltd["id"]}),
    ]
    hint = (await alice.client.get(f"{COMPANIES}/{acme_eu['id']}/duplicates")).json()
    assert [(d["id"], d["label"], d["reason"]) for d in hint] == [(acme["id"], "Acme", "domain")]


async def test_merge_moves_timeline_deals_tasks_tags_and_applies_choices(
    runtime: Runtime, alice: Member
) -> None:
    defined = await alice.client.post(
        "/api/v1/custom-fields",
        json={"object_type": "contact", "key": "tier", "label": "Tier", "type": "text"},
    )
    assert defined.status_code == 201, defined.text
    keep = await _contact(
        alice, first_name="Ana", email="ana@old.example", tags=["vip"], custom={"tier": "silver"}
    )
    dup = await _contact(
        alice, first_name="Anna", last_name="Lima", email="ana@new.example", tags=["lead"]
    )
    third = await _contact(alice, first_name="A.", phone="+351 1", custom={"tier": "gold"})
    note = await alice.client.post(
        "/api/v1/activities", json={"kind": "note", "subject": "Met Anna", "contact_id": dup["id"]}
    )
    assert note.status_code == 201, note.text
    shared = await alice.client.post(
        "/api/v1/deals",
        json={"title": "Shared", "currency": "EUR", "contact_ids": [keep["id"], dup["id"]]},
    )
    only_third = await alice.client.post(
        "/api/v1/deals", json={"title": "Third's", "currency": "EUR", "contact_ids": [third["id"]]}
    )
    task = await alice.client.post(
        "/api/v1/tasks",
        json={"title": "Call", "due_at": "2026-12-01T09:00:00+00:00", "contact_id": dup["id"]},
    )
    assert {r.status_code for r in (shared, only_third, task)} == {201}, task.text

    merged = await alice.client.post(
        f"{CONTACTS}/merge",
        json={
            "survivor_id": keep["id"],
            "merged_ids": [dup["id"], third["id"]],
            "choices": {"email": dup["id"], "last_name": dup["id"], "custom.tier": third["id"]},
        },
    )
    assert merged.status_code == 200, merged.text
    contact = merged.json()["contact"]
    assert contact["id"] == keep["id"]
    assert (contact["first_name"], contact["last_name"]) == ("Ana", "Lima")
    assert contact["email"] == "ana@new.example"
    assert contact["phone"] == "+351 1"  # the survivor had none: filled from a merged record
    assert contact["custom"] == {"tier": "gold"}
    assert contact["tags"] == ["lead", "vip"]
    assert merged.json()["merged_ids"] == [dup["id"], third["id"]]
    for gone in (dup, third):
        assert (await alice.client.get(f"{CONTACTS}/{gone['id']}")).status_code == 404

    timeline = (await alice.client.get(f"{CONTACTS}/{keep['id']}/timeline")).json()
    assert "Met Anna" in [a["subject"] for a in timeline["items"]]
    shared_deal = (await alice.client.get(f"/api/v1/deals/{shared.json()['id']}")).json()
    assert shared_deal["contact_ids"] == [keep["id"]]
    third_deal = (await alice.client.get(f"/api/v1/deals/{only_third.json()['id']}")).json()
    assert third_deal["contact_ids"] == [keep["id"]]
    moved_task = (await alice.client.get(f"/api/v1/tasks/{task.json()['id']}")).json()
    assert moved_task["contact_id"] == keep["id"]

    audit = (
        await alice.client.get("/api/v1/audit", params={"record_id": keep["id"], "action": "merge"})
    ).json()["items"]
    assert len(audit) == 1
    assert audit[0]["details"]["merged_ids"] == [dup["id"], third["id"]]
    assert audit[0]["details"]["choices"]["email"] == {
        "from": dup["id"],
        "value": "ana@new.example",
    }
    assert audit[0]["changes"]["email"] == {"before": "ana@old.example", "after": "ana@new.example"}
    # The merged records' own history stays findable by their ids.
    old = (await alice.client.get("/api/v1/audit", params={"record_id": dup["id"]})).json()
    assert [e["action"] for e in old["items"]] == ["create"]

    events = await _events(runtime, alice, "contact.merged")
    assert len(events) == 1
    assert events[0]["survivor_id"] == keep["id"]
    assert events[0]["merged_ids"] == [dup["id"], third["id"]]


async def test_company_merge_moves_contacts_and_deals_and_may_take_a_merged_domain(
    runtime: Runtime, alice: Member
) -> None:
    keep = await _company(alice, name="Acme", tags=["a"])
    dup = await _company(alice, name="ACME Inc", domain="acme.com", tags=["b"])
    person = await _contact(alice, first_name="Zoe", company_id=dup["id"])
    deal = await alice.client.post(
        "/api/v1/deals", json={"title": "Big", "currency": "EUR", "company_id": dup["id"]}
    )
    merged = await alice.client.post(
        f"{COMPANIES}/merge",
        json={"survivor_id": keep["id"], "merged_ids": [dup["id"]], "choices": {"name": dup["id"]}},
    )
    assert merged.status_code == 200, merged.text
    company = merged.json()["company"]
    assert (company["name"], company["domain"], company["tags"]) == (
        "ACME Inc",
        "acme.com",
        ["a", "b"],
    )
    moved = (await alice.client.get(f"{CONTACTS}/{person['id']}")).json()
    assert (moved["company_id"], moved["company_name"]) == (keep["id"], "ACME Inc")
    assert (await alice.client.get(f"/api/v1/deals/{deal.json()['id']}")).json()[
        "company_id"
    ] == keep["id"]
    found = (await alice.client.get(CONTACTS, params={"q": "acme inc"})).json()["items"]
    assert [c["id"] for c in found] == [person["id"]]
    assert (await alice.client.get(f"{COMPANIES}/{dup['id']}")).status_code == 404
    # Keeping the survivor's name: the moved contacts are found by it.
    other = await _company(alice, name="Acme Hellas")
    hellene = await _contact(alice, first_name="Yannis", company_id=other["id"])
    again = await alice.client.post(
        f"{COMPANIES}/merge", json={"survivor_id": keep["id"], "merged_ids": [other["id"]]}
    )
    assert again.status_code == 200, again.text
    found = (await alice.client.get(CONTACTS, params={"q": "acme inc"})).json()["items"]
    assert {c["id"] for c in found} == {person["id"], hellene["id"]}
    events = await _events(runtime, alice, "company.merged")
    assert [(e["survivor_id"], e["merged_ids"]) for e in events] == [
        (keep["id"], [dup["id"]]),
        (keep["id"], [other["id"]]),
    ]


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("empty", 400, "merged_ids"),
        ("itself", 400, "merged_ids"),
        ("too_many", 400, "merged_ids"),
        ("unknown_field", 400, "choices.shoe_size"),
        ("unknown_custom", 400, "choices.custom.nope"),
        ("choice_outside", 400, "choices.email"),
        ("missing", 404, "merged_ids"),
    ],
)
async def test_bad_merges_are_refused_and_change_nothing(
    runtime: Runtime, alice: Member, case: str, status: int, field: str
) -> None:
    keep = await _contact(alice, first_name="Keep", email="keep@example.com")
    dup = await _contact(alice, first_name="Dup", email="dup@example.com")
    outsider = await _contact(alice, first_name="Outsider")
    merged_ids: list[str] = [dup["id"]]
    choices: dict[str, str] = {}
    if case == "empty":
        merged_ids = []
    elif case == "itself":
        merged_ids = [keep["id"]]
    elif case == "too_many":
        merged_ids = [dup["id"]] + [
            (await _contact(alice, first_name=f"X{n}"))["id"] for n in range(9)
        ]
    elif case == "unknown_field":
        choices = {"shoe_size": dup["id"]}
    elif case == "unknown_custom":
        choices = {"custom.nope": dup["id"]}
    elif case == "choice_outside":
        choices = {"email": outsider["id"]}
    elif case == "missing":
        merged_ids = [dup["id"], str(uuid.uuid4())]
    response = await alice.client.post(
        f"{CONTACTS}/merge",
        json={"survivor_id": keep["id"], "merged_ids": merged_ids, "choices": choices},
    )
    assert response.status_code == status, response.text
    assert field in {item["key"] for item in response.json()["extra"]}
    assert (await alice.client.get(f"{CONTACTS}/{keep['id']}")).json() == keep
    assert (await alice.client.get(f"{CONTACTS}/{dup['id']}")).json() == dup
    assert await _events(runtime, alice, "contact.merged") == []


async def test_another_workspace_sees_no_suggestions_and_merges_nothing(
    runtime: Runtime, alice: Member, bob: Member
) -> None:
    first = await _contact(alice, first_name="Ana", email="ana@example.com")
    second = await _contact(alice, first_name="Anna", email="ANA@example.com")
    company = await _company(alice, name="Acme", domain="acme.com")
    await _company(alice, name="Acme Europe", domain="eu.acme.com")
    bobs = await _contact(bob, first_name="Bo", email="ana@example.com")
    bobs_company = await _company(bob, name="Acme", domain="www.acme.com")

    assert await _groups(bob, CONTACTS) == []
    assert await _groups(bob, COMPANIES) == []
    assert (await bob.client.get(f"{CONTACTS}/{first['id']}/duplicates")).status_code == 404
    assert (await bob.client.get(f"{CONTACTS}/{bobs['id']}/duplicates")).json() == []

    attempts = [
        (CONTACTS, {"survivor_id": first["id"], "merged_ids": [second["id"]]}),
        (CONTACTS, {"survivor_id": bobs["id"], "merged_ids": [first["id"]]}),
        (CONTACTS, {"survivor_id": first["id"], "merged_ids": [bobs["id"]]}),
        (COMPANIES, {"survivor_id": bobs_company["id"], "merged_ids": [company["id"]]}),
    ]
    for base, body in attempts:
        refused = await bob.client.post(f"{base}/merge", json=body)
        assert refused.status_code == 404, refused.text
        assert "not found in this workspace" in refused.json()["detail"]
    # Nor does Alice reach Bob's records by naming them.
    refused = await alice.client.post(
        f"{CONTACTS}/merge", json={"survivor_id": first["id"], "merged_ids": [bobs["id"]]}
    )
    assert refused.status_code == 404
    for member, record in ((alice, first), (alice, second), (bob, bobs)):
        assert (await member.client.get(f"{CONTACTS}/{record['id']}")).json() == record
    assert (await bob.client.get(f"{COMPANIES}/{bobs_company['id']}")).json() == bobs_company
    assert (await alice.client.get(f"{COMPANIES}/{company['id']}")).json() == company
    assert await _events(runtime, alice, "contact.merged") == []
    assert await _events(runtime, bob, "contact.merged") == []


async def test_record_visibility_applies_to_suggestions_and_merges(
    app: object, alice: Member
) -> None:
    mia, mia_id = await _join(app, alice, f"mia-{uuid.uuid4().hex[:8]}@example.com")
    me = (await alice.client.get("/api/v1/members")).json()[0]["id"]
    mine = await _contact(alice, first_name="Ana", email="ana@example.com", owner_id=mia_id)
    hidden = await _contact(alice, first_name="Anna", email="ana@example.com", owner_id=me)
    updated = await alice.client.put("/api/v1/settings/visibility", json={"member": "own"})
    assert updated.status_code == 200, updated.text
    assert await _groups(mia, CONTACTS) == []
    assert (await mia.client.get(f"{CONTACTS}/{mine['id']}/duplicates")).json() == []
    refused = await mia.client.post(
        f"{CONTACTS}/merge", json={"survivor_id": mine["id"], "merged_ids": [hidden["id"]]}
    )
    assert refused.status_code == 404
    assert (await alice.client.get(f"{CONTACTS}/{hidden['id']}")).status_code == 200
    assert await _groups(alice, CONTACTS) == [("email", {mine["id"], hidden["id"]})]
