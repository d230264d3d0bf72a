"""The measurements: each operation through the running app over HTTP and as raw SQL.

Each latency operation is one ``GET`` against the app (a real uvicorn process, API
key or session cookie, the whole middleware stack) and the same data queries run
directly through asyncpg in a transaction that first sets ``app.tenant_id``: as
the app role (row-level security on) and as a superuser (row-level security off).
The three are interleaved request by request, so a neighbour's burst on this shared
machine lands on all three alike.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from bench.http import Connection, load
from orbit.platform.crm.activities import timeline_query
from orbit.platform.crm.service import encode_cursor
from orbit.platform.search.normalize import fold, fulltext_query, fuzzy_allowed, like_pattern

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

Raw = Callable[["asyncpg.Connection[Any]", UUID], Awaitable[object]]

LATENCY_P95_MS = 50.0
PLATFORM_FACTOR = 3.0
PLATFORM_MS = 5.0
RLS_MAX = 1.10
THROUGHPUT_MIN = 0.70
SEARCH_LIMIT = 5

CONTACT_LIST = """
    SELECT r.*, r.updated_at AS sort_key FROM contacts r
    WHERE r.tenant_id = $1 {extra}
    ORDER BY r.updated_at DESC, r.id DESC LIMIT {limit}
"""
COMPANY_NAMES = "SELECT id, name FROM companies WHERE tenant_id = $1 AND id = ANY($2::uuid[])"


@dataclass
class Operation:
    """One thing a user does, as an app request and as the SQL it needs."""

    name: str
    path: str
    raw: Raw
    auth: str = "key"
    """``key`` (API key) or ``session`` (a logged-in browser, for pages)."""


@dataclass
class Timings:
    """Seconds per run of one operation, three ways."""

    app: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    raw_no_rls: list[float] = field(default_factory=list)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1000


async def _company_names(conn: asyncpg.Connection[Any], tenant: UUID, rows: list[Any]) -> None:
    ids = list({row["company_id"] for row in rows if row["company_id"] is not None})
    if ids:
        await conn.fetch(COMPANY_NAMES, tenant, ids)


def contact_page(extra: str = "", *args: Any, limit: int = 50) -> Raw:
    """The contact list's page query (plus ``extra`` conditions) and its company names."""
    query = CONTACT_LIST.format(extra=extra, limit=limit + 1)

    async def run(conn: asyncpg.Connection[Any], tenant: UUID) -> object:
        rows = await conn.fetch(query, tenant, *args)
        await _company_names(conn, tenant, rows)
        return rows

    return run


def sorted_contact_page(extra: str, *args: Any, limit: int = 50) -> Raw:
    """A saved view's page sorted by last name (empty names last, ties by id)."""
    key = "lower(nullif(r.last_name, ''))"
    query = (
        f"SELECT r.*, {key} AS sort_key FROM contacts r WHERE r.tenant_id = $1 {extra} "
        f"ORDER BY ({key} IS NULL), {key} ASC, r.id ASC LIMIT {limit + 1}"
    )

    async def run(conn: asyncpg.Connection[Any], tenant: UUID) -> object:
        rows = await conn.fetch(query, tenant, *args)
        await _company_names(conn, tenant, rows)
        return rows

    return run


def contact_detail(contact_id: UUID) -> Raw:
    """One contact and its company's name."""

    async def run(conn: asyncpg.Connection[Any], tenant: UUID) -> object:
        row = await conn.fetchrow(
            "SELECT * FROM contacts WHERE tenant_id = $1 AND id = $2", tenant, contact_id
        )
        await _company_names(conn, tenant, [row])
        return row

    return run


def contact_timeline(contact_id: UUID, limit: int = 50) -> Raw:
    """The contact's owner (visibility) and its merged timeline's first page."""
    query = timeline_query("contact", "", "$3")

    async def run(conn: asyncpg.Connection[Any], tenant: UUID) -> object:
        await conn.fetchrow(
            "SELECT owner_id FROM contacts WHERE tenant_id = $1 AND id = $2", tenant, contact_id
        )
        return await conn.fetch(query, tenant, contact_id, limit + 1)

    return run


