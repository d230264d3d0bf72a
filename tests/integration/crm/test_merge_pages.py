"""Dedupe and merge pages: possible duplicates, the hint on a record, the merge form."""

from __future__ import annotations

from typing import Any

from tests.conftest import Member


async def _post(member: Member, url: str, **body: Any) -> dict[str, Any]:
    response = await member.client.post(url, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_duplicates_page_hint_and_merge_form_merge_two_contacts(alice: Member) -> None:
    base = f"/t/{alice.slug}/contacts"
    keep = await _post(alice, "/api/v1/contacts", first_name="Eleni", email="eleni@example.gr")
    dup = await _post(
        alice, "/api/v1/contacts", first_name="Elena", email="ELENI@example.gr", phone="+30 1234567"
    )
    listed = await alice.client.get(f"{base}/duplicates")
    assert listed.status_code == 200
    assert "Same email" in listed.text
    assert f"{base}/merge?ids={keep['id']}&amp;ids={dup['id']}" in listed.text
    hint = await alice.client.get(f"{base}/{keep['id']}/duplicates-hint")
    assert "Possible duplicates" in hint.text
    assert "Elena" in hint.text
    detail = await alice.client.get(f"{base}/{keep['id']}")
    assert f"{base}/{keep['id']}/duplicates-hint" in detail.text

    form = await alice.client.get(f"{base}/merge", params=[("ids", keep["id"]), ("ids", dup["id"])])
    assert form.status_code == 200
    assert 'name="choice.first_name"' in form.text
    assert "+30 1234567" in form.text
    merged = await alice.client.post(
        f"{base}/merge",
        data={
            "ids": [keep["id"], dup["id"]],
            "survivor": keep["id"],
            "choice.first_name": dup["id"],
            "choice.email": keep["id"],
            "choice.phone": dup["id"],
        },
    )
    assert merged.status_code == 303, merged.text
    assert merged.headers["location"] == f"{base}/{keep['id']}"
    contact = (await alice.client.get(f"/api/v1/contacts/{keep['id']}")).json()
    assert (contact["first_name"], contact["email"], contact["phone"]) == (
        "Elena",
        "eleni@example.gr",
        "+30 1234567",
    )
    assert (await alice.client.get(f"/api/v1/contacts/{dup['id']}")).status_code == 404
    after = await alice.client.get(f"{base}/{keep['id']}/duplicates-hint")
    assert "Possible duplicates" not in after.text


async def test_merge_form_shows_problems_and_other_workspaces_get_404(
    alice: Member, bob: Member
) -> None:
    base = f"/t/{alice.slug}/companies"
    first = await _post(alice, "/api/v1/companies", name="Globex Corporation")
    second = await _post(alice, "/api/v1/companies", name="Globex Corporation Ltd")
    listed = await alice.client.get(f"{base}/duplicates", params={"reason": "name"})
    assert "Similar name" in listed.text
    only_one = await alice.client.post(f"{base}/merge", data={"ids": [first["id"]]})
    assert only_one.status_code == 422
    assert "merged_ids" in only_one.text
    bobs = f"/t/{bob.slug}/companies"
    assert "Globex" not in (await bob.client.get(f"{bobs}/duplicates")).text
    stolen = await bob.client.get(f"{bobs}/merge", params=[("ids", first["id"])])
    assert stolen.status_code == 404
    refused = await bob.client.post(
        f"{bobs}/merge", data={"ids": [first["id"], second["id"]], "survivor": first["id"]}
    )
    assert refused.status_code == 404
    assert (await alice.client.get(f"/api/v1/companies/{second['id']}")).status_code == 200
