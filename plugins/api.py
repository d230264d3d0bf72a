"""The only module a plugin imports: Orbit's public plugin API.

Semantic versioning applies to this module and :mod:`orbit.plugins.hookspecs`
together (:data:`ORBIT_PLUGIN_API_VERSION`): a minor version adds hooks, hook
arguments or context services; only a major version removes or changes one.

A plugin is a module with a ``MANIFEST`` and functions marked ``@hookimpl``::

    from orbit.plugins.api import Fragment, Manifest, PluginContext, hookimpl

    MANIFEST = Manifest(id="hello", name="Hello", version="1.0.0", summary="Says hello",
                        author="You", license="MIT", requires_orbit=">=0.1,<1",
                        scopes=("contacts:read",), slots=("contact.sidebar",))

    @hookimpl
    async def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id):
        contact = await ctx.contacts.get(subject_id)
        return Fragment("Hello", f"<p>Hello {escape(contact.name)}</p>")

and a distribution that names it in the ``orbit.plugins`` entry-point group.
docs/plugins.md is the guide.
"""

from __future__ import annotations

import pluggy
from litestar import Request, Response, delete, get, patch, post, put
from markupsafe import Markup, escape

from orbit.platform.db.migrations import plugin_owned, sql
from orbit.platform.version import ORBIT_VERSION
from orbit.plugins.context import (
    Actor,
    Answer,
    Company,
    Contact,
    Deal,
    Event,
    Fragment,
    PluginContext,
    PluginDatabase,
    ScheduledJob,
    ScopeError,
    Task,
    TimelineEntry,
    User,
    Widget,
)
from orbit.plugins.hookspecs import hookspec
from orbit.plugins.links import TokenError, TokenExpiredError
from orbit.plugins.manifest import PLUGIN_SCOPES, UI_SLOTS, Manifest, Setting
from orbit.plugins.pages import Page, PublicPage
from orbit.plugins.public import PublicGate

ORBIT_PLUGIN_API_VERSION = "1.1.0"
"""The version of this API (semver); compare against it, not against Orbit's version."""

hookimpl = pluggy.HookimplMarker("orbit")
"""Marks a function as the implementation of the hook with the same name."""

# ``hookspec`` marks the functions of a plugin's own hooks module (manifest ``hookspecs``).

__all__ = [
    "ORBIT_PLUGIN_API_VERSION",
    "ORBIT_VERSION",
    "PLUGIN_SCOPES",
    "UI_SLOTS",
    "Actor",
    "Answer",
    "Company",
    "Contact",
    "Deal",
    "Event",
    "Fragment",
    "Manifest",
    "Markup",
    "Page",
    "PluginContext",
    "PluginDatabase",
    "PublicGate",
    "PublicPage",
    "Request",
    "Response",
    "ScheduledJob",
    "ScopeError",
    "Setting",
    "Task",
    "TimelineEntry",
    "TokenError",
    "TokenExpiredError",
    "User",
    "Widget",
    "delete",
    "escape",
    "get",
    "hookimpl",
    "hookspec",
    "patch",
    "plugin_owned",
    "post",
    "put",
    "sql",
]
