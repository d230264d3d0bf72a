"""Payments: partial, over-payment to credit, credit and credit notes on invoices, refunds,
derived status, aged receivables, Stripe Checkout on the connected account and its webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import pytest

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.invoicing.outbox import run_due
from tests.conftest import Member, make_client
from tests.integration.billing.conftest import localstripe_url  # noqa: F401 - a fixture
from tests.integration.invoicing.conftest import API, created, error_fields
from tests.integration.invoicing.test_documents_issue import (
    catalogue_once,
    finalized_invoice,
    plugin_context,
)

TODAY = date.today()  # noqa: DTZ011 - the API's "today" is the same calendar day


async def _status(member: Member, invoice_id: str) -> dict[str, Any]:
    response = await member.client.get(f"{API}/invoices/{invoice_id}/balance")
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


async def _customer(member: Member) -> str:
    company = await member.client.post("/api/v1/companies", json={"name": "Buyer GmbH"})
    assert company.status_code == 201, company.text
    company_id: str = company.json()["id"]
    return company_id


async def _count(runtime: Runtime, member: Member, table: str) -> int:
    async with plugin_context(runtime, member) as ctx:
        value: int = await ctx.db.fetchval(f"SELECT count(*) FROM {table}")
    return value


async def test_partial_then_over_payment_goes_to_credit_which_pays_the_next_invoice(
    seller: Member,
) -> None:
    company = await _customer(seller)
    first = await finalized_invoice(seller, company_id=company)  # 452.80 due
    second = await finalized_invoice(seller, company_id=company)
    assert (await _status(seller, first["id"]))["status"] == "open"

    part = await created(
        seller,
        "/payments",
        {
            "amount": "100.00",
            "currency": "EUR",
            "received_on": str(TODAY),
            "company_id": company,
            "allocations": [{"invoice_id": first["id"], "amount": "100.00"}],
        },
    )
    assert part["credit"] == "0.00"
    status = await _status(seller, first["id"])
    assert (status["status"], status["paid"], status["due"]) == (
        "partially_paid",
        "100.00",
        "352.80",
    )

    over = await created(
        seller,
        "/payments",
        {
            "amount": "500.00",
            "currency": "EUR",
            "received_on": str(TODAY),
            "company_id": company,
            "reference": "wire 42",
            "allocations": [{"invoice_id": first["id"], "amount": "352.80"}],
        },
    )
    assert over["credit"] == "147.20"
    assert (await _status(seller, first["id"]))["status"] == "paid"
    credit = await seller.client.get(
        f"{API}/credit", params={"currency": "EUR", "company_id": company}
    )
    assert credit.json()["credit"] == "147.20"

    used = await created(
        seller,
        "/credit",
        {
            "company_id": company,
            "currency": "EUR",
            "allocations": [{"invoice_id": second["id"], "amount": "147.20"}],
        },
    )
    assert [a["amount"] for a in used] == ["147.20"]
    status = await _status(seller, second["id"])
    assert (status["status"], status["due"]) == ("partially_paid", "305.60")
    credit = await seller.client.get(
        f"{API}/credit", params={"currency": "EUR", "company_id": company}
    )
    assert credit.json()["credit"] == "0.00"


async def test_refunds_come_out_of_credit_and_never_exceed_it(
    runtime: Runtime, seller: Member
) -> None:
    company = await _customer(seller)
    await created(
        seller,
        "/payments",
        {"amount": "80.00", "currency": "EUR", "received_on": str(TODAY), "company_id": company},
    )
    too_much = await seller.client.post(
        f"{API}/refunds",
        json={"amount": "80.01", "currency": "EUR", "paid_on": str(TODAY), "company_id": company},
    )
    assert too_much.status_code == 400
    assert error_fields(too_much) == {"amount"}
    refund = await created(
        seller,
        "/refunds",
        {"amount": "30.00", "currency": "EUR", "paid_on": str(TODAY), "company_id": company},
    )
    assert refund["credit"] == "50.00"
    listed = (await seller.client.get(f"{API}/payments", params={"company_id": company})).json()
    assert sorted((p["kind"], p["amount"]) for p in listed) == [
        ("payment", "80.00"),
        ("refund", "30.00"),
    ]
    assert await _count(runtime, seller, "invoicing_payments") == 2


async def test_an_invoice_billed_to_no_crm_record_is_paid_in_full_or_partly_never_over(
    runtime: Runtime, seller: Member
) -> None:
    invoice = await finalized_invoice(seller)  # a customer snapshot only
    over = await seller.client.post(
        f"{API}/payments",
        json={
            "amount": "500.00",
            "currency": "EUR",
            "received_on": str(TODAY),
            "allocations": [{"invoice_id": invoice["id"], "amount": "452.80"}],
        },
    )
    assert over.status_code == 400
    assert error_fields(over) == {"amount"}
    assert await _count(runtime, seller, "invoicing_payments") == 0
    part = await created(
        seller,
        "/payments",
        {
            "amount": "52.80",
            "currency": "EUR",
            "received_on": str(TODAY),
            "allocations": [{"invoice_id": invoice["id"], "amount": "52.80"}],
        },
    )
    assert part["company_id"] is None
    assert (await _status(seller, invoice["id"]))["due"] == "400.00"


async def test_a_finalized_credit_note_settles_its_invoice_by_itself(
    runtime: Runtime, seller: Member
) -> None:
    invoice = await finalized_invoice(seller)
    note = await seller.client.post(
        f"{API}/invoices/{invoice['id']}/credit-note", json={"positions": [2]}
    )
    assert note.status_code == 201, note.text
    done = await seller.client.post(f"{API}/invoices/{note.json()['id']}/finalize", json={})
    assert done.status_code == 201, done.text
    async with plugin_context(runtime, seller) as ctx:
        await run_due(ctx)
        await run_due(ctx)  # once more: nothing is allocated twice
    status = await _status(seller, invoice["id"])
    assert (status["paid"], status["due"]) == ("95.80", "357.00")  # 80.50 + 19 % credited
    credit = await _status(seller, note.json()["id"])
    assert credit["due"] == "0.00"  # the credit note is used up
    assert await _count(runtime, seller, "invoicing_allocations") == 1


async def test_a_credit_note_pays_its_invoice(seller: Member) -> None:
    invoice = await finalized_invoice(seller)
    note = await seller.client.post(
        f"{API}/invoices/{invoice['id']}/credit-note", json={"positions": [1]}
    )
    assert note.status_code == 201, note.text
    done = await seller.client.post(f"{API}/invoices/{note.json()['id']}/finalize", json={})
    assert done.status_code == 201, done.text
    credit_note = done.json()
    used = await created(
        seller,
        "/credit",
        {
            "credit_note_id": credit_note["id"],
            "allocations": [{"invoice_id": invoice["id"], "amount": credit_note["payable_total"]}],
        },
    )
    assert len(used) == 1
    status = await _status(seller, invoice["id"])
    assert status["paid"] == credit_note["payable_total"]
    again = await seller.client.post(
        f"{API}/credit",
        json={
            "credit_note_id": credit_note["id"],
            "allocations": [{"invoice_id": invoice["id"], "amount": "0.01"}],
        },
    )
    assert again.status_code == 400  # the credit note is used up


async def test_bad_payments_are_4xx_naming_the_field_and_write_nothing(
    runtime: Runtime, seller: Member
) -> None:
    company = await _customer(seller)
    invoice = await finalized_invoice(seller, company_id=company)
    made = await catalogue_once(seller)
    draft = await created(
        seller,
        "/invoices",
        {
            "customer": {"name": "B"},
            "company_id": company,
            "lines": [{"product_id": made["product"]["id"]}],
        },
    )
    base = {"amount": "50.00", "currency": "EUR", "received_on": str(TODAY), "company_id": company}
    cases = [
        ({**base, "amount": "-5"}, "amount"),
        ({**base, "amount": "1.001"}, "amount"),
        ({**base, "currency": "EURO"}, "currency"),
        ({**base, "company_id": None}, "company_id"),
        (
            {
                **base,
                "company_id": None,
                "amount": "500.00",
                "allocations": [{"invoice_id": invoice["id"], "amount": "400.00"}],
            },
            "allocations[0].invoice_id",
        ),
        ({**base, "method": "barter"}, "method"),
        (
            {**base, "allocations": [{"invoice_id": draft["id"], "amount": "10"}]},
            "allocations[0].invoice_id",
        ),
        ({**base, "allocations": [{"invoice_id": invoice["id"], "amount": "60"}]}, "allocations"),
        (
            {
                **base,
                "amount": "900.00",
                "allocations": [{"invoice_id": invoice["id"], "amount": "452.81"}],
            },
            "allocations[0].amount",
        ),
        (
            {
                **base,
                "currency": "USD",
                "allocations": [{"invoice_id": invoice["id"], "amount": "1"}],
            },
            "allocations[0].invoice_id",
        ),
    ]
    for body, field in cases:
        response = await seller.client.post(f"{API}/payments", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in error_fields(response), (field, response.text)
    assert await _count(runtime, seller, "invoicing_payments") == 0
    assert await _count(runtime, seller, "invoicing_allocations") == 0
    assert (await _status(seller, invoice["id"]))["status"] == "open"


async def test_another_workspace_sees_and_touches_no_payment(
    runtime: Runtime, seller: Member, rival: Member
) -> None:
    company = await _customer(seller)
    invoice = await finalized_invoice(seller, company_id=company)
    await created(
        seller,
        "/payments",
        {
            "amount": "10.00",
            "currency": "EUR",
            "received_on": str(TODAY),
            "company_id": company,
            "allocations": [{"invoice_id": invoice["id"], "amount": "10.00"}],
        },
    )
    assert (await rival.client.get(f"{API}/payments")).json() == []
    assert (await rival.client.get(f"{API}/invoices/{invoice['id']}/balance")).status_code == 404
    foreign = await rival.client.post(
        f"{API}/payments",
        json={
            "amount": "5.00",
            "currency": "EUR",
            "received_on": str(TODAY),
            "company_id": company,
            "allocations": [{"invoice_id": invoice["id"], "amount": "5.00"}],
        },
    )
    assert foreign.status_code == 400
    aged = (await rival.client.get(f"{API}/receivables/aged")).json()
    assert aged["currencies"] == {}
    assert await _count(runtime, rival, "invoicing_payments") == 0
    assert (await _status(seller, invoice["id"]))["paid"] == "10.00"


async def test_aged_receivables_put_open_amounts_in_buckets(seller: Member) -> None:
    company = await _customer(seller)
    late = await finalized_invoice(
        seller, company_id=company, due_date=str(TODAY + timedelta(days=1))
    )
    await created(
        seller,
        "/payments",
        {
            "amount": "52.80",
            "currency": "EUR",
            "received_on": str(TODAY),
            "company_id": company,
            "allocations": [{"invoice_id": late["id"], "amount": "52.80"}],
        },
    )
    as_of = TODAY + timedelta(days=46)
    report = (
        await seller.client.get(f"{API}/receivables/aged", params={"as_of": str(as_of)})
    ).json()
    eur = report["currencies"]["EUR"]
    assert eur["totals"]["31-60"] == "400.00"
    assert eur["totals"]["total"] == "400.00"
    [customer] = eur["customers"]
    assert customer["company_id"] == company
    assert customer["invoices"][0]["days_overdue"] == 45
    assert customer["invoices"][0]["status"] == "overdue"
    page = await seller.client.get(
        f"/t/{seller.slug}/apps/invoicing/receivables", params={"as_of": str(as_of)}
    )
    assert page.status_code == 200
    assert "€400.00" in page.text


# --- Stripe ------------------------------------------------------------------------------


class FakeStripeEdge:
    """Stripe's HTTP edge for Checkout Sessions (localstripe has neither Checkout nor
    the Stripe-Account header): records what Orbit sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        edge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                edge.requests.append(
                    {
                        "path": urlsplit(self.path).path,
                        "form": form,
                        "account": self.headers.get("Stripe-Account"),
                        "idempotency": self.headers.get("Idempotency-Key"),
                    }
                )
                session_id = f"cs_test_{len(edge.requests)}"
                body = json.dumps(
                    {
                        "id": session_id,
                        "object": "checkout.session",
                        "url": f"https://checkout.stripe.test/{session_id}",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def stripe_edge(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripeEdge]:
    edge = FakeStripeEdge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), edge.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ORBIT_STRIPE_SECRET_KEY", "sk_test_platform")
    monkeypatch.setenv("ORBIT_STRIPE_API_BASE", f"http://127.0.0.1:{server.server_port}")
    yield edge
    server.shutdown()


WHSEC = "whsec_test_connected"


def _signed(payload: dict[str, Any], secret: str = WHSEC) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def _event(event_id: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "account": "acct_seller",
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def test_checkout_on_the_connected_account_and_a_webhook_safe_against_replay_and_disorder(
    app: object, runtime: Runtime, seller: Member, rival: Member, stripe_edge: FakeStripeEdge
) -> None:
    saved = await seller.client.put(
        "/api/v1/marketplace/invoicing/settings",
        json={"settings": {"stripe_account_id": "acct_seller", "stripe_webhook_secret": WHSEC}},
    )
    assert saved.status_code == 200, saved.text
    company = await _customer(seller)
    invoice = await finalized_invoice(seller, company_id=company)
    checkout = await created(seller, f"/invoices/{invoice['id']}/checkout", {})
    assert checkout["url"].startswith("https://checkout.stripe.test/")
    [sent] = stripe_edge.requests
    assert sent["path"] == "/v1/checkout/sessions"
    assert sent["account"] == "acct_seller"
    assert sent["form"]["metadata[invoice_id]"] == invoice["id"]
    assert sent["form"]["line_items[0][price_data][unit_amount]"] == "45280"
    assert sent["form"]["line_items[0][price_data][currency]"] == "eur"
    back = await make_client(app).get(urlsplit(sent["form"]["success_url"]).path)
    assert back.status_code == 200
    assert "your payment went through" in back.text
    again = await created(seller, f"/invoices/{invoice['id']}/checkout", {})
    assert again == checkout  # the open session is reused
    assert len(stripe_edge.requests) == 1

    url = (await seller.client.get(f"{API}/stripe/webhook-url")).json()["url"]
    path = urlsplit(url).path
    anonymous = make_client(app)
    metadata = {"invoice_id": invoice["id"], "tenant_id": seller.workspace_id}
    session = {
        "id": checkout["session_id"],
        "object": "checkout.session",
        "payment_status": "paid",
        "payment_intent": "pi_1",
        "amount_total": 45280,
        "currency": "eur",
        "metadata": metadata,
        "created": int(time.time()),
    }
    completed = _event("evt_1", "checkout.session.completed", session)
    body, headers = _signed(completed)
    first = await anonymous.post(path, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "paid"
    replay = await anonymous.post(path, content=body, headers=headers)
    assert replay.json()["outcome"] == "duplicate"
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount_received": 45280,
        "currency": "eur",
        "metadata": metadata,
    }
    body, headers = _signed(_event("evt_2", "payment_intent.succeeded", intent))
    late = await anonymous.post(path, content=body, headers=headers)
    assert late.json()["outcome"] == "duplicate payment"
    body, headers = _signed(
        _event("evt_0", "checkout.session.expired", {**session, "payment_status": "unpaid"})
    )
    older = await anonymous.post(path, content=body, headers=headers)
    assert older.json()["outcome"] == "expired"
    status = await _status(seller, invoice["id"])
    assert (status["status"], status["paid"]) == ("paid", "452.80")
    async with plugin_context(runtime, seller) as ctx:
        states = await ctx.db.fetch("SELECT status FROM invoicing_checkout_sessions")
        payments = await ctx.db.fetch("SELECT amount, method FROM invoicing_payments")
    assert [s["status"] for s in states] == ["complete"]  # an older "expired" never wins
    assert [(str(p["amount"]), p["method"]) for p in payments] == [("452.80", "stripe")]

    forged = await anonymous.post(path, content=body, headers=_signed(completed, "whsec_x")[1])
    assert forged.status_code == 400
    # The rival's own webhook URL cannot pay the seller's invoice.
    await rival.client.put(
        "/api/v1/marketplace/invoicing/settings",
        json={"settings": {"stripe_account_id": "acct_seller", "stripe_webhook_secret": WHSEC}},
    )
    rival_path = urlsplit((await rival.client.get(f"{API}/stripe/webhook-url")).json()["url"]).path
    body, headers = _signed(
        _event("evt_9", "checkout.session.completed", {**session, "payment_intent": "pi_2"})
    )
    crossed = await anonymous.post(rival_path, content=body, headers=headers)
    assert crossed.json()["outcome"] == "ignored: another workspace"
    assert await _count(runtime, rival, "invoicing_payments") == 0
    assert (await _status(seller, invoice["id"]))["paid"] == "452.80"
    assert UUID(invoice["id"])


async def test_a_checkout_stripe_refuses_is_a_502_and_keeps_nothing(
    runtime: Runtime,
    seller: Member,
    localstripe_url: str,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # localstripe, the project's stateful Stripe, has no Checkout Sessions: it answers 404.
    monkeypatch.setenv("ORBIT_STRIPE_SECRET_KEY", "sk_test_orbit")
    monkeypatch.setenv("ORBIT_STRIPE_API_BASE", localstripe_url)
    await seller.client.put(
        "/api/v1/marketplace/invoicing/settings",
        json={"settings": {"stripe_account_id": "acct_seller", "stripe_webhook_secret": WHSEC}},
    )
    invoice = await finalized_invoice(seller)
    refused = await seller.client.post(f"{API}/invoices/{invoice['id']}/checkout")
    assert refused.status_code == 502, refused.text
    assert "Stripe did not open a checkout" in refused.json()["detail"]
    assert await _count(runtime, seller, "invoicing_checkout_sessions") == 0
    unconfigured = await seller.client.put(
        "/api/v1/marketplace/invoicing/settings", json={"settings": {"stripe_account_id": ""}}
    )
    assert unconfigured.status_code == 200
    needs_account = await seller.client.post(f"{API}/invoices/{invoice['id']}/checkout")
    assert needs_account.status_code == 409


async def test_online_money_for_an_invoice_billed_to_no_crm_record_is_always_recorded(
    runtime: Runtime, seller: Member
) -> None:
    from orbit.plugins.builtin.invoicing.payments import handle_stripe_event  # noqa: PLC0415

    saved = await seller.client.put(
        "/api/v1/marketplace/invoicing/settings",
        json={"settings": {"stripe_account_id": "acct_seller"}},
    )
    assert saved.status_code == 200, saved.text
    invoice = await finalized_invoice(seller)  # a customer snapshot only: no credit holder
    metadata = {"invoice_id": invoice["id"], "tenant_id": seller.workspace_id}
    paid = {
        "id": "pi_anon",
        "object": "payment_intent",
        "amount_received": 50000,
        "currency": "eur",
        "metadata": metadata,
    }
    async with plugin_context(runtime, seller) as ctx:
        outcome = await handle_stripe_event(ctx, _event("evt_a", "payment_intent.succeeded", paid))
    assert outcome == "paid"  # 500.00 received for 452.80 due: kept, never refused
    status = await _status(seller, invoice["id"])
    assert (status["status"], status["paid"]) == ("paid", "452.80")
    async with plugin_context(runtime, seller) as ctx:
        again = await handle_stripe_event(
            ctx, _event("evt_b", "payment_intent.succeeded", {**paid, "id": "pi_anon2"})
        )
        amounts = await ctx.db.fetch("SELECT amount FROM invoicing_payments ORDER BY amount")
    assert again == "paid"  # a second payment for a paid invoice is recorded, unallocated
    assert [str(a["amount"]) for a in amounts] == ["500.00", "500.00"]
    report = (await seller.client.get(f"{API}/receivables/aged")).json()
    assert report["currencies"] == {}
