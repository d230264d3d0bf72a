"""Imports and exports over HTTP: ``/api/v1/imports`` and ``/api/v1/exports``."""

from __future__ import annotations

import codecs
from contextlib import aclosing
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.response import File, Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from orbit.platform.errors import InvalidInputError
from orbit.platform.ids import parse_id
from orbit.platform.imports.exports import (
    DIRECT_LIMIT,
    ExportService,
    audit_export,
    copy_chunks,
    csv_chunks,
    estimate,
    export_query,
    snapshot,
    write_file,
)
from orbit.platform.imports.schemas import (
    ExportOut,
    ExportRequest,
    ImportOut,
    ImportPreview,
    ImportStart,
)
from orbit.platform.imports.service import ImportService
from orbit.platform.imports.targets import PLURAL
from orbit.platform.imports.upload import UPLOAD_KEY
from orbit.platform.runtime import Runtime
from orbit.tenants.context import TenantContext

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path
    from uuid import UUID

    from orbit.platform.db.engine import Database


def _start_from_query(
    mapping: str | None, mode: str, dedupe_key: str | None, *, strict: bool
) -> ImportStart | None:
    import msgspec  # noqa: PLC0415

    if not mapping:
        return None
    try:
        return msgspec.convert(
            {
                "mapping": msgspec.json.decode(mapping),
                "mode": mode,
                "dedupe_key": dedupe_key,
                "strict": strict,
            },
            ImportStart,
        )
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reason = f"mapping/mode: {exc}"
        raise InvalidInputError(reason, fields={"mapping": str(exc)}) from None


