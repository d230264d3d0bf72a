"""Imports and exports without HTTP: for the CLI (`orbit import run`, `orbit export`) and benches.

Both act as the workspace's operator (owner permissions, every record visible,
audited as "system") and run in this process: the import through the same
service and engine the API and the worker use, the export through the same list
query and writer.
"""

from __future__ import annotations

import resource
import shutil
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orbit.platform.ids import new_id
from orbit.platform.imports import files
from orbit.platform.imports.engine import BATCH_ROWS, run_import
from orbit.platform.imports.exports import export_query, snapshot, write_file
from orbit.platform.imports.schemas import ExportRequest, ImportOut, ImportStart
from orbit.platform.imports.service import ImportService, checked_object_type
from orbit.tenants.context import TenantContext
from orbit.tenants.roles import ROLE_SCOPES, Role

if TYPE_CHECKING:
    from pathlib import Path
    from uuid import UUID

    from orbit.platform.db.engine import Database


def operator(tenant_id: UUID) -> TenantContext:
    """The principal the CLI acts as inside one workspace."""
    return TenantContext(
        tenant_id=tenant_id, tenant_slug="", tenant_name="", scopes=ROLE_SCOPES[Role.OWNER]
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass(frozen=True, slots=True)
class Measured:
    """What a run did and how fast: rows, seconds, rows per second, peak RSS."""

    rows: int
    seconds: float
    peak_rss_mb: float
    result: Any

    @property
    def rows_per_second(self) -> float:
        """Throughput."""
        return self.rows / self.seconds if self.seconds else 0.0


async def import_file(
    db: Database,
    home: Path,
    tenant_id: UUID,
    path: Path,
    *,
    object_type: str = "contact",
    mapping: dict[str, str] | None = None,
    mode: str = "upsert",
    dedupe_key: str | None = None,
    strict: bool = False,
    encoding: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Measured:
    """Import ``path`` (CSV or XLSX) into the workspace and wait for the end.

    ``mapping=None`` takes the suggested mapping (headings named like the fields).
    The file is copied first (the import keeps and later deletes its own copy).
    """
    ctx = operator(tenant_id)
    started = time.monotonic()
    staged = files.upload_dir(home, tenant_id) / f"incoming-{new_id()}"
    await anyio.to_thread.run_sync(shutil.copyfile, path, staged)
    service = ImportService(db, home)
    try:
        async with db.transaction(tenant_id):
            preview = await service.upload(
                ctx,
                staged,
                file_name=path.name,
                object_type=checked_object_type(object_type),
                encoding=encoding,
            )
            start = ImportStart(
                mapping=mapping if mapping is not None else preview.suggested_mapping,
                mode=mode,  # type: ignore[arg-type]
                dedupe_key=dedupe_key,
                strict=strict,
            )
            try:
                await service.start(ctx, preview.import_.id, start)
            except Exception:
                await service.discard(ctx, preview.import_)
                raise
    finally:
        staged.unlink(missing_ok=True)
    await run_import(db, home, tenant_id, preview.import_.id, batch_rows=batch_rows)
    async with db.transaction(tenant_id):
        done: ImportOut = await service.get(ctx, preview.import_.id)
    return Measured(done.rows_done, time.monotonic() - started, peak_rss_mb(), done)


async def export_to_file(
    db: Database,
    tenant_id: UUID,
    out: Path,
    *,
    object_type: str = "contact",
    file_format: str = "csv",
    view: str | None = None,
    filters: str | None = None,
    q: str | None = None,
    columns: str | None = None,
) -> Measured:
    """Export a list (or saved view) of the workspace to ``out``."""
    request = ExportRequest(
        object_type=checked_object_type(object_type),  # type: ignore[arg-type]
        format=file_format,  # type: ignore[arg-type]
        view=view,
        filters=filters,
        q=q,
        columns=columns,
    )
    started = time.monotonic()
    async with snapshot(db, tenant_id):
        query = await export_query(db, operator(tenant_id), request)
        rows = await write_file(db, query, out, file_format)
    return Measured(rows, time.monotonic() - started, peak_rss_mb(), out)
