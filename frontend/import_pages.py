"""Import pages: upload → map the columns (preview) → progress bar → result; and exports.

``/t/{slug}/imports`` lists the imports and takes a file; the browser sends it as the
raw body of ``POST /api/v1/imports`` (static/imports.js), which streams it to disk.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Response, Template  # noqa: TC002 - Litestar reads them at run time

from orbit.frontend.pages import go, page
from orbit.platform.errors import OrbitError
from orbit.platform.ids import parse_id
from orbit.platform.imports.schemas import ImportStart
from orbit.platform.imports.service import ImportService
from orbit.platform.imports.targets import OBJECT_TYPES
from orbit.platform.runtime import Runtime  # noqa: TC001 - Litestar injects it
from orbit.tenants.context import Principal, TenantContext  # noqa: TC001 - as above

MODES = ("upsert", "create", "update")


class ImportPages(Controller):
    """The import wizard and the export form."""

    path = "/t/{slug:str}/imports"
    include_in_schema = False

    @get("/")
    async def imports(
        self, principal: Principal, tenant: TenantContext, runtime: Runtime
    ) -> Template:
        """Recent imports, the upload form and the export form."""
        found = await ImportService(runtime.db, runtime.settings.home).find(tenant)
        return page("imports/list.html", principal, imports=found, object_types=OBJECT_TYPES)

    @get("/{import_id:str}")
    async def detail(
        self, principal: Principal, tenant: TenantContext, runtime: Runtime, import_id: str
    ) -> Template:
        """The mapping form (uploaded), the progress bar (running) or the result."""
        service = ImportService(runtime.db, runtime.settings.home)
        parsed = parse_id(import_id, "import")
        preview = await service.preview(tenant, parsed)
        return page(
            "imports/detail.html",
            principal,
            preview=preview,
            item=preview.import_,
            modes=MODES,
            errors={},
            message="",
        )

    @get("/{import_id:str}/progress")
    async def progress(
        self, principal: Principal, tenant: TenantContext, runtime: Runtime, import_id: str
    ) -> Template:
        """The progress bar alone (htmx polls it while the import runs)."""
        item = await ImportService(runtime.db, runtime.settings.home).get(
            tenant, parse_id(import_id, "import")
        )
        return page("imports/_progress.html", principal, item=item)

    @post("/{import_id:str}/start")
    async def start(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        import_id: str,
    ) -> Template | Response[Any]:
        """Map the columns and start; a bad mapping is shown on the form (400)."""
        service = ImportService(runtime.db, runtime.settings.home)
        parsed = parse_id(import_id, "import")
        form = await request.form()
        preview = await service.preview(tenant, parsed)
        mapping = {
            column: str(form.get(f"map_{index}") or "")
            for index, column in enumerate(preview.import_.columns)
        }
        data = ImportStart(
            mapping={column: target for column, target in mapping.items() if target},
            mode=form.get("mode") if form.get("mode") in MODES else "upsert",  # type: ignore[arg-type]
            dedupe_key=str(form.get("dedupe_key") or "") or None,
            strict=bool(form.get("strict")),
        )
        try:
            await service.start(tenant, parsed, data)
        except OrbitError as exc:
            return page(
                "imports/detail.html",
                principal,
                status_code=400,
                preview=preview,
                item=preview.import_,
                modes=MODES,
                errors=dict(exc.fields),
                message=exc.message,
                chosen=mapping,
            )
        return go(request, f"/t/{tenant.tenant_slug}/imports/{parsed}")

    @post("/{import_id:str}/cancel")
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantContext,
        runtime: Runtime,
        import_id: str,
    ) -> Response[Any]:
        """Stop the import after its current batch."""
        parsed = parse_id(import_id, "import")
        await ImportService(runtime.db, runtime.settings.home).cancel(tenant, parsed)
        return go(request, f"/t/{tenant.tenant_slug}/imports/{parsed}")
