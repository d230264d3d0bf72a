"""Pipelines, deals, stage moves with history, forecast."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import Member

DEFAULT_STAGES = ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


async def _pipeline(member: Member) -> dict[str, object]:
    pipelines = (await member.client.get("/api/v1/pipelines")).json()
    assert len(pipelines) == 1
    return pipelines[0]


def _stage(pipeline: dict[str, object], name: str) -> str:
    stages = pipeline["stages"]
    assert isinstance(stages, list)
    return next(s["id"] for s in stages if s["name"] == name)


async def test_a_new_workspace_gets_the_default_sales_pipeline(alice: Member) -> None:
    pipeline = await _pipeline(alice)
    assert pipeline["name"] == "Sales"
    stages = pipeline["stages"]
    assert [s["name"] for s in stages] == DEFAULT_STAGES
    assert [s["probability"] for s in stages] == [
        "10.00",
        "25.00",
        "50.00",
        "75.00",
        "100.00",
        "0.00",
    ]
    assert [s["kind"] for s in stages][-2:] == ["won", "lost"]


async def test_deal_amount_is_exact_and_moves_are_recorded(alice: Member) -> None:
    created = await alice.client.post(
        "/api/v1/deals",
        json={
            "title": "Olive oil contract",
            "amount": "1234.5678",
            "currency": "eur",
            "expected_close_date": "2026-12-15",
        },
    )
    assert created.status_code == 201, created.text
    deal = created.json()
    assert deal["amount"] == "1234.5678"
    assert deal["currency"] == "EUR"
    assert deal["stage_name"] == "Lead"
    assert deal["status"] == "open"
    pipeline = await _pipeline(alice)
    url = f"/api/v1/deals/{deal['id']}"
    moved = await alice.client.post(f"{url}/move", json={"stage_id": _stage(pipeline, "Proposal")})
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_name"] == "Proposal"
    won = await alice.client.post(f"{url}/move", json={"stage_id": _stage(pipeline, "Won")})
    assert won.json()["status"] == "won"
    assert won.json()["closed_at"] is not None
    history = (await alice.client.get(f"{url}/history")).json()
    assert [h["to_stage_id"] for h in history] == [
        _stage(pipeline, "Lead"),
        _stage(pipeline, "Proposal"),
        _stage(pipeline, "Won"),
    ]
    assert history[0]["seconds_in_previous_stage"] is None
    assert history[1]["seconds_in_previous_stage"] >= 0
    timeline = (await alice.client.get(f"{url}/timeline")).json()["items"]
    assert [a["subject"] for a in timeline] == ["Proposal → Won", "Lead → Proposal"]


async def test_losing_a_deal_needs_a_reason(alice: Member) -> None:
    deal = (
        await alice.client.post("/api/v1/deals", json={"title": "Maybe", "currency": "USD"})
    ).json()
    lost_stage = _stage(await _pipeline(alice), "Lost")
    url = f"/api/v1/deals/{deal['id']}/move"
    refused = await alice.client.post(url, json={"stage_id": lost_stage})
    assert refused.status_code == 400
    assert refused.json()["extra"][0]["key"] == "lost_reason"
    lost = await alice.client.post(url, json={"stage_id": lost_stage, "lost_reason": "Budget"})
    assert lost.json()["status"] == "lost"
    assert lost.json()["lost_reason"] == "Budget"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "X", "currency": "ABC"}, "currency"),
        ({"title": "X", "currency": "EUR", "amount": "-1"}, "amount"),
        ({"title": "X", "currency": "EUR", "amount": "1.00001"}, "amount"),
        ({"title": "", "currency": "EUR"}, "title"),
        (
            {"title": "X", "currency": "EUR", "stage_id": "00000000-0000-0000-0000-000000000000"},
            "stage_id",
        ),
        (
            {
                "title": "X",
                "currency": "EUR",
                "pipeline_id": "00000000-0000-0000-0000-000000000000",
            },
            "pipeline_id",
        ),
    ],
)
async def test_bad_deal_input_names_the_field(
    alice: Member, payload: dict[str, object], field: str
) -> None:
    response = await alice.client.post("/api/v1/deals", json=payload)
    assert response.status_code == 400, response.text
    assert field in {item["key"] for item in response.json()["extra"]}
    assert (await alice.client.get("/api/v1/deals")).json()["items"] == []


async def test_a_stage_of_another_pipeline_is_refused(alice: Member) -> None:
    second = await alice.client.post(
        "/api/v1/pipelines",
        json={
            "name": "Renewals",
            "stages": [
                {"name": "Due", "probability": 50},
                {"name": "Renewed", "probability": 100, "kind": "won"},
            ],
        },
    )
    assert second.status_code == 201, second.text
    foreign_stage = second.json()["stages"][0]["id"]
    deal = (await alice.client.post("/api/v1/deals", json={"title": "D", "currency": "EUR"})).json()
    response = await alice.client.post(
        f"/api/v1/deals/{deal['id']}/move", json={"stage_id": foreign_stage}
    )
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "stage_id"
    assert (await alice.client.get(f"/api/v1/deals/{deal['id']}")).json()["stage_name"] == "Lead"


async def test_admins_edit_stages_and_a_stage_with_deals_must_be_emptied(alice: Member) -> None:
    pipeline = await _pipeline(alice)
    pid = pipeline["id"]
    added = await alice.client.post(
        f"/api/v1/pipelines/{pid}/stages", json={"name": "Demo", "probability": 40}
    )
    assert [s["name"] for s in added.json()["stages"]][-1] == "Demo"
    demo = _stage(added.json(), "Demo")
    renamed = await alice.client.patch(
        f"/api/v1/pipelines/stages/{demo}", json={"name": "Live demo", "probability": 45}
    )
    assert _stage(renamed.json(), "Live demo") == demo
    order = [s["id"] for s in renamed.json()["stages"]]
    new_order = [order[0], demo, *[i for i in order[1:] if i != demo]]
    reordered = await alice.client.put(
        f"/api/v1/pipelines/{pid}/stages/order", json={"stage_ids": new_order}
    )
    assert [s["id"] for s in reordered.json()["stages"]] == new_order
    bad_order = await alice.client.put(
        f"/api/v1/pipelines/{pid}/stages/order", json={"stage_ids": new_order[:-1]}
    )
    assert bad_order.status_code == 400
    deal = (
        await alice.client.post(
            "/api/v1/deals", json={"title": "In demo", "currency": "EUR", "stage_id": demo}
        )
    ).json()
    refused = await alice.client.delete(f"/api/v1/pipelines/stages/{demo}")
    assert refused.status_code == 409
    assert "move_deals_to" in refused.json()["detail"]
    lead = _stage(pipeline, "Lead")
    removed = await alice.client.delete(
        f"/api/v1/pipelines/stages/{demo}", params={"move_deals_to": lead}
    )
    assert removed.status_code == 200, removed.text
    assert "Live demo" not in [s["name"] for s in removed.json()["stages"]]
    assert [s["position"] for s in removed.json()["stages"]] == list(range(6))
    assert (await alice.client.get(f"/api/v1/deals/{deal['id']}")).json()["stage_id"] == lead


async def test_members_cannot_change_pipelines(app: object, alice: Member) -> None:
    from tests.conftest import api_key, bearer  # noqa: PLC0415

    key = await api_key(alice, ["deals:read", "deals:write"])
    async with bearer(app, key) as client:
        response = await client.post(
            "/api/v1/pipelines", json={"name": "Nope", "stages": [{"name": "A", "probability": 1}]}
        )
    assert response.status_code == 403
    assert "pipelines:write" in response.json()["detail"]


async def test_forecast_weights_open_deals_by_stage_probability(alice: Member) -> None:
    pipeline = await _pipeline(alice)
    for title, amount, stage in (("A", "1000", "Qualified"), ("B", "200.50", "Negotiation")):
        response = await alice.client.post(
            "/api/v1/deals",
            json={
                "title": title,
                "amount": amount,
                "currency": "EUR",
                "stage_id": _stage(pipeline, stage),
                "expected_close_date": "2027-01-20",
            },
        )
        assert response.status_code == 201
    await alice.client.post(
        "/api/v1/deals",
        json={
            "title": "Yen",
            "amount": "5000",
            "currency": "JPY",
            "expected_close_date": "2027-01-02",
        },
    )
    rows = (await alice.client.get("/api/v1/deals/forecast")).json()
    eur = next(r for r in rows if r["currency"] == "EUR")
    assert eur["month"] == "2027-01-01"
    assert eur["deals"] == 2
    assert Decimal(eur["best_case"]) == Decimal("1200.50")
    assert Decimal(eur["weighted"]) == Decimal("250.00") + Decimal("150.38")
    jpy = next(r for r in rows if r["currency"] == "JPY")
    assert Decimal(jpy["weighted"]) == Decimal("500.00")


async def test_deals_are_walled_per_workspace(alice: Member, bob: Member) -> None:
    deal = (await alice.client.post("/api/v1/deals", json={"title": "A", "currency": "EUR"})).json()
    url = f"/api/v1/deals/{deal['id']}"
    for response in (
        await bob.client.get(url),
        await bob.client.patch(url, json={"title": "B"}),
        await bob.client.delete(url),
        await bob.client.get(f"{url}/history"),
        await bob.client.get(f"{url}/timeline"),
    ):
        assert response.status_code == 404
    bob_stage = (await _pipeline(bob))["stages"][1]["id"]  # type: ignore[index]
    moved = await bob.client.post(f"{url}/move", json={"stage_id": bob_stage})
    assert moved.status_code == 404
    alice_stage = (await _pipeline(alice))["stages"][0]["id"]  # type: ignore[index]
    foreign = await bob.client.post(
        "/api/v1/deals", json={"title": "X", "currency": "EUR", "stage_id": alice_stage}
    )
    assert foreign.status_code == 400
    assert (await bob.client.get("/api/v1/deals")).json()["items"] == []
    assert (await bob.client.get("/api/v1/deals/forecast")).json() == []
    pipelines = (await bob.client.get("/api/v1/pipelines")).json()
    assert alice_stage not in {s["id"] for p in pipelines for s in p["stages"]}


async def test_pipeline_changes_are_audited(alice: Member, bob: Member) -> None:
    pipelines = (await alice.client.get("/api/v1/pipelines")).json()
    pipeline = pipelines[0] if isinstance(pipelines, list) else pipelines["items"][0]
    renamed = await alice.client.patch(
        f"/api/v1/pipelines/{pipeline['id']}", json={"name": "New business"}
    )
    assert renamed.status_code == 200, renamed.text
    log = (await alice.client.get("/api/v1/audit", params={"record_type": "pipeline"})).json()
    assert log["items"][0]["action"] == "update"
    assert log["items"][0]["changes"]["name"]["after"] == "New business"
    assert (await bob.client.get("/api/v1/audit", params={"record_type": "pipeline"})).json()[
        "items"
    ] == []
