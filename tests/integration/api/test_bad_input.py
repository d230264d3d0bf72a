"""Bad input gets a 4xx JSON error naming the problem, and writes nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Member, api_key, bearer, make_client


async def _count(member: Member) -> int:
    items = (await member.client.get("/api/v1/contacts", params={"limit": 200})).json()["items"]
    return len(items)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"first_name": "A", "email": "not-an-email"}, "email", "not a valid email"),
        ({"first_name": "A" * 101}, "first_name", "length <= 100"),
        ({"first_name": "", "last_name": "  "}, "first_name", "needs a first name"),
        ({"first_name": "A", "shoe_size": 44}, "shoe_size", "unknown field"),
        ({"first_name": 42}, "first_name", "Expected `str`"),
        ({"first_name": "A", "tags": "vip"}, "tags", "Expected `array`"),
        ({"first_name": "A", "tags": [""]}, "tags", "length >= 1"),
        ({"first_name": "A", "owner_id": "nobody"}, "owner_id", "uuid"),
        ({"first_name": "A", "custom": {"blob": "x" * 20_000}}, "custom", "at most 16384 bytes"),
    ],
)
async def test_invalid_contact_fields_are_named_and_nothing_is_written(
    alice: Member, payload: dict[str, object], field: str, words: str
) -> None:
    before = await _count(alice)
    response = await alice.client.post("/api/v1/contacts", json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status_code"] == 400
    # A list element is named with its index, e.g. tags[0].
    assert field in {item["key"].split("[")[0] for item in body["extra"]}, body
    assert words.lower() in response.text.lower()
    assert await _count(alice) == before


async def test_malformed_json_is_a_400_not_a_500(alice: Member) -> None:
    response = await alice.client.post(
        "/api/v1/contacts", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "malformed" in response.json()["detail"].lower()


async def test_patch_with_bad_field_changes_nothing(alice: Member) -> None:
    created = (await alice.client.post("/api/v1/contacts", json={"first_name": "Kept"})).json()
    url = f"/api/v1/contacts/{created['id']}"
    response = await alice.client.patch(url, json={"first_name": "Changed", "email": "x@"})
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "email"
    assert (await alice.client.get(url)).json()["first_name"] == "Kept"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4())])
async def test_unknown_or_malformed_ids_are_404(alice: Member, bad_id: str) -> None:
    response = await alice.client.get(f"/api/v1/contacts/{bad_id}")
    assert response.status_code == 404
    assert bad_id in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
async def test_bad_paging_parameters_are_named(
    alice: Member, params: dict[str, object], field: str
) -> None:
    response = await alice.client.get("/api/v1/contacts", params=params)
    assert response.status_code == 400
    assert field in {item["key"] for item in response.json()["extra"]}


async def test_expired_session_gets_401_saying_so(app: object, alice: Member) -> None:
    async with make_client(app) as client:
        client.cookies.set("orbit_session", "expired-or-made-up")
        response = await client.get("/api/v1/contacts")
    assert response.status_code == 401
    assert "session has expired" in response.json()["detail"]


async def test_no_credentials_gets_401_saying_what_to_send(app: object) -> None:
    async with make_client(app) as client:
        response = await client.get("/api/v1/contacts")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]


async def test_revoked_api_key_gets_401_and_writes_nothing(app: object, alice: Member) -> None:
    key = await api_key(alice, ["contacts:write", "contacts:read"])
    key_id = (await alice.client.get("/api/v1/api-keys")).json()[0]["id"]
    assert (await alice.client.delete(f"/api/v1/api-keys/{key_id}")).status_code == 204
    before = await _count(alice)
    async with bearer(app, key) as client:
        response = await client.post("/api/v1/contacts", json={"first_name": "Ghost"})
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert await _count(alice) == before


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("Basic dXNlcjpwYXNz", "Bearer <API key>"),
        ("Bearer nonsense", "malformed API key"),
        ("Bearer orbit_0123456789ab_" + "x" * 40, "unknown API key"),
    ],
)
async def test_bad_authorization_headers_are_401_naming_the_problem(
    app: object, header: str, words: str
) -> None:
    async with make_client(app) as client:
        response = await client.get("/api/v1/contacts", headers={"Authorization": header})
    assert response.status_code == 401
    assert words in response.json()["detail"]


async def test_read_only_key_cannot_write(app: object, alice: Member) -> None:
    key = await api_key(alice, ["contacts:read"])
    async with bearer(app, key) as client:
        response = await client.post("/api/v1/contacts", json={"first_name": "Nope"})
    assert response.status_code == 403
    assert "contacts:write" in response.json()["detail"]


async def test_unknown_api_key_scope_is_refused_by_name(alice: Member) -> None:
    response = await alice.client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["contacts:read", "root"]}
    )
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "scopes"
    assert "'root'" in response.json()["detail"]
