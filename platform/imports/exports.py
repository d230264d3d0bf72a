"""Exports of any list or saved view to CSV or XLSX, streamed with flat memory.

The rows are exactly the list's: the same :class:`~orbit.platform.crm.service.Listing`
conditions (saved view filters, ``q``, record visibility) the list pages use, read
through a server-side cursor in batches inside one read-only snapshot, and written
as they come (CSV text, or openpyxl's write-only XLSX). Small lists download at
once (``GET /api/v1/exports/download``); large ones become a background job whose
file the worker writes under ``ORBIT_HOME`` (``POST /api/v1/exports``).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import json
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from orbit.platform.audit.log import record
from orbit.platform.crm.listing import STANDARD_FIELDS
from orbit.platform.crm.service import Listing
from orbit.platform.crm.views import READ_SCOPES, SavedViewService
from orbit.platform.errors import InvalidInputError, NotFoundError
from orbit.platform.ids import new_id, parse_id
from orbit.platform.imports import files
from orbit.platform.imports.schemas import ExportOut, ExportRequest
from orbit.platform.imports.targets import PLURAL, TABLES
from orbit.tenants.context import TenantContext
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator
    from pathlib import Path

    from orbit.platform.crm.views import ListSpec
    from orbit.platform.db.engine import Database

COPY_QUEUE = 16
"""``COPY TO`` chunks (about 64 KB each) held at most while the client catches up."""
FETCH_ROWS = 2000
"""Rows read from the cursor at a time."""
DIRECT_LIMIT = 50_000
"""Lists up to this many rows (by the planner's estimate) download directly."""
_COMPANY = (
    "(SELECT co.name FROM companies co WHERE co.tenant_id = r.tenant_id AND co.id = r.company_id)"
)
_EXTRA = {
    "contact": (("company_name", "Company name", _COMPANY),),
    "company": (),
    "deal": (
        ("company_name", "Company name", _COMPANY),
        (
            "stage_name",
            "Stage name",
            (
                "(SELECT s.name FROM pipeline_stages s WHERE s.tenant_id = r.tenant_id "
                "AND s.id = r.stage_id)"
            ),
        ),
    ),
}


def _plain(value: Any) -> Any:  # noqa: PLR0911 - one return per type
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _as_text(sql: str, kind: str) -> str:
    """A column as the file shows it: tags comma-separated, times in UTC ISO 8601."""
    if kind == "tags":
        return f"array_to_string({sql}, ', ')"
    if kind == "datetime":
        return f"to_char({sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    return sql


class ExportQuery:
    """The SQL of one export: columns (headings and expressions), table and conditions."""

    def __init__(self, listing: Listing, spec: ListSpec) -> None:
        self.listing = listing
        self.spec = spec
        object_type = spec.object_type
        chosen = spec.columns or [f.name for f in STANDARD_FIELDS[object_type]]
        self.headings = ["id"]
        expressions = ["r.id"]
        for name in chosen:
            field = spec.fields[name]
            self.headings.append(name)
            expressions.append(_as_text(field.sql, field.kind))
        if not spec.columns:
            for name, _, sql in _EXTRA[object_type]:
                self.headings.append(name)
                expressions.append(sql)
            definitions = [n for n in spec.fields if n.startswith("custom.")]
            for name in definitions:
                self.headings.append(name)
                expressions.append(_as_text(spec.fields[name].sql, spec.fields[name].kind))
        self.select = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(expressions))

    def sql(self) -> tuple[str, list[Any]]:
        """The query and its arguments."""
        where = " AND ".join(self.listing.conditions)
        return (
            f"SELECT {self.select} FROM {self.listing.table} WHERE {where} ORDER BY r.id",
            self.listing.args,
        )


async def export_query(db: Database, ctx: TenantContext, request: ExportRequest) -> ExportQuery:
    """The export of the list ``request`` names, as ``ctx`` sees it (visibility applied)."""
    ctx.require(READ_SCOPES[request.object_type])
    spec = await SavedViewService(db).list_spec(
        ctx,
        request.object_type,
        view_id=parse_id(request.view, "view") if request.view else None,
        filters=request.filters,
        sort=request.sort,
        columns=request.columns,
        q=request.q,
    )
    listing = Listing(ctx, PLURAL[request.object_type], spec, f"{TABLES[request.object_type]} r")
    listing.q = spec.q
    await listing.filter(db, None)
    return ExportQuery(listing, spec)