class ImportController(Controller):
    """Upload a file, map its columns, run, watch, cancel, download the skipped lines."""

    path = "/api/v1/imports"
    tags = ["imports"]

    @post("/", status_code=HTTP_201_CREATED)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        runtime: Runtime,
        object_type: Annotated[str, Parameter(description="contact, company or deal")],
        file_name: Annotated[str, Parameter(description="The file's name")] = "",
        encoding: Annotated[
            str | None, Parameter(description="CSV text encoding; detected when left out")
        ] = None,
        mapping: Annotated[
            str | None,
            Parameter(description='JSON {"column": "field"}: start at once with this mapping'),
        ] = None,
        mode: Annotated[str, Parameter(description="create, update or upsert")] = "upsert",
        dedupe_key: str | None = None,
        strict: bool = False,
    ) -> ImportPreview:
        """Upload a CSV or XLSX file as the raw request body (streamed to disk, 2 GB at most).

        Returns the first rows, a suggested mapping (remembered ones first) and the
        fields; with ``mapping`` the import starts at once (see ``/{id}/start``).
        """
        staged: Path | None = request.scope["state"].get(UPLOAD_KEY)
        if staged is None:
            reason = "send the file as the request body"
            raise InvalidInputError(reason, fields={"file": reason})
        start = _start_from_query(mapping, mode, dedupe_key, strict=strict)
        service = ImportService(runtime.db, runtime.settings.home)
        preview = await service.upload(
            tenant, staged, file_name=file_name, object_type=object_type, encoding=encoding
        )
        if start is None:
            return preview
        try:
            started = await service.start(tenant, preview.import_.id, start)
        except Exception:
            await service.discard(tenant, preview.import_)  # the request rolls back: no file
            raise
        return ImportPreview(
            import_=started,
            rows=preview.rows,
            suggested_mapping=preview.suggested_mapping,
            fields=preview.fields,
            dedupe_keys=preview.dedupe_keys,
        )

    @get("/")
    async def list_imports(self, tenant: TenantContext, runtime: Runtime) -> list[ImportOut]:
        """The workspace's latest imports."""
        return await ImportService(runtime.db, runtime.settings.home).find(tenant)

    @get("/{import_id:str}")
    async def get_import(
        self, tenant: TenantContext, runtime: Runtime, import_id: str
    ) -> ImportOut:
        """One import's status and progress (rows done / total, rate, ETA)."""
        service = ImportService(runtime.db, runtime.settings.home)
        return await service.get(tenant, parse_id(import_id, "import"))

    @get("/{import_id:str}/preview")
    async def preview(
        self, tenant: TenantContext, runtime: Runtime, import_id: str
    ) -> ImportPreview:
        """The first rows and the suggested mapping of an uploaded file."""
        service = ImportService(runtime.db, runtime.settings.home)
        return await service.preview(tenant, parse_id(import_id, "import"))

    @post("/{import_id:str}/start", status_code=HTTP_200_OK)
    async def start(
        self, tenant: TenantContext, runtime: Runtime, import_id: str, data: ImportStart
    ) -> ImportOut:
        """Map the columns and queue the import (a 400 names an unknown field or column)."""
        service = ImportService(runtime.db, runtime.settings.home)
        return await service.start(tenant, parse_id(import_id, "import"), data)

    @post("/{import_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel(self, tenant: TenantContext, runtime: Runtime, import_id: str) -> ImportOut:
        """Stop an import after its current batch."""
        service = ImportService(runtime.db, runtime.settings.home)
        return await service.cancel(tenant, parse_id(import_id, "import"))

    @get("/{import_id:str}/errors.csv", media_type="text/csv")
    async def errors(self, tenant: TenantContext, runtime: Runtime, import_id: str) -> Stream:
        """The skipped lines and why, as CSV (line, reason), streamed."""
        parsed = parse_id(import_id, "import")
        await ImportService(runtime.db, runtime.settings.home).get(tenant, parsed)
        return Stream(
            _error_lines(runtime.db, tenant, parsed),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="import-{parsed}-errors.csv"'},
        )


async def _error_lines(
    db: Database, tenant: TenantContext, import_id: UUID
) -> AsyncIterator[bytes]:
    """An import's error lines through ``COPY TO``, after the request's transaction."""
    yield codecs.BOM_UTF8 + b"line,reason\r\n"
    token = db.engine.current_transaction.set(None)
    try:
        async with (
            snapshot(db, tenant.tenant_id),
            aclosing(
                copy_chunks(
                    db,
                    "SELECT line, reason FROM import_errors "
                    "WHERE tenant_id = $1 AND import_id = $2 ORDER BY line",
                    [tenant.tenant_id, import_id],
                )
            ) as chunks,
        ):
            async for chunk in chunks:
                yield chunk
    finally:
        db.engine.current_transaction.reset(token)


async def _streamed(
    db: Database, tenant: TenantContext, request: ExportRequest
) -> AsyncIterator[bytes]:
    """The CSV in its own read-only snapshot: the request's transaction commits at the head."""
    # The body streams in a task of its own (a copy of the request's context): it
    # leaves the settled request transaction behind and opens its own.
    token = db.engine.current_transaction.set(None)
    try:
        async with snapshot(db, tenant.tenant_id):
            query = await export_query(db, tenant, request)
            # Closed before the transaction ends: a copy still running is cancelled first.
            async with aclosing(csv_chunks(db, query)) as chunks:
                async for chunk in chunks:
                    yield chunk
    finally:
        db.engine.current_transaction.reset(token)


class ExportController(Controller):
    """Export a list or saved view: at once when small, as a background job when large."""

    path = "/api/v1/exports"
    tags = ["exports"]

    @get("/download")
    async def download(
        self,
        tenant: TenantContext,
        runtime: Runtime,
        object_type: Annotated[str, Parameter(description="contact, company or deal")],
        format: Annotated[str, Parameter(description="csv or xlsx")] = "csv",  # noqa: A002
        view: str | None = None,
        filters: str | None = None,
        sort: str | None = None,
        q: str | None = None,
        columns: str | None = None,
    ) -> Stream | File:
        """The list as a file, streamed; a 413 pointing to ``POST /api/v1/exports`` when large."""
        request = _request(object_type, format, view, filters, sort, q, columns)
        db = runtime.db
        query = await export_query(db, tenant, request)
        rows = await estimate(db, query)
        if rows > DIRECT_LIMIT:
            reason = (
                f"about {rows:,} rows: more than {DIRECT_LIMIT:,} export in the background; "
                "POST /api/v1/exports and download the file when it is done"
            )
            raise InvalidInputError(reason, fields={"object_type": reason})
        await audit_export(db, tenant, request, None, None)
        name = f"{PLURAL[request.object_type]}.{request.format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if request.format == "csv":
            return Stream(
                _streamed(db, tenant, request),
                media_type="text/csv; charset=utf-8",
                headers=headers,
            )
        # XLSX is a zip: written whole to a temporary file first (memory stays flat).
        from orbit.platform.ids import new_id  # noqa: PLC0415
        from orbit.platform.imports.exports import export_path  # noqa: PLC0415

        path = export_path(runtime.settings.home, tenant.tenant_id, new_id(), "xlsx")
        await write_file(db, query, path, "xlsx")
        return File(
            path,
            filename=name,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            background=_unlink_task(path),
        )

    @post("/", status_code=HTTP_201_CREATED)
    async def create(
        self, tenant: TenantContext, runtime: Runtime, data: ExportRequest
    ) -> ExportOut:
        """Export a list in the background; poll ``/{id}`` and download ``/{id}/file``."""
        return await ExportService(runtime.db, runtime.settings.home).create(tenant, data)

    @get("/{export_id:str}")
    async def get_export(
        self, tenant: TenantContext, runtime: Runtime, export_id: str
    ) -> ExportOut:
        """One of the caller's exports."""
        service = ExportService(runtime.db, runtime.settings.home)
        return await service.get(tenant, parse_id(export_id, "export"))

    @get("/{export_id:str}/file")
    async def file(self, tenant: TenantContext, runtime: Runtime, export_id: str) -> File:
        """A finished export's file."""
        service = ExportService(runtime.db, runtime.settings.home)
        path, name = await service.file(tenant, parse_id(export_id, "export"))
        return File(path, filename=name)


def _request(
    object_type: str,
    file_format: str,
    view: str | None,
    filters: str | None,
    sort: str | None,
    q: str | None,
    columns: str | None,
) -> ExportRequest:
    from orbit.platform.imports.service import checked_object_type  # noqa: PLC0415

    kind = checked_object_type(object_type)
    if file_format not in {"csv", "xlsx"}:
        reason = "must be csv or xlsx"
        raise InvalidInputError(f"format {reason}", fields={"format": reason})
    return ExportRequest(
        object_type=kind,  # type: ignore[arg-type]
        format=file_format,  # type: ignore[arg-type]
        view=view,
        filters=filters,
        sort=sort,
        q=q,
        columns=columns,
    )


def _unlink_task(path: Path) -> Any:
    from litestar.background_tasks import BackgroundTask  # noqa: PLC0415

    return BackgroundTask(path.unlink, missing_ok=True)
