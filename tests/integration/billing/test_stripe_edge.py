"""What localstripe lacks, against a fake at Stripe's HTTP edge: Prices, Checkout, prorations.

The fake speaks the few Prices, Products, Subscriptions and Checkout calls over real
HTTP, form-encoded like Stripe, honours ``transfer_lookup_key`` as Stripe documents it,
and records every request so the tests can read the parameters Orbit sent.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from orbit.billing.catalog import Tier, catalog
from orbit.billing.gateway import StripeGateway


class FakeStripe:
    def __init__(self) -> None:
        self.products: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.idempotency_keys: list[str] = []
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.subscription: dict[str, Any] = {
            "id": "sub_1",
            "object": "subscription",
            "status": "active",
            "items": {
                "object": "list",
                "data": [{"id": "si_1", "quantity": 3, "price": {"id": "price_1"}}],
            },
        }

    def price_from(self, form: dict[str, str]) -> dict[str, Any]:
        tiers = []
        i = 0
        while f"tiers[{i}][unit_amount]" in form:
            up_to = form[f"tiers[{i}][up_to]"]
            tiers.append(
                {
                    "up_to": None if up_to == "inf" else int(up_to),
                    "unit_amount": int(form[f"tiers[{i}][unit_amount]"]),
                }
            )
            i += 1
        return {
            "id": f"price_{len(self.prices) + 1}",
            "object": "price",
            "active": True,
            "product": form["product"],
            "lookup_key": form.get("lookup_key"),
            "tiers": tiers,
        }


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - a route each
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _missing(self) -> None:
            self._send(404, {"error": {"type": "invalid_request_error", "message": "No such"}})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qsl(url.query)
            if url.path == "/v1/subscriptions/sub_1":
                self._send(200, fake.subscription)
            elif match := re.fullmatch(r"/v1/products/(\w+)", url.path):
                product = fake.products.get(match.group(1))
                self._send(200, product) if product else self._missing()
            elif url.path == "/v1/prices":
                keys = {v for k, v in query if k.startswith("lookup_keys")}
                found = [p for p in fake.prices.values() if p["active"] and p["lookup_key"] in keys]
                self._send(200, {"object": "list", "data": found, "has_more": False})
            else:
                self._missing()

        def do_POST(self) -> None:  # noqa: C901 - a route each
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if key := self.headers.get("Idempotency-Key"):
                fake.idempotency_keys.append(key)
            fake.posts.append((url.path, form))
            if url.path == "/v1/subscriptions/sub_1":
                item = fake.subscription["items"]["data"][0]
                item["quantity"] = int(form["items[0][quantity]"])
                self._send(200, fake.subscription)
            elif url.path == "/v1/checkout/sessions":
                self._send(
                    200,
                    {
                        "id": "cs_1",
                        "object": "checkout.session",
                        "url": "https://checkout.test/cs_1",
                    },
                )
            elif url.path == "/v1/products":
                fake.products[form["id"]] = {"id": form["id"], "name": form["name"]}
                self._send(200, fake.products[form["id"]])
            elif match := re.fullmatch(r"/v1/products/(\w+)", url.path):
                fake.products[match.group(1)]["name"] = form["name"]
                self._send(200, fake.products[match.group(1)])
            elif url.path == "/v1/prices":
                price = fake.price_from(form)
                if form.get("transfer_lookup_key") == "true":
                    for other in fake.prices.values():
                        if other["lookup_key"] == price["lookup_key"]:
                            other["lookup_key"] = None
                fake.prices[price["id"]] = price
                self._send(200, price)
            elif match := re.fullmatch(r"/v1/prices/(\w+)", url.path):
                fake.prices[match.group(1)]["active"] = form.get("active") == "true"
                self._send(200, fake.prices[match.group(1)])
            else:
                self._missing()

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


@pytest.fixture
def fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_prices_are_created_once_and_a_changed_price_takes_over_the_lookup_key(
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, url = fake_stripe
    gateway = StripeGateway("sk_test_orbit", url)
    gateway.localstripe = False  # speak Prices, as to Stripe itself

    first = await gateway.sync_catalog()
    assert "product orbit_starter: created" in first
    assert sum(line.startswith("price ") and "created" in line for line in first) == 4
    assert len(fake.prices) == 4
    starter = next(p for p in fake.prices.values() if p["lookup_key"] == "starter_monthly")
    assert starter["tiers"] == [
        {"up_to": 10, "unit_amount": 1500},
        {"up_to": 50, "unit_amount": 1200},
        {"up_to": None, "unit_amount": 900},
    ]

    again = await gateway.sync_catalog()
    assert all(line.endswith("unchanged") or "unchanged (" in line for line in again), again
    assert len(fake.prices) == 4

    plans = dict(catalog())
    cheaper = (Tier(10, Decimal("14.00")), Tier(50, Decimal("12.00")), Tier(None, Decimal("9.00")))
    plans["starter"] = replace(plans["starter"], monthly_tiers=cheaper)
    changed = await gateway.sync_catalog(plans)
    replaced = [line for line in changed if "replaced" in line]
    assert replaced == [f"price starter_monthly: replaced {starter['id']} by price_5"]
    assert fake.prices[starter["id"]]["active"] is False
    assert fake.prices[starter["id"]]["lookup_key"] is None
    assert fake.prices["price_5"]["lookup_key"] == "starter_monthly"
    assert await gateway.price_id("starter", "month") == "price_5"
    assert all(key.startswith("catalog:") for key in fake.idempotency_keys)


def _gateway(url: str) -> StripeGateway:
    gateway = StripeGateway("sk_test_orbit", url)
    gateway.localstripe = False
    return gateway


async def test_seat_increases_invoice_now_and_decreases_wait_without_refund(
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, url = fake_stripe
    gateway = _gateway(url)
    await gateway.set_seats("sub_1", 5, idempotency_key="seats:t:r1:5")
    await gateway.set_seats("sub_1", 2, idempotency_key="seats:t:r2:2")
    await gateway.set_seats("sub_1", 2, idempotency_key="seats:t:r3:2")  # already 2: no call
    updates = [form for path, form in fake.posts if path == "/v1/subscriptions/sub_1"]
    assert [(f["items[0][quantity]"], f["proration_behavior"]) for f in updates] == [
        ("5", "always_invoice"),
        ("2", "none"),
    ]
    assert fake.idempotency_keys == ["seats:t:r1:5", "seats:t:r2:2"]


async def test_checkout_names_the_workspace_and_carries_the_command_key(
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, url = fake_stripe
    gateway = _gateway(url)
    await gateway.sync_catalog()
    tenant = uuid.uuid4()
    checkout = await gateway.checkout_url(
        tenant,
        "cus_1",
        "pro",
        "year",
        4,
        success_url="http://orbit.test/t/a/billing?checkout=done",
        cancel_url="http://orbit.test/t/a/billing",
        idempotency_key=f"checkout:{tenant}:c1",
    )
    assert checkout == "https://checkout.test/cs_1"
    (form,) = [form for path, form in fake.posts if path == "/v1/checkout/sessions"]
    pro_yearly = next(p["id"] for p in fake.prices.values() if p["lookup_key"] == "pro_yearly")
    assert form["mode"] == "subscription"
    assert form["client_reference_id"] == str(tenant)
    assert form["metadata[tenant_id]"] == str(tenant)
    assert form["subscription_data[metadata][tenant_id]"] == str(tenant)
    assert (form["line_items[0][price]"], form["line_items[0][quantity]"]) == (pro_yearly, "4")
    assert fake.idempotency_keys[-1] == f"checkout:{tenant}:c1"
