"""Sign-up, login, sessions, CSRF, throttling, invitations, API keys."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, Member, api_key, bearer, make_client, sign_up


async def test_sign_up_creates_a_free_workspace_with_its_owner(app: object) -> None:
    member = await sign_up(app, "Ελαιόλαδο & Co")
    me = (await member.client.get("/api/v1/members")).json()
    assert [(m["email"], m["role"], m["status"]) for m in me] == [(member.email, "owner", "active")]
    assert member.slug.startswith("co") or member.slug == "co" or member.slug
    await member.client.aclose()


async def test_session_cookie_is_http_only_and_same_site(app: object) -> None:
    async with make_client(app) as client:
        response = await client.post(
            "/api/v1/signup",
            json={"email": "cookie@example.com", "password": PASSWORD, "workspace_name": "C"},
        )
    cookie = response.headers["set-cookie"]
    assert "orbit_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie


async def test_email_is_unique_case_insensitively(app: object) -> None:
    member = await sign_up(app, "First")
    async with make_client(app) as client:
        response = await client.post(
            "/api/v1/signup",
            json={"email": member.email.upper(), "password": PASSWORD, "workspace_name": "Dup"},
        )
    assert response.status_code == 409
    assert response.json()["extra"][0]["key"] == "email"
    await member.client.aclose()


async def test_short_password_is_refused_by_name(app: object) -> None:
    async with make_client(app) as client:
        response = await client.post(
            "/api/v1/signup",
            json={"email": "short@example.com", "password": "short", "workspace_name": "S"},
        )
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "password"


async def test_login_logout_and_the_session_ends(app: object, alice: Member) -> None:
    async with make_client(app) as client:
        login = await client.post(
            "/api/v1/login", json={"email": alice.email.upper(), "password": PASSWORD}
        )
        assert login.status_code == 200
        assert login.json()["workspace"]["slug"] == alice.slug
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        assert (await client.get("/api/v1/contacts")).status_code == 200
        assert (await client.post("/api/v1/logout")).status_code == 204
        client.cookies.clear()
        assert (await client.get("/api/v1/contacts")).status_code == 401


async def test_wrong_password_is_401_and_repeated_failures_are_throttled(
    app: object, alice: Member
) -> None:
    async with make_client(app) as client:
        for _ in range(5):
            wrong = await client.post(
                "/api/v1/login", json={"email": alice.email, "password": "wrong password!"}
            )
            assert wrong.status_code == 401
            assert wrong.json()["detail"] == "email or password is wrong"
        throttled = await client.post(
            "/api/v1/login", json={"email": alice.email, "password": PASSWORD}
        )
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert "too many failed logins" in throttled.json()["detail"]


async def test_cookie_requests_that_change_data_need_the_csrf_header(alice: Member) -> None:
    del alice.client.headers["X-CSRF-Token"]
    refused = await alice.client.post("/api/v1/contacts", json={"first_name": "Forged"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    alice.client.headers["X-CSRF-Token"] = "wrong"
    assert (
        await alice.client.post("/api/v1/contacts", json={"first_name": "F"})
    ).status_code == 403
    alice.client.headers["X-CSRF-Token"] = alice.csrf
    listed = (await alice.client.get("/api/v1/contacts")).json()["items"]
    assert listed == []


async def test_api_keys_are_shown_once_and_work_with_bearer(app: object, alice: Member) -> None:
    key = await api_key(alice, ["contacts:read"])
    assert re.fullmatch(r"orbit_[0-9a-f]{12}_[A-Za-z0-9_-]+", key)
    listed = (await alice.client.get("/api/v1/api-keys")).json()
    assert key not in str(listed)
    assert listed[0]["prefix"] == key[:18] + "_…"
    async with bearer(app, key) as client:
        assert (await client.get("/api/v1/contacts")).status_code == 200
    assert (await alice.client.get("/api/v1/api-keys")).json()[0]["last_used_at"] is not None


async def test_members_cannot_manage_keys_or_invite(app: object, alice: Member) -> None:
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": "mia@example.com", "role": "member"}
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    mia = await sign_up(app, "Mia's own", email="mia@example.com")
    accepted = await mia.client.post(f"/api/v1/invitations/{token}/accept")
    assert accepted.status_code == 200
    assert (await mia.client.get(f"/t/{alice.slug}/contacts")).status_code == 200
    # Mia's API session now acts in Alice's workspace (the one last opened).
    refused = await mia.client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["contacts:read"]}
    )
    assert refused.status_code == 403
    assert "api_keys:write" in refused.json()["detail"]
    refused_invite = await mia.client.post("/api/v1/invitations", json={"email": "x@example.com"})
    assert refused_invite.status_code == 403
    await mia.client.aclose()


async def test_invitation_accepted_by_a_new_user_through_the_page(
    app: object, alice: Member
) -> None:
    invited = await alice.client.post(
        "/api/v1/invitations", json={"email": "Newcomer@Example.com", "role": "viewer"}
    )
    assert invited.status_code == 201
    url = invited.json()["accept_url"]
    path = url.removeprefix("http://testserver")
    async with make_client(app) as visitor:
        page = await visitor.get(path)
        assert page.status_code == 200
        assert "Newcomer@example.com" in page.text
        accepted = await visitor.post(path, data={"name": "New", "password": PASSWORD})
        assert accepted.status_code == 303
        assert accepted.headers["location"] == f"/t/{alice.slug}/"
        assert (await visitor.get(f"/t/{alice.slug}/contacts")).status_code == 200
    members = (await alice.client.get("/api/v1/members")).json()
    assert ("Newcomer@example.com", "viewer", "active") in {
        (m["email"], m["role"], m["status"]) for m in members
    }
    async with make_client(app) as again:
        reused = await again.get(path)
    assert reused.status_code == 404
    assert (await alice.client.get("/api/v1/invitations")).json() == []


@pytest.mark.parametrize(
    ("email", "role", "field"), [("bad@", "member", "email"), ("ok@example.com", "owner", "role")]
)
async def test_bad_invitations_are_refused_by_field(
    alice: Member, email: str, role: str, field: str
) -> None:
    response = await alice.client.post("/api/v1/invitations", json={"email": email, "role": role})
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == field
    assert (await alice.client.get("/api/v1/invitations")).json() == []