async def stream_rows(db: Database, query: ExportQuery) -> AsyncIterator[list[Any]]:
    """The export's rows through a server-side cursor, ``FETCH_ROWS`` at a time."""
    sql, args = query.sql()
    cursor = await db.connection.cursor(sql, *args)
    while True:
        chunk = await cursor.fetch(FETCH_ROWS)
        if not chunk:
            return
        for row in chunk:
            yield [_plain(value) for value in row.values()]


async def csv_chunks(db: Database, query: ExportQuery) -> AsyncGenerator[bytes]:
    """The export as UTF-8 CSV (with a mark, for spreadsheets), straight from ``COPY TO``.

    ``COPY (SELECT …) TO STDOUT`` runs the list's query under RLS like any other;
    its chunks pass through a small queue, so a slow client slows the copy down
    instead of filling memory.
    """
    buffer = io.StringIO()
    csv.writer(buffer).writerow(query.headings)
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    sql, args = query.sql()
    async with aclosing(copy_chunks(db, sql, args)) as chunks:
        async for chunk in chunks:
            yield chunk


async def copy_chunks(db: Database, sql: str, args: list[Any]) -> AsyncGenerator[bytes]:
    """``COPY (sql) TO STDOUT`` as CSV, chunk by chunk, with a small queue between."""
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=COPY_QUEUE)

    async def copy() -> None:
        try:
            await db.connection.copy_from_query(sql, *args, output=chunks.put, format="csv")
        finally:
            await chunks.put(None)

    task = asyncio.create_task(copy())
    try:
        while (chunk := await chunks.get()) is not None:
            yield bytes(chunk)
        await task  # raises what the copy raised
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def write_file(db: Database, query: ExportQuery, path: Path, file_format: str) -> int:
    """Write the export to ``path``; how many rows it has."""
    count = 0
    if file_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerow(query.headings)
        sql, args = query.sql()
        with path.open("wb") as out:
            out.write(codecs.BOM_UTF8 + buffer.getvalue().encode())
            status = await db.connection.copy_from_query(sql, *args, output=out, format="csv")
        return int(status.split()[-1])
    from openpyxl import Workbook  # noqa: PLC0415 - only XLSX exports need it

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(PLURAL[query.spec.object_type])
    sheet.append(query.headings)
    async for row in stream_rows(db, query):
        sheet.append(row)
        count += 1
    workbook.save(path)
    return count


async def estimate(db: Database, query: ExportQuery) -> int:
    """The planner's row estimate for the export (no COUNT over a million rows)."""
    sql, args = query.sql()
    plan = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return int(json.loads(plan)[0]["Plan"]["Plan Rows"])


async def audit_export(
    db: Database,
    ctx: TenantContext,
    request: ExportRequest,
    rows: int | None,
    export_id: UUID | None,
) -> None:
    """Record an export in the audit log (what list, how, how many rows when known)."""
    await record(
        db,
        ctx,
        "export",
        request.object_type,
        None,
        label=f"{PLURAL[request.object_type]} as {request.format.upper()}",
        changes={},
        details={
            "format": request.format,
            "view": request.view,
            "filters": request.filters,
            "q": request.q,
            "rows": rows,
            "export_id": str(export_id) if export_id else None,
        },
    )


@asynccontextmanager
async def snapshot(db: Database, tenant_id: UUID) -> AsyncIterator[None]:
    """One read-only, repeatable-read transaction of the tenant, without a statement timeout."""
    async with db.transaction():
        await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        await db.execute("SET LOCAL statement_timeout = 0")
        await db.set_tenant(tenant_id)
        yield


def export_path(home: Path, tenant_id: UUID, export_id: UUID, file_format: str) -> Path:
    """Where a background export's file is written."""
    return files.upload_dir(home, tenant_id) / f"export-{export_id}.{file_format}"