def kanban(pipeline_id: UUID, limit: int = 200) -> Raw:
    """Pipelines with their stages, and the board's deals (as the deal list reads them)."""

    async def run(conn: asyncpg.Connection[Any], tenant: UUID) -> object:
        await conn.fetch(
            "SELECT * FROM pipelines WHERE tenant_id = $1 ORDER BY position, created_at", tenant
        )
        await conn.fetch(
            "SELECT * FROM pipeline_stages WHERE tenant_id = $1 ORDER BY pipeline_id, position",
            tenant,
        )
        return await conn.fetch(
            """
            SELECT r.*, s.name AS stage_name, s.probability,
                coalesce(array(SELECT dc.contact_id FROM deal_contacts dc
                               WHERE dc.tenant_id = r.tenant_id AND dc.deal_id = r.id
                               ORDER BY dc.contact_id), '{}') AS contact_ids,
                r.updated_at AS sort_key
            FROM deals r JOIN pipeline_stages s ON s.tenant_id = r.tenant_id AND s.id = r.stage_id
            WHERE r.tenant_id = $1 AND r.pipeline_id = $2
            ORDER BY r.updated_at DESC, r.id DESC LIMIT $3
            """,
            tenant,
            pipeline_id,
            limit + 1,
        )

    return run


_SEARCH_DETAILS = {
    "contacts": """
        SELECT c.id,
               coalesce(nullif(btrim(c.first_name || ' ' || c.last_name), ''), c.email, '—')
                   AS title,
               concat_ws(' · ', CASE WHEN btrim(c.first_name || ' ' || c.last_name) <> ''
                                     THEN c.email END, co.name) AS subtitle
        FROM contacts c
        LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
        WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[])
    """,
    "companies": """
        SELECT id, name AS title, concat_ws(' · ', domain, industry) AS subtitle
        FROM companies WHERE tenant_id = $1 AND id = ANY($2::uuid[])
    """,
    "deals": """
        SELECT d.id, d.title,
               concat_ws(' · ', d.amount::numeric(18, 2) || ' ' || d.currency, s.name, co.name)
                   AS subtitle
        FROM deals d
        JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
        LEFT JOIN companies co ON co.tenant_id = d.tenant_id AND co.id = d.company_id
        WHERE d.tenant_id = $1 AND d.id = ANY($2::uuid[])
    """,
}


def search(query: str) -> Raw:
    """The search box: ranked ids per type through the definer functions, then details."""
    folded = fold(query)
    pattern, fuzzy, tsquery = like_pattern(query), fuzzy_allowed(folded), fulltext_query(query)

    async def run(conn: asyncpg.Connection[Any], tenant: UUID) -> object:
        for record_type, details in _SEARCH_DETAILS.items():
            ranked = await conn.fetch(
                "SELECT id, score FROM orbit_search_ranked($1, $2, $3, $4, $5, $6)",
                record_type,
                folded,
                pattern,
                fuzzy,
                SEARCH_LIMIT,
                None,
            )
            if ranked:
                await conn.fetch(details, tenant, [row["id"] for row in ranked])
        if tsquery is not None:
            ranked = await conn.fetch(
                "SELECT id, score FROM orbit_search_notes($1, $2, $3)", tsquery, SEARCH_LIMIT, None
            )
            if ranked:
                await conn.fetch(
                    "SELECT id, kind, subject, body, contact_id, company_id, deal_id "
                    "FROM activities WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                    tenant,
                    [row["id"] for row in ranked],
                )
        return None

    return run


