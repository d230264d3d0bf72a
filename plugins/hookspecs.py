"""Every hook Orbit calls on plugins: with :mod:`orbit.plugins.api`, the public plugin API.

Rules that hold for every hook (docs/plugins.md has the long form):

- Implement a hook with ``@hookimpl`` from :mod:`orbit.plugins.api` on a function of
  the same name; take only the keyword arguments you need (new arguments may be
  added in minor versions of the API; old plugins keep working).
- Per-tenant hooks (those with ``ctx``) are only called for tenants that enabled the
  plugin, with a :class:`~orbit.plugins.api.PluginContext` of that tenant.
- An implementation may be ``async def``. Each call runs isolated: an exception, or
  going over the hook's time budget, is logged with the plugin id and tenant and
  counted, and never fails Orbit's request or the other plugins' calls; repeated
  failures disable the plugin for that tenant and tell its admins.
- Hooks returning a value are collected into a list, one entry per plugin that
  answered (``None`` answers are dropped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.context import (
        Event,
        Fragment,
        PluginContext,
        ScheduledJob,
        TimelineEntry,
        Widget,
    )

hookspec = pluggy.HookspecMarker("orbit")


# --- lifecycle, per tenant --------------------------------------------------------


@hookspec
def orbit_plugin_installed(ctx: PluginContext) -> None:
    """The tenant's admin installed the plugin (first enabling); set up its defaults."""


@hookspec
def orbit_plugin_enabled(ctx: PluginContext) -> None:
    """The plugin was enabled for the tenant (also after the first install)."""


@hookspec
def orbit_plugin_disabled(ctx: PluginContext, reason: str) -> None:
    """The plugin was disabled for the tenant; its data stays.

    ``reason`` is ``"admin"`` or ``"circuit_breaker"`` (too many failures).
    """


@hookspec
def orbit_plugin_uninstalled(ctx: PluginContext, keep_data: bool) -> None:
    """The plugin was uninstalled for the tenant.

    With ``keep_data`` false, Orbit empties the tables the manifest lists for this
    tenant right after this call; clean up anything kept elsewhere here.
    """


# --- domain events ----------------------------------------------------------------


@hookspec
def orbit_event(ctx: PluginContext, event: Event) -> None:
    """A committed domain event of the tenant (types the manifest's ``events`` lists).

    Delivered by the worker at least once: the same ``event.id`` may arrive again
    after a crash or a failure, so make the effect idempotent (key it on
    ``event.id``). Raising (or running over the budget) retries it with backoff.
    """


# --- the web app ----------------------------------------------------------------


@hookspec
def orbit_api_routes() -> list[Any]:
    """Litestar route handlers mounted under ``/api/v1/apps/{plugin id}/``.

    Called once at start-up. Requests reach them only for tenants that enabled
    the plugin (404 otherwise); a handler asks for ``plugin: PluginContext`` to
    get the tenant's context.
    """


@hookspec
def orbit_page_routes() -> list[Any]:
    """Litestar route handlers for pages under ``/t/{slug}/apps/{plugin id}/`` (as above).

    Return a :class:`~orbit.plugins.api.Page` to render inside Orbit's layout (its
    navigation, the signed-in user, htmx's CSRF header); plain forms carry
    ``ctx.csrf_field()``.
    """


@hookspec
def orbit_public_routes() -> list[Any]:
    """Litestar route handlers for pages anyone may open, under ``/p/{plugin id}/``.

    Called once at start-up. No login, no session, no CSRF check (a mail provider's
    RFC 8058 one-click unsubscribe posts ``List-Unsubscribe=One-Click`` with no
    cookie); requests are rate-limited per client address (429). A handler asks for
    ``public: PublicGate`` and acts in a workspace only through a token the plugin
    signed with ``ctx.sign(data, purpose, max_age)``::

        async with public.open(token, "unsubscribe") as (ctx, data):
            ...

    which answers 404 for a forged, altered or foreign token (another plugin's,
    purpose's or workspace's) or when the workspace no longer has the plugin
    enabled, and 410 for an expired one. Return a
    :class:`~orbit.plugins.api.PublicPage` for a standalone page.
    """


@hookspec
def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """A fragment of HTML for one of the record page slots the manifest lists.

    ``slot`` is ``contact.sidebar``, ``deal.sidebar`` or ``company.sidebar``;
    ``subject_id`` is the record's id (the user viewing the page may see it).
    Return ``None`` to show nothing. Called while the
    page renders, under a short time budget.
    """


@hookspec
def orbit_dashboard_widgets(ctx: PluginContext) -> list[Widget] | None:
    """Widgets for the tenant's dashboard (the manifest lists the ``dashboard`` slot)."""


@hookspec
def orbit_timeline_entries(
    ctx: PluginContext, subject_type: str, subject_id: UUID
) -> list[TimelineEntry] | None:
    """Entries the plugin adds to a contact's, company's or deal's timeline.

    Titles and bodies are text, escaped by Orbit; an entry's ``url`` links its title.
    """


# --- settings, jobs, data portability ----------------------------------------------


@hookspec
def orbit_validate_settings(ctx: PluginContext, settings: dict[str, Any]) -> list[str] | None:
    """Problems with ``settings`` beyond the manifest's schema (one message each).

    Called before a new configuration is saved; an empty list or ``None`` accepts it.
    """


@hookspec
def orbit_scheduled_jobs() -> list[ScheduledJob]:
    """Jobs the worker runs periodically, once per interval for every enabling tenant."""


@hookspec
def orbit_contact_export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
    """Everything the plugin keeps about one contact, JSON-serialisable (access requests)."""


@hookspec
def orbit_contact_erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Erase everything the plugin keeps about one contact (erasure requests)."""
