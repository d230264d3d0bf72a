"""The marketplace over JSON: ``/api/v1/marketplace`` (owners and admins: ``plugins:write``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put

from orbit.platform.runtime import Runtime
from orbit.plugins.schemas import EnableRequest, SettingsRequest
from orbit.tenants.context import TenantContext


class MarketplaceController(Controller):
    """Browse plugins; enable, configure, disable and uninstall them for the workspace."""

    path = "/api/v1/marketplace"
    tags = ["marketplace"]

    @get("/")
    async def list_plugins(
        self, tenant: TenantContext, runtime: Runtime, q: str = ""
    ) -> dict[str, Any]:
        """Every plugin this Orbit found, compatible or not (with the reason)."""
        entries = await runtime.marketplace.catalog(tenant, q[:200])
        return {"items": [entry.as_json() for entry in entries]}

    @get("/{plugin_id:str}")
    async def get_plugin(
        self, tenant: TenantContext, runtime: Runtime, plugin_id: str
    ) -> dict[str, Any]:
        """One plugin: manifest, readme, this workspace's state and settings (secrets masked)."""
        entry = await runtime.marketplace.entry(tenant, plugin_id)
        body = entry.as_json()
        body["readme"] = entry.manifest.readme if entry.manifest else ""
        body["secrets_set"] = sorted(entry.secrets_set)
        return body

    @post("/{plugin_id:str}/enable")
    async def enable_plugin(
        self, tenant: TenantContext, runtime: Runtime, plugin_id: str, data: EnableRequest
    ) -> dict[str, Any]:
        """Install (first time) and enable, consenting to the plugin's scopes."""
        entry = await runtime.marketplace.enable(
            tenant, plugin_id, granted_scopes=data.scopes, settings=data.settings
        )
        return entry.as_json()

    @put("/{plugin_id:str}/settings")
    async def configure_plugin(
        self, tenant: TenantContext, runtime: Runtime, plugin_id: str, data: SettingsRequest
    ) -> dict[str, Any]:
        """Replace the plugin's settings for this workspace."""
        return (await runtime.marketplace.configure(tenant, plugin_id, data.settings)).as_json()

    @post("/{plugin_id:str}/disable")
    async def disable_plugin(
        self, tenant: TenantContext, runtime: Runtime, plugin_id: str
    ) -> dict[str, Any]:
        """Disable; the plugin's data stays."""
        return (await runtime.marketplace.disable(tenant, plugin_id)).as_json()

    @delete("/{plugin_id:str}")
    async def uninstall_plugin(
        self, tenant: TenantContext, runtime: Runtime, plugin_id: str, keep_data: bool
    ) -> None:
        """Uninstall; ``keep_data=false`` deletes the plugin's rows of this workspace."""
        await runtime.marketplace.uninstall(tenant, plugin_id, keep_data=keep_data)