async def in_transaction(
    conn: asyncpg.Connection[Any], tenant: UUID, raw: Raw, *, rls: bool
) -> float:
    """Seconds for ``raw`` in one tenant transaction (as the request middleware opens it)."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        if not rls:
            await conn.execute("SET LOCAL row_security = off")
        await raw(conn, tenant)
    return time.perf_counter() - started


@dataclass
class Context:
    """Connections and facts the operations run with."""

    base_url: str
    tenant: UUID
    slug: str
    api_key: str
    session_cookie: str
    app_conn: asyncpg.Connection[Any]
    admin_conn: asyncpg.Connection[Any]


MIN_SAMPLES = 10
_shuffle = random.Random(7).shuffle  # noqa: S311 - reproducible orders, not secrets


async def _run_once(kind: str, ctx: Context, client: Connection, op: Operation) -> float:
    """Seconds for one run of ``op``: over HTTP, or raw with RLS on or off."""
    if kind == "app":
        started = time.perf_counter()
        await client.get(op.path)
        return time.perf_counter() - started
    if kind == "raw":
        return await in_transaction(ctx.app_conn, ctx.tenant, op.raw, rls=True)
    return await in_transaction(ctx.admin_conn, ctx.tenant, op.raw, rls=False)


async def measure(
    ctx: Context,
    operations: list[Operation],
    *,
    iterations: int,
    warmup: int,
    budget: float = float("inf"),
) -> dict[str, Timings]:
    """Each operation ``warmup`` + ``iterations`` times, app and raw interleaved.

    An operation slower than ``budget`` seconds for all its runs stops early, after
    at least ``MIN_SAMPLES`` timed runs (the table says how many it got).
    """
    key = Connection(ctx.base_url, {"Authorization": f"Bearer {ctx.api_key}"})
    browser = Connection(ctx.base_url, {"Cookie": f"orbit_session={ctx.session_cookie}"})
    results: dict[str, Timings] = {}
    try:
        for op in operations:
            client = browser if op.auth == "session" else key
            timings = Timings()
            started_op = time.perf_counter()
            for n in range(warmup + iterations):
                spent = time.perf_counter() - started_op
                if spent > budget and len(timings.app) >= MIN_SAMPLES:
                    break
                # A new order each round, with a pause between: whatever runs right after
                # a request shares the CPU with the server's own after-work (releasing its
                # connection), which would otherwise always fall on the same one.
                order = ["app", "raw", "raw_no_rls"]
                _shuffle(order)
                for kind in order:
                    seconds = await _run_once(kind, ctx, client, op)
                    if n >= warmup:
                        getattr(timings, kind).append(seconds)
                    await asyncio.sleep(0.002)
            results[op.name] = timings
    finally:
        await key.close()
        await browser.close()
    return results


async def operations(ctx: Context, pipeline_id: UUID, heavy_contact: UUID) -> list[Operation]:
    """The operations of the issue, with parameters read from the generated data."""
    conn, tenant = ctx.admin_conn, ctx.tenant
    total = await conn.fetchval("SELECT count(*) FROM contacts WHERE tenant_id = $1", tenant)
    deep = await conn.fetchrow(
        "SELECT updated_at, id FROM contacts WHERE tenant_id = $1 "
        "ORDER BY updated_at DESC, id DESC OFFSET $2 LIMIT 1",
        tenant,
        total // 2,
    )
    deep_at: datetime = deep["updated_at"]
    cursor = encode_cursor(deep_at, deep["id"])
    typical = await conn.fetchrow(
        "SELECT id, split_part(email, '@', 1) AS email FROM contacts WHERE tenant_id = $1 "
        "ORDER BY id OFFSET $2 LIMIT 1",
        tenant,
        total // 3,
    )
    rare, contact = typical["email"], typical["id"]
    views = await _saved_views(ctx)
    ops = [
        Operation("contact list, first page", "/api/v1/contacts?limit=50", contact_page()),
        Operation(
            "contact list, deep page (keyset)",
            f"/api/v1/contacts?limit=50&cursor={cursor}",
            contact_page("AND (r.updated_at, r.id) < ($2, $3)", deep_at, deep["id"]),
        ),
        Operation("contact detail", f"/api/v1/contacts/{contact}", contact_detail(contact)),
        Operation(
            "timeline, first page (typical contact)",
            f"/api/v1/contacts/{contact}/timeline?limit=50",
            contact_timeline(contact),
        ),
        Operation(
            "timeline, first page (key account)",
            f"/api/v1/contacts/{heavy_contact}/timeline?limit=50",
            contact_timeline(heavy_contact),
        ),
        Operation(
            "kanban board (page, 200 cards)",
            f"/t/{ctx.slug}/deals",
            kanban(pipeline_id),
            auth="session",
        ),
    ]
    for label, term in (
        ("common, Tagalog", "dela Cruz"),
        ("Greek", "Παπαδόπουλος"),
        ("Chinese, 2 chars", "王伟"),
        ("rare: one email", rare),
    ):
        ops.append(
            Operation(f"search '{term}' ({label})", f"/api/v1/search?q={quote(term)}", search(term))
        )
    ops += [
        Operation(
            "saved view: tag + custom field",
            f"/api/v1/contacts?limit=50&view={views['filtered']}",
            contact_page(
                "AND $2::varchar = ANY(r.tags) AND (r.custom ->> 'tier') = $3::text", "vip", "gold"
            ),
        ),
        Operation(
            "saved view: tag, sorted by last name",
            f"/api/v1/contacts?limit=50&view={views['sorted']}",
            sorted_contact_page("AND $2::varchar = ANY(r.tags)", "vip"),
        ),
    ]
    return ops


async def _saved_views(ctx: Context) -> dict[str, str]:
    """The two saved views the suite reads (created through the API the first time)."""
    import httpx  # noqa: PLC0415 - set-up only

    wanted = {
        "filtered": {
            "name": "Bench: VIP, gold tier",
            "filters": [
                {"field": "tags", "op": "contains", "value": "vip"},
                {"field": "custom.tier", "op": "equals", "value": "gold"},
            ],
            "sort": "-updated_at",
        },
        "sorted": {
            "name": "Bench: VIP by last name",
            "filters": [{"field": "tags", "op": "contains", "value": "vip"}],
            "sort": "last_name",
        },
    }
    headers = {"Authorization": f"Bearer {ctx.api_key}"}
    async with httpx.AsyncClient(base_url=ctx.base_url, headers=headers) as client:
        response = await client.get("/api/v1/views", params={"object_type": "contact"})
        response.raise_for_status()
        existing = {view["name"]: view["id"] for view in response.json()}
        found = {}
        for slot, view in wanted.items():
            if view["name"] not in existing:
                created = await client.post(
                    "/api/v1/views", json={"object_type": "contact", "shared": True, **view}
                )
                created.raise_for_status()
                existing[view["name"]] = created.json()["id"]
            found[slot] = existing[view["name"]]
    return found


@dataclass
class Throughput:
    """Requests per second of the app's list and of the reference route, same load."""

    app_rps: float
    reference_rps: float
    app_errors: int
    reference_errors: int
    concurrency: int
    seconds: float
    app_p95_ms: float
    reference_p95_ms: float


