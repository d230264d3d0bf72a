"""Hostile and odd input: clear 4xx answers, no 500s, no lost connections, no open doors."""

from __future__ import annotations

import asyncio
import base64
import json

import asyncpg
import pytest

from orbit.platform.runtime import Runtime
from tests.conftest import PASSWORD, Member, make_client, sign_up


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/v1/contacts", {"first_name": "A\x00B"}, "first_name"),
        ("/api/v1/contacts", {"first_name": "A", "tags": ["x\x00"]}, "tags"),
        ("/api/v1/contacts", {"first_name": "A", "custom": {"k\x00": 1}}, "custom"),
        ("/api/v1/contacts", {"first_name": "A", "custom": {"k": ["\x00"]}}, "custom"),
    ],
)
async def test_nul_characters_are_refused_by_field(
    alice: Member, path: str, payload: dict[str, object], field: str
) -> None:
    response = await alice.client.post(path, json=payload)
    assert response.status_code == 400, response.text
    assert field in {item["key"] for item in response.json()["extra"]}


async def test_nul_in_search_sign_up_and_login_is_a_400(app: object, alice: Member) -> None:
    assert (await alice.client.get("/api/v1/contacts", params={"q": "a\x00"})).status_code == 400
    async with make_client(app) as client:
        signup = await client.post(
            "/api/v1/signup",
            json={"email": "nul@example.com", "password": PASSWORD, "workspace_name": "N\x00"},
        )
        login = await client.post(
            "/api/v1/login", json={"email": "x\x00@example.com", "password": PASSWORD}
        )
    assert signup.status_code == 400
    assert signup.json()["extra"][0]["key"] == "workspace_name"
    assert login.status_code == 400
    assert login.json()["extra"][0]["key"] == "email"


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "yesterday"]
)
async def test_forged_cursors_are_a_400(alice: Member, stamp: str) -> None:
    raw = json.dumps([stamp, "01a212c4-1d01-735c-9155-7714055b1f16"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = await alice.client.get("/api/v1/contacts", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "cursor"


async def test_deeply_nested_json_is_a_400(alice: Member) -> None:
    body = '{"first_name": "Deep", "custom": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    response = await alice.client.post(
        "/api/v1/contacts", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


async def test_oversized_body_is_a_413_before_touching_the_database(alice: Member) -> None:
    response = await alice.client.post(
        "/api/v1/contacts",
        content=b'{"first_name": "' + b"x" * (3 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


async def test_non_ascii_csrf_header_is_a_403_not_a_500(alice: Member) -> None:
    response = await alice.client.post(
        "/api/v1/contacts",
        json={"first_name": "X"},
        headers={"X-CSRF-Token": "tökén".encode()},
    )
    assert response.status_code == 403


async def test_pages_accept_the_csrf_token_as_a_form_field(alice: Member) -> None:
    del alice.client.headers["X-CSRF-Token"]
    response = await alice.client.post(
        f"/t/{alice.slug}/contacts", data={"first_name": "NoScript", "csrf_token": alice.csrf}
    )
    assert response.status_code == 303
    forged = await alice.client.post(
        f"/t/{alice.slug}/contacts", data={"first_name": "Forged", "csrf_token": "nope"}
    )
    assert forged.status_code == 403


async def test_cross_site_posts_are_refused_even_before_login(app: object) -> None:
    async with make_client(app) as client:
        response = await client.post(
            "/login",
            data={"email": "a@example.com", "password": PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        fetch_metadata = await client.post(
            "/api/v1/signup",
            json={"email": "b@example.com", "password": PASSWORD, "workspace_name": "B"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
    assert response.status_code == 403
    assert "evil.example" in response.text
    assert fetch_metadata.status_code == 403


@pytest.mark.parametrize("target", ["/\\evil.example/x", "//evil.example", "/\t/evil.example"])
async def test_login_never_redirects_off_site(app: object, alice: Member, target: str) -> None:
    async with make_client(app) as client:
        response = await client.post(
            "/login",
            data={"email": alice.email, "password": PASSWORD, "next": target},
            headers={"HX-Request": "true"},
        )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/t/{alice.slug}/"


async def test_login_keeps_a_local_next_path(app: object, alice: Member) -> None:
    async with make_client(app) as client:
        response = await client.post(
            "/login",
            data={"email": alice.email, "password": PASSWORD, "next": f"/t/{alice.slug}/members"},
        )
    assert response.status_code == 303
    assert response.headers["location"] == f"/t/{alice.slug}/members"


async def test_an_invitation_link_works_only_for_the_invited_address(
    app: object, alice: Member
) -> None:
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": "colleague@example.com", "role": "admin"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    mallory = await sign_up(app, "Mallory Inc")
    refused = await mallory.client.post(f"/api/v1/invitations/{token}/accept")
    assert refused.status_code == 403
    assert "colleague@example.com" in refused.json()["detail"]
    assert (await mallory.client.get(f"/t/{alice.slug}/contacts")).status_code == 404
    members = [m["email"] for m in (await alice.client.get("/api/v1/members")).json()]
    assert mallory.email not in members
    await mallory.client.aclose()


async def test_concurrent_sign_ups_with_one_workspace_name_all_succeed(app: object) -> None:
    members = await asyncio.gather(*(sign_up(app, "Same Name Ltd") for _ in range(5)))
    slugs = {member.slug for member in members}
    assert len(slugs) == 5
    assert "same-name-ltd" in slugs or any(s.startswith("same-name-ltd-") for s in slugs)
    for member in members:
        await member.client.aclose()


async def test_concurrent_wrong_passwords_cannot_outrun_the_throttle(
    app: object, alice: Member
) -> None:
    async with make_client(app) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/login", json={"email": alice.email, "password": "wrong!!"})
                for _ in range(20)
            )
        )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(401) == 5
    assert codes.count(429) == 15


async def test_a_failed_commit_returns_its_connection_to_the_pool(runtime: Runtime) -> None:
    pool = runtime.db.engine.pool
    assert pool is not None
    idle_before = pool.get_idle_size() + (pool.get_max_size() - pool.get_size())
    for _ in range(pool.get_max_size() + 2):
        unit = runtime.db.unit_of_work()
        async with unit:
            await runtime.db.execute(
                "CREATE TEMP TABLE deferred_clash (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
            )
            await runtime.db.execute("INSERT INTO deferred_clash VALUES (1), (1)")
            with pytest.raises(asyncpg.UniqueViolationError):
                await unit.finish(commit=True)
    idle_after = pool.get_idle_size() + (pool.get_max_size() - pool.get_size())
    assert idle_after == idle_before
    async with runtime.db.transaction():
        assert await runtime.db.fetchval("SELECT 1") == 1
