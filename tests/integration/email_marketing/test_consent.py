"""The consent ledger: one-click double opt-in, proof in exports, legal basis on imports."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from litestar.exceptions import ValidationException

from orbit.platform.db.servers import Endpoints
from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing import consent
from orbit.plugins.builtin.email_marketing.suppression import Reason, suppress, suppressed
from tests.conftest import Member, make_client

from .deliverability import acting


async def _consent(ctx: object, consent_id: UUID) -> asyncpg.Record:
    row = await ctx.db.fetchrow(  # type: ignore[attr-defined]
        "SELECT status, host(ip) AS ip, user_agent, confirmed_at, host(confirm_ip) AS confirm_ip, "
        "confirm_user_agent FROM email_marketing_consents WHERE id = $1",
        consent_id,
    )
    assert row is not None
    return row


async def test_double_opt_in_needs_the_click_not_the_link(
    app: object, runtime: Runtime, endpoints: Endpoints, marketer: Member
) -> None:
    async with acting(runtime, marketer) as ctx:
        await suppress(ctx, "reader@example.com", Reason.UNSUBSCRIBE, "earlier")
        consent_id, link = await consent.request_double_opt_in(
            ctx,
            email="Reader@Example.com",
            purpose="newsletter",
            source="form:footer",
            text_version="newsletter-2026-11",
            ip="203.0.113.5",
            user_agent="Mozilla/5.0 (form)",
        )
    assert "/p/email_marketing/consent/" in link
    admin = await asyncpg.connect(endpoints.admin_dsn)
    try:
        mailed = await admin.fetchrow(
            "SELECT to_address, body FROM outbox_emails WHERE tenant_id = $1::uuid "
            "ORDER BY created_at DESC LIMIT 1",
            marketer.workspace_id,
        )
    finally:
        await admin.close()
    assert mailed is not None
    assert mailed["to_address"].lower() == "reader@example.com"
    assert link in mailed["body"]

    path = link[link.index("/p/") :]
    async with make_client(app) as visitor:
        # A scanner or prefetcher opening the link confirms nothing.
        for _ in range(2):
            page = await visitor.get(path, headers={"User-Agent": "LinkScanner/1.0"})
            assert page.status_code == 200
            assert 'id="consent-confirm"' in page.text
        async with acting(runtime, marketer) as ctx:
            row = await _consent(ctx, consent_id)
            assert (row["status"], row["confirmed_at"]) == ("pending", None)
            assert (row["ip"], row["user_agent"]) == ("203.0.113.5", "Mozilla/5.0 (form)")
            assert await suppressed(ctx, ["reader@example.com"]) == {"reader@example.com"}
        clicked = await visitor.post(path, headers={"User-Agent": "Mozilla/5.0 (person)"})
        assert clicked.status_code == 200
        assert 'id="consent-confirmed"' in clicked.text
        again = await visitor.post(path, headers={"User-Agent": "Mozilla/5.0 (again)"})
        assert again.status_code == 200
        # A token for something else, or altered, is refused.
        assert (await visitor.get(path[:-3] + "AAA")).status_code == 404
    async with acting(runtime, marketer) as ctx:
        row = await _consent(ctx, consent_id)
        assert row["status"] == "confirmed"
        assert row["confirm_user_agent"] == "Mozilla/5.0 (person)"
        assert row["confirm_ip"]
        # The person opted in again themselves: their old unsubscribe no longer holds.
        assert await suppressed(ctx, ["reader@example.com"]) == set()
        # Unsubscribing again (the one-click link) withdraws the consent in the ledger.
        await suppress(ctx, "READER@example.com", Reason.UNSUBSCRIBE, "one-click")
        row = await ctx.db.fetchrow(
            "SELECT status, withdrawn_at FROM email_marketing_consents WHERE id = $1", consent_id
        )
        assert row["status"] == "withdrawn"
        assert row["withdrawn_at"] is not None


async def test_a_complaint_outlives_an_opt_in(runtime: Runtime, marketer: Member) -> None:
    async with acting(runtime, marketer) as ctx:
        await suppress(ctx, "angry@example.com", Reason.COMPLAINT, "arf")
        consent_id, _link = await consent.request_double_opt_in(
            ctx, email="angry@example.com", purpose="newsletter", source="form"
        )
        confirmed = await consent.confirm(ctx, consent_id, ip="198.51.100.1", user_agent="x")
        assert confirmed is not None
        assert confirmed["status"] == "confirmed"
        assert await suppressed(ctx, ["angry@example.com"]) == {"angry@example.com"}


async def test_imports_need_a_legal_basis_and_never_revive_a_suppressed_address(
    runtime: Runtime, marketer: Member
) -> None:
    emails = ["new@example.com", "Bounced@example.com", "left@example.com"]
    async with acting(runtime, marketer) as ctx:
        await suppress(ctx, "bounced@example.com", Reason.BOUNCE_HARD, "dsn")
        await suppress(ctx, "left@example.com", Reason.UNSUBSCRIBE, "link")
        for basis in (None, "", "because"):
            with pytest.raises(ValidationException) as refused:
                await consent.check_import(
                    ctx, emails, legal_basis=basis, purpose="list:x", source="import:a.csv"
                )
            assert refused.value.extra[0]["key"] == "legal_basis"
        assert await ctx.db.fetchval("SELECT count(*) FROM email_marketing_consents") == 0
        checked = await consent.check_import(
            ctx,
            emails,
            legal_basis="legitimate_interests",
            purpose="list:customers",
            source="import:customers.csv",
            text_version="privacy-2026-10",
        )
        assert checked.allowed == ["new@example.com"]
        assert checked.suppressed == ["Bounced@example.com", "left@example.com"]
        rows = await ctx.db.fetch(
            "SELECT email, legal_basis, source, status FROM email_marketing_consents"
        )
        assert [tuple(r) for r in rows] == [
            ("new@example.com", "legitimate_interests", "import:customers.csv", "confirmed")
        ]


async def test_the_proof_is_in_the_export_and_gone_after_erasure(
    runtime: Runtime, marketer: Member, outsider: Member
) -> None:
    created = await marketer.client.post(
        "/api/v1/contacts",
        json={"first_name": "Ada", "last_name": "Proof", "email": "ada@example.com"},
    )
    assert created.status_code == 201, created.text
    contact_id = UUID(created.json()["id"])
    async with acting(runtime, marketer) as ctx:
        await consent.record(
            ctx,
            email="ada@example.com",
            contact_id=contact_id,
            purpose="newsletter",
            legal_basis="consent",
            source="form:signup",
            text_version="v3",
            ip="192.0.2.44",
            user_agent="Mozilla/5.0",
        )
        await suppress(ctx, "ada@example.com", Reason.MANUAL, "admin")
    async with acting(runtime, outsider) as other:
        # Another workspace sees nothing of it, even for the same address.
        assert await other.db.fetchval("SELECT count(*) FROM email_marketing_consents") == 0
        assert await suppressed(other, ["ada@example.com"]) == set()

    exported = await marketer.client.get(f"/api/v1/contacts/{contact_id}/export")
    assert exported.status_code == 200, exported.text
    mine = exported.json()["plugins"]["email_marketing"]
    [proof] = mine["consents"]
    assert (proof["purpose"], proof["legal_basis"], proof["text_version"]) == (
        "newsletter",
        "consent",
        "v3",
    )
    assert (proof["source"], proof["ip"], proof["user_agent"]) == (
        "form:signup",
        "192.0.2.44",
        "Mozilla/5.0",
    )
    assert proof["requested_at"]
    assert proof["confirmed_at"]
    assert [s["reason"] for s in mine["suppressions"]] == ["manual"]

    erased = await marketer.client.post(f"/api/v1/contacts/{contact_id}/erase")
    assert erased.status_code == 200, erased.text
    async with acting(runtime, marketer) as ctx:
        assert await ctx.db.fetchval("SELECT count(*) FROM email_marketing_consents") == 0
        # The do-not-send entry stays: an objection to marketing must still be honoured.
        assert await suppressed(ctx, ["ada@example.com"]) == {"ada@example.com"}


API = "/api/v1/apps/email_marketing"


async def test_a_list_import_declares_its_legal_basis_and_skips_suppressed_addresses(
    runtime: Runtime, marketer: Member, outsider: Member
) -> None:
    people = []
    for first, email in (("Ann", "ann@example.com"), ("Bo", "bo@example.com"), ("Cy", None)):
        made = await marketer.client.post(
            "/api/v1/contacts", json={"first_name": first, "last_name": "Import", "email": email}
        )
        assert made.status_code == 201, made.text
        people.append(made.json()["id"])
    listed = await marketer.client.post(f"{API}/lists", json={"name": "Customers"})
    assert listed.status_code == 201, listed.text
    list_id = listed.json()["id"]
    async with acting(runtime, marketer) as ctx:
        await suppress(ctx, "bo@example.com", Reason.COMPLAINT, "arf")

    missing = await marketer.client.post(
        f"{API}/lists/{list_id}/import", json={"contact_ids": people}
    )
    assert missing.status_code == 400
    assert missing.json()["extra"][0]["key"] == "legal_basis"
    assert (await marketer.client.get(f"{API}/lists/{list_id}")).json()["member_count"] == 0

    body = {
        "contact_ids": people,
        "legal_basis": "contract",
        "source": "import:customers-2026.csv",
        "text_version": "terms-v7",
    }
    assert (
        await outsider.client.post(f"{API}/lists/{list_id}/import", json=body)
    ).status_code == 404
    imported = await marketer.client.post(f"{API}/lists/{list_id}/import", json=body)
    assert imported.status_code == 201, imported.text
    assert imported.json() == {
        "added": 1,
        "suppressed": ["bo@example.com"],
        "without_email": [people[2]],
    }
    assert (await marketer.client.get(f"{API}/lists/{list_id}")).json()["member_count"] == 1
    ledger = (
        await marketer.client.get(f"{API}/consents", params={"email": "ann@example.com"})
    ).json()
    [row] = ledger["items"]
    assert (row["legal_basis"], row["source"], row["text_version"], row["purpose"]) == (
        "contract",
        "import:customers-2026.csv",
        "terms-v7",
        f"list:{list_id}",
    )
    assert (
        await outsider.client.get(f"{API}/consents", params={"email": "ann@example.com"})
    ).json() == {"items": []}


async def test_a_website_form_starts_a_double_opt_in_through_the_api(
    marketer: Member, outsider: Member
) -> None:
    bad = await marketer.client.post(
        f"{API}/consents/opt-in", json={"email": "visitor@example.com", "ip": "not-an-ip"}
    )
    assert bad.status_code == 400
    assert "ip" in bad.text
    started = await marketer.client.post(
        f"{API}/consents/opt-in",
        json={
            "email": "visitor@example.com",
            "source": "form:website",
            "text_version": "newsletter-v2",
            "ip": "2001:db8::7",
            "user_agent": "Mozilla/5.0 (visitor)",
        },
    )
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "pending"
    [row] = (
        await marketer.client.get(f"{API}/consents", params={"email": "Visitor@example.com"})
    ).json()["items"]
    assert (row["status"], row["ip"], row["user_agent"], row["confirmed_at"]) == (
        "pending",
        "2001:db8::7",
        "Mozilla/5.0 (visitor)",
        None,
    )
    assert (
        await outsider.client.get(f"{API}/consents", params={"email": "visitor@example.com"})
    ).json()["items"] == []