async def throughput(
    ctx: Context, reference_url: str, *, concurrency: int, seconds: float
) -> Throughput:
    """The contact list's first page under ``concurrency`` connections: app vs reference."""
    headers = {"Authorization": f"Bearer {ctx.api_key}"}
    warm = min(2.0, seconds / 3)
    await load(
        ctx.base_url,
        "/api/v1/contacts?limit=50",
        concurrency=concurrency,
        seconds=warm,
        headers=headers,
    )
    await load(reference_url, "/contacts?limit=50", concurrency=concurrency, seconds=warm)
    app = await load(
        ctx.base_url,
        "/api/v1/contacts?limit=50",
        concurrency=concurrency,
        seconds=seconds,
        headers=headers,
    )
    reference = await load(
        reference_url, "/contacts?limit=50", concurrency=concurrency, seconds=seconds
    )
    return Throughput(
        app_rps=app.per_second,
        reference_rps=reference.per_second,
        app_errors=app.errors,
        reference_errors=reference.errors,
        concurrency=concurrency,
        seconds=seconds,
        app_p95_ms=percentile(app.latencies, 95) if app.latencies else 0.0,
        reference_p95_ms=percentile(reference.latencies, 95) if reference.latencies else 0.0,
    )


# --- verdicts -------------------------------------------------------------------------


