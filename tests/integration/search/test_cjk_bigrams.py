"""Two-character CJK queries match through the bigram index, not by reading every record."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import Member, sign_up


async def test_bigrams_list_each_pair_of_every_cjk_run(endpoints: object) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)  # type: ignore[attr-defined]
    try:
        pairs = await conn.fetchval("SELECT orbit_cjk_bigrams('王伟明 wang@x.cn 李娜 김민준')")
        latin = await conn.fetchval("SELECT orbit_cjk_bigrams('maria dela cruz 王')")
    finally:
        await conn.close()
    assert pairs == " 王伟 伟明 李娜 김민 민준 "
    assert latin is None  # no run of two: nothing to index


async def test_a_two_character_query_plans_on_the_bigram_index(endpoints: object) -> None:
    conn = await asyncpg.connect(endpoints.admin_dsn)  # type: ignore[attr-defined]
    try:
        match = await conn.fetchval("SELECT orbit_search_match('王伟', '%王伟%')")
        other = await conn.fetchval("SELECT orbit_search_match('王伟明', '%王伟明%')")
        async with conn.transaction():
            # With sequential scans priced out, a condition the index cannot answer
            # would still plan as a sequential scan, and this test would fail.
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = await conn.fetch(
                f"EXPLAIN SELECT id FROM contacts WHERE tenant_id = gen_random_uuid() AND {match}"
            )
    finally:
        await conn.close()
    assert match == "orbit_cjk_bigrams(search_text) LIKE '% 王伟 %'"
    assert other == "search_text LIKE '%王伟明%'"  # three characters have a trigram
    assert "contacts_tenant_cjk" in "\n".join(row[0] for row in plan)


@pytest.mark.parametrize("query", ["王伟", "伟明", "ΣΤ"])
async def test_two_character_search_finds_the_same_records_as_a_substring_test(
    alice: Member, app: object, query: str
) -> None:
    names = ["王伟", "王伟明", "李王伟", "王芳", "伟", "ΣΤΕΛΙΟΣ"]
    for name in names:
        created = await alice.client.post("/api/v1/contacts", json={"first_name": name})
        assert created.status_code == 201, created.text
    other = await sign_up(app, "Other")
    created = await other.client.post("/api/v1/contacts", json={"first_name": "王伟"})
    assert created.status_code == 201, created.text
    listed = await alice.client.get("/api/v1/contacts", params={"q": query})
    assert listed.status_code == 200, listed.text
    found = sorted(item["first_name"] for item in listed.json()["items"])
    assert found == sorted(n for n in names if query.casefold() in n.casefold())


async def test_a_chinese_name_in_two_fields_is_found_family_name_first(alice: Member) -> None:
    created = await alice.client.post(
        "/api/v1/contacts", json={"first_name": "伟", "last_name": "王"}
    )
    assert created.status_code == 201, created.text
    found = await alice.client.get("/api/v1/search", params={"q": "王伟"})
    assert found.status_code == 200, found.text
    ids = [hit["id"] for g in found.json()["groups"] for hit in g["items"]]
    assert ids == [created.json()["id"]]
