"""Dunning on a frozen clock: reminder → call task in the queue → lawyer, each level once.

The daily job is ``run_dunning(ctx, today)``; the tests hand it the days a real worker
would see, skipping some (a worker down for three days), and run each day twice.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections import Counter
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin import invoicing
from orbit.plugins.builtin.invoicing.dunning import run_dunning
from orbit.plugins.builtin.invoicing.outbox import run_due
from tests.conftest import Member, sign_up
from tests.integration.invoicing.conftest import API, created, error_fields
from tests.integration.invoicing.test_documents_issue import (
    catalogue_once,
    finalized_invoice,
    plugin_context,
)

TODAY = date.today()  # noqa: DTZ011 - the due date the API takes is a calendar day
D = TODAY + timedelta(days=1)
POLICY = {
    "levels": [
        {"name": "Reminder", "offset_days": 1, "action": "reminder", "extend_days": 7},
        {"name": "Call", "offset_days": 10, "action": "call", "fee": "40", "extend_days": 5},
        {"name": "Lawyer", "offset_days": 20, "action": "lawyer", "interest": True},
    ]
}
LAWYER = "counsel@law.example"


async def _setup(member: Member, policy: dict[str, Any] = POLICY) -> None:
    saved = await member.client.put(
        "/api/v1/marketplace/invoicing/settings",
        json={"settings": {"dunning_lawyer_email": LAWYER, "seller_name": "Seller Co"}},
    )
    assert saved.status_code == 200, saved.text
    put = await member.client.put(f"{API}/dunning/levels", json=policy)
    assert put.status_code == 200, put.text


async def _company(member: Member, name: str = "Late Payer GmbH") -> str:
    response = await member.client.post("/api/v1/companies", json={"name": name})
    assert response.status_code == 201, response.text
    company_id: str = response.json()["id"]
    return company_id


async def _overdue(member: Member, company: str) -> dict[str, Any]:
    return await finalized_invoice(member, company_id=company, due_date=str(D))


async def _run(runtime: Runtime, member: Member, day: date) -> list[Any]:
    async with plugin_context(runtime, member) as ctx:
        return await run_dunning(ctx, day)


async def _steps(runtime: Runtime, member: Member, invoice_id: str) -> list[tuple[int, date]]:
    async with plugin_context(runtime, member) as ctx:
        rows = await ctx.db.fetch(
            "SELECT level, fired_on FROM invoicing_dunning_steps WHERE invoice_id = $1 "
            "ORDER BY level",
            UUID(invoice_id),
        )
    return [(row["level"], row["fired_on"]) for row in rows]


async def _emails(runtime: Runtime, member: Member, to: str) -> list[Any]:
    tenant = UUID(member.workspace_id)
    async with runtime.db.transaction(tenant):
        return await runtime.db.fetch(
            "SELECT subject, body FROM outbox_emails WHERE tenant_id = $1 AND to_address = $2",
            tenant,
            to,
        )


async def test_a_clock_that_skips_three_days_still_fires_every_level_exactly_once(
    runtime: Runtime, seller: Member
) -> None:
    await _setup(seller)
    company = await _company(seller)
    invoice = await _overdue(seller, company)
    note = await seller.client.post(
        f"{API}/invoices/{invoice['id']}/credit-note", json={"positions": [2]}
    )  # travel credited: the dossier carries the credit note too
    assert note.status_code == 201, note.text
    credit = await seller.client.post(f"{API}/invoices/{note.json()['id']}/finalize", json={})
    assert credit.status_code == 201, credit.text
    async with plugin_context(runtime, seller) as ctx:
        while await run_due(ctx):  # PDFs for the dossier; the credit note settles its part
            pass
    skipped = {1, 2, 3, 10, 11, 12, 20, 21, 22}  # the worker was down three days, thrice
    for offset in range(41):
        if offset in skipped:
            continue
        for _ in range(2):  # two workers, or a retried run, the same day
            await _run(runtime, seller, D + timedelta(days=offset))
        if offset == 15:
            note = await seller.client.post(
                f"{API}/dunning/invoices/{invoice['id']}/notes",
                json={"kind": "call", "body": "Customer says the cheque is in the mail"},
            )
            assert note.status_code == 201, note.text
    # Level 1 on the first day back; level 2 after the new due date (D+4+7) and its
    # offset; level 3 likewise: each exactly once, none lost to the missed days.
    assert await _steps(runtime, seller, invoice["id"]) == [
        (1, D + timedelta(days=4)),
        (2, D + timedelta(days=13)),
        (3, D + timedelta(days=23)),
    ]
    emails = await _emails(runtime, seller, "ap@buyer.example")  # and the documents' emails
    [reminder] = [e for e in emails if e["subject"].startswith("Reminder")]
    assert invoice["number"] in reminder["subject"]
    assert "€357.00 still to pay" in reminder["body"]  # 452.80 less the credit note's 95.80
    [to_lawyer] = await _emails(runtime, seller, LAWYER)
    assert "dossier.zip" in to_lawyer["body"]
    case = (await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")).json()
    assert case["status"] == "escalated"
    call = case["steps"][1]
    assert call["fee"] == "40.00"
    assert call["assignee_id"] is not None
    assert case["steps"][2]["interest"] != "0"
    async with plugin_context(runtime, seller) as ctx:
        task = await ctx.tasks.get(UUID(call["task_id"]))
    assert task is not None
    assert invoice["number"] in task.title
    assert str(task.assignee_id) == call["assignee_id"]

    dossier = await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}/dossier.zip")
    assert dossier.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(dossier.content))
    names = set(archive.namelist())
    assert f"invoice/{invoice['number']}.pdf" in names
    assert archive.read(f"invoice/{invoice['number']}.pdf").startswith(b"%PDF")
    assert f"credit-notes/{credit.json()['number']}.pdf" in names
    assert reminder["subject"] in archive.read("reminders.txt").decode()
    notes = archive.read("call-notes.txt").decode()
    assert "cheque is in the mail" in notes
    assert "Call about overdue invoice" in notes
    # Every step is on the customer's timeline.
    async with plugin_context(runtime, seller) as ctx:
        entries = await invoicing.orbit_timeline_entries(
            ctx=ctx, subject_type="company", subject_id=UUID(company)
        )
    titles = [entry.title for entry in entries or []]
    assert titles.count("Payment reminder sent") == 1
    assert titles.count("Collection call queued") == 1
    assert titles.count("Escalated to the lawyer") == 1


async def test_payment_dispute_and_promise_stop_or_hold_the_chain(
    runtime: Runtime, seller: Member
) -> None:
    await _setup(seller)
    company = await _company(seller)
    paid, disputed, promised = [await _overdue(seller, company) for _ in range(3)]
    dispute = await seller.client.post(
        f"{API}/dunning/invoices/{disputed['id']}/notes",
        json={"kind": "dispute", "body": "Goods arrived damaged"},
    )
    assert dispute.status_code == 201, dispute.text
    await _run(runtime, seller, D + timedelta(days=1))  # level 1 for the paid and promised
    await created(seller, "/payments", {
        "amount": paid["payable_total"], "currency": "EUR", "received_on": str(TODAY),
        "company_id": company,
        "allocations": [{"invoice_id": paid["id"], "amount": paid["payable_total"]}]})  # fmt: skip
    promise = await seller.client.post(
        f"{API}/dunning/invoices/{promised['id']}/notes",
        json={"kind": "promise", "promised_until": str(D + timedelta(days=15))},
    )
    assert promise.status_code == 201, promise.text
    for offset in range(2, 30):
        await _run(runtime, seller, D + timedelta(days=offset))
    assert await _steps(runtime, seller, paid["id"]) == [(1, D + timedelta(days=1))]
    closed = (await seller.client.get(f"{API}/dunning/invoices/{paid['id']}")).json()
    assert closed["status"] == "closed"
    assert await _steps(runtime, seller, disputed["id"]) == []
    # The promise held level 2 (due D+10) until it ran out; then the chain went on,
    # level 3 after the new due date level 2 gave (D+16+5).
    assert await _steps(runtime, seller, promised["id"]) == [
        (1, D + timedelta(days=1)),
        (2, D + timedelta(days=16)),
        (3, D + timedelta(days=22)),
    ]


async def _join(app: object, owner: Member, email: str) -> None:
    invited = await owner.client.post(
        "/api/v1/invitations", json={"email": email, "role": "member"}
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    member = await sign_up(app, f"{email.split('@', maxsplit=1)[0]} own", email=email)
    assert (await member.client.post(f"/api/v1/invitations/{token}/accept")).status_code == 200
    await member.client.aclose()


async def test_call_tasks_go_round_robin_to_the_call_team(
    app: object, runtime: Runtime, seller: Member
) -> None:
    await _setup(seller, {"levels": [{"name": "Call", "offset_days": 1, "action": "call"}]})
    await _join(app, seller, "caller.one@example.com")
    await _join(app, seller, "caller.two@example.com")
    saved = await seller.client.put(
        "/api/v1/marketplace/invoicing/settings",
        json={"settings": {"dunning_call_team": "caller.one@example.com, caller.two@example.com"}},
    )
    assert saved.status_code == 200, saved.text
    company = await _company(seller)
    invoices = [await _overdue(seller, company) for _ in range(4)]
    fired = await _run(runtime, seller, D + timedelta(days=2))
    assert len(fired) == 4
    assignees = []
    for invoice in invoices:
        case = (await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")).json()
        assignees.append(case["steps"][0]["assignee_id"])
    members = {m["email"]: m["id"] for m in (await seller.client.get("/api/v1/members")).json()}
    team = {members["caller.one@example.com"], members["caller.two@example.com"]}
    assert set(assignees) == team
    assert Counter(assignees) == dict.fromkeys(team, 2)
    assert assignees[0] != assignees[1]
    assert assignees[1] != assignees[2]


async def test_the_manual_trigger_applies_the_same_rules(seller: Member) -> None:
    await _setup(seller)
    company = await _company(seller)
    invoice = await _overdue(seller, company)
    early = await created(seller, f"/dunning/invoices/{invoice['id']}/run", {})
    assert early == []  # not due yet (due tomorrow): the same rules as the job
    forced = await created(seller, f"/dunning/invoices/{invoice['id']}/run", {"now": True})
    assert [(f["level"], f["action"]) for f in forced] == [(1, "reminder")]
    same_day = await created(seller, f"/dunning/invoices/{invoice['id']}/run", {})
    assert same_day == []  # the job's rules: one level a day, level 2 not due
    case = (await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")).json()
    assert case["steps"][0]["trigger"] == "manual"
    assert case["steps"][0]["new_due_date"] == str(TODAY + timedelta(days=7))
    # A person may walk the chain on at once: each level still once, with its fee.
    call = await created(seller, f"/dunning/invoices/{invoice['id']}/run", {"now": True})
    lawyer = await created(seller, f"/dunning/invoices/{invoice['id']}/run", {"now": True})
    after = await created(seller, f"/dunning/invoices/{invoice['id']}/run", {"now": True})
    assert [f["action"] for f in call + lawyer] == ["call", "lawyer"]
    assert after == []  # escalated: the chain has stopped
    case = (await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")).json()
    assert [(s["level"], s["fee"]) for s in case["steps"]] == [
        (1, "0.00"), (2, "40.00"), (3, "0.00")]  # fmt: skip
    assert case["status"] == "escalated"


async def test_another_workspace_sees_and_fires_nothing_of_it(
    runtime: Runtime, seller: Member, rival: Member
) -> None:
    await _setup(seller)
    await _setup(rival)
    invoice = await _overdue(seller, await _company(seller))
    await _run(runtime, seller, D + timedelta(days=1))
    assert await _run(runtime, rival, D + timedelta(days=40)) == []
    for method, path, body in [
        ("GET", f"/dunning/invoices/{invoice['id']}", None),
        ("GET", f"/dunning/invoices/{invoice['id']}/dossier.zip", None),
        ("POST", f"/dunning/invoices/{invoice['id']}/run", {"now": True}),
        ("POST", f"/dunning/invoices/{invoice['id']}/notes", {"kind": "dispute"}),
    ]:
        response = await rival.client.request(method, API + path, json=body)
        assert response.status_code == 404, (path, response.text)
    assert await _steps(runtime, seller, invoice["id"]) == [(1, D + timedelta(days=1))]
    case = (await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")).json()
    assert case["status"] == "active"
    async with plugin_context(runtime, rival) as ctx:
        assert await ctx.db.fetchval("SELECT count(*) FROM invoicing_dunning_steps") == 0


async def test_bad_policy_or_note_is_a_4xx_naming_the_field_and_changes_nothing(
    seller: Member,
) -> None:
    await _setup(seller)
    before = (await seller.client.get(f"{API}/dunning/levels")).json()
    for levels, field in [
        ([{"name": "A", "offset_days": 5, "action": "reminder"},
          {"name": "B", "offset_days": 5, "action": "call"}], "levels[1].offset_days"),
        ([{"name": "A", "offset_days": 1, "action": "fax"}], "levels[0].action"),
        ([{"name": "A", "offset_days": 1, "action": "call", "fee": "-1"}], "levels[0].fee"),
        ([{"name": "", "offset_days": 1, "action": "call"}], "levels[0].name"),
    ]:  # fmt: skip
        response = await seller.client.put(f"{API}/dunning/levels", json={"levels": levels})
        assert response.status_code == 400, response.text
        assert error_fields(response) == {field}
    assert (await seller.client.get(f"{API}/dunning/levels")).json() == before
    invoice = await _overdue(seller, await _company(seller))
    bad = await seller.client.post(
        f"{API}/dunning/invoices/{invoice['id']}/notes",
        json={"kind": "promise", "promised_until": str(TODAY - timedelta(days=1))},
    )
    assert bad.status_code == 400
    assert error_fields(bad) == {"promised_until"}
    missing = await seller.client.get(f"{API}/dunning/invoices/{invoice['id']}")
    assert missing.status_code == 404  # no case was opened by the refused note


async def test_the_collection_page_records_payments_and_reminders_from_plain_forms(
    runtime: Runtime, seller: Member, rival: Member
) -> None:
    await _setup(seller)
    invoice = await _overdue(seller, await _company(seller))
    async with plugin_context(runtime, seller) as ctx:
        await run_due(ctx)
    invoice_page = await seller.client.get(
        f"/t/{seller.slug}/apps/invoicing/invoices/{invoice['id']}"
    )
    assert 'id="collection"' in invoice_page.text  # linked from the invoice's own page
    page_url = f"/t/{seller.slug}/apps/invoicing/invoices/{invoice['id']}/collection"
    page = await seller.client.get(page_url + "/")
    assert page.status_code == 200, page.text
    assert "PDF (Factur-X)" in page.text
    assert "Status: <strong>open</strong>" in page.text
    paid = await seller.client.post(
        page_url + "/payment",
        data={"csrf_token": seller.csrf, "amount": "100.00", "received_on": str(TODAY),
              "method": "cash", "reference": "counter"},
    )  # fmt: skip
    assert paid.status_code == 303, paid.text
    refused = await seller.client.post(
        page_url + "/payment",
        data={"csrf_token": seller.csrf, "amount": "9999.00", "received_on": str(TODAY),
              "method": "cash"},
    )  # fmt: skip
    assert refused.status_code == 400
    assert "left to pay" in refused.text
    assert "paid €100.00 of €452.80" in refused.text  # the refused payment is not shown
    balance = (await seller.client.get(f"{API}/invoices/{invoice['id']}/balance")).json()
    assert (balance["status"], balance["paid"]) == ("partially_paid", "100.00")
    reminded = await seller.client.post(page_url + "/remind", data={"csrf_token": seller.csrf})
    assert reminded.status_code == 303
    noted = await seller.client.post(
        page_url + "/note",
        data={"csrf_token": seller.csrf, "kind": "promise", "body": "Friday",
              "promised_until": str(TODAY + timedelta(days=3))},
    )  # fmt: skip
    assert noted.status_code == 303, noted.text
    page = await seller.client.get(page_url + "/")
    assert "Case: <strong>promised</strong>" in page.text
    assert "Level 1 · reminder" in page.text
    foreign = f"/t/{rival.slug}/apps/invoicing/invoices/{invoice['id']}/collection/"
    assert (await rival.client.get(foreign)).status_code == 404


async def test_concurrent_runs_fire_a_level_once(runtime: Runtime, seller: Member) -> None:
    await _setup(seller)
    made = await catalogue_once(seller)
    draft = await created(seller, "/invoices", {
        "customer": {"name": "Slow Payer", "email": "slow@payer.example"},
        "due_date": str(TODAY - timedelta(days=12)),
        "lines": [{"product_id": made["product"]["id"]}]})  # fmt: skip
    final = await seller.client.post(
        f"{API}/invoices/{draft['id']}/finalize",
        json={"issue_date": str(TODAY - timedelta(days=40))},
    )
    assert final.status_code == 201, final.text
    runs = await asyncio.gather(*(seller.client.post(f"{API}/dunning/run") for _ in range(4)))
    assert [r.status_code for r in runs] == [201] * 4
    fired = [f for r in runs for f in r.json()]
    assert [(f["level"], f["action"]) for f in fired] == [(1, "reminder")]
    assert await _steps(runtime, seller, draft["id"]) == [(1, TODAY)]
    assert len(await _emails(runtime, seller, "slow@payer.example")) == 1