def latency_row(name: str, timings: Timings) -> dict[str, Any]:
    """One operation's numbers and whether it meets the issue's targets."""
    app50, app95 = percentile(timings.app, 50), percentile(timings.app, 95)
    raw50, raw95 = percentile(timings.raw, 50), percentile(timings.raw, 95)
    off50, off95 = percentile(timings.raw_no_rls, 50), percentile(timings.raw_no_rls, 95)
    bound = max(raw95 * PLATFORM_FACTOR, raw95 + PLATFORM_MS)
    misses = []
    if app95 > LATENCY_P95_MS:
        misses.append(f"p95 {app95 - LATENCY_P95_MS:.1f} ms over {LATENCY_P95_MS:.0f} ms")
    if app95 > bound:
        misses.append(f"{app95 - bound:.1f} ms over raw bound {bound:.1f} ms")
    # RLS's cost on the medians: at a millisecond or less, a p95 is the neighbours' noise.
    rls = raw50 / off50 if off50 else 1.0
    return {
        "operation": name,
        "app_p50_ms": round(app50, 2),
        "app_p95_ms": round(app95, 2),
        "raw_p50_ms": round(raw50, 2),
        "raw_p95_ms": round(raw95, 2),
        "raw_no_rls_p50_ms": round(off50, 2),
        "raw_no_rls_p95_ms": round(off95, 2),
        "app_over_raw_p95": round(app95 / raw95, 2) if raw95 else None,
        "latency_verdict": "met" if not misses else "misses by " + "; ".join(misses),
        "rls_on_over_off_p50": round(rls, 3),
        "rls_verdict": "met" if rls <= RLS_MAX else f"misses by {(rls - RLS_MAX) * 100:.0f} %",
        "samples": len(timings.app),
    }


def throughput_row(result: Throughput) -> dict[str, Any]:
    """The load test's numbers and verdict."""
    ratio = result.app_rps / result.reference_rps if result.reference_rps else 0.0
    verdict = (
        "met"
        if ratio >= THROUGHPUT_MIN
        else f"misses by {(THROUGHPUT_MIN - ratio) * 100:.0f} points ({ratio * 100:.0f} % of 70 %)"
    )
    return {
        "operation": f"list throughput, {result.concurrency} connections",
        "app_rps": round(result.app_rps, 1),
        "reference_rps": round(result.reference_rps, 1),
        "app_over_reference": round(ratio, 3),
        "app_errors": result.app_errors,
        "reference_errors": result.reference_errors,
        "app_p95_ms": round(result.app_p95_ms, 1),
        "reference_p95_ms": round(result.reference_p95_ms, 1),
        "seconds": result.seconds,
        "verdict": verdict,
    }


def render(
    rows: list[dict[str, Any]], load_row: dict[str, Any] | None, extra: list[dict[str, Any]]
) -> str:
    """The results as a Markdown table (also readable as plain text)."""
    lines = [
        (
            "| operation | app p50 ms | app p95 ms | raw p50 ms | raw p95 ms | app/raw p95 "
            "| target: p95 ≤ 50 ms and ≤ max(raw×3, raw+5) | RLS on/off p50 "
            "| target: RLS ≤ +10 % | runs |"
        ),
        "|---|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    lines.extend(
        f"| {row['operation']} | {row['app_p50_ms']:.1f} | {row['app_p95_ms']:.1f} "
        f"| {row['raw_p50_ms']:.1f} | {row['raw_p95_ms']:.1f} "
        f"| {row['app_over_raw_p95']:.2f} | {row['latency_verdict']} "
        f"| {row['rls_on_over_off_p50']:.2f} | {row['rls_verdict']} | {row['samples']} |"
        for row in rows
    )
    lines += ["", "| operation | result | target | verdict |", "|---|---|---|---|"]
    if load_row is not None:
        lines.append(
            f"| {load_row['operation']} | app {load_row['app_rps']:.0f} req/s vs reference "
            f"{load_row['reference_rps']:.0f} req/s "
            f"({load_row['app_over_reference'] * 100:.0f} %), "
            f"errors {load_row['app_errors']}/{load_row['reference_errors']} "
            f"| ≥ 70 % of the reference | {load_row['verdict']} |"
        )
    for row in extra:
        lines.append(
            f"| {row['operation']} | {row['result']} | {row['target']} | {row['verdict']} |"
        )
    return "\n".join(lines)


def dumps(data: object) -> str:
    """JSON for the results file."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