def export_out(row: Any) -> ExportOut:
    """A database row as the API's export."""
    done = row["status"] == "done"
    return ExportOut(
        id=row["id"],
        object_type=row["object_type"],
        format=row["file_format"],
        status=row["status"],
        rows_done=row["rows_done"],
        size_bytes=row["size_bytes"],
        message=row["message"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        download_url=f"/api/v1/exports/{row['id']}/file" if done else None,
    )


class ExportService:
    """Background exports of one workspace."""

    def __init__(self, db: Database, home: Path) -> None:
        self.db = db
        self.home = home

    async def create(self, ctx: TenantContext, request: ExportRequest) -> ExportOut:
        """Queue an export of the list ``request`` names (checked now: a bad filter is a 400)."""
        await export_query(self.db, ctx, request)
        export_id = new_id()
        stored = {
            "request": {
                "object_type": request.object_type,
                "format": request.format,
                "view": request.view,
                "filters": request.filters,
                "sort": request.sort,
                "q": request.q,
                "columns": request.columns,
            },
            "scopes": sorted(str(scope) for scope in ctx.scopes),
            "visible_owners": (
                None if ctx.visible_owners is None else sorted(map(str, ctx.visible_owners))
            ),
            "membership_id": str(ctx.membership_id) if ctx.membership_id else None,
            "user_id": str(ctx.user_id) if ctx.user_id else None,
            "api_key_id": str(ctx.api_key_id) if ctx.api_key_id else None,
        }
        row = await self.db.fetchrow(
            """
            INSERT INTO exports (tenant_id, id, object_type, file_format, request, created_by)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING *
            """,
            ctx.tenant_id,
            export_id,
            request.object_type,
            request.format,
            json.dumps(stored),
            ctx.membership_id,
        )
        return export_out(row)

    async def _row(self, ctx: TenantContext, export_id: UUID) -> Any:
        row = await self.db.fetchrow(
            "SELECT * FROM exports WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, export_id
        )
        # An export holds the list as its requester saw it: only they download it.
        mine = row is not None and (
            row["created_by"] == ctx.membership_id
            or json.loads(row["request"]).get("api_key_id") == str(ctx.api_key_id)
        )
        if row is None or not mine or READ_SCOPES[row["object_type"]] not in ctx.scopes:
            raise NotFoundError(f"export {export_id} not found in this workspace")
        return row

    async def get(self, ctx: TenantContext, export_id: UUID) -> ExportOut:
        """One export of the caller's."""
        return export_out(await self._row(ctx, export_id))

    async def file(self, ctx: TenantContext, export_id: UUID) -> tuple[Path, str]:
        """A finished export's file and download name; a 404 before it is done."""
        row = await self._row(ctx, export_id)
        path = export_path(self.home, ctx.tenant_id, export_id, row["file_format"])
        if row["status"] != "done" or not path.exists():
            raise NotFoundError(f"export {export_id} has no file yet (status {row['status']})")
        return path, f"{PLURAL[row['object_type']]}-{export_id}.{row['file_format']}"


def job_context(tenant_id: UUID, stored: dict[str, Any]) -> TenantContext:
    """The requester's principal as the export was asked for (scopes and visibility)."""
    owners = stored.get("visible_owners")

    def uid(key: str) -> UUID | None:
        return UUID(stored[key]) if stored.get(key) else None

    return TenantContext(
        tenant_id=tenant_id,
        tenant_slug="",
        tenant_name="",
        scopes=frozenset(Scope(s) for s in stored["scopes"]),
        membership_id=uid("membership_id"),
        user_id=uid("user_id"),
        api_key_id=uid("api_key_id"),
        visible_owners=None if owners is None else frozenset(UUID(o) for o in owners),
    )


async def run_export(db: Database, home: Path, tenant_id: UUID, export_id: UUID) -> str:
    """Write one background export's file; its final status."""
    async with db.transaction(tenant_id):
        row = await db.fetchrow(
            "UPDATE exports SET status = 'running' WHERE tenant_id = $1 AND id = $2 "
            "AND status IN ('queued', 'running') RETURNING *",
            tenant_id,
            export_id,
        )
    if row is None:
        return "gone"
    stored = json.loads(row["request"])
    ctx = job_context(tenant_id, stored)
    request = ExportRequest(**stored["request"])
    path = export_path(home, tenant_id, export_id, row["file_format"])
    partial = path.with_suffix(".partial")
    try:
        async with snapshot(db, tenant_id):
            query = await export_query(db, ctx, request)
            count = await write_file(db, query, partial, row["file_format"])
    except (InvalidInputError, NotFoundError) as exc:  # the view was deleted meanwhile
        partial.unlink(missing_ok=True)
        async with db.transaction(tenant_id):
            await db.execute(
                "UPDATE exports SET status = 'failed', message = $3, finished_at = now(), "
                "lease_until = NULL WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                export_id,
                exc.message,
            )
        return "failed"
    partial.replace(path)
    async with db.transaction(tenant_id):
        await db.execute(
            "UPDATE exports SET status = 'done', rows_done = $3, size_bytes = $4, "
            "finished_at = now(), lease_until = NULL WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            export_id,
            count,
            path.stat().st_size,
        )
        await audit_export(db, replace(ctx), request, count, export_id)
    return "done"
