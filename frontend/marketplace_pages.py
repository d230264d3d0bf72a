"""The marketplace pages: browse plugins, read one, enable with consent, configure, remove."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY
from markdown_it import MarkdownIt
from markupsafe import Markup

from orbit.frontend.pages import go, live_list, page
from orbit.platform.errors import InvalidInputError, OrbitError
from orbit.platform.runtime import Runtime
from orbit.plugins.manifest import SCOPE_DESCRIPTIONS
from orbit.tenants.context import Principal, TenantContext
from orbit.tenants.roles import Scope

AnyRequest = Request[Any, Any, Any]

# CommonMark without raw HTML; markdown-it refuses javascript: and data: links itself.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def readme_html(text: str) -> Markup:
    """A plugin's readme (Markdown) as safe HTML."""
    return Markup(_MARKDOWN.render(text))  # noqa: S704 - raw HTML is disabled above


class MarketplacePages(Controller):
    """``/t/{slug}/marketplace``: owners and admins only."""

    path = "/t/{slug:str}/marketplace"
    include_in_schema = False

    @get("/")
    async def marketplace(
        self, request: AnyRequest, principal: Principal, tenant: TenantContext, runtime: Runtime
    ) -> Template:
        """Every plugin, searchable by name, summary or author."""
        query = request.query_params.get("q", "")[:200]
        entries = await runtime.marketplace.catalog(tenant, query)
        return live_list(request, "marketplace", principal, entries=entries, q=query)

    @get("/{plugin_id:str}")
    async def plugin_detail(
        self, principal: Principal, tenant: TenantContext, runtime: Runtime, plugin_id: str
    ) -> Template:
        """A plugin's page: readme, scopes to consent to, settings, enable/disable/uninstall."""
        return await self._detail(principal, tenant, runtime, plugin_id)

    @post("/{plugin_id:str}/enable")
    async def enable(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        plugin_id: str,
    ) -> Response[Any] | Template:
        """Enable with the scopes the admin ticked."""
        form = await request.form()
        scopes = [str(s) for s in form.getall("scopes", [])]
        return await self._act(
            request,
            principal,
            runtime,
            plugin_id,
            runtime.marketplace.enable(tenant, plugin_id, granted_scopes=scopes),
        )

    @post("/{plugin_id:str}/settings")
    async def configure(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        plugin_id: str,
    ) -> Response[Any] | Template:
        """Save the settings form."""
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if k.startswith("settings.")}
        values = {k.removeprefix("settings."): v for k, v in values.items()}
        entry = await runtime.marketplace.entry(tenant, plugin_id)
        for setting in entry.manifest.settings if entry.manifest else ():
            if setting.type == "boolean":
                values[setting.name] = "true" if f"settings.{setting.name}" in form else "false"
        return await self._act(
            request,
            principal,
            runtime,
            plugin_id,
            runtime.marketplace.configure(tenant, plugin_id, values),
            form=values,
        )

    @post("/{plugin_id:str}/disable")
    async def disable(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        plugin_id: str,
    ) -> Response[Any] | Template:
        """Disable; data stays."""
        return await self._act(
            request, principal, runtime, plugin_id, runtime.marketplace.disable(tenant, plugin_id)
        )

    @post("/{plugin_id:str}/uninstall")
    async def uninstall(
        self,
        request: AnyRequest,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        plugin_id: str,
    ) -> Response[Any] | Template:
        """Uninstall, keeping or deleting the plugin's data as the admin chose."""
        choice = (await request.form()).get("data")

        async def uninstall() -> None:
            if choice not in {"keep", "delete"}:
                raise InvalidInputError("choose whether to keep or delete the app's data")
            await runtime.marketplace.uninstall(tenant, plugin_id, keep_data=choice == "keep")

        return await self._act(
            request,
            principal,
            runtime,
            plugin_id,
            uninstall(),
            then=f"/t/{tenant.tenant_slug}/marketplace",
        )

    async def _act(
        self,
        request: AnyRequest,
        principal: Principal,
        runtime: Runtime,
        plugin_id: str,
        change: Coroutine[Any, Any, object],
        *,
        then: str | None = None,
        form: dict[str, Any] | None = None,
    ) -> Response[Any] | Template:
        """Make ``change``, then go to ``then`` (the plugin's page); its error shown there."""
        tenant = principal.tenant
        assert tenant is not None  # noqa: S101 - the pages' routes need a workspace
        try:
            await change
        except OrbitError as exc:
            return await self._detail(principal, tenant, runtime, plugin_id, error=exc, form=form)
        return go(request, then or f"/t/{tenant.tenant_slug}/marketplace/{plugin_id}")

    async def _detail(
        self,
        principal: Principal,
        tenant: TenantContext,
        runtime: Runtime,
        plugin_id: str,
        *,
        error: OrbitError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        tenant.require(Scope.PLUGINS_WRITE)
        entry = await runtime.marketplace.entry(tenant, plugin_id)
        manifest = entry.manifest
        return page(
            "marketplace/detail.html",
            principal,
            status_code=HTTP_422_UNPROCESSABLE_ENTITY if error else 200,
            entry=entry,
            manifest=manifest,
            readme=readme_html(manifest.readme) if manifest else Markup(),
            scope_descriptions=SCOPE_DESCRIPTIONS,
            error=error.message if error else None,
            errors=error.fields if error and error.fields else {},
            form=form or entry.settings or {},
        )
