"""Plugin output for Orbit's pages: record sidebars, timeline entries, dashboard widgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from orbit.plugins.context import Fragment, TimelineEntry, Widget

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from orbit.plugins.host import PluginHost
    from orbit.tenants.context import TenantContext

MAX_TIMELINE_ENTRIES = 50
"""Per plugin and record page."""


@dataclass(frozen=True, slots=True)
class PluginTimelineEntry:
    """A timeline entry with the plugin that added it."""

    plugin: str
    occurred_at: datetime
    title: str
    body: str
    url: str = ""


def _link(url: str) -> str:
    """A timeline link only to the web or this site (never ``javascript:`` and the like)."""
    return url if url.startswith(("https://", "http://", "/")) and not url.startswith("//") else ""


async def record_plugins(
    host: PluginHost, tenant: TenantContext, record_type: str, record_id: UUID
) -> dict[str, Any]:
    """Template context for a record page: ``plugin_slots`` and ``plugin_timeline``.

    Only plugins the tenant enabled are asked, and for the sidebar only those whose
    manifest lists the slot; a failing plugin is left out (and counted).
    """
    plugins = await host.for_tenant(tenant.tenant_id, tenant.tenant_slug)
    if not plugins.enabled:
        return {}
    slot = f"{record_type}.sidebar"
    fragments: list[Fragment] = []
    for plugin_id in plugins.implementers("orbit_ui_slot"):
        manifest = host.registry.manifest(plugin_id)
        if manifest is None or slot not in manifest.slots:
            continue
        answers = await plugins.call(
            "orbit_ui_slot", only=plugin_id, slot=slot, subject_id=record_id
        )
        fragments.extend(a.value for a in answers if isinstance(a.value, Fragment))
    timeline = [
        PluginTimelineEntry(
            answer.plugin_id, entry.occurred_at, entry.title, entry.body, _link(entry.url)
        )
        for answer in await plugins.call(
            "orbit_timeline_entries", subject_type=record_type, subject_id=record_id
        )
        for entry in list(answer.value)[:MAX_TIMELINE_ENTRIES]
        if isinstance(entry, TimelineEntry)
    ]
    timeline.sort(key=lambda entry: entry.occurred_at, reverse=True)
    return {"plugin_slots": {slot: fragments}, "plugin_timeline": timeline}


async def dashboard_widgets(host: PluginHost, tenant: TenantContext) -> list[Widget]:
    """Dashboard cards from the tenant's enabled plugins that list the ``dashboard`` slot."""
    plugins = await host.for_tenant(tenant.tenant_id, tenant.tenant_slug)
    widgets: list[Widget] = []
    for answer in await plugins.call("orbit_dashboard_widgets"):
        manifest = host.registry.manifest(answer.plugin_id)
        if manifest is not None and "dashboard" in manifest.slots:
            widgets.extend(w for w in answer.value if isinstance(w, Widget))
    return widgets


@dataclass(frozen=True, slots=True)
class NavLink:
    """A plugin's link in the workspace navigation (its manifest's ``nav``)."""

    plugin: str
    label: str
    href: str


async def navigation(host: PluginHost, tenant_id: UUID, tenant_slug: str) -> list[NavLink]:
    """Nav links of the plugins the tenant enabled whose manifest has ``nav``, by label.

    One indexed query, and none at all when no loaded plugin has a link.
    """
    links = {m.id: m.nav for m in host.registry.loaded if m.nav is not None}
    if not links:
        return []
    enabled = await host.db.fetch(
        "SELECT plugin_id FROM plugin_installations "
        "WHERE tenant_id = $1 AND enabled AND plugin_id = ANY ($2::text[])",
        tenant_id,
        list(links),
    )
    found = [
        NavLink(plugin_id, label, f"/t/{tenant_slug}/apps/{plugin_id}{path}")
        for plugin_id, (label, path) in ((r["plugin_id"], links[r["plugin_id"]]) for r in enabled)
    ]
    return sorted(found, key=lambda link: (link.label.casefold(), link.plugin))


def fragment_html(fragment: Fragment | Widget) -> Markup:
    """A fragment as markup for the page (the plugin escaped what it took from users)."""
    return Markup(  # noqa: S704 - plugin HTML is trusted the way its code is
        f'<section class="card plugin-panel"><h2>{escape(fragment.title)}</h2>'
        f"{fragment.html}</section>"
    )
