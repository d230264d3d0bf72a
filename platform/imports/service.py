"""Imports: upload, preview and mapping, start, progress, cancel, the error file.

A file is uploaded first (streamed to disk by the request middleware, checked
whole for its format and encoding, its rows counted), then started with a
mapping; the worker runs it (:mod:`orbit.platform.imports.engine`). Everything
about an import lives in the tenant's own ``imports`` rows, under RLS.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.views import WRITE_SCOPES
from orbit.platform.errors import ConflictError, InvalidInputError, NotFoundError
from orbit.platform.ids import new_id
from orbit.platform.imports import files
from orbit.platform.imports.engine import import_path, rate_and_eta
from orbit.platform.imports.schemas import ImportOut, ImportPreview, ImportStart
from orbit.platform.imports.targets import (
    OBJECT_TYPES,
    column_key,
    dedupe_keys,
    field_names,
    suggest,
)
from orbit.tenants.quotas import Quotas

if TYPE_CHECKING:
    from pathlib import Path
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

MAX_FILE_NAME = 255
PREVIEW_ROWS = 10


def checked_object_type(value: str | None) -> str:
    """``contact``, ``company`` or ``deal`` (plurals accepted); a 400 naming ``object_type``."""
    name = (value or "").strip().lower()
    name = {"contacts": "contact", "companies": "company", "deals": "deal"}.get(name, name)
    if name not in OBJECT_TYPES:
        reason = "must be contact, company or deal"
        raise InvalidInputError(f"object_type {reason}", fields={"object_type": reason})
    return name


def import_out(row: Any) -> ImportOut:
    """A database row as the API's import."""

    def loaded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    rate, eta = rate_and_eta(row)
    return ImportOut(
        id=row["id"],
        object_type=row["object_type"],
        status=row["status"],
        file_name=row["file_name"],
        file_format=row["file_format"],
        encoding=row["encoding"],
        size_bytes=row["size_bytes"],
        columns=list(loaded(row["columns"])),
        mapping=dict(loaded(row["mapping"])),
        mode=row["mode"],
        dedupe_key=row["dedupe_key"],
        strict=row["strict"],
        total_rows=row["total_rows"],
        rows_done=row["rows_done"],
        created=row["created_count"],
        updated=row["updated_count"],
        errors=row["error_count"],
        rate_per_second=rate if row["status"] in {"running", "done"} else None,
        eta_seconds=eta if row["status"] == "running" else None,
        message=row["message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        errors_url=f"/api/v1/imports/{row['id']}/errors.csv",
    )


class ImportService:
    """Imports of one workspace; each call takes the caller's tenant context."""

    def __init__(self, db: Database, home: Path) -> None:
        self.db = db
        self.home = home

    async def upload(
        self,
        ctx: TenantContext,
        staged: Path,
        *,
        file_name: str,
        object_type: str,
        encoding: str | None = None,
    ) -> ImportPreview:
        """Register a file streamed to ``staged``: identified, counted, kept for the job.

        A file that is not CSV/XLSX, not in the encoding given or detected, or empty
        is a 400; nothing is kept then.
        """
        kind = checked_object_type(object_type)
        ctx.require(WRITE_SCOPES[kind])
        name = (file_name or "").strip().replace("/", "_").replace("\\", "_")[:MAX_FILE_NAME]
        codec = files.checked_encoding(encoding)
        info = await anyio.to_thread.run_sync(files.identify, staged, name or "the file", codec)
        columns, total = await anyio.to_thread.run_sync(files.count_rows, staged, info)
        if total == 0:
            reason = "the file has a heading but no rows"
            raise InvalidInputError(reason, fields={"file": reason})
        size = (await anyio.Path(staged).stat()).st_size
        await Quotas(self.db).use_storage(ctx.tenant_id, size)
        import_id = new_id()
        row = await self.db.fetchrow(
            """
            INSERT INTO imports (tenant_id, id, object_type, file_name, file_format, encoding,
                                 size_bytes, columns, total_rows, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) RETURNING *
            """,
            ctx.tenant_id,
            import_id,
            kind,
            name or f"upload.{info.file_format}",
            info.file_format,
            info.encoding,
            size,
            json.dumps(columns),
            total,
            ctx.membership_id,
        )
        target = import_path(self.home, ctx.tenant_id, import_id, info.file_format)
        await anyio.to_thread.run_sync(shutil.move, staged, target)
        sample = await anyio.to_thread.run_sync(files.preview, target, info, PREVIEW_ROWS)
        return await self._preview(ctx, row, sample)

    async def _preview(
        self, ctx: TenantContext, row: Any, sample: list[list[str]]
    ) -> ImportPreview:
        kind = row["object_type"]
        custom = await CustomFieldService(self.db).definitions(ctx, [kind])
        columns = import_out(row).columns
        remembered = {
            r["column_key"]: r["field"]
            for r in await self.db.fetch(
                "SELECT column_key, field FROM import_mappings "
                "WHERE tenant_id = $1 AND object_type = $2",
                ctx.tenant_id,
                kind,
            )
        }
        return ImportPreview(
            import_=import_out(row),
            rows=sample,
            suggested_mapping=suggest(kind, columns, custom, remembered),
            fields=field_names(kind, custom),
            dedupe_keys=dedupe_keys(kind, custom),
        )

    async def preview(self, ctx: TenantContext, import_id: UUID) -> ImportPreview:
        """An uploaded import's first rows and suggested mapping (the mapping page)."""
        row = await self._row(ctx, import_id)
        sample: list[list[str]] = []
        path = import_path(self.home, ctx.tenant_id, import_id, row["file_format"])
        if path.exists():
            info = files.FileInfo(row["file_format"], row["encoding"])
            sample = await anyio.to_thread.run_sync(files.preview, path, info, PREVIEW_ROWS)
        return await self._preview(ctx, row, sample)

    async def _row(self, ctx: TenantContext, import_id: UUID, *, lock: bool = False) -> Any:
        row = await self.db.fetchrow(
            "SELECT * FROM imports WHERE tenant_id = $1 AND id = $2"
            + (" FOR UPDATE" if lock else ""),
            ctx.tenant_id,
            import_id,
        )
        if row is None or WRITE_SCOPES[row["object_type"]] not in ctx.scopes:
            raise NotFoundError(f"import {import_id} not found in this workspace")
        return row

    async def get(self, ctx: TenantContext, import_id: UUID) -> ImportOut:
        """One import with its progress."""
        return import_out(await self._row(ctx, import_id))

    async def find(self, ctx: TenantContext, limit: int = 50) -> list[ImportOut]:
        """The workspace's latest imports of the types the caller may write."""
        kinds = [kind for kind in OBJECT_TYPES if WRITE_SCOPES[kind] in ctx.scopes]
        rows = await self.db.fetch(
            "SELECT * FROM imports WHERE tenant_id = $1 AND object_type = ANY($2::text[]) "
            "ORDER BY created_at DESC LIMIT $3",
            ctx.tenant_id,
            kinds,
            limit,
        )
        return [import_out(row) for row in rows]

    async def start(  # noqa: C901 - each check names its own field
        self, ctx: TenantContext, import_id: UUID, data: ImportStart
    ) -> ImportOut:
        """Check the mapping and queue the import for the worker.

        A 400 names a mapped column the file lacks, an unknown field, a field mapped
        twice or an unusable dedupe key; a 402 when the contacts would not fit the
        plan; a 409 when the import was already started. Nothing is written then.
        """
        row = await self._row(ctx, import_id, lock=True)
        if row["status"] != "uploaded":
            raise ConflictError(f"import {import_id} is already {row['status']}")
        kind = row["object_type"]
        custom = await CustomFieldService(self.db).definitions(ctx, [kind])
        names = field_names(kind, custom)
        columns = import_out(row).columns
        mapping = {column: target for column, target in data.mapping.items() if target}
        problems: dict[str, str] = {}
        seen: dict[str, str] = {}
        for column, target in mapping.items():
            where = f"mapping.{column[:60]}"
            if column not in columns:
                problems[where] = f"the file has no column {column!r}"
            elif target not in names:
                problems[where] = f"no {kind} field {target!r}; fields: {', '.join(sorted(names))}"
            elif target in seen:
                problems[where] = f"{target} is already mapped from {seen[target]!r}"
            else:
                seen[target] = column
        if not mapping:
            problems["mapping"] = "map at least one column to a field"
        key = data.dedupe_key or next(
            (k for k in dedupe_keys(kind, custom) if k in seen and not k.startswith("custom.")),
            None,
        )
        if key is not None and key not in dedupe_keys(kind, custom):
            choices = ", ".join(dedupe_keys(kind, custom)) or "none (create only)"
            problems["dedupe_key"] = f"cannot match {kind}s by {key!r}; use {choices}"
        elif key is not None and key not in seen:
            problems["dedupe_key"] = f"{key} is not mapped from any column"
        elif key is None and data.mode != "create":
            problems["dedupe_key"] = f"{data.mode} needs a dedupe key to find existing {kind}s"
        if problems:
            summary = "; ".join(f"{k}: {v}" for k, v in problems.items())
            raise InvalidInputError(summary, fields=problems)
        if kind == "contact" and data.mode != "update":
            # Every row might be new: the whole file must fit before anything is written.
            await Quotas(self.db).check_contacts(ctx.tenant_id, row["total_rows"])
        await self.db.execute(
            """
            INSERT INTO import_mappings (tenant_id, id, object_type, column_key, field)
            SELECT $1, m.id, $2, m.column_key, m.field
            FROM unnest($3::uuid[], $4::text[], $5::text[]) AS m(id, column_key, field)
            ON CONFLICT (tenant_id, object_type, column_key)
            DO UPDATE SET field = EXCLUDED.field, updated_at = now()
            """,
            ctx.tenant_id,
            kind,
            [new_id() for _ in mapping],
            [column_key(column) for column in mapping],
            list(mapping.values()),
        )
        updated = await self.db.fetchrow(
            """
            UPDATE imports SET status = 'queued', mapping = $3::jsonb, mode = $4,
                dedupe_key = $5, strict = $6, updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING *
            """,
            ctx.tenant_id,
            import_id,
            json.dumps(mapping),
            data.mode,
            key,
            data.strict,
        )
        return import_out(updated)

    async def cancel(self, ctx: TenantContext, import_id: UUID) -> ImportOut:
        """Stop an import: a running one after its current batch (what committed stays)."""
        row = await self._row(ctx, import_id, lock=True)
        if row["status"] in {"done", "failed", "cancelled"}:
            raise ConflictError(f"import {import_id} is already {row['status']}")
        updated = await self.db.fetchrow(
            "UPDATE imports SET status = 'cancelled', message = 'cancelled', "
            "finished_at = now(), updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING *",
            ctx.tenant_id,
            import_id,
        )
        if row["status"] in {"uploaded", "queued"}:  # no job holds the file: free it now
            path = import_path(self.home, ctx.tenant_id, import_id, row["file_format"])
            if path.exists():
                await Quotas(self.db).use_storage(ctx.tenant_id, -int(row["size_bytes"]))
                path.unlink()
        return import_out(updated)

    async def errors_csv(self, ctx: TenantContext, import_id: UUID) -> bytes:
        """The skipped lines with their reasons, as CSV."""
        await self._row(ctx, import_id)
        rows = await self.db.fetch(
            "SELECT line, reason FROM import_errors WHERE tenant_id = $1 AND import_id = $2 "
            "ORDER BY line",
            ctx.tenant_id,
            import_id,
        )
        return files.error_csv([(r["line"], r["reason"]) for r in rows])

    async def discard(self, ctx: TenantContext, imported: ImportOut) -> None:
        """Remove an upload's file whose request fails (its row rolls back with it)."""
        import_path(self.home, ctx.tenant_id, imported.id, imported.file_format).unlink(
            missing_ok=True
        )
