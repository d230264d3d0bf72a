"""``/metrics`` and the JSON access log show what an operator needs, and nothing private."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orbit.platform.observability.logs import JsonFormatter, RequestIdFilter
from tests.conftest import Member, api_key, bearer, make_client


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _json_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The access records as the production formatter writes them, parsed back."""
    formatter, stamp = JsonFormatter(), RequestIdFilter()
    lines = []
    for record in caplog.records:
        if record.name == "orbit.access":
            stamp.filter(record)
            lines.append(json.loads(formatter.format(record)))
    return lines


async def test_metrics_count_requests_per_route_template_and_status(
    app: object, alice: Member
) -> None:
    created = await alice.client.post("/api/v1/contacts", json={"first_name": "Metric"})
    assert created.status_code == 201
    contact_id = created.json()["id"]
    assert (await alice.client.get(f"/api/v1/contacts/{contact_id}")).status_code == 200
    async with make_client(app) as anonymous:
        assert (await anonymous.get("/api/v1/contacts")).status_code == 401
        assert (await anonymous.get("/no/such/page")).status_code == 404
        response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    def count(route: str, method: str, status: str) -> float:
        return sum(
            value
            for labels, value in samples["orbit_http_requests_total"]
            if labels == {"route": route, "method": method, "status": status}
        )

    # Route templates, never raw ids: the label set stays bounded.
    assert count("/api/v1/contacts/{contact_id}", "GET", "200") >= 1
    assert count("/api/v1/contacts", "POST", "201") >= 1
    assert count("/api/v1/contacts", "GET", "401") >= 1
    assert count("<unmatched>", "GET", "404") >= 1
    assert not any(contact_id in str(labels) for labels, _ in samples["orbit_http_requests_total"])
    buckets = [
        labels
        for labels, _ in samples["orbit_http_request_duration_seconds_bucket"]
        if labels["route"] == "/api/v1/contacts" and labels["method"] == "POST"
    ]
    assert {labels["le"] for labels in buckets} >= {"0.1", "1.0", "+Inf"}
    pool_max = samples["orbit_db_pool_max_size"][0][1]
    pool_size = samples["orbit_db_pool_size"][0][1]
    in_use = samples["orbit_db_pool_in_use"][0][1]
    assert 1 <= pool_size <= pool_max
    assert 0 <= in_use <= pool_size


async def test_metrics_and_health_need_no_identity_or_transaction(app: object) -> None:
    # A broken session cookie would fail any request that resolves a principal.
    async with make_client(app) as client:
        client.cookies.set("orbit_session", "not-a-session")
        assert (await client.get("/metrics")).status_code == 200


async def test_request_id_is_returned_and_a_sane_incoming_one_is_honoured(app: object) -> None:
    async with make_client(app) as client:
        fresh = await client.get("/healthz")
        honoured = await client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.01"})
        refused = await client.get("/healthz", headers={"X-Request-Id": "evil\tinjected line"})
    assert len(fresh.headers["x-request-id"]) == 32
    assert honoured.headers["x-request-id"] == "lb-7f3a.01"
    assert refused.headers["x-request-id"] != "evil\tinjected line"
    assert len(refused.headers["x-request-id"]) == 32


async def test_json_access_lines_carry_ids_route_status_duration_and_no_personal_data(
    app: object, alice: Member, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api_key(alice, ["contacts:read", "contacts:write"])
    caplog.set_level(logging.INFO, logger="orbit.access")
    email = "private.person@example.com"
    created = await alice.client.post(
        "/api/v1/contacts",
        json={"first_name": "Logged", "email": email},
        headers={"X-Request-Id": "req-session-1"},
    )
    assert created.status_code == 201
    async with bearer(app, key) as client:
        listed = await client.get(
            "/api/v1/contacts", params={"q": email}, headers={"X-Request-Id": "req-key-1"}
        )
    assert listed.status_code == 200
    lines = {line["request_id"]: line for line in _json_lines(caplog)}

    by_session = lines["req-session-1"]
    assert by_session["tenant_id"] == alice.workspace_id
    assert isinstance(by_session["user_id"], str)
    assert "api_key_id" not in by_session
    assert by_session["method"] == "POST"
    assert by_session["route"] == "/api/v1/contacts"
    assert by_session["status"] == 201
    assert isinstance(by_session["duration_ms"], float)
    assert by_session["level"] == "INFO"
    assert by_session["logger"] == "orbit.access"

    by_key = lines["req-key-1"]
    assert by_key["tenant_id"] == alice.workspace_id
    assert isinstance(by_key["api_key_id"], str)
    assert "user_id" not in by_key
    assert by_key["status"] == 200

    everything = "\n".join(json.dumps(line) for line in lines.values())
    assert email not in everything  # neither the body nor the query string is logged
    assert key not in everything
    assert alice.csrf not in everything
